//! `-j LOG`: one kernel log line per packet, at the rule's level, formatted by
//! [`crate::logfmt`]; the walk continues (XT_CONTINUE).

use super::{CompileError, LogLine, TVerdict, TargetCtx, TargetEnv};
use crate::logfmt::{self, LogCtx};
use crate::pkt::PktCtx;
use nfrs_rules::ext::log::Log;

/// Nothing to check.
pub fn compile(_t: &Log, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Formats the line (output, so allocation is fine) and goes on.
pub fn run(t: &Log, p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    let cx = LogCtx {
        prefix: &t.prefix,
        flags: t.flags,
        indev: p.indev,
        outdev: p.outdev,
        physindev: p.physindev,
        physoutdev: p.physoutdev,
        mac: p.mac,
        mark: p.mark,
        sock: p.sock,
    };
    let mut text = String::with_capacity(160);
    let end = p.d.l3_end().min(p.buf.len());
    logfmt::format(&cx, &p.buf[..end], &mut text);
    env.fx.logs.push(LogLine {
        level: t.level,
        text,
    });
    TVerdict::Continue
}
