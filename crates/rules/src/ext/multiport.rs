//! `-m multiport --sports|--dports|--ports p[,p|p:q]...` (revision 1: up to 15 ports, ranges
//! count two).

use super::util::{parse_port, port_name};
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::IpSpec;
use crate::services;

/// Which ports the match looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    Source,
    Destination,
    Either,
}

/// struct xt_multiport_v1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Multiport {
    pub direction: Direction,
    /// Single ports as (p, p), ranges as (lo, hi).
    pub ports: Vec<(u16, u16)>,
    pub invert: bool,
}

const PROTOS: &[u16] = &[6, 17, 136, 132, 33];

fn proto_name(ip: &IpSpec) -> Result<&'static str> {
    if ip.inv_proto {
        return Err(Error::param(
            "multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP",
        ));
    }
    if PROTOS.contains(&ip.proto) {
        return Ok(services::proto_to_name(ip.proto, true).unwrap_or("tcp"));
    }
    if ip.proto == 0 {
        return Err(Error::param(
            "multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'",
        ));
    }
    Err(Error::param(
        "multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP",
    ))
}

impl Extension for Multiport {
    const NAME: &'static str = "multiport";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("source-ports").inv().multi(),
        Opt::req("sports").inv().multi(),
        Opt::req("destination-ports").inv().multi(),
        Opt::req("dports").inv().multi(),
        Opt::req("ports").inv().multi(),
    ];

    fn new() -> Result<Self> {
        Ok(Multiport::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let direction = match opt {
            0 | 1 => Direction::Source,
            2 | 3 => Direction::Destination,
            _ => Direction::Either,
        };
        if cx.seen != 0 {
            // iptables' x6 checks: aliases share one option; the three groups exclude each
            // other (named in option-table order).
            let canon = |d: Direction| match d {
                Direction::Source => "source-ports",
                Direction::Destination => "destination-ports",
                Direction::Either => "ports",
            };
            if direction == self.direction {
                return Err(Error::param(format!(
                    "multiport: option \"--{}\" can only be used once.\n",
                    canon(direction)
                )));
            }
            let (a, b) = if (self.direction as u8) < (direction as u8) {
                (self.direction, direction)
            } else {
                (direction, self.direction)
            };
            return Err(Error::param(format!(
                "multiport: option \"--{}\" cannot be used together with \"--{}\".\n",
                canon(a),
                canon(b)
            )));
        }
        let proto = proto_name(cx.ip)?;
        self.direction = direction;
        let mut count = 0;
        for item in arg.split(',') {
            if count >= 15 {
                return Err(Error::param("too many ports specified"));
            }
            match item.split_once(':') {
                Some((a, b)) => {
                    if count + 2 > 15 {
                        return Err(Error::param("too many ports specified"));
                    }
                    let lo = parse_port(a, Some(proto))?;
                    let hi = parse_port(b, Some(proto))?;
                    if lo >= hi {
                        return Err(Error::param("invalid portrange specified"));
                    }
                    self.ports.push((lo, hi));
                    count += 2;
                }
                None => {
                    let p = parse_port(item, Some(proto))?;
                    self.ports.push((p, p));
                    count += 1;
                }
            }
        }
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("multiport expection an option"));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // xt_multiport: only for TCP/UDP/UDPLITE/SCTP/DCCP, protocol not inverted.
        if !PROTOS.contains(&cx.ip.proto) || cx.ip.inv_proto {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(match self.direction {
            Direction::Source => " --sports ",
            Direction::Destination => " --dports ",
            Direction::Either => " --ports ",
        });
        push_list(out, &self.ports, |p| p.to_string());
    }

    fn print(&self, ip: &IpSpec, numeric: bool, out: &mut String) {
        out.push_str(" multiport ");
        out.push_str(match self.direction {
            Direction::Source => "sports ",
            Direction::Destination => "dports ",
            Direction::Either => "ports ",
        });
        if self.invert {
            out.push_str(" !");
        }
        let proto = services::proto_to_name(ip.proto, true).unwrap_or("");
        push_list(out, &self.ports, |p| port_name(p, proto, numeric));
    }
}

fn push_list(out: &mut String, ports: &[(u16, u16)], f: impl Fn(u16) -> String) {
    for (i, (lo, hi)) in ports.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&f(*lo));
        if lo != hi {
            out.push(':');
            out.push_str(&f(*hi));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;

    #[test]
    fn test_inverted_list_form() {
        // Measured with iptables-legacy 1.8.9: `iptables -L` puts " !" after the keyword.
        let r = parse_rule(
            TableKind::Filter,
            "OUTPUT",
            &["-p", "tcp", "-m", "multiport", "!", "--dports", "22,80"],
        )
        .unwrap();
        let mut out = String::new();
        r.matches[0].print(&r.ip, false, &mut out);
        assert_eq!(out, " multiport dports  !ssh,http");
    }
}
