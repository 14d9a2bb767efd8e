//! `-m string --algo bm|kmp [--from N] [--to N] [--icase] [!] --string|--hex-string P`
//! (xt_string revision 1 over the kernel's textsearch: lib/ts_bm.c, lib/ts_kmp.c).
//!
//! What it sees: the bytes of ONE packet as it stands at the hook, counted from the start of
//! the IP header (so `--from`/`--to` are offsets into the IP packet, headers included, not
//! into the payload). It cannot see a pattern split over two TCP segments or two IP
//! fragments that were not reassembled (FAQ 3.14): a sender that segments (or a path that
//! fragments) the bytes differently passes; nor can it decode anything (compression,
//! encodings, TLS). It is a packet filter, not a stream inspector.
//!
//! The kernel searches from `--from` block by block through the packet's memory (one block
//! for an ordinary packet; one per fragment for a datagram conntrack reassembled), takes the
//! first occurrence its algorithm finds, and accepts it only when it ends at or before
//! `--to`. Boyer-Moore restarts in every block, so it misses a pattern split across two
//! reassembled fragments (measured: tests/scenarios/string/across-fragments); KMP finds it. Case folding with
//! `--icase` uses the kernel's own `toupper`, which also folds Latin-1 letters.

use super::{CompileCtx, CompileError, MatchEnv, StateSlot};
use crate::pkt::PktCtx;
use nfrs_rules::ext::string::StringMatch;

/// The kernel's ctype classes for bytes 0xc0..=0xff (lib/ctype.c): upper case 0xc0-0xd6 and
/// 0xd8-0xde, lower case 0xdf-0xf6 and 0xf8-0xff, 0xd7 and 0xf7 neither.
fn is_upper(c: u8) -> bool {
    c.is_ascii_uppercase() || matches!(c, 0xc0..=0xd6 | 0xd8..=0xde)
}

fn is_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || matches!(c, 0xdf..=0xf6 | 0xf8..=0xff)
}

/// Kernel rule (__toupper): a lower-case byte minus 32 (0xdf becomes 0xbf, as the kernel
/// does).
pub fn toupper(c: u8) -> u8 {
    if is_lower(c) {
        c - 32
    } else {
        c
    }
}

/// Kernel rule (__tolower): an upper-case byte plus 32.
pub fn tolower(c: u8) -> u8 {
    if is_upper(c) {
        c + 32
    } else {
        c
    }
}

/// Which search runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Algo {
    /// Boyer-Moore as lib/ts_bm.c builds and runs it.
    Bm,
    /// Knuth-Morris-Pratt (lib/ts_kmp.c): the leftmost occurrence.
    Kmp,
}

/// The search prepared once (the kernel's ts_config): the pattern (upper-cased with
/// `--icase`) and the algorithm's tables.
#[derive(Clone, Debug)]
pub struct State {
    /// The algorithm.
    pub algo: Algo,
    /// The pattern as searched.
    pub pattern: Vec<u8>,
    /// `--icase`.
    pub icase: bool,
    /// BM: shift by the mismatching text byte.
    bad_shift: Vec<u32>,
    /// BM: shift by the length of the matched suffix; KMP: the prefix function.
    table: Vec<u32>,
}

impl Default for State {
    fn default() -> Self {
        State {
            algo: Algo::Kmp,
            pattern: Vec::new(),
            icase: false,
            bad_shift: Vec::new(),
            table: Vec::new(),
        }
    }
}

/// BM helper (the kernel's subpattern): does the suffix of length `g` ending before `i+g`
/// reoccur at `j` (possibly hanging off the pattern's start), preceded by a different byte?
fn subpattern(p: &[u8], i: isize, j: isize, mut g: isize) -> bool {
    let mut x = i + g - 1;
    let mut y = j + g - 1;
    loop {
        if p[x as usize] != p[y as usize] {
            return false;
        }
        x -= 1;
        y -= 1;
        if y < 0 {
            return true;
        }
        g -= 1;
        if g == 0 {
            return p[(i - 1) as usize] != p[(j - 1) as usize];
        }
    }
}

