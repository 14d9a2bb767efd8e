//! `-m owner` (xt_owner revision 1, OUTPUT/POSTROUTING): the socket that sent a locally
//! generated packet (`--uid-owner`, `--gid-owner`, `--suppl-groups`, `--socket-exists`).
//!
//! A packet's socket is `PktCtx::sock` (the scenario says who sent it); a packet without one
//! (forwarded, or one the scenario gives no owner) is a packet without a socket. The owner's
//! supplementary groups are not known to replay: `--suppl-groups` sees none.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::owner::{Owner, GID, SOCKET, UID};

/// Nothing to check (nfrs-rules keeps it to OUTPUT and POSTROUTING).
pub fn compile(_m: &Owner, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (owner_mt): with no socket, the match holds only when every option given is
/// inverted; `! --socket-exists` fails on a socket; then the file owner's uid, and gid (or,
/// with `--suppl-groups`, one of its groups) must lie in the ranges, each inverted by its
/// own `!`.
pub fn eval(m: &Owner, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    let Some(s) = p.sock else {
        return (m.matches ^ m.invert) == 0;
    };
    if m.matches & m.invert & SOCKET != 0 {
        return false;
    }
    if m.matches & UID != 0 {
        let inside = s.uid >= m.uid_min && s.uid <= m.uid_max;
        if inside == (m.invert & UID != 0) {
            return false;
        }
    }
    if m.matches & GID != 0 {
        let inside = s.gid >= m.gid_min && s.gid <= m.gid_max;
        if inside == (m.invert & GID != 0) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt};
    use crate::pkt::SockOwner;
    use nfrs_rules::TableKind;

    fn m(args: &[&str]) -> nfrs_rules::ext::Match {
        let mut v = vec!["-m", "owner"];
        v.extend_from_slice(args);
        nfrs_rules::parse::parse_rule(TableKind::Filter, "OUTPUT", &v)
            .unwrap()
            .matches
            .remove(0)
    }

    #[test]
    fn uid_gid_socket() {
        let mut p = pkt("tcp 10.0.0.1:40000 > 192.0.2.9:80 flags=S");
        let uid = m(&["--uid-owner", "1000"]);
        let not_uid = m(&["!", "--uid-owner", "1000"]);
        let sock = m(&["--socket-exists"]);
        let no_sock = m(&["!", "--socket-exists"]);
        assert!(!eval(&uid, &p).0, "no socket");
        assert!(eval(&not_uid, &p).0, "no socket, every option inverted");
        assert!(!eval(&sock, &p).0);
        assert!(eval(&no_sock, &p).0);
        p.sock = Some(SockOwner {
            uid: 1000,
            gid: 100,
        });
        assert!(eval(&uid, &p).0);
        assert!(!eval(&not_uid, &p).0);
        assert!(eval(&sock, &p).0);
        assert!(!eval(&no_sock, &p).0);
        assert!(eval(&m(&["--uid-owner", "500-1500", "--gid-owner", "100"]), &p).0);
        assert!(!eval(&m(&["--uid-owner", "1000", "--gid-owner", "101"]), &p).0);
        assert!(eval(&m(&["--uid-owner", "1000", "!", "--gid-owner", "101"]), &p).0);
        assert!(!eval(&m(&["!", "--uid-owner", "1000", "--gid-owner", "100"]), &p).0);
    }
}
