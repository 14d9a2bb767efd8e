//! `-j LOG`: being written (refuses with "not yet supported" meanwhile).

use super::{unsupported_target, Extension, Opt, OptCtx};
use crate::error::Result;
use crate::model::IpSpec;

/// `-j LOG`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {}

impl Extension for Log {
    const NAME: &'static str = "LOG";
    const OPTIONS: &'static [Opt] = &[];

    fn new() -> Result<Self> {
        Err(unsupported_target(Self::NAME))
    }

    fn parse(&mut self, _opt: usize, _arg: &str, _cx: &OptCtx) -> Result<()> {
        Err(unsupported_target(Self::NAME))
    }

    fn save(&self, _ip: &IpSpec, _out: &mut String) {}

    fn print(&self, _ip: &IpSpec, _numeric: bool, _out: &mut String) {}
}
