//! `-j CHECKSUM --checksum-fill` (xt_CHECKSUM, mangle table).

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::checksum::Checksum;

/// Nothing to prepare.
pub fn compile(_t: &Checksum, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (checksum_tg): only a packet whose checksum is left to the device
/// (CHECKSUM_PARTIAL, not GSO) gets it computed here. nfrs always carries complete
/// checksums (it builds locally sent packets whole and forwards received ones as they came),
/// so the packet never changes; the walk continues.
pub fn run(_t: &Checksum, _p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    TVerdict::Continue
}
