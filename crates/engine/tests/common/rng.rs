//! A small deterministic generator for the engine's property tests (the proptest seed drives
//! it, so a failing case shrinks to its seed and replays).

/// xorshift64* over a 64-bit state (a zero state stays zero: seed with a non-zero value).
pub struct Rng(pub u64);

#[allow(dead_code)] // each test binary uses its own part
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `xs` (not empty).
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}
