//! `-j CONNMARK` (revision 2): set the connection mark (`--set-xmark`, `--set-mark`,
//! `--and-mark`, `--or-mark`, `--xor-mark`), or copy between packet and connection mark
//! (`--save-mark`, `--restore-mark` with `--nfmask`/`--ctmask`/`--mask`), optionally shifted.

use super::length::xt_uint;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::IpSpec;

/// XT_CONNMARK_SET / SAVE / RESTORE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// ctmark = (ctmark & ~ctmask) ^ value.
    Set,
    /// ctmark = (ctmark & ~ctmask) ^ (nfmark & nfmask) (shifted).
    Save,
    /// nfmark = (nfmark & ~nfmask) ^ (ctmark & ctmask) (shifted).
    Restore,
}

/// Direction of the optional shift (revision 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    Left,
    Right,
}

/// struct xt_connmark_tginfo2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnmarkTarget {
    pub mode: Mode,
    pub ctmark: u32,
    pub ctmask: u32,
    pub nfmask: u32,
    pub shift_dir: Shift,
    pub shift_bits: u8,
}

const O_SET_XMARK: usize = 0;
const O_SET_MARK: usize = 1;
const O_AND_MARK: usize = 2;
const O_OR_MARK: usize = 3;
const O_XOR_MARK: usize = 4;
const O_SAVE_MARK: usize = 5;
const O_RESTORE_MARK: usize = 6;
const O_LEFT_SHIFT: usize = 7;
const O_RIGHT_SHIFT: usize = 8;
const O_CTMASK: usize = 9;
const O_NFMASK: usize = 10;
const O_MASK: usize = 11;
const OP_ANY: u64 = 0x7f;

fn u32_arg(opt: &str, arg: &str) -> Result<u32> {
    xt_uint(arg, 0, u64::from(u32::MAX))
        .map(|v| v as u32)
        .ok_or_else(|| {
            Error::param(format!(
                "CONNMARK: bad value for option \"--{opt}\", or out of range (0-4294967295).\n"
            ))
        })
}

