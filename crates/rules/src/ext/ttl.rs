//! `-m ttl`: not implemented yet (stub, refuses with "not yet supported"; to be filled in).

use super::{unsupported_match, Extension, Opt, OptCtx};
use crate::error::Result;
use crate::model::IpSpec;

/// `-m ttl` (stub: refuses until implemented).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ttl {}

impl Extension for Ttl {
    const NAME: &'static str = "ttl";
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_refused_until_implemented() {
        assert!(Ttl::new().unwrap_err().is_unsupported());
    }
}
