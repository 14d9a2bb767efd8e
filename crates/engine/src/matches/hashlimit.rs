//! `-m hashlimit` (xt_hashlimit revision 3): one token bucket (or, with
//! `--hashlimit-rate-match`, one rate meter) per flow, the flow being the packet's masked
//! addresses and ports named by `--hashlimit-mode`, kept in a table shared by every rule with
//! the same `--hashlimit-name`. `--hashlimit-upto` matches under the rate, `--hashlimit-above`
//! over it.
//!
//! Kept as the kernel keeps it: credits in 64 bits at 2^39 per jiffy (packets) or 2^24 per
//! jiffy (bytes), time in jiffies (see [`super::limit::jiffies`]), a table whose size and
//! entry limit come from the first rule naming it (default 8192 buckets on the reference
//! machine's >1 GiB of memory, so at most 65536 flows; a new flow past the limit drops the
//! packet). Idle flows are forgotten by the garbage collector, which the kernel runs every
//! `--hashlimit-htable-gcinterval` ms on a deferrable timer: here it runs at whole multiples
//! of that interval from scenario time 0 (the kernel's timer may run later when the CPU is
//! idle, so a flow idle for about its expiry time may or may not be forgotten there).
//!
//! Memory: a new flow takes a slot in the table's vector and map (taken again from freed
//! flows first), as the kernel allocates one entry per new flow; a known flow allocates
//! nothing.

use super::limit::{jiffies, HZ};
use super::{CompileCtx, CompileError, MatchEnv, StateSlot};
use crate::pkt::PktCtx;
use nfrs_rules::ext::hashlimit::{
    Hashlimit, BYTES, BYTE_SHIFT, HASH_DIP, HASH_DPT, HASH_SIP, HASH_SPT, INVERT, RATE_MATCH,
};
use std::collections::HashMap;

/// Credits per jiffy in packet mode: the largest power of two with
/// `cpj * HZ * 86400 < 2^64` (2^39 at HZ=250).
pub const CREDITS_PER_JIFFY: u64 = pow2_below64(u64::MAX / (HZ * 86400));

/// Credits per jiffy in byte mode: the largest power of two below `2^32 / HZ` (2^24).
pub const CREDITS_PER_JIFFY_BYTES: u64 = pow2_below64(0xFFFF_FFFF / HZ);

/// Rates are periods in microseconds (XT_HASHLIMIT_SCALE_v2).
const SCALE: u64 = 1_000_000;

/// Buckets of a table created without `--hashlimit-htable-size` on a machine with more than
/// 1 GiB of memory (the reference machine has 24 GiB).
pub const DEFAULT_SIZE: u32 = 8192;

const fn pow2_below64(x: u64) -> u64 {
    1 << (63 - x.leading_zeros())
}

/// Kernel rule (user2credits, revision 2+): a period in microseconds times
/// `HZ * cpj / 10^6` (computed first, as the kernel divides the constants first), wrapping
/// in 64 bits.
pub fn user2credits(user: u64) -> u64 {
    user.wrapping_mul(HZ * CREDITS_PER_JIFFY / SCALE)
}

/// Kernel rule (user2credits_byte): the byte cost scaled by `HZ * 2^24 / 2^32` (the rate is
/// cut to 32 bits first).
pub fn user2credits_byte(user: u64) -> u64 {
    ((user as u32 as u64) * HZ * CREDITS_PER_JIFFY_BYTES) >> 32
}

/// Kernel rule (msecs_to_jiffies at HZ=250): rounded up to whole 4 ms ticks.
fn ms_to_jiffies(ms: u32) -> u64 {
    u64::from(ms).div_ceil(1000 / HZ)
}

/// Kernel rule (maskl): keep the top `bits` bits (none for 0).
fn maskl(a: u32, bits: u8) -> u32 {
    if bits == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(bits.min(32))))
    }
}

