//! `-m comment --comment TEXT` (at most 255 bytes; never affects matching).

use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_comment_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comment {
    pub text: String,
}

/// Appends ` value` as iptables' xtables_save_string does: bare when it is non-empty and
/// only `[A-Za-z0-9_-]`, else double-quoted with `"`, `\\` and `'` backslash-escaped.
pub fn push_save_string(out: &mut String, s: &str) {
    out.push(' ');
    push_save_word(out, s);
}

/// [`push_save_string`] without the leading space.
pub fn push_save_word(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // The leading bytes that may go bare (usually all of them), eight at a time.
    let mut plain = 0;
    for chunk in bytes.chunks_exact(8) {
        if !chunk.iter().all(|&b| SAVE_PLAIN[usize::from(b)]) {
            break;
        }
        plain += 8;
    }
    plain += bytes[plain..]
        .iter()
        .take_while(|&&b| SAVE_PLAIN[usize::from(b)])
        .count();
    if plain == bytes.len() && plain != 0 {
        out.push_str(s);
        return;
    }
    out.push('"');
    // Copy the runs between characters that need a backslash (all ASCII) as whole slices.
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate().skip(plain) {
        if b == b'"' || b == b'\\' || b == b'\'' {
            out.push_str(&s[run..i]);
            out.push('\\');
            run = i;
        }
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// The bytes [`push_save_word`] may print without quotes: `[A-Za-z0-9_-]`.
static SAVE_PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    t
};

impl Extension for Comment {
    const NAME: &'static str = "comment";
    const OPTIONS: &'static [Opt] = &[Opt::req("comment")];

    fn new() -> Result<Self> {
        Ok(Comment::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        // The kernel field holds 255 bytes plus NUL; iptables 1.8.9 cuts longer text.
        let mut cut = arg.len().min(255);
        while !arg.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text = arg[..cut].to_string();
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "comment: option \"--comment\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(" --comment");
        push_save_string(out, &self.text);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(&format!(" /* {} */", self.text));
    }
}
