//! The order of work at a NAT hook, as the kernel's `nf_nat_ipv4_fn` / `nf_nat_inet_fn` do
//! it, so the packet path only has to follow the answer.
//!
//! For each packet at a NAT hook (PREROUTING and OUTPUT: [`Manip::Dst`]; POSTROUTING and
//! INPUT: [`Manip::Src`]):
//! 1. `action(ctinfo, conn, manip, ip_proto)`;
//! 2. [`Action::Skip`]: nothing (no connection: INVALID or untracked packets are never NATed);
//! 3. [`Action::IcmpError`]: call [`crate::translate_icmp_error`] (Err = drop), nothing else;
//! 4. [`Action::RunRules`]: evaluate the nat table chain for this hook; its SNAT/DNAT/... targets
//!    call [`crate::setup_info`]; then call [`finish`] (null binding when no rule decided);
//!    then [`crate::nat_packet`];
//! 5. [`Action::Apply`]: call [`crate::nat_packet`].

use nfrs_conntrack::{Conn, ConnId, ConnTable, CtInfo, Nanos};

use crate::select::{initialized, null_binding, Manip, NatDecision, RandomSource};

/// What to do at a NAT hook.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// No connection: leave the packet alone.
    Skip,
    /// A RELATED ICMP error: translate it with its quoted header.
    IcmpError,
    /// First packet(s) with this manip undecided: run the nat table, then [`finish`], then
    /// apply.
    RunRules,
    /// Apply the decided manip.
    Apply,
}

/// Kernel `nf_nat_ipv4_fn` + `nf_nat_inet_fn` dispatch.
pub fn action(ctinfo: CtInfo, conn: Option<&Conn>, m: Manip, ip_proto: u8) -> Action {
    let Some(c) = conn else { return Action::Skip };
    match ctinfo {
        CtInfo::Invalid | CtInfo::Untracked => Action::Skip,
        CtInfo::Related | CtInfo::RelatedReply if ip_proto == 1 => Action::IcmpError,
        CtInfo::New | CtInfo::Related | CtInfo::RelatedReply if !initialized(c, m) => {
            Action::RunRules
        }
        _ => Action::Apply,
    }
}

/// After the nat table ran for a [`Action::RunRules`] packet: a manip no rule decided gets a
/// null binding (which can still move a clashing source port).
pub fn finish(
    table: &mut ConnTable,
    id: ConnId,
    m: Manip,
    rng: &mut dyn RandomSource,
    now: Nanos,
) -> NatDecision {
    if initialized(table.get(id), m) {
        return NatDecision::default();
    }
    null_binding(table, id, m, rng, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::{setup_info, NatRange, XorShift};
    use nfrs_conntrack::{status, CtConfig, Hook, Packet, Tuple};

    #[test]
    fn invalid_and_untracked_are_never_natted() {
        let t = Tuple::ports(17, 1, 2, 3, 4);
        let c = Conn::new(t, t.reply().unwrap(), 0);
        assert_eq!(action(CtInfo::Invalid, None, Manip::Src, 17), Action::Skip);
        assert_eq!(
            action(CtInfo::Untracked, Some(&c), Manip::Src, 17),
            Action::Skip
        );
        assert_eq!(
            action(CtInfo::New, Some(&c), Manip::Src, 17),
            Action::RunRules
        );
        assert_eq!(
            action(CtInfo::RelatedReply, Some(&c), Manip::Dst, 1),
            Action::IcmpError
        );
        assert_eq!(
            action(CtInfo::EstablishedReply, Some(&c), Manip::Dst, 17),
            Action::Apply
        );
        let mut done = c;
        done.status |= status::SRC_NAT_DONE;
        assert_eq!(
            action(CtInfo::New, Some(&done), Manip::Src, 17),
            Action::Apply
        );
    }

    #[test]
    fn finish_binds_only_undecided_manips() {
        let mut t = ConnTable::new(CtConfig {
            buckets: 16,
            checksum: false,
            ..CtConfig::default()
        });
        let l4 = [0u8, 1, 0, 2, 0, 8, 0, 0];
        let p = Packet {
            src: 10,
            dst: 20,
            proto: 17,
            later_fragment: false,
            l4: &l4,
        };
        let id = t.track(&p, 0, Hook::PreRouting, 0).conn.unwrap();
        let mut rng = XorShift(1);
        let d = setup_info(&mut t, id, &NatRange::addr(99), Manip::Dst, &mut rng, 0);
        assert!(d.changed);
        assert_eq!(
            finish(&mut t, id, Manip::Dst, &mut rng, 0),
            NatDecision::default()
        );
        assert_eq!(
            finish(&mut t, id, Manip::Src, &mut rng, 0),
            NatDecision::default()
        );
        let c = t.get(id);
        assert!(c.has(status::SRC_NAT_DONE | status::DST_NAT_DONE | status::DST_NAT));
        assert!(!c.has(status::SRC_NAT));
        assert_eq!(c.tuple[1].src, 99);
    }
}
