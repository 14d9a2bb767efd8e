//! `-m udp` (loaded implicitly by `-p udp`): `--sport`, `--dport`.

use super::tcp::{print_ports, require_proto, save_ports, save_ports_store};
use super::util::parse_port_range_unchecked;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_udp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp {
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    pub inv_sport: bool,
    pub inv_dport: bool,
}

impl Default for Udp {
    fn default() -> Self {
        Udp {
            sport: (0, 65535),
            dport: (0, 65535),
            inv_sport: false,
            inv_dport: false,
        }
    }
}

impl Extension for Udp {
    const NAME: &'static str = "udp";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("source-port").inv().multi(),
        Opt::req("sport").inv().multi(),
        Opt::req("destination-port").inv().multi(),
        Opt::req("dport").inv().multi(),
    ];

    fn new() -> Result<Self> {
        Ok(Udp::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let (bits, what) = if opt < 2 {
            (0b11, "source-port")
        } else {
            (0b1100, "destination-port")
        };
        if cx.seen & bits != 0 {
            return Err(Error::param(format!(
                "udp: option \"--{what}\" can only be used once.\n"
            )));
        }
        let r = parse_port_range_unchecked(arg, "udp")?;
        if opt < 2 {
            self.sport = r;
            self.inv_sport = cx.invert;
        } else {
            self.dport = r;
            self.inv_dport = cx.invert;
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // xt_udp declares .proto = UDP.
        require_proto(cx.ip, 17)
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        save_ports(out, "sport", self.sport, self.inv_sport);
        save_ports(out, "dport", self.dport, self.inv_dport);
    }

    fn save_store(&self, _ip: &IpSpec, out: &mut String) {
        save_ports_store(out, "sport", self.sport, self.inv_sport);
        save_ports_store(out, "dport", self.dport, self.inv_dport);
    }

    fn print(&self, _ip: &IpSpec, numeric: bool, out: &mut String) {
        out.push_str(" udp");
        print_ports(out, "spt", self.sport, self.inv_sport, "udp", numeric);
        print_ports(out, "dpt", self.dport, self.inv_dport, "udp", numeric);
    }
}
