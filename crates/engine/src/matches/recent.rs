//! `-m recent` (xt_recent revision 1): named lists of recently seen addresses, shared by every
//! rule naming the same list (`--set`, `--rcheck`, `--update`, `--remove`, with `--seconds`,
//! `--hitcount`, `--reap`, `--rttl`, `--rsource`/`--rdest`, `--mask`).
//!
//! Kept as the kernel keeps it with its default module parameters on the reference machine
//! (`ip_list_tot=100` addresses per list, `ip_pkt_list_tot=0`): each address remembers a ring
//! of arrival times in jiffies (see [`super::limit::jiffies`]) whose size is fixed per list
//! when the ruleset is loaded. Lists are small (at most 100 addresses), so they are kept in
//! least-recently-used order in a vector; a removed address's time ring is kept for reuse, so
//! memory is only taken when a list first grows to a new size.

use super::limit::{jiffies, HZ};
use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::recent::{Recent, Side, CHECK, REAP, REMOVE, SET, TTL, UPDATE};
use nfrs_rules::Hook;

/// Addresses kept per list (module parameter `ip_list_tot`).
pub const IP_LIST_TOT: usize = 100;

/// One remembered address (struct recent_entry).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The address (host order), already masked with the list's mask.
    pub addr: u32,
    /// TTL of the packet that last set or updated it.
    pub ttl: u8,
    /// Next slot of the time ring, 1-based as the kernel keeps it.
    pub index: u16,
    /// Slots of the ring in use.
    pub nstamps: u16,
    /// Arrival times (jiffies), `nstamps_mask + 1` slots.
    pub stamps: Vec<u64>,
}

/// One named list (struct recent_table).
#[derive(Clone, Debug)]
pub struct List {
    /// The list's name.
    pub name: String,
    /// Address mask of the rule that created the list (later rules' masks are not used).
    pub mask: u32,
    /// Ring size minus one (a power of two minus one).
    pub nstamps_mask: u16,
    /// Addresses, least recently used first.
    pub entries: Vec<Entry>,
    /// Time rings of removed entries, kept for reuse.
    spare: Vec<Vec<u64>>,
}

/// Kernel rule (time_after): `a` is after `b` on the wrapping jiffies clock.
#[inline]
fn time_after(a: u64, b: u64) -> bool {
    (b.wrapping_sub(a) as i64) < 0
}

impl List {
    fn new(name: &str, mask: u32, nstamps_mask: u16) -> List {
        List {
            name: name.to_string(),
            mask,
            nstamps_mask,
            entries: Vec::with_capacity(IP_LIST_TOT),
            spare: Vec::new(),
        }
    }

    /// Kernel rule (recent_entry_lookup): same address, and when a TTL is asked for, the same
    /// TTL unless either side is 0.
    fn lookup(&self, addr: u32, ttl: u8) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.addr == addr && (ttl == e.ttl || ttl == 0 || e.ttl == 0))
    }

    fn remove(&mut self, i: usize) {
        let e = self.entries.remove(i);
        self.spare.push(e.stamps);
    }

    /// Forgets every address (a list whose ring grows is flushed).
    pub fn flush(&mut self) {
        while !self.entries.is_empty() {
            self.remove(self.entries.len() - 1);
        }
    }

    /// Kernel rule (recent_entry_init): a full list first drops its least recently used
    /// address; the new one starts with one time stamp. Returns its position (the last).
    fn init(&mut self, addr: u32, ttl: u8, now: u64) -> usize {
        if self.entries.len() >= IP_LIST_TOT {
            self.remove(0);
        }
        let size = self.nstamps_mask as usize + 1;
        let mut stamps = self.spare.pop().unwrap_or_default();
        stamps.clear();
        stamps.resize(size, 0);
        stamps[0] = now;
        self.entries.push(Entry {
            addr,
            ttl,
            index: 1,
            nstamps: 1,
            stamps,
        });
        self.entries.len() - 1
    }

    /// Kernel rule (recent_entry_update): write the time at the ring's next slot and make
    /// the address the most recently used. Returns its new position (the last).
    fn update(&mut self, i: usize, now: u64) -> usize {
        let mask = self.nstamps_mask;
        let e = &mut self.entries[i];
        e.index &= mask;
        e.stamps[e.index as usize] = now;
        e.index += 1;
        if e.index > e.nstamps {
            e.nstamps = e.index;
        }
        let last = self.entries.len() - 1;
        if i != last {
            let e = self.entries.remove(i);
            self.entries.push(e);
        }
        last
    }

    /// Kernel rule (recent_entry_reap): the least recently used address goes if its newest
    /// time is older than `time`, unless it is the one about to be updated.
    fn reap(&mut self, time: u64, working: usize, update: bool) -> Option<usize> {
        if working == 0 && update {
            return Some(working);
        }
        let head = &self.entries[0];
        let newest = head.stamps[head.index as usize - 1];
        if time_after(time, newest) {
            self.remove(0);
            return working.checked_sub(1);
        }
        Some(working)
    }
}

