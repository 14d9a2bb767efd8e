//! `-m state`: being written (refuses with "not yet supported" meanwhile).

use super::{unsupported_match, Extension, Opt, OptCtx};
use crate::error::Result;
use crate::model::IpSpec;

/// `-m state`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {}

impl Extension for State {
    const NAME: &'static str = "state";
    const OPTIONS: &'static [Opt] = &[];

    fn new() -> Result<Self> {
        Err(unsupported_match(Self::NAME))
    }

    fn parse(&mut self, _opt: usize, _arg: &str, _cx: &OptCtx) -> Result<()> {
        Err(unsupported_match(Self::NAME))
    }

    fn save(&self, _ip: &IpSpec, _out: &mut String) {}

    fn print(&self, _ip: &IpSpec, _numeric: bool, _out: &mut String) {}
}