/// What identifies a flow (struct dsthash_dst): fields the mode does not name are 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// Masked source address.
    pub src: u32,
    /// Masked destination address.
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// A flow's meter (the kernel's rateinfo; its two forms share memory there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meter {
    /// Token bucket (packets or bytes).
    Bucket {
        /// Credits available.
        credit: u64,
        /// Bucket size (packets), or refills left (bytes).
        credit_cap: u64,
        /// Price of one packet (packets) or of one 16-byte unit (bytes).
        cost: u64,
    },
    /// `--hashlimit-rate-match`: traffic counted per window.
    Rate {
        /// Window length in seconds.
        interval: u32,
        /// The previous window was over the rate.
        prev_window: bool,
        /// Traffic in this window.
        current_rate: u64,
        /// Allowed rate.
        rate: u64,
        /// Allowed traffic in a window.
        burst: i64,
    },
}

/// One flow (struct dsthash_ent).
#[derive(Clone, Copy, Debug)]
pub struct Flow {
    /// Its key.
    pub key: FlowKey,
    /// Jiffy at which it may be forgotten.
    pub expires: u64,
    /// Jiffy of the last update.
    pub prev: u64,
    /// Its meter.
    pub meter: Meter,
}

/// A named table (struct xt_hashlimit_htable) with the configuration of the rule that
/// created it; the engine keeps it in one state slot that every rule naming it shares.
#[derive(Clone, Debug)]
pub struct State {
    /// `--hashlimit-name`.
    pub name: String,
    /// The creating rule's configuration (mode, rates, masks, timers).
    pub cfg: Hashlimit,
    /// Most flows kept (`--hashlimit-htable-max`, else 8 times the size, at least the size).
    pub max: u32,
    /// Flows by key.
    index: HashMap<FlowKey, usize>,
    /// Flow storage (`None` = free).
    flows: Vec<Option<Flow>>,
    /// Free storage positions.
    free: Vec<usize>,
    /// Jiffy of the last garbage collection.
    last_gc: u64,
}

impl State {
    /// A table configured by `cfg`.
    pub fn new(cfg: &Hashlimit) -> State {
        let size = if cfg.size != 0 {
            cfg.size
        } else {
            DEFAULT_SIZE
        };
        let max = if cfg.max == 0 {
            size.saturating_mul(8)
        } else {
            cfg.max.max(size)
        };
        State {
            name: cfg.name.clone(),
            cfg: cfg.clone(),
            max,
            index: HashMap::new(),
            flows: Vec::new(),
            free: Vec::new(),
            last_gc: 0,
        }
    }

    /// Flows currently kept.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no flow is kept.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The flow of `key`, if kept.
    pub fn flow(&self, key: &FlowKey) -> Option<&Flow> {
        self.index.get(key).and_then(|&i| self.flows[i].as_ref())
    }

    /// Kernel rule (htable_gc with select_gc): at each collection instant, forget every flow
    /// whose expiry time has come. Collections run at multiples of the interval from 0.
    fn gc(&mut self, now: u64) {
        let every = ms_to_jiffies(self.cfg.gc_interval).max(1);
        let at = now - now % every;
        if at <= self.last_gc {
            return;
        }
        self.last_gc = at;
        let flows = &mut self.flows;
        let free = &mut self.free;
        self.index.retain(|_, &mut i| {
            let f = flows[i].as_ref().expect("indexed flow present");
            // time_after_eq(at, expires)
            if (at.wrapping_sub(f.expires) as i64) >= 0 {
                flows[i] = None;
                free.push(i);
                false
            } else {
                true
            }
        });
    }

    /// Kernel rule (rateinfo_init): a new flow's meter, full.
    fn new_meter(&self) -> Meter {
        let c = &self.cfg;
        if c.mode & RATE_MATCH != 0 {
            let (rate, burst) = if c.mode & BYTES != 0 {
                let u = c.avg as u32;
                let r = u32::MAX.checked_div(u).unwrap_or(u32::MAX);
                let rate = u64::from(r.wrapping_sub(1)) << BYTE_SHIFT;
                let burst = if c.burst != 0 {
                    c.burst.wrapping_mul(rate)
                } else {
                    rate
                };
                (rate, burst as i64)
            } else {
                let rate = SCALE.checked_div(c.avg).unwrap_or(0);
                (rate, c.burst.wrapping_add(rate) as i64)
            };
            Meter::Rate {
                interval: c.interval,
                prev_window: false,
                current_rate: 0,
                rate,
                burst,
            }
        } else if c.mode & BYTES != 0 {
            Meter::Bucket {
                credit: CREDITS_PER_JIFFY_BYTES * HZ,
                credit_cap: c.burst,
                cost: user2credits_byte(c.avg),
            }
        } else {
            let full = user2credits(c.avg.wrapping_mul(c.burst));
            Meter::Bucket {
                credit: full,
                credit_cap: full,
                cost: user2credits(c.avg),
            }
        }
    }
}

