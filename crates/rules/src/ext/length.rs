//! `-m length`: not implemented yet (stub, refuses with "not yet supported"; to be filled in).

use super::{unsupported_match, Extension, Opt, OptCtx};
use crate::error::Result;
use crate::model::IpSpec;

/// `-m length` (stub: refuses until implemented).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Length {}

impl Extension for Length {
    const NAME: &'static str = "length";
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
        assert!(Length::new().unwrap_err().is_unsupported());
    }
}
