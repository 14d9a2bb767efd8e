//! `-m connbytes` (xt_connbytes): compares a connection's accounting counters (packets,
//! bytes or average packet size; original, reply or both directions) with a range. The
//! counters are the conntrack table's (`nf_conntrack_acct`), copied into the packet's
//! `CtSnap::acct` at the conntrack hook; loading such a rule turns accounting on.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::connbytes::Connbytes;

/// Needs connection tracking with accounting.
pub fn compile(m: &Connbytes, cx: &mut CompileCtx) -> Result<(), CompileError> {
    if m.what > 2 || m.direction > 2 {
        return Err(CompileError(
            "nfrs replay: connbytes: bad mode or direction".into(),
        ));
    }
    cx.needs_conntrack = true;
    cx.state.needs_acct = true;
    Ok(())
}

/// Kernel rule (connbytes_mt): no connection or no accounting extension: no match. The value
/// is the chosen counter (summed for `both`); the average is bytes / packets (0 with no
/// packets). A range stored with `from > to` (`!`) matches outside [to, from].
pub fn eval(m: &Connbytes, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    if !p.ct.tracked() {
        return false;
    }
    let Some(a) = p.ct.acct else {
        return false;
    };
    let (pkts, bytes) = match m.direction {
        0 => (a[0], a[1]),
        1 => (a[2], a[3]),
        _ => (a[0].wrapping_add(a[2]), a[1].wrapping_add(a[3])),
    };
    let what = match m.what {
        0 => pkts,
        1 => bytes,
        _ => bytes.checked_div(pkts).unwrap_or(0),
    };
    if m.to >= m.from {
        what >= m.from && what <= m.to
    } else {
        what < m.to || what > m.from
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};
    use nfrs_conntrack::{ConnId, CtInfo};

    fn m(args: &[&str]) -> nfrs_rules::ext::Match {
        let mut v = vec!["-m", "connbytes"];
        v.extend_from_slice(args);
        rule_matches(&v).remove(0)
    }

    #[test]
    fn counters_and_ranges() {
        let mut p = pkt("tcp 10.0.0.2:40000 > 10.0.0.1:21 flags=A");
        let third = m(&[
            "--connbytes",
            "3:",
            "--connbytes-dir",
            "both",
            "--connbytes-mode",
            "packets",
        ]);
        let not_third = m(&[
            "!",
            "--connbytes",
            "3:",
            "--connbytes-dir",
            "both",
            "--connbytes-mode",
            "packets",
        ]);
        let reply_bytes = m(&[
            "--connbytes",
            "41:100",
            "--connbytes-dir",
            "reply",
            "--connbytes-mode",
            "bytes",
        ]);
        let avg = m(&[
            "--connbytes",
            "50:60",
            "--connbytes-dir",
            "original",
            "--connbytes-mode",
            "avgpkt",
        ]);
        assert!(!eval(&third, &p).0, "no connection");
        assert!(
            !eval(&not_third, &p).0,
            "no connection: no match either way"
        );
        p.ct.id = Some(ConnId(1));
        p.ct.info = CtInfo::Established;
        assert!(!eval(&third, &p).0, "no accounting");
        p.ct.acct = Some([2, 80, 1, 40]);
        assert!(eval(&third, &p).0);
        assert!(!eval(&not_third, &p).0);
        assert!(!eval(&reply_bytes, &p).0);
        p.ct.acct = Some([1, 40, 1, 60]);
        assert!(!eval(&third, &p).0);
        assert!(eval(&not_third, &p).0);
        assert!(eval(&reply_bytes, &p).0);
        assert!(!eval(&avg, &p).0, "40 bytes a packet");
        p.ct.acct = Some([2, 110, 1, 60]);
        assert!(eval(&avg, &p).0, "55 bytes a packet");
        p.ct.acct = Some([0, 0, 0, 0]);
        assert!(!eval(&avg, &p).0, "no packets: average 0");
        p.ct.info = CtInfo::Untracked;
        assert!(!eval(&third, &p).0);
    }
}
