//! `-j CT` (xt_CT revision 2, raw table): `--notrack`, or a template for the connection the
//! packet will create (`--ctevents`, `--expevents`, `--helper`, `--timeout`, `--zone*`).
//!
//! Events only change what conntrack reports over netlink, never the packet's way, so a
//! template with only events runs as the plain conntrack path. Helpers, timeout policies and
//! zones change tracking itself and the engine has none of them: such rules are refused.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::ct::{Ct, NOTRACK, ZONE_DIR_ORIG, ZONE_DIR_REPL, ZONE_MARK};

/// Refuses helpers, timeout policies and zones; a template (anything but `--notrack`) loads
/// conntrack as the kernel's checkentry does.
pub fn compile(t: &Ct, cx: &mut TargetCtx) -> Result<(), CompileError> {
    if t.flags & NOTRACK != 0 {
        return Ok(());
    }
    let refuse = |what: &str| {
        Err(CompileError(format!(
            "nfrs replay: target `CT {what}` not yet supported by the engine"
        )))
    };
    if !t.helper.is_empty() {
        return refuse("--helper");
    }
    if !t.timeout.is_empty() {
        return refuse("--timeout");
    }
    if t.zone != 0 || t.flags & (ZONE_DIR_ORIG | ZONE_DIR_REPL | ZONE_MARK) != 0 {
        return refuse("--zone");
    }
    cx.needs_conntrack = true;
    Ok(())
}

/// Kernel rule (xt_ct_target): a packet that already has its conntrack reference is left
/// alone; `--notrack` marks it untracked; an events-only template changes nothing on the
/// packet's way. The walk continues.
pub fn run(t: &Ct, p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    if t.flags & NOTRACK != 0 {
        super::notrack::mark_untracked(p, env);
    }
    TVerdict::Continue
}

#[cfg(test)]
mod tests {
    use super::super::{Effects, TargetCtx, TargetEnv};
    use super::*;
    use crate::matches::testutil::pkt;
    use crate::matches::{EvalState, NoHost};
    use nfrs_rules::ext::TargetExt;
    use nfrs_rules::{IpSpec, TableKind, Target};

    fn ct(args: &[&str]) -> Ct {
        let mut v = vec!["-p", "tcp", "-j", "CT"];
        v.extend_from_slice(args);
        let r = nfrs_rules::parse::parse_rule(TableKind::Raw, "PREROUTING", &v).unwrap();
        let Target::Ext(TargetExt::Ct(t)) = r.target else {
            panic!("{:?}", r.target)
        };
        t
    }

    fn compiled(t: &Ct) -> Result<bool, CompileError> {
        let mut st = EvalState::default();
        let ip = IpSpec::default();
        let mut cx = TargetCtx {
            table: TableKind::Raw,
            hooks: 1,
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        compile(t, &mut cx).map(|()| cx.needs_conntrack)
    }

    fn notrack_after(t: &Ct) -> bool {
        let mut p = pkt("tcp 10.0.0.2:1000 > 10.0.0.1:21 flags=S");
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        assert_eq!(run(t, &mut p, &mut env), TVerdict::Continue);
        fx.notrack
    }

    #[test]
    fn notrack_and_templates() {
        let n = ct(&["--notrack"]);
        assert_eq!(compiled(&n), Ok(false), "--notrack does not load conntrack");
        assert!(notrack_after(&n));
        let e = ct(&["--ctevents", "new,destroy"]);
        assert_eq!(compiled(&e), Ok(true));
        assert!(!notrack_after(&e));
        for bad in [
            &["--helper", "ftp"][..],
            &["--zone", "3"],
            &["--zone-orig", "mark"],
        ] {
            let err = compiled(&ct(bad)).unwrap_err();
            assert!(err.0.contains("CT --"), "{err}");
        }
    }
}
