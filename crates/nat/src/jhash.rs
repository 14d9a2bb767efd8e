//! Bob Jenkins' lookup3 hash as the kernel's `jhash2` computes it (include/linux/jhash.h),
//! and `reciprocal_scale`. NAT uses them to pick an address of a range.

const JHASH_INITVAL: u32 = 0xdead_beef;

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn finalize(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// `jhash2(words, words.len(), initval)`.
pub fn jhash2(words: &[u32], initval: u32) -> u32 {
    let len = words.len() as u32;
    let mut a = JHASH_INITVAL.wrapping_add(len << 2).wrapping_add(initval);
    let mut b = a;
    let mut c = a;
    let mut k = words;
    while k.len() > 3 {
        a = a.wrapping_add(k[0]);
        b = b.wrapping_add(k[1]);
        c = c.wrapping_add(k[2]);
        mix(&mut a, &mut b, &mut c);
        k = &k[3..];
    }
    match k.len() {
        3 => {
            c = c.wrapping_add(k[2]);
            b = b.wrapping_add(k[1]);
            a = a.wrapping_add(k[0]);
            finalize(&mut a, &mut b, &mut c);
        }
        2 => {
            b = b.wrapping_add(k[1]);
            a = a.wrapping_add(k[0]);
            finalize(&mut a, &mut b, &mut c);
        }
        1 => {
            a = a.wrapping_add(k[0]);
            finalize(&mut a, &mut b, &mut c);
        }
        _ => {}
    }
    c
}

/// `reciprocal_scale(val, n)`: maps a 32-bit value onto `0..n` by multiplication.
pub fn reciprocal_scale(val: u32, n: u32) -> u32 {
    ((val as u64 * n as u64) >> 32) as u32
}

/// An IPv4 address (host order) as the kernel's u32 word of `union nf_inet_addr`: the
/// network-order bytes loaded in the little-endian order of the reference (x86-64) machine.
pub fn addr_word(a: u32) -> u32 {
    u32::from_le_bytes(a.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_is_the_seeded_init_value() {
        assert_eq!(jhash2(&[], 0), 0xdeadbeef);
    }

    #[test]
    fn scale_covers_the_range() {
        assert_eq!(reciprocal_scale(0, 3), 0);
        assert_eq!(reciprocal_scale(u32::MAX, 3), 2);
        assert_eq!(reciprocal_scale(0x8000_0000, 2), 1);
    }
}
