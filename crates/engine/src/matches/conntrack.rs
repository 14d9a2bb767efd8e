//! `-m conntrack` (revision 3): state (with SNAT/DNAT), protocol, tuple addresses and ports,
//! status, expiry, direction (xt_conntrack conntrack_mt).

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_conntrack::{status, Dir};
use nfrs_rules::ext::conntrack::{AddrMask, Conntrack};

/// Needs connection tracking.
pub fn compile(_m: &Conntrack, cx: &mut CompileCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    Ok(())
}

fn addr_ok(a: u32, am: &AddrMask) -> bool {
    let m = u32::from(am.mask);
    (a & m) == (u32::from(am.addr) & m)
}

/// The state test of `--ctstate` (and of `-m state`, whose masks never hold the SNAT/DNAT
/// bits, so the same test gives its answer): the packet's state bit, plus SNAT (bit 5) and
/// DNAT (bit 6) from the status of a tracked connection, against `mask`, inverted by `inv`.
/// Also what the rule walk runs for a rule whose one match tests only the state.
#[inline]
pub fn state_ok(mask: u32, inv: bool, p: &PktCtx) -> bool {
    let ct = &p.ct;
    let mut bit = ct.state_bit();
    if ct.tracked() {
        if ct.status & status::SRC_NAT != 0 {
            bit |= 1 << 5;
        }
        if ct.status & status::DST_NAT != 0 {
            bit |= 1 << 6;
        }
    }
    (mask & bit != 0) != inv
}

/// Whether `m` tests the state and nothing else (the walk decides such a rule by
/// [`state_ok`] alone: with no connection, a state-only match holds when its state test does).
pub fn state_only(m: &Conntrack) -> Option<(u32, bool)> {
    let Conntrack {
        state,
        proto,
        orig_src,
        orig_dst,
        repl_src,
        repl_dst,
        orig_src_port,
        orig_dst_port,
        repl_src_port,
        repl_dst_port,
        status,
        expire,
        dir_reply,
    } = m;
    let others = proto.is_none()
        && orig_src.is_none()
        && orig_dst.is_none()
        && repl_src.is_none()
        && repl_dst.is_none()
        && orig_src_port.is_none()
        && orig_dst_port.is_none()
        && repl_src_port.is_none()
        && repl_dst_port.is_none()
        && status.is_none()
        && expire.is_none()
        && dir_reply.is_none();
    state.filter(|_| others)
}

/// Kernel rule: the state test comes first (SNAT/DNAT bits added from the status); with no
/// connection (INVALID or UNTRACKED) the match holds only if it tested the state; every other
/// criterion must hold, each inverted by its own `!`.
pub fn eval(m: &Conntrack, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    let ct = &p.ct;
    let tracked = ct.tracked();
    if let Some((mask, inv)) = m.state {
        if !state_ok(mask, inv, p) {
            return false;
        }
    }
    if !tracked {
        return m.state.is_some();
    }
    if let Some(reply) = m.dir_reply {
        if (ct.info.dir() == Dir::Reply) != reply {
            return false;
        }
    }
    let (o, r) = (&ct.tuple[0], &ct.tuple[1]);
    if let Some((proto, inv)) = m.proto {
        if (o.proto as u16 == proto) == inv {
            return false;
        }
    }
    let addr_checks = [
        (&m.orig_src, o.src),
        (&m.orig_dst, o.dst),
        (&m.repl_src, r.src),
        (&m.repl_dst, r.dst),
    ];
    for (c, a) in addr_checks {
        if let Some((am, inv)) = c {
            if addr_ok(a, am) == *inv {
                return false;
            }
        }
    }
    let port_checks = [
        (&m.orig_src_port, o.src_l4),
        (&m.orig_dst_port, o.dst_l4),
        (&m.repl_src_port, r.src_l4),
        (&m.repl_dst_port, r.dst_l4),
    ];
    for (c, v) in port_checks {
        if let Some(((lo, hi), inv)) = c {
            if (v >= *lo && v <= *hi) == *inv {
                return false;
            }
        }
    }
    if let Some((mask, inv)) = m.status {
        if (mask & ct.status as u32 != 0) == inv {
            return false;
        }
    }
    if let Some(((lo, hi), inv)) = m.expire {
        let e = ct.expires_secs;
        if (e >= lo && e <= hi) == inv {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};
    use nfrs_conntrack::{status, ConnId, CtInfo, Tuple};

    #[test]
    fn state_and_tuples() {
        let mut p = pkt("tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=A");
        let m = |a: &[&str]| {
            let mut v = vec!["-m", "conntrack"];
            v.extend_from_slice(a);
            rule_matches(&v).remove(0)
        };
        let est = m(&["--ctstate", "ESTABLISHED,RELATED"]);
        assert!(!eval(&est, &p).0);
        assert!(eval(&m(&["--ctstate", "INVALID"]), &p).0);
        assert!(
            !eval(&m(&["--ctproto", "tcp"]), &p).0,
            "no connection, no state test"
        );
        p.ct.id = Some(ConnId(3));
        p.ct.info = CtInfo::Established;
        p.ct.status = status::SRC_NAT | status::SEEN_REPLY;
        let o = Tuple::ports(6, 0x0a000002, 40000, 0xcb007109, 443);
        let r = Tuple::ports(6, 0xcb007109, 443, 0xc0000201, 40000);
        p.ct.tuple = [o, r];
        assert!(eval(&est, &p).0);
        assert!(eval(&m(&["--ctstate", "SNAT"]), &p).0);
        assert!(!eval(&m(&["--ctstate", "DNAT"]), &p).0);
        assert!(eval(&m(&["--ctproto", "tcp", "--ctorigsrc", "10.0.0.0/24"]), &p).0);
        assert!(!eval(&m(&["--ctrepldst", "10.0.0.0/24"]), &p).0);
        assert!(eval(&m(&["--ctrepldst", "192.0.2.1"]), &p).0);
        assert!(eval(&m(&["--ctorigdstport", "443"]), &p).0);
        assert!(eval(&m(&["!", "--ctreplsrcport", "80"]), &p).0);
        assert!(eval(&m(&["--ctstatus", "SEEN_REPLY"]), &p).0);
        assert!(!eval(&m(&["--ctstatus", "ASSURED"]), &p).0);
        assert!(eval(&m(&["--ctdir", "ORIGINAL"]), &p).0);
        assert!(!eval(&m(&["--ctdir", "REPLY"]), &p).0);
    }
}
