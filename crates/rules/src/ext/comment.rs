//! `-m comment --comment TEXT` (at most 255 bytes; never affects matching).

use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_comment_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comment {
    pub text: CommentText,
}

/// Comment text up to this many bytes is kept inside the [`Match`](super::Match) itself.
const INLINE: usize = 30;

/// The text of a comment: short text (most comments) inline, longer text in one heap
/// allocation. A restore of a big ruleset makes one comment a rule; kept inline it costs no
/// allocation, and the `Match` holding it stays 40 bytes. Reads as a `str`.
#[derive(Clone)]
pub struct CommentText(TextRepr);

#[derive(Clone)]
enum TextRepr {
    /// `buf[..len]` is the text (whole UTF-8: copied from a `str`, cut at a char boundary).
    Inline {
        len: u8,
        buf: [u8; INLINE],
    },
    Heap(Box<str>),
}

impl CommentText {
    /// The text `s`.
    pub fn new(s: &str) -> CommentText {
        if s.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            CommentText(TextRepr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            CommentText(TextRepr::Heap(s.into()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `new` is the only maker of `Inline`, and copies a whole `str` (its
            // bytes are UTF-8) into `buf[..len]`; nothing changes `buf` afterwards. (Not
            // `from_utf8`: a save reads every comment, and checking the text again each
            // time cost as much as printing it.)
            TextRepr::Inline { len, buf } => unsafe {
                std::str::from_utf8_unchecked(&buf[..usize::from(*len)])
            },
            TextRepr::Heap(s) => s,
        }
    }
}

impl Default for CommentText {
    fn default() -> CommentText {
        CommentText::new("")
    }
}

impl std::ops::Deref for CommentText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for CommentText {
    fn from(s: &str) -> CommentText {
        CommentText::new(s)
    }
}

impl PartialEq for CommentText {
    fn eq(&self, other: &CommentText) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for CommentText {}

impl PartialEq<str> for CommentText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for CommentText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Debug for CommentText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for CommentText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
        self.text = CommentText::new(&arg[..cut]);
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
    fn test_comment_text_reads_back_at_every_length() {
        // Inline up to INLINE bytes, on the heap beyond; multibyte characters either side
        // of the limit; equality and Debug as the str's.
        for n in 0..=INLINE + 3 {
            for fill in ["a", "é", "\u{1F600}"] {
                let mut s = fill.repeat(n);
                s.truncate(s.floor_char_boundary(n));
                let t = CommentText::new(&s);
                assert_eq!(t.as_str(), s);
                assert_eq!(&*t, s.as_str());
                assert_eq!(t, CommentText::from(s.as_str()));
                assert_eq!(format!("{t:?}"), format!("{s:?}"));
                assert_eq!(t.clone().as_str(), s);
            }
        }
        assert_ne!(CommentText::new("a"), CommentText::new("b"));
        assert_eq!(CommentText::default().as_str(), "");
        assert_eq!(std::mem::size_of::<super::super::Match>(), 40);
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
