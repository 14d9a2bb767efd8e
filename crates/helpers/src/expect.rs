//! The expectation table (kernel `nf_conntrack_expect.c`): connections a helper announced,
//! with the kernel's per-helper limit (`max_expected`, the oldest evicted first), clash rules,
//! timeouts on the caller's clock, removal on use, and the two listings
//! (`/proc/net/nf_conntrack_expect`, `conntrack -L expect`).

use std::collections::HashMap;

use nfrs_conntrack::{ConnId, Dir, Nanos, Tuple, SEC};

use crate::HelperKind;

/// Expectation flags (`NF_CT_EXPECT_*`).
pub mod flags {
    /// Stays after a connection matched it.
    pub const PERMANENT: u8 = 1;
    /// Not matchable yet.
    pub const INACTIVE: u8 = 2;
    /// Created from user space.
    pub const USERSPACE: u8 = 4;
}

/// A helper's expectation policy (`struct nf_conntrack_expect_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectPolicy {
    /// Most pending expectations per master and class (0: no limit).
    pub max_expected: u32,
    /// Lifetime of a pending expectation.
    pub timeout_secs: u32,
}

/// What the NAT side stored for the expected connection (kernel `exp->dir`,
/// `exp->saved_proto`, `expectfn = nf_nat_follow_master`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectNat {
    /// Direction the expected connection follows the master in.
    pub dir: Dir,
    /// The port the expected connection must reach behind the NAT.
    pub saved_port: u16,
}

/// An expected connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// Expected original tuple; source bits outside the mask are zero.
    pub tuple: Tuple,
    /// Source address bits that must match (destination and protocol always match fully).
    pub mask_src: u32,
    /// Source port bits that must match.
    pub mask_sport: u16,
    /// The announcing connection.
    pub master: ConnId,
    /// Master's original tuple (listing, and NAT for the expected connection).
    pub master_orig: Tuple,
    /// Master's reply tuple (NAT for the expected connection).
    pub master_reply: Tuple,
    /// Helper of the master.
    pub helper: HelperKind,
    /// Expectation class (`class=`).
    pub class: u8,
    /// [`flags`] bits.
    pub flags: u8,
    /// Conntrack zone of the master.
    pub zone: u16,
    /// Set when the NAT helper registered it.
    pub nat: Option<ExpectNat>,
    /// Absolute deadline on the caller's clock.
    pub deadline: Nanos,
    order: u64,
}

impl Expectation {
    /// A TCP expectation as the IRC and FTP helpers build it (kernel `nf_ct_expect_init`):
    /// `src` `None` is a wildcard source address; the source port is always a wildcard.
    pub fn tcp(
        master: ConnId,
        master_orig: Tuple,
        master_reply: Tuple,
        helper: HelperKind,
        src: Option<u32>,
        dst: u32,
        dport: u16,
    ) -> Expectation {
        Expectation {
            tuple: Tuple::ports(6, src.unwrap_or(0), 0, dst, dport),
            mask_src: if src.is_some() { u32::MAX } else { 0 },
            mask_sport: 0,
            master,
            master_orig,
            master_reply,
            helper,
            class: 0,
            flags: 0,
            zone: 0,
            nat: None,
            deadline: 0,
            order: 0,
        }
    }

    /// Kernel rule (nf_ct_tuple_mask_cmp): destination and protocol equal, source equal under
    /// the mask.
    pub fn matches(&self, t: &Tuple) -> bool {
        t.proto == self.tuple.proto
            && t.dst == self.tuple.dst
            && t.dst_l4 == self.tuple.dst_l4
            && t.src & self.mask_src == self.tuple.src
            && t.src_l4 & self.mask_sport == self.tuple.src_l4
    }

    /// Kernel rule (expect_clash): two expectations clash when their tuples are equal under
    /// the intersection of their source masks.
    fn clashes(&self, o: &Expectation) -> bool {
        let m = self.mask_src & o.mask_src;
        let mp = self.mask_sport & o.mask_sport;
        self.zone == o.zone
            && self.tuple.proto == o.tuple.proto
            && self.tuple.dst == o.tuple.dst
            && self.tuple.dst_l4 == o.tuple.dst_l4
            && self.tuple.src & m == o.tuple.src & m
            && self.tuple.src_l4 & mp == o.tuple.src_l4 & mp
    }

    fn same(&self, o: &Expectation) -> bool {
        self.zone == o.zone
            && self.tuple == o.tuple
            && self.mask_src == o.mask_src
            && self.mask_sport == o.mask_sport
    }

    /// The NAT the expected connection gets (kernel `nf_nat_follow_master`), if the NAT side
    /// registered the expectation.
    pub fn follow_master(&self) -> Option<FollowMaster> {
        let nat = self.nat?;
        // The master tuple in the direction opposite to the expected connection's.
        let t = match nat.dir {
            Dir::Reply => &self.master_orig,
            Dir::Original => &self.master_reply,
        };
        Some(FollowMaster {
            snat_addr: t.dst,
            dnat_addr: t.src,
            dnat_port: nat.saved_port,
        })
    }
}

