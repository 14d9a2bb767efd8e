//! `-m physdev` (xt_physdev): the bridge ports of a bridged packet (`--physdev-in`,
//! `--physdev-out`, `--physdev-is-in`, `--physdev-is-out`, `--physdev-is-bridged`). A packet
//! is bridged when the engine gave it a bridge port (`PktCtx::physindev`/`physoutdev`).

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::{IfName, PktCtx};
use nfrs_rules::ext::physdev::{Physdev, OP_BRIDGED, OP_IN, OP_ISIN, OP_ISOUT, OP_OUT};

/// Nothing to check (nfrs-rules refuses `--physdev-out` where the kernel does).
pub fn compile(_m: &Physdev, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// iptables' interface names: a trailing `+` matches every name with that prefix.
fn name_matches(dev: &IfName, pat: &str) -> bool {
    let d = dev.as_bytes();
    match pat.strip_suffix('+') {
        Some(prefix) => d.starts_with(prefix.as_bytes()),
        None => d == pat.as_bytes(),
    }
}

/// Kernel rule (physdev_mt): a packet that is not bridged matches only when every option
/// given is inverted; a bridged one is tested for "bridged" (has an output port), "is-in",
/// "is-out", then the input port name (skipped when it has none) and the output port name
/// (the match holds when it has none), each option inverted by its own `!`.
pub fn eval(m: &Physdev, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    let given = |op: u8| m.bitmask & op != 0;
    let inv = |op: u8| m.invert & op != 0;
    let indev = (!p.physindev.is_empty()).then_some(&p.physindev);
    let outdev = (!p.physoutdev.is_empty()).then_some(&p.physoutdev);
    if indev.is_none() && outdev.is_none() {
        return [OP_BRIDGED, OP_ISIN, OP_ISOUT, OP_IN, OP_OUT]
            .iter()
            .all(|&op| !given(op) || inv(op));
    }
    if given(OP_BRIDGED) && (outdev.is_some() == inv(OP_BRIDGED)) {
        return false;
    }
    if (given(OP_ISIN) && (indev.is_some() == inv(OP_ISIN)))
        || (given(OP_ISOUT) && (outdev.is_some() == inv(OP_ISOUT)))
    {
        return false;
    }
    if given(OP_IN) {
        if let Some(d) = indev {
            if name_matches(d, &m.in_dev) == inv(OP_IN) {
                return false;
            }
        }
    }
    if !given(OP_OUT) {
        return true;
    }
    match outdev {
        None => true,
        Some(d) => name_matches(d, &m.out_dev) != inv(OP_OUT),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt};
    use crate::pkt::IfName;
    use nfrs_rules::TableKind;

    fn m(args: &[&str]) -> nfrs_rules::ext::Match {
        let mut v = vec!["-m", "physdev"];
        v.extend_from_slice(args);
        nfrs_rules::parse::parse_rule(TableKind::Filter, "FORWARD", &v)
            .unwrap()
            .matches
            .remove(0)
    }

    #[test]
    fn not_bridged() {
        let p = pkt("udp 10.0.0.2:1 > 10.0.0.3:2");
        assert!(!eval(&m(&["--physdev-in", "veth0"]), &p).0);
        assert!(eval(&m(&["!", "--physdev-in", "veth0"]), &p).0);
        assert!(!eval(&m(&["--physdev-is-bridged"]), &p).0);
        assert!(eval(&m(&["!", "--physdev-is-bridged"]), &p).0);
    }

    #[test]
    fn bridged_ports() {
        let mut p = pkt("udp 10.0.0.2:1 > 10.0.0.3:2");
        p.physindev = IfName::new("veth0");
        p.physoutdev = IfName::new("veth1");
        assert!(eval(&m(&["--physdev-in", "veth0"]), &p).0);
        assert!(eval(&m(&["--physdev-in", "veth+"]), &p).0);
        assert!(!eval(&m(&["--physdev-in", "veth1"]), &p).0);
        assert!(eval(&m(&["--physdev-is-bridged", "--physdev-out", "veth1"]), &p).0);
        assert!(
            !eval(
                &m(&["--physdev-is-bridged", "!", "--physdev-out", "veth1"]),
                &p
            )
            .0
        );
        assert!(eval(&m(&["--physdev-is-in", "--physdev-is-out"]), &p).0);
        // Input port only (e.g. to the host through the bridge): not "bridged", out name
        // unknown so --physdev-out holds.
        p.physoutdev = IfName::NONE;
        assert!(!eval(&m(&["--physdev-is-bridged"]), &p).0);
        assert!(eval(&m(&["--physdev-is-in"]), &p).0);
        assert!(!eval(&m(&["--physdev-is-out"]), &p).0);
    }
}
