//! `-m connbytes`: refused by the engine for now. The kernel compares the connection's
//! accounting counters (packets/bytes per direction, nf_conntrack_acct), which nfrs's
//! connection table does not keep yet; a rule must never silently match or not.

use super::{CompileCtx, CompileError};
use nfrs_rules::ext::connbytes::Connbytes;

/// Always refuses (see the module comment).
pub fn compile(_m: &Connbytes, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_match("connbytes"))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::rule_matches;
    use super::super::{compile_match, CompileCtx, EvalState};
    use nfrs_rules::{Hook, IpSpec, TableKind};

    #[test]
    fn refused() {
        let m = rule_matches(&[
            "-m",
            "connbytes",
            "--connbytes",
            "3:",
            "--connbytes-dir",
            "both",
            "--connbytes-mode",
            "packets",
        ])
        .remove(0);
        let mut st = EvalState::default();
        let ip = IpSpec::default();
        let mut cx = CompileCtx {
            table: TableKind::Filter,
            hooks: Hook::Forward.bit(),
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        let e = compile_match(&m, &mut cx).unwrap_err();
        assert!(format!("{e}").contains("connbytes"), "{e}");
    }
}