/// NAT of an expected connection: source mapped to where the master sends to, destination to
/// where the master came from, on the saved port (kernel `nf_nat_follow_master`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowMaster {
    /// New source address (SNAT, address only).
    pub snat_addr: u32,
    /// New destination address (DNAT).
    pub dnat_addr: u32,
    /// New destination port (DNAT).
    pub dnat_port: u16,
}

/// Why an expectation was not added (kernel error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectError {
    /// `-EALREADY`: the same expectation exists with another class.
    Already,
    /// `-EBUSY`: it clashes with another master's expectation.
    Busy,
    /// `-EMFILE`: over the helper's limit after evicting, or the table is full.
    TooMany,
}

/// Listing formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectFormat {
    /// `/proc/net/nf_conntrack_expect`.
    Proc,
    /// `conntrack -L expect`.
    Conntrack,
}

type Key = (u32, u16, u8, u16);

fn key(t: &Tuple, zone: u16) -> Key {
    (t.dst, t.dst_l4, t.proto, zone)
}

/// All pending expectations, indexed by destination.
#[derive(Debug, Default)]
pub struct ExpectTable {
    by_dst: HashMap<Key, Vec<Expectation>>,
    len: usize,
    next_order: u64,
    /// `net.netfilter.nf_conntrack_expect_max` (4096 measured on the reference machine).
    pub max: usize,
    /// Set when an add failed because the table was full (the kernel logs
    /// `nf_conntrack: expectation table full`); the caller takes and clears it.
    pub table_full: bool,
}

impl ExpectTable {
    /// Empty table with `nf_conntrack_expect_max` = `max`.
    pub fn new(max: usize) -> ExpectTable {
        ExpectTable {
            max,
            ..ExpectTable::default()
        }
    }

    /// Number of pending expectations (expired ones included until [`ExpectTable::expire`]).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pending expectations, unordered.
    pub fn iter(&self) -> impl Iterator<Item = &Expectation> {
        self.by_dst.values().flatten()
    }

    fn remove_where(&mut self, mut f: impl FnMut(&Expectation) -> bool) -> usize {
        let mut removed = 0;
        self.by_dst.retain(|_, v| {
            let before = v.len();
            v.retain(|e| !f(e));
            removed += before - v.len();
            !v.is_empty()
        });
        self.len -= removed;
        removed
    }

    /// Adds `e` (kernel `nf_ct_expect_related`): an equal expectation of the same master is
    /// replaced; a clash with another is refused; over the policy limit the master's oldest
    /// expectation of the class is evicted. The deadline is `now` plus the policy timeout.
    pub fn related(
        &mut self,
        mut e: Expectation,
        policy: ExpectPolicy,
        now: Nanos,
    ) -> Result<(), ExpectError> {
        e.tuple.src &= e.mask_src;
        e.tuple.src_l4 &= e.mask_sport;
        let k = key(&e.tuple, e.zone);
        let mut replaced = false;
        if let Some(v) = self.by_dst.get(&k) {
            for i in v {
                if i.deadline <= now {
                    continue;
                }
                if i.master == e.master && i.same(&e) {
                    if i.class != e.class {
                        return Err(ExpectError::Already);
                    }
                    replaced = true;
                } else if i.clashes(&e) {
                    return Err(ExpectError::Busy);
                }
            }
        }
        if replaced {
            self.remove_where(|i| i.master == e.master && i.same(&e));
        }
        self.expire(now);
        if policy.max_expected != 0 {
            let count = |t: &ExpectTable| {
                t.iter()
                    .filter(|i| i.master == e.master && i.class == e.class)
                    .count() as u32
            };
            if count(self) >= policy.max_expected {
                // Kernel rule (evict_oldest_expect): drop the master's oldest of this class.
                let oldest = self
                    .iter()
                    .filter(|i| i.master == e.master && i.class == e.class)
                    .map(|i| i.order)
                    .min();
                if let Some(o) = oldest {
                    self.remove_where(|i| i.order == o);
                }
                if count(self) >= policy.max_expected {
                    return Err(ExpectError::TooMany);
                }
            }
        }
        if self.len >= self.max {
            self.table_full = true;
            return Err(ExpectError::TooMany);
        }
        e.deadline = now + policy.timeout_secs as Nanos * SEC;
        e.order = self.next_order;
        self.next_order += 1;
        self.by_dst.entry(k).or_default().push(e);
        self.len += 1;
        Ok(())
    }

