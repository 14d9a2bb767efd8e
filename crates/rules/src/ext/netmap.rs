//! `-j NETMAP`: not implemented yet (stub, refuses with "not yet supported"; to be filled in).

use super::{unsupported_target, Extension, Opt, OptCtx};
use crate::error::Result;
use crate::model::IpSpec;

/// `-j NETMAP` (stub: refuses until implemented).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Netmap {}

impl Extension for Netmap {
    const NAME: &'static str = "NETMAP";
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_refused_until_implemented() {
        assert!(Netmap::new().unwrap_err().is_unsupported());
    }
}
