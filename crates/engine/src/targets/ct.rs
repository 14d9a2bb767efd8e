//! `-j CT` (xt_CT revision 2, raw table): `--notrack`, or a template for the connection the
//! packet will create (`--ctevents`, `--expevents`, `--helper`, `--timeout`, `--zone*`).
//!
//! Events only change what conntrack reports over netlink, never the packet's way, so they
//! are ignored. A helper (`ftp` and `irc`, the ones the engine runs) and a zone (both
//! directions) go to the engine as `Effects::helper` / `Effects::zone`. Timeout policies,
//! zones for one direction only and zones taken from the mark are refused.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::{PktCtx, HELPER_NAMES};
use nfrs_rules::ext::ct::{Ct, NOTRACK, ZONE_DIR_ORIG, ZONE_DIR_REPL, ZONE_MARK};

/// The helpers the engine runs (crate::helpers).
const RUNNABLE_HELPERS: &[&str] = &["ftp", "irc"];

/// The helper's index in `HELPER_NAMES` (0 = none).
fn helper_index(name: &str) -> u8 {
    HELPER_NAMES
        .iter()
        .position(|n| !name.is_empty() && *n == name)
        .unwrap_or(0) as u8
}

/// Refuses what the engine cannot run; a template (anything but `--notrack`) loads conntrack
/// as the kernel's checkentry does.
pub fn compile(t: &Ct, cx: &mut TargetCtx) -> Result<(), CompileError> {
    if t.flags & NOTRACK != 0 {
        return Ok(());
    }
    let refuse = |what: &str| {
        Err(CompileError(format!(
            "nfrs replay: target `CT {what}` not yet supported by the engine"
        )))
    };
    if !t.helper.is_empty() && !RUNNABLE_HELPERS.contains(&t.helper.as_str()) {
        return refuse(&format!("--helper {}", t.helper));
    }
    if !t.timeout.is_empty() {
        return refuse("--timeout");
    }
    if t.flags & ZONE_MARK != 0 {
        return refuse("--zone mark");
    }
    // Kernel rule (xt_ct_flags_to_dir): both direction flags (or none) is the plain zone.
    let dirs = t.flags & (ZONE_DIR_ORIG | ZONE_DIR_REPL);
    if dirs != 0 && dirs != (ZONE_DIR_ORIG | ZONE_DIR_REPL) {
        return refuse("--zone-orig/--zone-reply");
    }
    cx.needs_conntrack = true;
    Ok(())
}

/// Kernel rule (xt_ct_target): a packet that already has its conntrack reference is left
/// alone; otherwise `--notrack` marks it untracked and a template attaches (the engine
/// tracks the packet in the template's zone and gives a new connection its helper). The walk
/// continues.
pub fn run(t: &Ct, p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    if super::notrack::has_nfct(p) {
        return TVerdict::Continue;
    }
    if t.flags & NOTRACK != 0 {
        env.fx.notrack = true;
    } else {
        env.fx.helper = helper_index(&t.helper);
        env.fx.zone = t.zone;
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
        *t
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

    fn fx_after(t: &Ct) -> Effects {
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
        fx
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
            &["--helper", "sip"][..],
            &["--zone-orig", "3"],
            &["--zone", "mark"],
        ] {
            let err = compiled(&ct(bad)).unwrap_err();
            assert!(err.0.contains("CT --"), "{err}");
        }
    }

    #[test]
    fn helper_and_zone_templates() {
        let h = ct(&["--helper", "ftp"]);
        assert_eq!(compiled(&h), Ok(true));
        let fx = fx_after(&h);
        assert_eq!((fx.helper, fx.zone, fx.notrack), (1, 0, false));
        let z = ct(&["--zone", "7"]);
        assert_eq!(compiled(&z), Ok(true));
        assert_eq!(fx_after(&z).zone, 7);
        // Both directions given: the plain zone (the last number).
        let both = ct(&["--zone-orig", "2", "--zone-reply", "3"]);
        assert_eq!(compiled(&both), Ok(true));
        assert_eq!(fx_after(&both).zone, 3);
        assert_eq!(fx_after(&ct(&["--helper", "irc", "--zone", "1"])).helper, 2);
    }
}