    /// Kernel `nf_nat_exp_find_port`: registers `e` on destination port `port`, or when that
    /// clashes on up to 128 other ports in `port..=65535` drawn by `pick(range)` (which must
    /// return a number below `range`; the kernel draws at random). Returns the port used, or
    /// `None` ("all ports in use").
    pub fn find_port(
        &mut self,
        mut e: Expectation,
        policy: ExpectPolicy,
        port: u16,
        now: Nanos,
        pick: &mut dyn FnMut(u32) -> u32,
    ) -> Option<u16> {
        let range = u16::MAX as u32 - port as u32;
        let mut attempts_left = range.min(128) as i32;
        let mut p = port;
        loop {
            e.tuple.dst_l4 = p;
            match self.related(e, policy, now) {
                Ok(()) => return Some(p),
                Err(ExpectError::Busy) => {
                    attempts_left -= 1;
                    if attempts_left < 0 || range == 0 {
                        return None;
                    }
                    p = port.wrapping_add((pick(range) % range) as u16);
                }
                Err(_) => return None,
            }
        }
    }

    /// Removes one expectation (kernel `nf_ct_unexpect_related`), e.g. when mangling failed.
    pub fn unexpect(&mut self, master: ConnId, tuple: &Tuple, zone: u16) {
        self.remove_where(|i| i.master == master && i.zone == zone && i.tuple == *tuple);
    }

    /// Kernel `nf_ct_find_expectation`: the newest live, active expectation matching the new
    /// connection's original tuple `t` in `zone`, removed unless PERMANENT.
    pub fn take(&mut self, t: &Tuple, zone: u16, now: Nanos) -> Option<Expectation> {
        if self.len == 0 {
            return None;
        }
        let k = key(t, zone);
        let v = self.by_dst.get_mut(&k)?;
        let i = v
            .iter()
            .enumerate()
            .filter(|(_, e)| e.deadline > now && e.flags & flags::INACTIVE == 0 && e.matches(t))
            .max_by_key(|(_, e)| e.order)
            .map(|(i, _)| i)?;
        let e = v[i];
        if e.flags & flags::PERMANENT == 0 {
            v.remove(i);
            self.len -= 1;
            if v.is_empty() {
                self.by_dst.remove(&k);
            }
        }
        Some(e)
    }

    /// Drops the expectations of a master that is gone (kernel `nf_ct_remove_expectations`).
    pub fn remove_master(&mut self, master: ConnId) -> usize {
        self.remove_where(|i| i.master == master)
    }

    /// Drops expectations whose deadline passed.
    pub fn expire(&mut self, now: Nanos) -> usize {
        self.remove_where(|i| i.deadline <= now)
    }

    /// Earliest deadline, for the caller's timer.
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.iter().map(|e| e.deadline).min()
    }

    /// Listing lines of the live expectations, sorted; `timeout` adds the remaining seconds
    /// in front as both tools print it.
    pub fn listing(&self, now: Nanos, format: ExpectFormat, timeout: bool) -> Vec<String> {
        let mut v: Vec<String> = self
            .iter()
            .filter(|e| e.deadline > now)
            .map(|e| line(e, now, format, timeout))
            .collect();
        v.sort();
        v
    }
}

fn ip(a: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(a)
}

/// One listing line.
pub fn line(e: &Expectation, now: Nanos, format: ExpectFormat, timeout: bool) -> String {
    let mut s = String::new();
    if timeout {
        s += &format!("{} ", e.deadline.saturating_sub(now) / SEC);
    }
    let t = &e.tuple;
    let fl = [
        (flags::PERMANENT, "PERMANENT"),
        (flags::INACTIVE, "INACTIVE"),
        (flags::USERSPACE, "USERSPACE"),
    ];
    let mut flag_text = String::new();
    for (bit, name) in fl {
        if e.flags & bit != 0 {
            if !flag_text.is_empty() {
                flag_text.push(',');
            }
            flag_text += name;
        }
    }
    match format {
        ExpectFormat::Proc => {
            // Kernel exp_seq_show: flags, then the helper name after a space only when flags
            // were printed.
            s += &format!(
                "l3proto = 2 proto={} src={} dst={} sport={} dport={} {}",
                t.proto,
                ip(t.src),
                ip(t.dst),
                t.src_l4,
                t.dst_l4,
                flag_text
            );
            if !flag_text.is_empty() {
                s.push(' ');
            }
            s += e.helper.name();
        }
        ExpectFormat::Conntrack => {
            let m = &e.master_orig;
            s += &format!(
                "proto={} src={} dst={} sport={} dport={} mask-src={} mask-dst=255.255.255.255 \
                 sport={} dport=65535 master-src={} master-dst={} sport={} dport={} ",
                t.proto,
                ip(t.src),
                ip(t.dst),
                t.src_l4,
                t.dst_l4,
                ip(e.mask_src),
                e.mask_sport,
                ip(m.src),
                ip(m.dst),
                m.src_l4,
                m.dst_l4
            );
            if !flag_text.is_empty() {
                s += &flag_text;
                s.push(' ');
            }
            s += &format!("class={} helper={}", e.class, e.helper.name());
        }
    }
    s
}