impl State {
    /// Prepares the search of `pattern` (non-empty).
    pub fn new(algo: Algo, pattern: &[u8], icase: bool) -> State {
        let pat: Vec<u8> = if icase {
            pattern.iter().map(|&c| toupper(c)).collect()
        } else {
            pattern.to_vec()
        };
        let n = pat.len();
        let mut s = State {
            algo,
            pattern: pat,
            icase,
            bad_shift: Vec::new(),
            table: Vec::new(),
        };
        match s.algo {
            Algo::Bm => {
                // Bad byte: distance from a byte's last place (before the end) to the end.
                let mut bad = vec![n as u32; 256];
                for (i, &c) in s.pattern[..n - 1].iter().enumerate() {
                    bad[c as usize] = (n - 1 - i) as u32;
                    if icase {
                        bad[tolower(c) as usize] = (n - 1 - i) as u32;
                    }
                }
                // Good suffix, built as the kernel builds it.
                let mut good = vec![n as u32; n];
                good[0] = 1;
                let p = &s.pattern;
                let (mut i, mut g) = (n as isize - 1, 1isize);
                while i > 0 {
                    let mut j = i - 1;
                    while j >= 1 - g {
                        if subpattern(p, i, j, g) {
                            good[g as usize] = (n as isize - j - g) as u32;
                            break;
                        }
                        j -= 1;
                    }
                    g += 1;
                    i -= 1;
                }
                s.bad_shift = bad;
                s.table = good;
            }
            Algo::Kmp => {
                let p = &s.pattern;
                let mut pre = vec![0u32; n];
                let mut k = 0usize;
                for q in 1..n {
                    while k > 0 && p[k] != p[q] {
                        k = pre[k - 1] as usize;
                    }
                    if p[k] == p[q] {
                        k += 1;
                    }
                    pre[q] = k as u32;
                }
                s.table = pre;
            }
        }
        s
    }

    #[inline]
    fn fold(&self, c: u8) -> u8 {
        if self.icase {
            toupper(c)
        } else {
            c
        }
    }

    /// The position in `text` of the first occurrence the algorithm finds (`text` as one
    /// memory block).
    pub fn find(&self, text: &[u8]) -> Option<usize> {
        self.find_blocks(text, &[], 0, 0, text.len())
    }

    /// Kernel rule (textsearch over skb_seq_read): the text from `from` is read block by
    /// block, a block starting at or after `upper` not being read; a block is the rest of the
    /// memory piece holding the read position: a new piece begins at `base + offset` for
    /// every `(offset, _)` of `spans` after the first (a reassembled datagram's fragments,
    /// payload offsets in order), the last ends with `pkt`. BM starts afresh in every block
    /// (a pattern across two pieces is not seen); KMP carries its state over. Returns the
    /// position relative to `from`.
    pub fn find_blocks(
        &self,
        pkt: &[u8],
        spans: &[(usize, usize)],
        base: usize,
        from: usize,
        upper: usize,
    ) -> Option<usize> {
        let n = self.pattern.len();
        let mut consumed = 0usize;
        let mut q = 0usize;
        let mut k = 1;
        loop {
            let abs = from + consumed;
            if abs >= upper || abs >= pkt.len() {
                return None;
            }
            while k < spans.len() && base + spans[k].0 <= abs {
                k += 1;
            }
            let end = spans
                .get(k)
                .map_or(pkt.len(), |&(off, _)| base + off)
                .min(pkt.len());
            let text = &pkt[abs..end];
            match self.algo {
                Algo::Bm => {
                    if let Some(i) = self.bm_block(text) {
                        return Some(consumed + i);
                    }
                }
                Algo::Kmp => {
                    for (i, &c) in text.iter().enumerate() {
                        let c = self.fold(c);
                        while q > 0 && self.pattern[q] != c {
                            q = self.table[q - 1] as usize;
                        }
                        if self.pattern[q] == c {
                            q += 1;
                        }
                        if q == n {
                            return Some(consumed + i + 1 - n);
                        }
                    }
                }
            }
            consumed += text.len();
        }
    }

    /// Kernel rule (bm_find in one block): compare right to left at `shift`; on a mismatch
    /// after `i` matched bytes move by the larger of the bad-byte and good-suffix shifts.
    fn bm_block(&self, text: &[u8]) -> Option<usize> {
        let n = self.pattern.len();
        let mut shift = n as isize - 1;
        while shift < text.len() as isize {
            let mut i = 0usize;
            while i < n && self.fold(text[(shift - i as isize) as usize]) == self.pattern[n - 1 - i]
            {
                i += 1;
            }
            if i == n {
                return Some((shift - (n as isize - 1)) as usize);
            }
            let bs = self.bad_shift[text[(shift - i as isize) as usize] as usize] as isize;
            shift = (shift - i as isize + bs).max(shift + self.table[i] as isize);
        }
        None
    }

    /// Kernel rule (skb_find_text): search the packet from `from` (blocks as for
    /// [`State::find_blocks`]); the first occurrence found counts only if it ends by `to`.
    pub fn search(
        &self,
        pkt: &[u8],
        spans: &[(usize, usize)],
        base: usize,
        from: u16,
        to: u16,
    ) -> bool {
        let (from, to) = (usize::from(from), usize::from(to));
        match self.find_blocks(pkt, spans, base, from, to) {
            Some(pos) => pos + self.pattern.len() <= to.saturating_sub(from),
            None => false,
        }
    }
}

