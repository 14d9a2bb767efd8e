//! `-m owner` (xt_owner revision 1, OUTPUT/POSTROUTING): the socket that sent a locally
//! generated packet (`--uid-owner`, `--gid-owner`, `--suppl-groups`, `--socket-exists`).
//!
//! A packet's socket is `PktCtx::sock` (the scenario says who sent it). Packets the host stack
//! makes itself (`PktCtx::kernel_sock`: TCP RSTs, ICMP answers) leave through a kernel socket
//! that has no file: `--socket-exists` holds for them and uid/gid tests fail (measured on
//! Linux 6.18: an echo reply and an RST match `--socket-exists` and `! --uid-owner 0`, not
//! `--uid-owner 0`). Any other packet (forwarded) has no socket. The owner's supplementary
//! groups are not known to replay: `--suppl-groups` sees none.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::owner::{Owner, GID, SOCKET, UID};

/// Nothing to check (nfrs-rules keeps it to OUTPUT and POSTROUTING).
pub fn compile(_m: &Owner, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (owner_mt): with no socket, the match holds only when every option given is
/// inverted; `! --socket-exists` fails on a socket; a socket without a file passes only when
/// its uid/gid options are all inverted; then the file owner's uid, and gid (or,
/// with `--suppl-groups`, one of its groups) must lie in the ranges, each inverted by its
/// own `!`.
pub fn eval(m: &Owner, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    if p.sock.is_none() && !p.kernel_sock {
        return (m.matches ^ m.invert) == 0;
    }
    if m.matches & m.invert & SOCKET != 0 {
        return false;
    }
    // A socket without a file: only inverted uid/gid tests (or none) hold.
    let Some(s) = p.sock else {
        return ((m.matches ^ m.invert) & (UID | GID)) == 0;
    };
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

    #[test]
    fn host_stack_packets_have_a_socket_without_file() {
        // Measured (netns, OUTPUT counters): an echo reply and a RST sent by the stack count
        // on --socket-exists and ! --uid-owner 0, not on --uid-owner 0 or ! --socket-exists.
        let mut p = pkt("tcp 10.0.0.1:9999 > 10.0.0.2:40000 flags=RA");
        p.kernel_sock = true;
        assert!(eval(&m(&["--socket-exists"]), &p).0);
        assert!(!eval(&m(&["!", "--socket-exists"]), &p).0);
        assert!(!eval(&m(&["--uid-owner", "0"]), &p).0);
        assert!(eval(&m(&["!", "--uid-owner", "0"]), &p).0);
        assert!(!eval(&m(&["--gid-owner", "0"]), &p).0);
    }
}
