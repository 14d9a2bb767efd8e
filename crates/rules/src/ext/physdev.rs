//! `-m physdev`: not implemented yet (stub, refuses with "not yet supported"; to be filled in).

use super::{unsupported_match, Extension, Opt, OptCtx};
use crate::error::Result;
use crate::model::IpSpec;

/// `-m physdev` (stub: refuses until implemented).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Physdev {}

impl Extension for Physdev {
    const NAME: &'static str = "physdev";
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
        assert!(Physdev::new().unwrap_err().is_unsupported());
    }
}