/// Kernel rule (rateinfo_recalc): refill for the jiffies since the last update.
fn recalc(f: &mut Flow, now: u64, mode: u32) {
    let delta = now.wrapping_sub(f.prev);
    if delta == 0 {
        return;
    }
    match &mut f.meter {
        Meter::Rate {
            interval,
            prev_window,
            current_rate,
            rate,
            ..
        } => {
            // A new window starts once a whole interval has gone by; the previous one was
            // over the rate when its traffic exceeds rate * elapsed time.
            let iv = u64::from(*interval) * HZ;
            if delta < iv {
                return;
            }
            f.prev = now;
            *prev_window = current_rate.wrapping_mul(iv) > delta.wrapping_mul(*rate);
            *current_rate = 0;
        }
        Meter::Bucket {
            credit, credit_cap, ..
        } => {
            f.prev = now;
            if mode & BYTES != 0 {
                let before = *credit;
                *credit = credit.wrapping_add(CREDITS_PER_JIFFY_BYTES.wrapping_mul(delta));
                let cap = CREDITS_PER_JIFFY_BYTES * HZ;
                if before >= *credit {
                    *credit = cap;
                    return;
                }
                if *credit > cap {
                    *credit = cap;
                }
            } else {
                *credit = credit.wrapping_add(delta.wrapping_mul(CREDITS_PER_JIFFY));
                if *credit > *credit_cap {
                    *credit = *credit_cap;
                }
            }
        }
    }
}

/// Kernel rule (hashlimit_init_dst): the flow key from the table's mode and masks. Ports are
/// read at the transport header's place for TCP, UDP, UDP-Lite, SCTP, DCCP, ESP (offset 0)
/// and AH (offset 4) on every packet, fragments included; other protocols have port 0. None
/// when the ports are needed but the packet is too short for them (the packet is dropped).
pub fn flow_key(cfg: &Hashlimit, p: &PktCtx) -> Option<FlowKey> {
    let mut k = FlowKey::default();
    if cfg.mode & HASH_DIP != 0 {
        k.dst = maskl(p.dst(), cfg.dstmask);
    }
    if cfg.mode & HASH_SIP != 0 {
        k.src = maskl(p.src(), cfg.srcmask);
    }
    if cfg.mode & (HASH_DPT | HASH_SPT) == 0 {
        return Some(k);
    }
    let poff = match p.d.protocol {
        6 | 17 | 33 | 50 | 132 | 136 => Some(0),
        51 => Some(4),
        _ => None,
    };
    let (sport, dport) = match poff {
        Some(o) => {
            let at = usize::from(p.d.ihl) + o;
            let end = usize::from(p.d.total_len).min(p.buf.len());
            let b = p.buf.get(at..at + 4).filter(|_| at + 4 <= end)?;
            (
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
            )
        }
        None => (0, 0),
    };
    if cfg.mode & HASH_SPT != 0 {
        k.sport = sport;
    }
    if cfg.mode & HASH_DPT != 0 {
        k.dport = dport;
    }
    Some(k)
}

