//! `-j TTL --ttl-set N | --ttl-dec N | --ttl-inc N`: rewrite the IPv4 TTL (mangle table only).

use super::length::xt_uint;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{IpSpec, TableKind};

/// IPT_TTL_SET / INC / DEC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TtlOp {
    #[default]
    Set,
    Inc,
    Dec,
}

/// struct ipt_TTL_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TtlTarget {
    pub op: TtlOp,
    pub ttl: u8,
}

const O_SET: usize = 0;
const O_DEC: usize = 1;
const O_INC: usize = 2;

impl Extension for TtlTarget {
    const NAME: &'static str = "TTL";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("ttl-set"),
        Opt::req("ttl-dec"),
        Opt::req("ttl-inc"),
    ];

    fn new() -> Result<Self> {
        Ok(TtlTarget::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        let min = if opt == O_SET { 0 } else { 1 };
        let name = Self::OPTIONS[opt].name;
        self.ttl = xt_uint(arg, min, 255).ok_or_else(|| {
            Error::param(format!(
                "TTL: bad value for option \"--{name}\", or out of range ({min}-255).\n"
            ))
        })? as u8;
        self.op = match opt {
            O_SET => TtlOp::Set,
            O_DEC => TtlOp::Dec,
            O_INC => TtlOp::Inc,
            _ => unreachable!("option index out of table"),
        };
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("TTL: You must specify an action"));
        }
        // libxtables: the three actions exclude each other (reported in table order).
        for i in 0..3 {
            if seen & (1 << i) == 0 {
                continue;
            }
            if let Some(j) = (0..3).find(|&j| j != i && seen & (1 << j) != 0) {
                return Err(Error::param(format!(
                    "TTL: option \"--{}\" cannot be used together with \"--{}\".\n",
                    Self::OPTIONS[i].name,
                    Self::OPTIONS[j].name
                )));
            }
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: the TTL target is registered for the mangle table only.
        if cx.table != TableKind::Mangle {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        let opt = match self.op {
            TtlOp::Set => "--ttl-set",
            TtlOp::Dec => "--ttl-dec",
            TtlOp::Inc => "--ttl-inc",
        };
        out.push_str(&format!(" {opt} {}", self.ttl));
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        let what = match self.op {
            TtlOp::Set => "set to",
            TtlOp::Dec => "decrement by",
            TtlOp::Inc => "increment by",
        };
        out.push_str(&format!(" TTL {what} {}", self.ttl));
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_errors_and_table() {
        let p = |t: TableKind, c: &str, a: &[&str]| {
            let mut v = vec!["-j", "TTL"];
            v.extend_from_slice(a);
            parse_rule(t, c, &v)
        };
        assert_eq!(
            p(
                TableKind::Mangle,
                "PREROUTING",
                &["--ttl-inc", "2", "--ttl-set", "3"]
            )
            .unwrap_err()
            .msg,
            "TTL: option \"--ttl-set\" cannot be used together with \"--ttl-inc\".\n"
        );
        assert_eq!(
            p(TableKind::Mangle, "PREROUTING", &[]).unwrap_err().msg,
            "TTL: You must specify an action"
        );
        let r = p(TableKind::Filter, "INPUT", &["--ttl-set", "3"]).unwrap();
        let mut t = Table::new(TableKind::Filter);
        t.chain_mut("INPUT").unwrap().rules.push(r);
        assert!(crate::ops::validate_table(&t).is_err());
    }
}