/// The named address lists of `-m recent`, shared by every rule naming the same list
/// (kept in `EvalState::recent`).
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// Lists in creation order.
    pub lists: Vec<List>,
}

impl Tables {
    /// The list called `name`.
    pub fn get(&self, name: &str) -> Option<&List> {
        self.lists.iter().find(|l| l.name == name)
    }
}

/// Kernel rule (recent_mt_check with `ip_pkt_list_tot=0`): the ring holds the hit count
/// rounded up to a power of two, or 32 times without `--hitcount`.
fn ring_mask(hit_count: u32) -> u16 {
    if hit_count == 0 {
        31
    } else {
        (hit_count.next_power_of_two() - 1) as u16
    }
}

/// Creates the list when no rule named it yet (with this rule's mask); a rule needing a
/// larger ring grows (and so flushes) an existing list, as the kernel does. Refuses what the
/// kernel's checkentry refuses (nfrs-rules refuses it first).
pub fn compile(m: &Recent, cx: &mut CompileCtx) -> Result<(), CompileError> {
    let ops = m.check_set & (SET | CHECK | UPDATE | REMOVE);
    if ops.count_ones() != 1
        || (m.check_set & (SET | REMOVE) != 0
            && (m.seconds != 0 || m.hit_count != 0 || m.check_set & (TTL | REAP) != 0))
        || (m.check_set & REAP != 0 && m.seconds == 0)
        || m.hit_count >= 65536
        || m.name.is_empty()
    {
        return Err(CompileError(
            "nfrs replay: recent: options the kernel refuses (EINVAL)".into(),
        ));
    }
    let mask = ring_mask(m.hit_count);
    let lists = &mut cx.state.recent.lists;
    match lists.iter_mut().find(|l| l.name == m.name) {
        Some(l) => {
            if mask > l.nstamps_mask {
                l.flush();
                l.nstamps_mask = mask;
            }
        }
        None => lists.push(List::new(&m.name, u32::from(m.mask), mask)),
    }
    Ok(())
}

/// True when the packet was made by this host (its socket owns it): the hooks it walks
/// before the output device is known, or POSTROUTING with no input device.
fn local_out(p: &PktCtx) -> bool {
    p.hook == Hook::Output || (p.hook == Hook::PostRouting && p.indev.is_empty())
}

