//! `-j CONNMARK` (xt_connmark revision 2 target): set, save or restore the connection mark,
//! with masks and an optional shift.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::connmark_target::{ConnmarkTarget, Mode, Shift};

/// Needs connection tracking.
pub fn compile(_t: &ConnmarkTarget, cx: &mut TargetCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    Ok(())
}

/// The shift of revision 2 (a 32-bit shift; nfrs-rules keeps the count below 32).
#[inline]
fn shift(v: u32, t: &ConnmarkTarget) -> u32 {
    match t.shift_dir {
        Shift::Left => v.wrapping_shl(u32::from(t.shift_bits)),
        Shift::Right => v.wrapping_shr(u32::from(t.shift_bits)),
    }
}

/// Kernel rule (connmark_tg_shift): nothing happens without a connection; SET shifts the
/// whole new connection mark `(ctmark & ~ctmask) ^ value`; SAVE shifts `nfmark & nfmask`
/// before merging it under `ctmask`; RESTORE shifts `ctmark & ctmask` before merging it into
/// the packet mark under `nfmask`. The walk always continues.
pub fn run(t: &ConnmarkTarget, p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    if !p.ct.tracked() {
        return TVerdict::Continue;
    }
    match t.mode {
        Mode::Set => p.ct.mark = shift((p.ct.mark & !t.ctmask) ^ t.ctmark, t),
        Mode::Save => p.ct.mark = (p.ct.mark & !t.ctmask) ^ shift(p.mark & t.nfmask, t),
        Mode::Restore => p.mark = (p.mark & !t.nfmask) ^ shift(p.ct.mark & t.ctmask, t),
    }
    TVerdict::Continue
}

#[cfg(test)]
mod tests {
    use super::super::{Effects, TargetEnv};
    use super::*;
    use crate::matches::testutil::pkt;
    use crate::matches::{EvalState, NoHost};
    use nfrs_conntrack::{ConnId, CtInfo};
    use nfrs_rules::ext::TargetExt;
    use nfrs_rules::TableKind;

    fn target(args: &[&str]) -> ConnmarkTarget {
        let mut v = vec!["-j", "CONNMARK"];
        v.extend_from_slice(args);
        let r = nfrs_rules::parse::parse_rule(TableKind::Mangle, "PREROUTING", &v).unwrap();
        match r.target {
            nfrs_rules::Target::Ext(TargetExt::Connmark(t)) => t,
            other => panic!("{other:?}"),
        }
    }

    fn go(args: &[&str], mark: u32, ctmark: u32, tracked: bool) -> (u32, u32) {
        let t = target(args);
        let mut p = pkt("tcp 10.0.0.2:1000 > 10.0.0.1:22 flags=S");
        if tracked {
            p.ct.id = Some(ConnId(1));
            p.ct.info = CtInfo::New;
        }
        p.mark = mark;
        p.ct.mark = ctmark;
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        assert_eq!(run(&t, &mut p, &mut env), TVerdict::Continue);
        (p.mark, p.ct.mark)
    }

    #[test]
    fn set_save_restore() {
        assert_eq!(go(&["--set-mark", "0x5"], 0x77, 0xff00, true), (0x77, 0x5));
        assert_eq!(
            go(&["--set-xmark", "0x5/0xf"], 0x77, 0xff0f, true),
            (0x77, 0xff05)
        );
        assert_eq!(go(&["--or-mark", "0x5"], 0, 0x30, true), (0, 0x35));
        assert_eq!(go(&["--and-mark", "0xf0"], 0, 0x35, true), (0, 0x30));
        assert_eq!(go(&["--save-mark"], 0x1234, 0xdead, true), (0x1234, 0x1234));
        assert_eq!(
            go(
                &["--save-mark", "--nfmask", "0xff", "--ctmask", "0xff"],
                0x1234,
                0xdead,
                true
            ),
            (0x1234, 0xde34)
        );
        assert_eq!(
            go(&["--restore-mark"], 0x1234, 0xbeef, true),
            (0xbeef, 0xbeef)
        );
        assert_eq!(
            go(&["--restore-mark", "--mask", "0xf0"], 0x1234, 0xbeef, true),
            (0x12e4, 0xbeef)
        );
        assert_eq!(
            go(&["--set-mark", "0x5"], 0x77, 0x9, false),
            (0x77, 0x9),
            "no connection"
        );
    }

    #[test]
    fn measured_set_shifts_whole_mark() {
        // Measured on Linux 6.18: `CONNMARK --set-mark 0x3 --left-shift-mark 4` left the
        // connection with mark=48 (0x30): SET shifts the whole new mark.
        assert_eq!(
            go(&["--set-mark", "0x3", "--left-shift-mark", "4"], 0, 0, true),
            (0, 0x30)
        );
    }

    #[test]
    fn shifts() {
        // SAVE: (0x1234 & 0xff00) >> 8 = 0x12 merged under ctmask 0xff.
        assert_eq!(
            go(
                &[
                    "--save-mark",
                    "--nfmask",
                    "0xff00",
                    "--ctmask",
                    "0xff",
                    "--right-shift-mark",
                    "8"
                ],
                0x1234,
                0xab00,
                true
            ),
            (0x1234, 0xab12)
        );
        // RESTORE: (ctmark & 0xff) << 8 merged under nfmask 0xff00.
        assert_eq!(
            go(
                &[
                    "--restore-mark",
                    "--nfmask",
                    "0xff00",
                    "--ctmask",
                    "0xff",
                    "--left-shift-mark",
                    "8"
                ],
                0x12_0034,
                0x56,
                true
            ),
            (0x12_5634, 0x56)
        );
    }
}