/// Builds the search once; refuses what the kernel refuses (no such algorithm, an empty or
/// too long pattern, `--from` after `--to`; nfrs-rules refuses these first).
pub fn compile(m: &StringMatch, cx: &mut CompileCtx) -> Result<(), CompileError> {
    let algo = match m.algo.as_str() {
        "bm" => Algo::Bm,
        "kmp" => Algo::Kmp,
        other => {
            return Err(CompileError(format!(
                "nfrs replay: string: no text search algorithm `{other}` (the kernel has bm, kmp \
                 and fsm; the engine runs bm and kmp)"
            )))
        }
    };
    if m.pattern.is_empty() || m.pattern.len() > 128 || m.from > m.to {
        return Err(CompileError(
            "nfrs replay: string: empty or too long pattern, or --from after --to (the kernel \
             refuses it)"
                .into(),
        ));
    }
    cx.new_slot(StateSlot::String(Box::new(State::new(
        algo, &m.pattern, m.icase,
    ))));
    Ok(())
}

/// Kernel rule (string_mt): the pattern is found within `[from, to]` of the IP packet,
/// inverted by `!`. A packet reassembled from fragments is kept by the kernel as its
/// fragments' buffers chained: each fragment's data is its own block.
pub fn eval(m: &StringMatch, p: &PktCtx, env: &mut MatchEnv) -> bool {
    let Some(StateSlot::String(s)) = env.state.slots.get(env.slot as usize) else {
        return false;
    };
    let end = p.d.l3_end().min(p.buf.len());
    let ihl = usize::from(p.d.ihl);
    s.search(&p.buf[..end], &p.frag_spans, ihl, m.from, m.to) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};
    use super::*;

    fn m(args: &[&str]) -> nfrs_rules::ext::Match {
        let mut v = vec!["-m", "string"];
        v.extend_from_slice(args);
        rule_matches(&v).remove(0)
    }

    /// Every occurrence position, naively.
    fn naive(text: &[u8], pat: &[u8], icase: bool) -> Option<usize> {
        let f = |c: u8| if icase { toupper(c) } else { c };
        (0..=text.len().saturating_sub(pat.len())).find(|&i| {
            i + pat.len() <= text.len() && (0..pat.len()).all(|k| f(text[i + k]) == f(pat[k]))
        })
    }

    #[test]
    fn ctype_folding_is_the_kernels() {
        assert_eq!(toupper(b'a'), b'A');
        assert_eq!(toupper(0xe9), 0xc9);
        assert_eq!(toupper(0xdf), 0xbf);
        assert_eq!(toupper(0xf7), 0xf7);
        assert_eq!(toupper(0xff), 0xdf);
        assert_eq!(tolower(0xc9), 0xe9);
        assert_eq!(tolower(0xd7), 0xd7);
    }

    #[test]
    fn measured_latin1_icase() {
        // Measured on Linux 6.18 (netns, OUTPUT counters) with `--icase --hex-string`:
        // |e9| found 0xc9 (bm and kmp); |df| found 0xbf; |f7| did not find 0xd7; |ff| did
        // not find 0xdf (both sides fold: 0xff -> 0xdf, 0xdf -> 0xbf).
        let t = |hex: &str, byte: u8, algo: &str| {
            let mut p = pkt("udp 10.9.0.1:1 > 10.9.0.2:9301 payload=\"abXcd\"");
            let at = p.d.payload_off() + 2;
            p.buf[at] = byte;
            eval(&m(&["--algo", algo, "--hex-string", hex, "--icase"]), &p).0
        };
        assert!(t("|e9|", 0xc9, "bm"));
        assert!(t("|e9|", 0xc9, "kmp"));
        assert!(t("|df|", 0xbf, "bm"));
        assert!(t("|df|", 0xbf, "kmp"));
        assert!(!t("|f7|", 0xd7, "bm"));
        assert!(!t("|ff|", 0xdf, "bm"));
    }

    #[test]
    fn whole_packet_offsets_from_ip_header() {
        // 20 IP + 20 TCP: the payload starts at 40.
        let p = pkt("tcp 10.0.0.2:40002 > 198.51.100.7:80 flags=PA payload=\"evil at the start\"");
        let win = |from: &str, to: &str| {
            eval(
                &m(&[
                    "--algo", "kmp", "--string", "evil", "--from", from, "--to", to,
                ]),
                &p,
            )
            .0
        };
        assert!(win("40", "60"));
        assert!(win("40", "44"), "ends exactly at --to");
        assert!(!win("40", "43"));
        assert!(!win("41", "60"));
        assert!(win("0", "65535"));
        let q = pkt(
            "tcp 10.0.0.2:40003 > 198.51.100.7:80 flags=PA payload=\"xxxxxxxxxxxxxxxxxxxxevil\"",
        );
        assert!(
            !eval(
                &m(&["--algo", "kmp", "--string", "evil", "--from", "40", "--to", "60"]),
                &q
            )
            .0
        );
        assert!(eval(&m(&["--algo", "bm", "--string", "evil"]), &q).0);
        assert!(eval(&m(&["--algo", "bm", "!", "--string", "good"]), &q).0);
    }

    #[test]
    fn measured_udp_offsets() {
        // Measured on Linux 6.18 (netns, OUTPUT counters): a UDP datagram with payload
        // "evil" (at IP offset 28) counted on `--from 28 --to 32` (bm), not on `--to 31`
        // (bm) nor on `--from 29` (kmp).
        let p = pkt("udp 10.9.0.1:5000 > 10.9.0.2:8101 payload=\"evil\"");
        let t = |a: &[&str]| eval(&m(a), &p).0;
        assert!(t(&[
            "--algo", "bm", "--string", "evil", "--from", "28", "--to", "32"
        ]));
        assert!(!t(&[
            "--algo", "bm", "--string", "evil", "--from", "28", "--to", "31"
        ]));
        assert!(!t(&["--algo", "kmp", "--string", "evil", "--from", "29"]));
    }

    #[test]
    fn icase_and_hex() {
        let p = pkt("udp 10.0.0.2:1 > 10.0.0.1:2 payload=\"GET /Scripts/CMD.EXE\"");
        assert!(!eval(&m(&["--algo", "bm", "--string", "cmd.exe"]), &p).0);
        assert!(eval(&m(&["--algo", "bm", "--string", "cmd.exe", "--icase"]), &p).0);
        assert!(eval(&m(&["--algo", "kmp", "--string", "cmd.exe", "--icase"]), &p).0);
        assert!(eval(&m(&["--algo", "kmp", "--hex-string", "|43 4d 44|"]), &p).0);
        // The IP header itself is searched: protocol 17 at offset 9.
        assert!(
            eval(
                &m(&["--algo", "bm", "--hex-string", "|11|", "--to", "10"]),
                &p
            )
            .0
        );
    }

    #[test]
    fn reassembled_pieces_are_blocks() {
        // 20-byte header, pieces at payload offsets 0 (16 bytes) and 16 (8 bytes).
        let mut pkt = vec![0u8; 20];
        pkt.extend_from_slice(b"\x13\x88\x00\x35\x00\x18\x00\x00get cmd.exe now!");
        let spans = [(0, 16), (16, 8)];
        let bm = State::new(Algo::Bm, b"cmd.exe", false);
        let kmp = State::new(Algo::Kmp, b"cmd.exe", false);
        assert!(
            !bm.search(&pkt, &spans, 20, 0, 65535),
            "BM restarts in the second piece"
        );
        assert!(kmp.search(&pkt, &spans, 20, 0, 65535), "KMP carries over");
        assert!(bm.search(&pkt, &[], 20, 0, 65535), "one block: found");
        // A block that starts at or after --to is not read; one that starts before is read
        // whole, and the match must end by --to.
        let now = State::new(Algo::Bm, b"now", false);
        assert!(now.search(&pkt, &spans, 20, 0, 65535));
        // "now" lies at 40..43 in the second piece (36..44).
        assert!(
            !now.search(&pkt, &spans, 20, 0, 36),
            "second piece not read"
        );
        assert!(now.search(&pkt, &spans, 20, 0, 43));
        assert!(!now.search(&pkt, &spans, 20, 0, 42));
        assert!(
            now.search(&pkt, &spans, 20, 37, 43),
            "read from inside the piece"
        );
    }

    #[test]
    fn bm_and_kmp_agree_with_naive_search() {
        // A pseudo-random corpus over a small alphabet (many partial matches).
        let mut x: u32 = 12345;
        let mut next = || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        };
        for round in 0..400 {
            let tl = (next() % 60) as usize;
            let pl = 1 + (next() % 6) as usize;
            let text: Vec<u8> = (0..tl).map(|_| b"abAB"[(next() % 4) as usize]).collect();
            let pat: Vec<u8> = (0..pl).map(|_| b"abAB"[(next() % 4) as usize]).collect();
            for icase in [false, true] {
                let want = naive(&text, &pat, icase);
                let kmp = State::new(Algo::Kmp, &pat, icase).find(&text);
                assert_eq!(kmp, want, "kmp round {round} {text:?} {pat:?} {icase}");
                let bm = State::new(Algo::Bm, &pat, icase).find(&text);
                assert_eq!(
                    bm.is_some(),
                    want.is_some(),
                    "bm round {round} {text:?} {pat:?}"
                );
                if let Some(b) = bm {
                    assert!(naive(&text[b..], &pat, icase) == Some(0));
                }
            }
        }
    }
}
