//! `-m helper [!] --helper NAME` (xt_helper): the conntrack helper of the connection that
//! expected this one (the master's helper; `CtSnap::helper`, an index into `HELPER_NAMES`).
//! So it matches the RELATED data connection of an FTP control session, not the control
//! session itself.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::{PktCtx, HELPER_NAMES};
use nfrs_rules::ext::helper::Helper;

/// Needs connection tracking.
pub fn compile(_m: &Helper, cx: &mut CompileCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    Ok(())
}

/// Kernel rule (helper_mt): without a connection, a master or a master's helper the result
/// is `!`'s value; an empty name matches any helper; else the rule's name must begin with
/// the helper's name (strncmp over the helper name's length), inverted by `!`.
pub fn eval(m: &Helper, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    if !p.ct.tracked() || p.ct.helper == 0 {
        return m.invert;
    }
    let Some(h) = HELPER_NAMES.get(usize::from(p.ct.helper)) else {
        return m.invert;
    };
    if m.name.is_empty() {
        return !m.invert;
    }
    m.name.as_bytes().starts_with(h.as_bytes()) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};
    use nfrs_conntrack::{ConnId, CtInfo};

    #[test]
    fn master_helper_name() {
        let mut p = pkt("tcp 10.0.0.2:40000 > 10.0.0.1:20000 flags=S");
        let ftp = rule_matches(&["-m", "helper", "--helper", "ftp"]).remove(0);
        let not_ftp = rule_matches(&["-m", "helper", "!", "--helper", "ftp"]).remove(0);
        let ftp21 = rule_matches(&["-m", "helper", "--helper", "ftp-21"]).remove(0);
        assert!(!eval(&ftp, &p).0);
        assert!(eval(&not_ftp, &p).0, "no connection: the inversion's value");
        p.ct.id = Some(ConnId(2));
        p.ct.info = CtInfo::Related;
        assert!(!eval(&ftp, &p).0, "no master helper");
        p.ct.helper = 1; // ftp
        assert!(eval(&ftp, &p).0);
        assert!(!eval(&not_ftp, &p).0);
        assert!(eval(&ftp21, &p).0, "compared over the helper name's length");
        p.ct.helper = 2; // irc
        assert!(!eval(&ftp, &p).0);
        assert!(eval(&not_ftp, &p).0);
    }
}
