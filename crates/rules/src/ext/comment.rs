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
        // All eight looked up without a branch each.
        if chunk
            .iter()
            .fold(true, |ok, &b| ok & SAVE_PLAIN[usize::from(b)])
        {
            plain += 8;
        } else {
            break;
        }
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
    let (mut run, mut at) = (0, plain);
    while let Some(k) = first_to_escape(&bytes[at..]) {
        let i = at + k;
        out.push_str(&s[run..i]);
        out.push('\\');
        run = i;
        at = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Where the first byte that needs a backslash inside quotes (`"`, `\`, `'`) is, eight
/// bytes at a time.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    use crate::restore::{splat, zero_bytes};
    let mut chunks = bytes.chunks_exact(8);
    for (n, c) in (&mut chunks).enumerate() {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        let hits = zero_bytes(w ^ splat(b'"'))
            | zero_bytes(w ^ splat(b'\\'))
            | zero_bytes(w ^ splat(b'\''));
        if hits != 0 {
            // The lowest flagged byte is the first such byte (flags above it may be
            // borrows, never below).
            return Some(8 * n + (hits.trailing_zeros() / 8) as usize);
        }
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b == b'\'')
        .map(|k| bytes.len() - tail.len() + k)
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