/// Kernel rule (recent_mt): look the (masked) address up; a missing one matches only for
/// `--set`, which adds it; otherwise `--set` matches and refreshes, `--remove` matches and
/// forgets, `--rcheck`/`--update` match when enough of the remembered times fall within
/// `--seconds`, and `--update` then refreshes when the result (after `!`) is true.
pub fn eval(m: &Recent, p: &PktCtx, env: &mut MatchEnv) -> bool {
    let Some(t) = env.state.recent.lists.iter_mut().find(|l| l.name == m.name) else {
        return false;
    };
    let addr = match m.side {
        Side::Source => p.src(),
        Side::Dest => p.dst(),
    } & t.mask;
    // The TTL as it was before forwarding: a packet on its way out that no local socket sent
    // had its TTL lowered already (u8 arithmetic: 255 becomes 0, "any TTL").
    let mut ttl = p.d.ttl;
    if !p.outdev.is_empty() && !local_out(p) {
        ttl = ttl.wrapping_add(1);
    }
    let now = jiffies(p.now);
    let mut ret = m.invert;
    let want_ttl = if m.check_set & TTL != 0 { ttl } else { 0 };
    let Some(mut i) = t.lookup(addr, want_ttl) else {
        if m.check_set & SET == 0 {
            return ret;
        }
        t.init(addr, ttl, now);
        return !ret;
    };
    if m.check_set & SET != 0 {
        ret = !ret;
    } else if m.check_set & REMOVE != 0 {
        t.remove(i);
        return !ret;
    } else if m.check_set & (CHECK | UPDATE) != 0 {
        // seconds * HZ is computed in 32 bits, as the kernel does.
        let time = now.wrapping_sub(u64::from(m.seconds.wrapping_mul(HZ as u32)));
        let e = &t.entries[i];
        let mut hits = 0u32;
        for &stamp in &e.stamps[..e.nstamps as usize] {
            if m.seconds != 0 && time_after(time, stamp) {
                continue;
            }
            hits += 1;
            if m.hit_count == 0 || hits >= m.hit_count {
                ret = !ret;
                break;
            }
        }
        if m.check_set & REAP != 0 {
            match t.reap(time, i, m.check_set & UPDATE != 0 && ret) {
                Some(j) => i = j,
                None => return ret,
            }
        }
    }
    if m.check_set & SET != 0 || (m.check_set & UPDATE != 0 && ret) {
        let j = t.update(i, now);
        t.entries[j].ttl = ttl;
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pkt, rule_matches};
    use super::super::{compile_match, eval_match, CompileCtx, EvalState, MatchEnv, NoHost};
    use super::*;
    use nfrs_rules::ext::Match;
    use nfrs_rules::{IpSpec, TableKind};

    /// A ruleset of recent matches sharing one state.
    struct Rig {
        st: EvalState,
        ms: Vec<Match>,
    }

    impl Rig {
        fn new(rules: &[&str]) -> Rig {
            let mut st = EvalState::default();
            let ip = IpSpec::default();
            let mut ms = Vec::new();
            for r in rules {
                let mut args = vec!["-m", "recent"];
                args.extend(r.split_whitespace());
                let m = rule_matches(&args).remove(0);
                let mut cx = CompileCtx {
                    table: TableKind::Filter,
                    hooks: Hook::Input.bit(),
                    ip: &ip,
                    needs_conntrack: false,
                    state: &mut st,
                    slot: 0,
                };
                compile_match(&m, &mut cx).unwrap();
                ms.push(m);
            }
            Rig { st, ms }
        }

        /// Evaluates rule `i` on a packet from `src` with `ttl` at `ms` milliseconds.
        fn ev(&mut self, i: usize, src: &str, ttl: u8, ms: u64) -> bool {
            self.ev_at(i, src, ttl, ms, Hook::Input, "eth0", "")
        }

        /// The same at `hook` with these devices.
        #[allow(clippy::too_many_arguments)]
        fn ev_at(
            &mut self,
            i: usize,
            src: &str,
            ttl: u8,
            ms: u64,
            hook: Hook,
            indev: &str,
            outdev: &str,
        ) -> bool {
            let mut p = pkt(&format!("udp {src}:1000 > 10.0.0.1:53 ttl={ttl}"));
            p.now = ms * 1_000_000;
            p.hook = hook;
            p.indev = crate::pkt::IfName::new(indev);
            p.outdev = crate::pkt::IfName::new(outdev);
            let mut env = MatchEnv {
                state: &mut self.st,
                slot: 0,
                hotdrop: false,
                host: &NoHost,
            };
            eval_match(&self.ms[i], &p, &mut env)
        }
    }

    #[test]
    fn set_then_rcheck_and_remove() {
        let mut r = Rig::new(&["--set --name A", "--rcheck --name A", "--remove --name A"]);
        assert!(!r.ev(1, "192.0.2.1", 64, 0), "unknown address");
        assert!(r.ev(0, "192.0.2.1", 64, 0), "--set always matches");
        assert!(r.ev(1, "192.0.2.1", 64, 10));
        assert!(!r.ev(1, "192.0.2.2", 64, 10));
        assert!(
            r.ev(2, "192.0.2.1", 64, 20),
            "--remove matches a known address"
        );
        assert!(!r.ev(2, "192.0.2.1", 64, 20));
        assert!(!r.ev(1, "192.0.2.1", 64, 30));
    }

    #[test]
    fn hitcount_within_seconds() {
        // The classic SSH brute-force rule: a 4th attempt within 60 s matches.
        let mut r = Rig::new(&[
            "--set --name SSH",
            "--update --seconds 60 --hitcount 4 --name SSH",
        ]);
        let mut t = 0;
        for n in 1..=3 {
            assert!(r.ev(0, "198.51.100.7", 64, t));
            assert!(!r.ev(1, "198.51.100.7", 64, t), "attempt {n}");
            t += 1000;
        }
        assert!(r.ev(0, "198.51.100.7", 64, t));
        assert!(r.ev(1, "198.51.100.7", 64, t), "4th attempt");
        // --update refreshed on the match: 5 stamps now, the oldest at 0 s.
        // At 60.004 s the first stamp (0) is older than 60 s: 4 remain, still a match.
        assert!(r.ev(1, "198.51.100.7", 64, 60_004));
    }

    #[test]
    fn measured_set_then_update_hitcount_four() {
        // Measured on Linux 6.18 (netns, OUTPUT counters): five rounds of one --set datagram
        // then one `--update --seconds 60 --hitcount 4` datagram: the update rule counted 2.
        let mut r = Rig::new(&[
            "--set --name R",
            "--update --seconds 60 --hitcount 4 --name R",
        ]);
        let mut hits = 0;
        for i in 0..5 {
            assert!(r.ev(0, "10.9.0.1", 64, i * 10));
            hits += r.ev(1, "10.9.0.1", 64, i * 10 + 1) as u32;
        }
        assert_eq!(hits, 2);
    }

    #[test]
    fn seconds_boundary_is_inclusive() {
        // time_after(now - 2 s, stamp): a stamp exactly 2 s old still counts.
        let mut r = Rig::new(&["--set --name B", "--rcheck --seconds 2 --name B"]);
        r.ev(0, "192.0.2.9", 64, 1000);
        assert!(r.ev(1, "192.0.2.9", 64, 3000));
        assert!(r.ev(1, "192.0.2.9", 64, 3003), "same jiffy");
        assert!(!r.ev(1, "192.0.2.9", 64, 3004));
    }

    #[test]
    fn measured_first_rules_mask_is_the_lists() {
        // Measured on Linux 6.18: `--set --mask 255.255.255.0` for 10.9.0.3, then a
        // `--rcheck` rule with the default mask matched 10.9.0.66 (the list keeps the mask of
        // the rule that created it); /proc/net/xt_recent listed src=10.9.0.0.
        let mut r = Rig::new(&["--set --name M --mask 255.255.255.0", "--rcheck --name M"]);
        r.ev(0, "10.9.0.3", 64, 0);
        assert!(r.ev(1, "10.9.0.66", 64, 1));
        assert_eq!(r.st.recent.get("M").unwrap().entries[0].addr, 0x0a09_0000);
    }

    #[test]
    fn inverted_update_refreshes_on_miss() {
        // ret starts at invert: a miss with `!` is a match and --update then refreshes.
        // Measured on Linux 6.18: `! --update --seconds 1` 1.2 s after `--set` counted, the
        // list then held 2 stamps, and a following `--rcheck --seconds 1` counted.
        let mut r = Rig::new(&[
            "--set --name C",
            "! --update --seconds 1 --name C",
            "--rcheck --seconds 1 --name C",
        ]);
        r.ev(0, "192.0.2.3", 64, 0);
        assert!(r.ev(1, "192.0.2.3", 64, 5000), "old: miss, inverted");
        assert!(
            r.ev(2, "192.0.2.3", 64, 5000),
            "refreshed by the inverted update"
        );
    }

    #[test]
    fn rttl_and_mask() {
        let mut r = Rig::new(&[
            "--set --name D --mask 255.255.255.0",
            "--rcheck --rttl --name D",
        ]);
        r.ev(0, "192.0.2.3", 64, 0);
        assert!(r.ev(1, "192.0.2.77", 64, 1), "same /24");
        assert!(!r.ev(1, "192.0.2.77", 63, 1), "other TTL");
        assert!(!r.ev(1, "192.0.3.1", 64, 1));
    }

    #[test]
    fn measured_ttl_as_before_forwarding() {
        // Measured on Linux 6.18 (router netns): `--set` in PREROUTING (TTL 64), then
        // `--rcheck --rttl` matched in FORWARD and in POSTROUTING, where the header says 63.
        let mut r = Rig::new(&["--set --name T", "--rcheck --rttl --name T"]);
        assert!(r.ev_at(0, "10.9.1.2", 64, 0, Hook::PreRouting, "vRa", ""));
        assert!(r.ev_at(1, "10.9.1.2", 63, 1, Hook::Forward, "vRa", "vRb"));
        assert!(r.ev_at(1, "10.9.1.2", 63, 1, Hook::PostRouting, "vRa", "vRb"));
        // Delivered locally (no output device): the header's TTL is compared.
        assert!(!r.ev_at(1, "10.9.1.2", 63, 1, Hook::Input, "vRa", ""));
        // Sent by this host: no correction.
        assert!(!r.ev_at(1, "10.9.1.2", 63, 1, Hook::Output, "", "vRb"));
        assert!(r.ev_at(1, "10.9.1.2", 64, 1, Hook::PostRouting, "", "vRb"));
    }

    #[test]
    fn list_holds_100_addresses() {
        let mut r = Rig::new(&["--set --name E", "--rcheck --name E"]);
        for i in 0..101u32 {
            r.ev(
                0,
                &format!("10.1.{}.{}", i / 200, i % 200 + 1),
                64,
                u64::from(i),
            );
        }
        assert!(!r.ev(1, "10.1.0.1", 64, 200), "least recently used dropped");
        assert!(r.ev(1, "10.1.0.2", 64, 200));
        assert_eq!(r.st.recent.get("E").unwrap().entries.len(), 100);
    }

    #[test]
    fn reap_drops_stale_head() {
        let mut r = Rig::new(&["--set --name F", "--rcheck --seconds 1 --reap --name F"]);
        r.ev(0, "192.0.2.1", 64, 0);
        r.ev(0, "192.0.2.2", 64, 5000);
        assert!(r.ev(1, "192.0.2.2", 64, 5000));
        assert_eq!(
            r.st.recent.get("F").unwrap().entries.len(),
            1,
            "stale 192.0.2.1 reaped"
        );
    }

    #[test]
    fn ring_size() {
        assert_eq!(ring_mask(0), 31);
        assert_eq!(ring_mask(1), 0);
        assert_eq!(ring_mask(4), 3);
        assert_eq!(ring_mask(5), 7);
    }
}
