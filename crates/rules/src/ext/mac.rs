//! `-m mac [!] --mac-source XX:XX:XX:XX:XX:XX`: the Ethernet source address (only where the
//! packet came from a device: PREROUTING, INPUT, FORWARD).

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{Hook, IpSpec};

/// struct xt_mac_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mac {
    pub addr: [u8; 6],
    pub invert: bool,
}

/// Six colon-separated groups of one or two hex digits.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut a = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        a[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(a)
}

fn push_mac(out: &mut String, a: &[u8; 6]) {
    let s: Vec<String> = a.iter().map(|b| format!("{b:02x}")).collect();
    out.push_str(&s.join(":"));
}

impl Extension for Mac {
    const NAME: &'static str = "mac";
    const OPTIONS: &'static [Opt] = &[Opt::req("mac-source").inv()];

    fn new() -> Result<Self> {
        Ok(Mac::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        self.addr = parse_mac(arg).ok_or_else(|| Error::param("Invalid MAC address specified."))?;
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "mac: option \"--mac-source\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: a source MAC exists only for packets received from a device.
        if !cx.hooks_within(&[Hook::PreRouting, Hook::Input, Hook::Forward]) {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(" --mac-source ");
        push_mac(out, &self.addr);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" MAC ");
        if self.invert {
            out.push_str("! ");
        }
        push_mac(out, &self.addr);
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_forms() {
        let p = |a: &[&str]| {
            let mut v = vec!["-m", "mac"];
            v.extend_from_slice(a);
            parse_rule(TableKind::Filter, "INPUT", &v)
        };
        let r = p(&["!", "--mac-source", "aa:BB:cc:dd:ee:ff"]).unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m mac ! --mac-source aa:bb:cc:dd:ee:ff"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " MAC ! aa:bb:cc:dd:ee:ff");
        let r = p(&["--mac-source", "a:b:c:d:e:f"]).unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m mac --mac-source 0a:0b:0c:0d:0e:0f"
        );
        for bad in ["aa-bb-cc-dd-ee-ff", "aaa:bb:cc:dd:ee:ff"] {
            assert_eq!(
                p(&["--mac-source", bad]).unwrap_err().msg,
                "Invalid MAC address specified."
            );
        }
    }

    #[test]
    fn test_hooks() {
        let ok = |table: TableKind, chain: &str| {
            let r =
                parse_rule(table, chain, &["-m", "mac", "--mac-source", "a:b:c:d:e:f"]).unwrap();
            let mut t = Table::new(table);
            t.chain_mut(chain).unwrap().rules.push(r);
            crate::ops::validate_table(&t).is_ok()
        };
        assert!(ok(TableKind::Filter, "INPUT"));
        assert!(ok(TableKind::Filter, "FORWARD"));
        assert!(!ok(TableKind::Filter, "OUTPUT"));
        assert!(!ok(TableKind::Nat, "POSTROUTING"));
    }
}
