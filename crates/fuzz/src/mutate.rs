//! Mutations: a seeded xorshift generator and the operators (bit flips, interesting bytes,
//! dictionary tokens, splices, truncations, range deletion and duplication, line shuffles for
//! text targets). Stacked 1 to 4 per input.

/// xorshift64*: deterministic from the seed, so a run can be repeated.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is mapped to a fixed non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Byte values that sit on boundaries of header fields (lengths, IHL, flags, signs).
const INTERESTING: &[u8] = &[
    0, 1, 2, 4, 5, 6, 8, 0x0f, 0x10, 0x11, 0x14, 0x20, 0x3f, 0x40, 0x45, 0x46, 0x4f, 0x7f, 0x80,
    0x81, 0xfe, 0xff,
];

/// What an input looks like, for picking mutations.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// Lines of words (rulesets, command lines, scenario files, packet lines).
    Text,
    /// Binary frames.
    Binary,
}

/// Mutates `input` in place with 1 to 4 stacked operators; `other` is a second corpus entry
/// for splicing, `dict` tokens to insert.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], dict: &[Vec<u8>], shape: Shape) {
    let n = 1 + rng.below(4);
    for _ in 0..n {
        mutate_once(rng, input, other, dict, shape);
    }
    // Keep inputs small: large ones are slow and rarely find more.
    if input.len() > 64 * 1024 {
        input.truncate(64 * 1024);
    }
}

fn mutate_once(rng: &mut Rng, b: &mut Vec<u8>, other: &[u8], dict: &[Vec<u8>], shape: Shape) {
    let ops = if shape == Shape::Text { 12 } else { 10 };
    match rng.below(ops) {
        // Flip one bit.
        0 if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        // Set one byte to an interesting or random value.
        1 if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] = if rng.one_in(2) {
                INTERESTING[rng.below(INTERESTING.len())]
            } else {
                rng.next_u64() as u8
            };
        }
        // Add or subtract a little from a byte (lengths, counts).
        2 if !b.is_empty() => {
            let i = rng.below(b.len());
            let d = 1 + rng.below(16) as u8;
            b[i] = if rng.one_in(2) {
                b[i].wrapping_add(d)
            } else {
                b[i].wrapping_sub(d)
            };
        }
        // Insert a dictionary token (at a word boundary for text).
        3 | 4 if !dict.is_empty() => {
            let tok = &dict[rng.below(dict.len())];
            let at = insertion_point(rng, b, shape);
            let mut ins = tok.clone();
            if shape == Shape::Text {
                ins.push(b' ');
            }
            b.splice(at..at, ins);
        }
        // Overwrite with a dictionary token.
        5 if !dict.is_empty() && !b.is_empty() => {
            let tok = &dict[rng.below(dict.len())];
            let at = rng.below(b.len());
            let end = (at + tok.len()).min(b.len());
            b.splice(at..end, tok.iter().copied());
        }
        // Splice: our head, the other's tail.
        6 if !other.is_empty() => {
            let cut = rng.below(b.len() + 1);
            let from = rng.below(other.len());
            b.truncate(cut);
            b.extend_from_slice(&other[from..]);
        }
        // Truncate.
        7 if !b.is_empty() => {
            let n = rng.below(b.len());
            b.truncate(n);
        }
        // Delete a range.
        8 if !b.is_empty() => {
            let a = rng.below(b.len());
            let len = 1 + rng.below((b.len() - a).min(32));
            b.drain(a..a + len);
        }
        // Duplicate a range.
        9 if !b.is_empty() => {
            let a = rng.below(b.len());
            let len = 1 + rng.below((b.len() - a).min(64));
            let chunk = b[a..a + len].to_vec();
            let at = rng.below(b.len() + 1);
            b.splice(at..at, chunk);
        }
        // Text: duplicate, delete or swap whole lines.
        10 | 11 => {
            let mut lines: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(|l| l.to_vec()).collect();
            if lines.is_empty() {
                return;
            }
            let i = rng.below(lines.len());
            match rng.below(3) {
                0 => {
                    let l = lines[i].clone();
                    lines.insert(rng.below(lines.len() + 1), l);
                }
                1 if lines.len() > 1 => {
                    lines.remove(i);
                }
                _ => {
                    let j = rng.below(lines.len());
                    lines.swap(i, j);
                }
            }
            *b = lines.join(&b'\n');
        }
        // Append random bytes.
        _ => {
            for _ in 0..1 + rng.below(8) {
                b.push(rng.next_u64() as u8);
            }
        }
    }
}

/// Where to insert a token: anywhere for binary input, after a space or newline for text.
fn insertion_point(rng: &mut Rng, b: &[u8], shape: Shape) -> usize {
    let at = rng.below(b.len() + 1);
    if shape == Shape::Binary || rng.one_in(8) {
        return at;
    }
    b[at..]
        .iter()
        .position(|&c| c == b' ' || c == b'\n')
        .map(|p| at + p + 1)
        .unwrap_or(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_eq!(Rng::new(0).below(0), 0);
    }

    #[test]
    fn mutations_change_inputs_and_stay_bounded() {
        let mut rng = Rng::new(1);
        let dict = vec![b"-A".to_vec(), b"COMMIT".to_vec()];
        let seed = b"*filter\n-A INPUT -j ACCEPT\nCOMMIT\n".to_vec();
        let mut changed = 0;
        for _ in 0..500 {
            let mut b = seed.clone();
            mutate(&mut rng, &mut b, b"other text", &dict, Shape::Text);
            assert!(b.len() <= 64 * 1024);
            if b != seed {
                changed += 1;
            }
        }
        assert!(changed > 400, "{changed}");
    }
}
