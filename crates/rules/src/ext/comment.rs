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
    // What the bytes need, every byte looked up (no early exit), eight per step.
    let mut chunks = bytes.chunks_exact(8);
    let mut need = 0u8;
    for c in &mut chunks {
        need |= c.iter().fold(0, |acc, &b| acc | SAVE_NEED[usize::from(b)]);
    }
    for &b in chunks.remainder() {
        need |= SAVE_NEED[usize::from(b)];
    }
    if need == 0 && !bytes.is_empty() {
        out.push_str(s);
        return;
    }
    out.reserve(s.len() + 2);
    out.push('"');
    if need & ESCAPE == 0 {
        out.push_str(s);
    } else {
        // Copy the runs between characters that need a backslash (all ASCII) whole.
        let mut run = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if SAVE_NEED[usize::from(b)] & ESCAPE != 0 {
                out.push_str(&s[run..i]);
                out.push('\\');
                run = i;
            }
        }
        out.push_str(&s[run..]);
    }
    out.push('"');
}

/// [`SAVE_NEED`]: the byte needs quotes around the value.
const QUOTE: u8 = 1;
/// [`SAVE_NEED`]: the byte needs quotes and a backslash before it (`"`, `\`, `'`).
const ESCAPE: u8 = 2;

/// What each byte needs in [`push_save_word`]: 0 for `[A-Za-z0-9_-]` (may go bare).
static SAVE_NEED: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c == b'"' || c == b'\\' || c == b'\'' {
            QUOTE | ESCAPE
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' {
            0
        } else {
            QUOTE
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// xtables_save_string, byte by byte.
    fn reference(s: &str) -> String {
        let mut out = String::from(" ");
        if !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            out.push_str(s);
            return out;
        }
        out.push('"');
        for c in s.chars() {
            if matches!(c, '"' | '\\' | '\'') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }

    #[test]
    fn test_save_string_quotes_and_escapes_everywhere() {
        let mut cases: Vec<String> = [
            "",
            "a",
            "KUBE-SEP-CGHVVX7NBDPP32RB",
            "a b",
            "ns9/svc934:web",
            "é",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A special byte at every position of texts longer than one eight-byte step.
        for special in ['"', '\\', '\'', ' ', '/'] {
            for at in 0..20 {
                let mut t: String = "abcdefghijklmnopqrst".into();
                t.replace_range(at..at + 1, &special.to_string());
                cases.push(t.clone());
                t.push(special);
                cases.push(t);
            }
        }
        for c in cases {
            let mut out = String::new();
            push_save_string(&mut out, &c);
            assert_eq!(out, reference(&c), "{c:?}");
        }
    }
}
