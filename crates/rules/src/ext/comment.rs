//! `-m comment --comment TEXT` (at most 255 bytes; never affects matching).

use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_comment_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comment {
    pub text: String,
}

/// Appends `s` double-quoted the way iptables' xtables_save_string does (escaping `"` and `\`).
pub fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

impl Extension for Comment {
    const NAME: &'static str = "comment";
    const OPTIONS: &'static [Opt] = &[Opt::req("comment")];

    fn new() -> Result<Self> {
        Ok(Comment::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        if arg.len() > 255 {
            return Err(Error::param(format!(
                "comment: argument to \"--comment\" is too long (max 255)"
            )));
        }
        self.text = arg.to_string();
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "comment: option \"--comment\" must be specified",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(" --comment ");
        push_quoted(out, &self.text);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(&format!(" /* {} */", self.text));
    }
}
