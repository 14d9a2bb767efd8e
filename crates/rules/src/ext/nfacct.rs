//! `-m nfacct --nfacct-name NAME`: parsed like iptables, but nfrs has no accounting objects
//! (like a fresh network namespace), so the kernel check refuses it with ENOENT, exactly as
//! Linux does when the named nfacct object does not exist.

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::IpSpec;

/// struct xt_nfacct_match_info (the name only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Nfacct {
    pub name: String,
}

impl Extension for Nfacct {
    const NAME: &'static str = "nfacct";
    const OPTIONS: &'static [Opt] = &[Opt::req("nfacct-name")];

    fn new() -> Result<Self> {
        Ok(Nfacct::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        if arg.len() > 31 {
            return Err(Error::param(
                "nfacct: argument to \"--nfacct-name\" is too long (max 31)",
            ));
        }
        self.name = arg.to_string();
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "nfacct: option \"--nfacct-name\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, _cx: &CheckCtx) -> Result<()> {
        // xt_nfacct looks the object up by name; none exist in nfrs.
        Err(Error::kernel(Errno::NoEnt))
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(&format!(" --nfacct-name {}", self.name));
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(&format!(" nfacct-name  {}", self.name));
    }
}