impl Extension for ConnmarkTarget {
    const NAME: &'static str = "CONNMARK";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("set-xmark"),
        Opt::req("set-mark"),
        Opt::req("and-mark"),
        Opt::req("or-mark"),
        Opt::req("xor-mark"),
        Opt::flag("save-mark"),
        Opt::flag("restore-mark"),
        Opt::req("left-shift-mark"),
        Opt::req("right-shift-mark"),
        Opt::req("ctmask"),
        Opt::req("nfmask"),
        Opt::req("mask"),
    ];

    fn new() -> Result<Self> {
        Ok(ConnmarkTarget {
            mode: Mode::Set,
            ctmark: 0,
            ctmask: u32::MAX,
            nfmask: u32::MAX,
            shift_dir: Shift::Left,
            shift_bits: 0,
        })
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        let name = Self::OPTIONS[opt].name;
        match opt {
            O_SET_XMARK | O_SET_MARK => {
                let (v, m) = super::connmark::parse_markmask("CONNMARK", name, arg)?;
                self.mode = Mode::Set;
                self.ctmark = v;
                // --set-mark only touches the bits it sets or masks.
                self.ctmask = if opt == O_SET_MARK { v | m } else { m };
            }
            O_AND_MARK => {
                let v = u32_arg(name, arg)?;
                self.mode = Mode::Set;
                self.ctmark = 0;
                self.ctmask = !v;
            }
            O_OR_MARK => {
                let v = u32_arg(name, arg)?;
                self.mode = Mode::Set;
                self.ctmark = v;
                self.ctmask = v;
            }
            O_XOR_MARK => {
                let v = u32_arg(name, arg)?;
                self.mode = Mode::Set;
                self.ctmark = v;
                self.ctmask = 0;
            }
            O_SAVE_MARK => self.mode = Mode::Save,
            O_RESTORE_MARK => self.mode = Mode::Restore,
            O_LEFT_SHIFT | O_RIGHT_SHIFT => {
                let v = xt_uint(arg, 0, 32).ok_or_else(|| {
                    Error::param(format!(
                        "CONNMARK: bad value for option \"--{name}\", or out of range (0-32).\n"
                    ))
                })?;
                self.shift_dir = if opt == O_LEFT_SHIFT {
                    Shift::Left
                } else {
                    Shift::Right
                };
                self.shift_bits = v as u8;
            }
            O_CTMASK => self.ctmask = u32_arg(name, arg)?,
            O_NFMASK => self.nfmask = u32_arg(name, arg)?,
            O_MASK => {
                let v = u32_arg(name, arg)?;
                self.ctmask = v;
                self.nfmask = v;
            }
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen & OP_ANY == 0 {
            return Err(Error::param("CONNMARK target: No operation specified"));
        }
        // libxtables' exclusions, in option table order: one operation; --mask excludes
        // --ctmask and --nfmask.
        for i in 0..7 {
            if seen & (1 << i) == 0 {
                continue;
            }
            if let Some(j) = (0..7).find(|&j| j != i && seen & (1 << j) != 0) {
                return Err(Error::param(format!(
                    "CONNMARK: option \"--{}\" cannot be used together with \"--{}\".\n",
                    Self::OPTIONS[i].name,
                    Self::OPTIONS[j].name
                )));
            }
        }
        for o in [O_CTMASK, O_NFMASK] {
            if seen & (1 << o) != 0 && seen & (1 << O_MASK) != 0 {
                return Err(Error::param(format!(
                    "CONNMARK: option \"--{}\" cannot be used together with \"--mask\".\n",
                    Self::OPTIONS[o].name
                )));
            }
        }
        Ok(())
    }

    fn check_entry(&self, _cx: &CheckCtx) -> Result<()> {
        // Kernel rule: a shift must stay below the mark's 32 bits.
        if self.shift_bits > 31 {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        match self.mode {
            Mode::Set => out.push_str(&format!(
                " --set-xmark 0x{:x}/0x{:x}",
                self.ctmark, self.ctmask
            )),
            Mode::Save => out.push_str(&format!(
                " --save-mark --nfmask 0x{:x} --ctmask 0x{:x}",
                self.nfmask, self.ctmask
            )),
            Mode::Restore => out.push_str(&format!(
                " --restore-mark --nfmask 0x{:x} --ctmask 0x{:x}",
                self.nfmask, self.ctmask
            )),
        }
        self.push_shift(out, "--");
    }

    /// The store keeps what iptables-save drops: --nfmask in set mode and a zero shift's
    /// direction (the kernel keeps both, so -D needs them).
    fn save_store(&self, ip: &IpSpec, out: &mut String) {
        self.save(ip, out);
        if self.mode == Mode::Set && self.nfmask != u32::MAX {
            out.push_str(&format!(" --nfmask 0x{:x}", self.nfmask));
        }
        if self.shift_bits == 0 && self.shift_dir == Shift::Right {
            out.push_str(" --right-shift-mark 0");
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        let (mark, ct, nf) = (self.ctmark, self.ctmask, self.nfmask);
        let text = match self.mode {
            Mode::Set if mark == 0 => format!(" CONNMARK and 0x{:x}", !ct),
            Mode::Set if mark == ct => format!(" CONNMARK or 0x{mark:x}"),
            Mode::Set if ct == 0 => format!(" CONNMARK xor 0x{mark:x}"),
            Mode::Set if ct == u32::MAX => format!(" CONNMARK set 0x{mark:x}"),
            Mode::Set => format!(" CONNMARK xset 0x{mark:x}/0x{ct:x}"),
            Mode::Save if nf == u32::MAX && ct == u32::MAX => " CONNMARK save".to_string(),
            Mode::Save if nf == ct => format!(" CONNMARK save mask 0x{nf:x}"),
            Mode::Save => format!(" CONNMARK save nfmask 0x{nf:x} ctmask ~0x{ct:x}"),
            Mode::Restore if nf == u32::MAX && ct == u32::MAX => " CONNMARK restore".to_string(),
            Mode::Restore if nf == ct => format!(" CONNMARK restore mask 0x{ct:x}"),
            Mode::Restore => format!(" CONNMARK restore ctmask 0x{ct:x} nfmask ~0x{nf:x}"),
        };
        out.push_str(&text);
        self.push_shift(out, "");
    }
}

impl ConnmarkTarget {
    fn push_shift(&self, out: &mut String, prefix: &str) {
        if self.shift_bits != 0 {
            let dir = match self.shift_dir {
                Shift::Left => "left",
                Shift::Right => "right",
            };
            out.push_str(&format!(" {prefix}{dir}-shift-mark {}", self.shift_bits));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn rule(args: &str) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-j", "CONNMARK"];
        v.extend(args.split_whitespace());
        parse_rule(TableKind::Mangle, "PREROUTING", &v)
    }

    /// (args, -S tail, -L text) recorded from iptables-legacy 1.8.9.
    const CASES: &[(&str, &str, &str)] = &[
        (
            "--set-xmark 0x10/0xff",
            "--set-xmark 0x10/0xff",
            " CONNMARK xset 0x10/0xff",
        ),
        (
            "--set-xmark 0x10",
            "--set-xmark 0x10/0xffffffff",
            " CONNMARK set 0x10",
        ),
        (
            "--set-mark 0x10",
            "--set-xmark 0x10/0xffffffff",
            " CONNMARK set 0x10",
        ),
        (
            "--set-mark 0x10/0xff",
            "--set-xmark 0x10/0xff",
            " CONNMARK xset 0x10/0xff",
        ),
        (
            "--and-mark 0xf0",
            "--set-xmark 0x0/0xffffff0f",
            " CONNMARK and 0xf0",
        ),
        ("--or-mark 0x3", "--set-xmark 0x3/0x3", " CONNMARK or 0x3"),
        ("--xor-mark 0x3", "--set-xmark 0x3/0x0", " CONNMARK xor 0x3"),
        (
            "--save-mark --mask 0xff",
            "--save-mark --nfmask 0xff --ctmask 0xff",
            " CONNMARK save mask 0xff",
        ),
        (
            "--restore-mark --ctmask 0xf",
            "--restore-mark --nfmask 0xffffffff --ctmask 0xf",
            " CONNMARK restore ctmask 0xf nfmask ~0xffffffff",
        ),
        (
            "--set-xmark 1 --left-shift-mark 2",
            "--set-xmark 0x1/0xffffffff --left-shift-mark 2",
            " CONNMARK set 0x1 left-shift-mark 2",
        ),
        (
            "--left-shift-mark 2 --right-shift-mark 3 --save-mark",
            "--save-mark --nfmask 0xffffffff --ctmask 0xffffffff --right-shift-mark 3",
            " CONNMARK save right-shift-mark 3",
        ),
        (
            "--set-mark 0x1 --mask 0xff",
            "--set-xmark 0x1/0xff",
            " CONNMARK xset 0x1/0xff",
        ),
        (
            "--mask 0xff --set-mark 1",
            "--set-xmark 0x1/0xffffffff",
            " CONNMARK set 0x1",
        ),
    ];

    #[test]
    fn test_forms() {
        for (args, save, print) in CASES {
            let r = rule(args).unwrap();
            assert_eq!(
                rule_save_line("PREROUTING", &r),
                format!("-A PREROUTING -j CONNMARK {save}")
            );
            let crate::model::Target::Ext(t) = &r.target else {
                panic!()
            };
            let mut s = String::new();
            t.print(&r.ip, true, &mut s);
            assert_eq!(&s, print, "{args}");
        }
    }

    #[test]
    fn test_errors() {
        let e = |a: &str| rule(a).unwrap_err().msg;
        assert_eq!(
            e("--save-mark --nfmask 0xff --ctmask 0xf --mask 0x1"),
            "CONNMARK: option \"--ctmask\" cannot be used together with \"--mask\".\n"
        );
        assert_eq!(
            e("--set-mark 1 --save-mark"),
            "CONNMARK: option \"--set-mark\" cannot be used together with \"--save-mark\".\n"
        );
        assert_eq!(
            e("--and-mark foo"),
            "CONNMARK: bad value for option \"--and-mark\", or out of range (0-4294967295).\n"
        );
        assert_eq!(
            e("--left-shift-mark 33"),
            "CONNMARK: bad value for option \"--left-shift-mark\", or out of range (0-32).\n"
        );
        assert_eq!(
            e("--set-mark 0x10/"),
            "CONNMARK: bad integer value for option \"--set-mark\", or out of range.\n"
        );
        assert_eq!(
            e("--nfmask 0xff"),
            "CONNMARK target: No operation specified"
        );
    }

    #[test]
    fn test_kernel_shift_limit() {
        let check = |a: &str| {
            let mut t = Table::new(TableKind::Mangle);
            t.chain_mut("PREROUTING")
                .unwrap()
                .rules
                .push(rule(a).unwrap());
            crate::ops::validate_table(&t).is_ok()
        };
        assert!(check("--save-mark --left-shift-mark 31"));
        assert!(!check("--save-mark --left-shift-mark 32"));
    }
}