/// Shares the table of an earlier rule with the same name (the kernel keeps the first rule's
/// configuration for the table), else creates it in a new slot. Refuses what the kernel's
/// checkentry refuses (nfrs-rules refuses it first), and a rule whose rate-match setting
/// differs from its table's (the kernel then reads one meter form as the other).
pub fn compile(m: &Hashlimit, cx: &mut CompileCtx) -> Result<(), CompileError> {
    let bad = |why: &str| {
        Err(CompileError(format!(
            "nfrs replay: hashlimit `{}`: {why}",
            m.name
        )))
    };
    if m.gc_interval == 0 || m.expire == 0 || m.srcmask > 32 || m.dstmask > 32 {
        return bad("zero timer or mask over 32 bits (the kernel refuses it)");
    }
    if m.mode & RATE_MATCH != 0 {
        if m.avg == 0 || m.avg > u64::from(u32::MAX) || m.interval == 0 {
            return bad("invalid rate or interval (the kernel refuses it)");
        }
    } else if m.mode & BYTES != 0 {
        if user2credits_byte(m.avg) == 0 {
            return bad("rate too high (the kernel refuses it)");
        }
    } else if m.burst == 0 || user2credits(m.avg.wrapping_mul(m.burst)) < user2credits(m.avg) {
        return bad("overflow, try lower (the kernel refuses it)");
    }
    let found = cx
        .state
        .slots
        .iter()
        .position(|s| matches!(s, StateSlot::Hashlimit(t) if t.name == m.name));
    match found {
        Some(i) => {
            let StateSlot::Hashlimit(t) = &cx.state.slots[i] else {
                unreachable!("position found a hashlimit slot")
            };
            if (t.cfg.mode ^ m.mode) & (RATE_MATCH | BYTES) != 0 {
                return bad(
                    "shares its table with a rule of another rate-match/byte mode, which the \
                     engine cannot reproduce",
                );
            }
            cx.slot = i as u32;
        }
        None => {
            cx.new_slot(StateSlot::Hashlimit(Box::new(State::new(m))));
        }
    }
    Ok(())
}

