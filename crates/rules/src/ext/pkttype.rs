//! `-m pkttype [!] --pkt-type unicast|broadcast|multicast|otherhost`: the link-layer class of
//! the packet (skb->pkt_type).

use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// PACKET_HOST / BROADCAST / MULTICAST / OTHERHOST and the names iptables accepts (first
/// name of a value is the one printed).
pub const TYPES: &[(&str, u8)] = &[
    ("unicast", 0),
    ("broadcast", 1),
    ("multicast", 2),
    ("otherhost", 3),
    ("host", 0),
];

/// struct xt_pkttype_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkttype {
    pub pkt_type: u8,
    pub invert: bool,
}

impl Pkttype {
    fn name(&self) -> String {
        TYPES
            .iter()
            .find(|(_, v)| *v == self.pkt_type)
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| self.pkt_type.to_string())
    }
}

impl Extension for Pkttype {
    const NAME: &'static str = "pkttype";
    const OPTIONS: &'static [Opt] = &[Opt::req("pkt-type").inv()];

    fn new() -> Result<Self> {
        Ok(Pkttype::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        self.pkt_type = TYPES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(arg))
            .map(|(_, v)| *v)
            .ok_or_else(|| Error::param(format!("Bad packet type '{arg}'")))?;
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "pkttype: option \"--pkt-type\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(&format!(" --pkt-type {}", self.name()));
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        let op = if self.invert { "!=" } else { "=" };
        out.push_str(&format!(" PKTTYPE {op} {}", self.name()));
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_names() {
        let p = |a: &[&str]| {
            let mut v = vec!["-m", "pkttype"];
            v.extend_from_slice(a);
            parse_rule(TableKind::Filter, "INPUT", &v)
        };
        let r = p(&["!", "--pkt-type", "BROADCAST"]).unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m pkttype ! --pkt-type broadcast"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " PKTTYPE != broadcast");
        let r = p(&["--pkt-type", "host"]).unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m pkttype --pkt-type unicast"
        );
        for bad in ["outgoing", "loopback", "Multi", "0"] {
            assert_eq!(
                p(&["--pkt-type", bad]).unwrap_err().msg,
                format!("Bad packet type '{bad}'")
            );
        }
    }
}