/// Kernel rule (hashlimit_mt_common): find or create the packet's flow (a new one starts
/// full, a known one is refilled and its expiry pushed back), then: rate-match counts the
/// packet (or its bytes) and is under the limit while the previous window was not over and
/// this one is within the burst; a bucket pays the packet's cost (bytes: 16-byte units, with
/// a refill taken from the burst when short) if it can. Under the limit matches for `upto`,
/// over it for `above`.
pub fn eval(m: &Hashlimit, p: &PktCtx, env: &mut MatchEnv) -> bool {
    let Some(StateSlot::Hashlimit(t)) = env.state.slots.get_mut(env.slot as usize) else {
        return false;
    };
    let now = jiffies(p.now);
    t.gc(now);
    let Some(key) = flow_key(&t.cfg, p) else {
        env.hotdrop = true;
        return false;
    };
    let expires = now + ms_to_jiffies(t.cfg.expire);
    let i = match t.index.get(&key) {
        Some(&i) => {
            let f = t.flows[i].as_mut().expect("indexed flow present");
            f.expires = expires;
            recalc(f, now, t.cfg.mode);
            i
        }
        None => {
            if t.index.len() >= t.max as usize {
                env.hotdrop = true;
                return false;
            }
            let flow = Flow {
                key,
                expires,
                prev: now,
                meter: t.new_meter(),
            };
            let i = match t.free.pop() {
                Some(i) => {
                    t.flows[i] = Some(flow);
                    i
                }
                None => {
                    t.flows.push(Some(flow));
                    t.flows.len() - 1
                }
            };
            t.index.insert(key, i);
            i
        }
    };
    let f = t.flows[i].as_mut().expect("flow just found");
    let len = p.d.l3_end().min(p.buf.len()) as u64;
    let under = match &mut f.meter {
        Meter::Rate {
            prev_window,
            current_rate,
            burst,
            ..
        } => {
            let cost = if m.mode & BYTES != 0 { len } else { 1 };
            *current_rate = current_rate.wrapping_add(cost);
            !*prev_window && *current_rate <= *burst as u64
        }
        Meter::Bucket {
            credit,
            credit_cap,
            cost,
        } => {
            let price = if m.mode & BYTES != 0 {
                // hashlimit_byte_cost: whole 16-byte units, at most one bucket; an empty
                // bucket is refilled while the burst allows.
                let cap = CREDITS_PER_JIFFY_BYTES * HZ;
                let units = (len >> BYTE_SHIFT) + 1;
                let tmp = units.wrapping_mul(*cost).min(cap);
                if *credit < tmp && *credit_cap != 0 {
                    *credit_cap -= 1;
                    *credit = cap;
                }
                tmp as u32 as u64
            } else {
                *cost
            };
            if *credit >= price {
                *credit -= price;
                true
            } else {
                false
            }
        }
    };
    under != (m.mode & INVERT != 0)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pkt, rule_matches};
    use super::super::{compile_match, eval_match, CompileCtx, EvalState, MatchEnv, NoHost};
    use super::*;
    use nfrs_rules::ext::Match;
    use nfrs_rules::{Hook, IpSpec, TableKind};

    struct Rig {
        st: EvalState,
        ms: Vec<(Match, u32)>,
    }

    impl Rig {
        fn new(rules: &[&str]) -> Rig {
            let mut st = EvalState::default();
            st.slots.push(StateSlot::None);
            let ip = IpSpec::default();
            let mut ms = Vec::new();
            for r in rules {
                let mut args = vec!["-m", "hashlimit"];
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
                let slot = compile_match(&m, &mut cx).unwrap();
                ms.push((m, slot));
            }
            Rig { st, ms }
        }

        /// Rule `i` on `line` at `ms` milliseconds: (matched, hotdrop).
        fn ev(&mut self, i: usize, line: &str, ms: u64) -> (bool, bool) {
            let mut p = pkt(line);
            p.now = ms * 1_000_000;
            let (m, slot) = &self.ms[i];
            let mut env = MatchEnv {
                state: &mut self.st,
                slot: *slot,
                hotdrop: false,
                host: &NoHost,
            };
            let r = eval_match(m, &p, &mut env);
            (r, env.hotdrop)
        }

        fn table(&self, i: usize) -> &State {
            match &self.st.slots[self.ms[i].1 as usize] {
                StateSlot::Hashlimit(t) => t,
                _ => unreachable!(),
            }
        }
    }

    const A: &str = "udp 192.0.2.1:1000 > 10.0.0.1:53";
    const B: &str = "udp 192.0.2.2:1000 > 10.0.0.1:53";

    #[test]
    fn constants() {
        assert_eq!(CREDITS_PER_JIFFY, 1 << 39);
        assert_eq!(CREDITS_PER_JIFFY_BYTES, 1 << 24);
        assert_eq!(HZ * CREDITS_PER_JIFFY / SCALE, 137_438_953);
        assert_eq!(ms_to_jiffies(1000), 250);
        assert_eq!(ms_to_jiffies(1), 1);
        assert_eq!(maskl(0xc0a8_0102, 24), 0xc0a8_0100);
        assert_eq!(maskl(0xc0a8_0102, 0), 0);
        assert_eq!(maskl(0xc0a8_0102, 32), 0xc0a8_0102);
    }

    #[test]
    fn per_source_buckets() {
        let mut r = Rig::new(&[
            "--hashlimit-upto 1/sec --hashlimit-burst 2 --hashlimit-mode srcip --hashlimit-name t",
        ]);
        assert_eq!(r.ev(0, A, 0), (true, false));
        assert_eq!(r.ev(0, A, 0), (true, false));
        assert_eq!(r.ev(0, A, 0), (false, false), "A over its burst");
        assert_eq!(r.ev(0, B, 0), (true, false), "B has its own bucket");
        assert_eq!(
            r.ev(0, A, 996),
            (false, false),
            "249 jiffies: not yet one credit"
        );
        assert_eq!(r.ev(0, A, 1000), (true, false), "250 jiffies: one packet");
        // B was last seen at 0 and expires after 1 s (the default expiry of a /sec rate):
        // the collection at 1 s forgot it.
        assert_eq!(r.table(0).len(), 1);
        assert!(r
            .table(0)
            .flow(&FlowKey {
                src: 0xc000_0201,
                ..FlowKey::default()
            })
            .is_some());
    }

    #[test]
    fn above_is_inverted_and_shared_by_name() {
        let mut r = Rig::new(&[
            "--hashlimit-above 1/sec --hashlimit-burst 1 --hashlimit-mode srcip,dstport --hashlimit-name s",
            "--hashlimit-upto 1/sec --hashlimit-burst 1 --hashlimit-mode srcip,dstport --hashlimit-name s",
        ]);
        assert_eq!(r.ms[0].1, r.ms[1].1, "one table for one name");
        assert_eq!(
            r.ev(0, A, 0),
            (false, false),
            "under the rate: above does not match"
        );
        assert_eq!(r.ev(1, A, 0), (false, false), "same bucket, now empty");
        assert_eq!(r.ev(0, A, 0), (true, false));
        assert_eq!(
            r.ev(0, "udp 192.0.2.1:1000 > 10.0.0.1:54", 0),
            (false, false),
            "another port is another flow"
        );
    }

    #[test]
    fn measured_dstip_and_above() {
        // Measured on Linux 6.18 (netns, OUTPUT counters): 5 datagrams to each of two
        // addresses at once under `upto 1/sec burst 2 mode dstip` counted 4; 5 datagrams
        // under `above 1/sec burst 2` (no mode: one flow) counted 3.
        let mut r = Rig::new(&[
            "--hashlimit-upto 1/sec --hashlimit-burst 2 --hashlimit-mode dstip --hashlimit-name h1",
            "--hashlimit-above 1/sec --hashlimit-burst 2 --hashlimit-name h2",
        ]);
        let mut n = 0;
        for dst in ["10.9.0.2", "10.9.0.3"] {
            for _ in 0..5 {
                n += r.ev(0, &format!("udp 10.9.0.1:5000 > {dst}:8102"), 0).0 as u32;
            }
        }
        assert_eq!(n, 4);
        let above = (0..5)
            .filter(|_| r.ev(1, "udp 10.9.0.1:5000 > 10.9.0.2:8103", 0).0)
            .count();
        assert_eq!(above, 3);
    }

    #[test]
    fn masks_group_sources() {
        let mut r = Rig::new(&[
            "--hashlimit-upto 1/min --hashlimit-burst 1 --hashlimit-mode srcip --hashlimit-srcmask 24 --hashlimit-name m",
        ]);
        assert!(r.ev(0, A, 0).0);
        assert!(!r.ev(0, B, 0).0, "same /24");
        assert!(r.ev(0, "udp 192.0.3.2:1 > 10.0.0.1:53", 0).0);
    }

    #[test]
    fn expired_flows_collected_then_start_full() {
        // 1/hour, burst 1, expiry 2 s, collection every second.
        let mut r = Rig::new(&[
            "--hashlimit-upto 1/hour --hashlimit-burst 1 --hashlimit-mode srcip --hashlimit-name e --hashlimit-htable-expire 2000",
        ]);
        assert!(r.ev(0, A, 0).0);
        assert!(!r.ev(0, A, 1500).0, "still known, empty bucket");
        assert_eq!(r.table(0).len(), 1);
        // Expires at 1.5 s + 2 s = 3.5 s; collected at 4 s; a new flow starts full.
        assert!(r.ev(0, A, 4000).0);
    }

    #[test]
    fn table_max_drops_new_flows() {
        // Measured on Linux 6.18 (`--hashlimit-htable-size 1 --hashlimit-htable-max 2`, mode
        // dstip): datagrams to a 3rd address failed with EPERM (dropped, counted nowhere),
        // a known address still passed.
        let mut r = Rig::new(&[
            "--hashlimit-upto 10/sec --hashlimit-mode srcip --hashlimit-name x --hashlimit-htable-size 1 --hashlimit-htable-max 2",
        ]);
        assert_eq!(r.table(0).max, 2);
        assert_eq!(r.ev(0, A, 0), (true, false));
        assert_eq!(r.ev(0, B, 0), (true, false));
        assert_eq!(r.ev(0, "udp 192.0.2.3:1 > 10.0.0.1:53", 0), (false, true));
        assert_eq!(r.ev(0, A, 0), (true, false), "a known flow still passes");
    }

    #[test]
    fn short_packet_without_ports_is_dropped() {
        let mut r =
            Rig::new(&["--hashlimit-upto 10/sec --hashlimit-mode srcport --hashlimit-name p"]);
        let mut p = pkt("tcp 192.0.2.1:1000 > 10.0.0.1:80 flags=S");
        // Cut the packet to its IP header plus 2 bytes (total length too).
        p.buf.truncate(22);
        p.buf[2..4].copy_from_slice(&22u16.to_be_bytes());
        p.d.total_len = 22;
        let (m, slot) = &r.ms[0];
        let mut env = MatchEnv {
            state: &mut r.st,
            slot: *slot,
            hotdrop: false,
            host: &NoHost,
        };
        assert!(!eval_match(m, &p, &mut env));
        assert!(env.hotdrop);
        // ICMP has no ports: port 0, no drop.
        assert_eq!(
            r.ev(0, "icmp 192.0.2.1 > 10.0.0.1 type=8 code=0 id=1 seq=1", 0),
            (true, false)
        );
    }

    #[test]
    fn bytes_mode() {
        // 1 kb/s with a 2 kb burst: cost per 16-byte unit, refills from the burst.
        let mut r = Rig::new(&[
            "--hashlimit-upto 1kb/s --hashlimit-burst 2kb --hashlimit-mode srcip --hashlimit-name b",
        ]);
        let t = r.table(0);
        let Meter::Bucket { .. } = t.new_meter() else {
            panic!("bucket")
        };
        // A 1000-byte datagram costs 63 units.
        let big = "udp 192.0.2.1:1 > 10.0.0.1:2 len=972";
        let mut n = 0;
        while r.ev(0, big, 0).0 {
            n += 1;
            assert!(n < 100);
        }
        assert_eq!(n, 3, "a full bucket, then one refill per burst unit");
    }

    #[test]
    fn measured_bytes_and_rate_match() {
        // Measured on Linux 6.18 (netns, OUTPUT counters): ten 1000-byte datagrams at once
        // under `upto 1kb/s burst 2kb` counted 3; ten 128-byte ones under `upto 100b/s`
        // (no burst) counted 1; `upto 2/sec burst 1 rate-match interval 1` counted 3 of 5
        // datagrams at once and none of 2 more 1.05 s later.
        let mut r = Rig::new(&[
            "--hashlimit-upto 1kb/s --hashlimit-burst 2kb --hashlimit-name hb",
            "--hashlimit-upto 100b/s --hashlimit-name hs",
            "--hashlimit-upto 2/sec --hashlimit-burst 1 --hashlimit-name hr --hashlimit-rate-match --hashlimit-rate-interval 1 --hashlimit-htable-expire 10000",
        ]);
        let count = |r: &mut Rig, i: usize, line: &str, n: usize, ms: u64| {
            (0..n).filter(|_| r.ev(i, line, ms).0).count()
        };
        assert_eq!(
            count(&mut r, 0, "udp 10.9.0.1:1 > 10.9.0.2:9201 len=972", 10, 0),
            3
        );
        assert_eq!(
            count(&mut r, 1, "udp 10.9.0.1:1 > 10.9.0.2:9203 len=100", 10, 0),
            1
        );
        assert_eq!(count(&mut r, 2, "udp 10.9.0.1:1 > 10.9.0.2:9202", 5, 0), 3);
        assert_eq!(
            count(&mut r, 2, "udp 10.9.0.1:1 > 10.9.0.2:9202", 2, 1050),
            0
        );
    }

    #[test]
    fn rate_match_windows() {
        // 2/sec with a 1 s window: up to burst+rate packets per window.
        let mut r = Rig::new(&[
            "--hashlimit-upto 2/sec --hashlimit-burst 1 --hashlimit-mode srcip --hashlimit-name r --hashlimit-rate-match --hashlimit-rate-interval 1 --hashlimit-htable-expire 10000",
        ]);
        let got: Vec<bool> = (0..4).map(|_| r.ev(0, A, 0).0).collect();
        assert_eq!(got, [true, true, true, false], "burst 1 + rate 2");
        // Next window (1 s later): the last one was over (4 * 250 > 250 * 2): no match.
        assert!(!r.ev(0, A, 1000).0);
        // The window after that was fine (1 packet in 1 s).
        assert!(r.ev(0, A, 2000).0);
    }
}
