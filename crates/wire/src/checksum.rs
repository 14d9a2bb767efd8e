//! Internet checksum (RFC 1071): full computation, pseudo headers, and incremental update per
//! RFC 1624 (`HC' = ~(~HC + ~m + m')`), which never yields the -0 ambiguity of RFC 1141.

use std::net::Ipv4Addr;

/// Adds `data` as big-endian 16-bit words to the running 32-bit `sum` (odd trailing byte padded).
/// The result is congruent to the 16-bit word sum modulo 0xffff (what `fold` keeps): words
/// are added four bytes at a time into 64 bits (2^16 and 2^32 are both 1 modulo 0xffff), then
/// folded back to 32 bits.
pub fn add_bytes(sum: u32, data: &[u8]) -> u32 {
    let mut acc = u64::from(sum);
    let mut quads = data.chunks_exact(4);
    for q in &mut quads {
        acc += u64::from(u32::from_be_bytes([q[0], q[1], q[2], q[3]]));
    }
    let mut pairs = quads.remainder().chunks_exact(2);
    for c in &mut pairs {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

/// Folds a 32-bit accumulator into 16 bits (end-around carry), not complemented. Two fixed
/// steps always suffice for 32 bits (after the first the value is at most 0x1fffe, after the
/// second at most 0xffff), so there is no data-dependent loop.
#[inline]
pub fn fold(sum: u32) -> u16 {
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The checksum field value for `data`: one's complement of the folded one's complement sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(add_bytes(0, data))
}

/// Sum of the IPv4 pseudo header (RFC 793 / RFC 768) for a transport segment of `len` bytes.
/// Summed in 64 bits and folded back to 32 (2^32 is 1 modulo 0xffff): a 32-bit sum overflowed
/// for high addresses (255.255.255.255 and a protocol), losing a carry.
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u32) -> u32 {
    let acc = u64::from(u32::from(src))
        + u64::from(u32::from(dst))
        + u64::from(protocol)
        + u64::from(len >> 16)
        + u64::from(len & 0xffff);
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

/// Checksum field value of a TCP/UDP segment `data` (checksum field included as found).
pub fn transport_checksum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, data: &[u8]) -> u16 {
    let sum = pseudo_header_sum(src, dst, protocol, data.len() as u32);
    !fold(add_bytes(sum, data))
}

/// True when `data` with its embedded checksum sums to 0xffff (valid). A 20-byte IPv4
/// header without options (every packet's first check) is summed as five fixed words.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    if let Ok(h) = <&[u8; 20]>::try_from(data) {
        let w = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
        let acc = w(0) + w(4) + w(8) + w(12) + w(16);
        let acc = (acc & 0xffff_ffff) + (acc >> 32);
        return fold(acc as u32) == 0xffff;
    }
    fold(add_bytes(0, data)) == 0xffff
}

/// True when the TCP/UDP segment `data` carries a valid checksum for this pseudo header.
pub fn verify_transport(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, data: &[u8]) -> bool {
    let sum = pseudo_header_sum(src, dst, protocol, data.len() as u32);
    fold(add_bytes(sum, data)) == 0xffff
}

/// RFC 1624 eqn. 3: the checksum field after one 16-bit word of the covered data went from
/// `old` to `new`.
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!csum) + u32::from(!old) + u32::from(new);
    !fold(sum)
}

/// RFC 1624 for a 32-bit value (two words) changing from `old` to `new`: both words in one
/// sum and one fold, the same value as two [`update16`] in a row (folding a partial sum
/// first changes neither its class modulo 0xffff nor whether it is zero).
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    !fold(u32::from(!csum) + words_delta(old, new))
}

/// RFC 1624 for an address and a port changing together (a NAT rewrite of a TCP/UDP
/// checksum): one sum, one fold; the same value as [`update32`] then [`update16`].
#[inline]
pub fn update_addr_port(csum: u16, old: u32, new: u32, old_port: u16, new_port: u16) -> u16 {
    let sum = u32::from(!csum) + words_delta(old, new) + u32::from(!old_port) + u32::from(new_port);
    !fold(sum)
}

/// The one's complement sum that turns `old`'s two words into `new`'s (each old word's
/// complement plus each new word), unfolded.
#[inline]
fn words_delta(old: u32, new: u32) -> u32 {
    u32::from(!(old >> 16) as u16)
        + u32::from(!old as u16)
        + u32::from((new >> 16) as u16)
        + u32::from(new as u16)
}

/// RFC 1624 for a run of bytes at an even offset changing from `old` to `new` (same length).
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut sum = u32::from(!csum);
    sum = add_bytes(sum, new);
    // Adding the complement of each old word subtracts it in one's complement arithmetic.
    let mut chunks = old.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(!u16::from_be_bytes([c[0], c[1]])));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(!(u16::from(*last) << 8)));
    }
    !fold(sum)
}

/// UDP rule (RFC 768): a computed checksum of 0 is transmitted as all ones, 0 meaning "none".
pub fn udp_wire(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

/// Writes `new` into `buf` at `start` and fixes the 16-bit checksum stored at `csum_at`
/// incrementally. Offsets are relative to the start of the checksummed data (word grid); the
/// patched run may start at an odd offset but may not overlap the checksum field and is at most
/// 12 bytes long. Returns the new checksum. No allocation.
///
/// pre: `start + new.len() <= buf.len()`, `csum_at + 2 <= buf.len()`.
pub fn patch(buf: &mut [u8], csum_at: usize, start: usize, new: &[u8]) -> u16 {
    if start > buf.len() || csum_at + 2 > buf.len() {
        // Out of range: nothing written (callers keep in range; this only keeps it panic-free).
        return buf
            .get(csum_at..csum_at + 2)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
    }
    let a = start & !1;
    let end = (start + new.len().min(12)).min(buf.len());
    let b = (end + 1) & !1;
    let mut old = [0u8; 14];
    let mut neu = [0u8; 14];
    let n = b - a;
    for (i, o) in old[..n].iter_mut().enumerate() {
        *o = buf.get(a + i).copied().unwrap_or(0);
    }
    buf[start..end].copy_from_slice(&new[..end - start]);
    for (i, o) in neu[..n].iter_mut().enumerate() {
        *o = buf.get(a + i).copied().unwrap_or(0);
    }
    let c = u16::from_be_bytes([buf[csum_at], buf[csum_at + 1]]);
    let c = update_bytes(c, &old[..n], &neu[..n]);
    buf[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example words: 0001 f203 f4f5 f6f7 sum to ddf2 (before complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add_bytes(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    /// The one-fold updates give exactly what chained 16-bit updates give (the kernel's
    /// csum_replace4 then inet_proto_csum_replace2), zero and all-ones checksums included.
    #[test]
    fn one_fold_updates_equal_chained_word_updates() {
        let chained32 = |c: u16, o: u32, n: u32| {
            update16(
                update16(c, (o >> 16) as u16, (n >> 16) as u16),
                o as u16,
                n as u16,
            )
        };
        let mut x = 0x2545_f491_9e37_79b9u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let edge = [
            0u32,
            1,
            0xffff,
            0x1_0000,
            0xffff_0000,
            0xffff_fffe,
            u32::MAX,
        ];
        for i in 0..200_000 {
            let r = next();
            let pick = |k: u64| -> u32 {
                if k.is_multiple_of(4) {
                    edge[(k >> 8) as usize % edge.len()]
                } else {
                    (k >> 16) as u32
                }
            };
            let (c, o, n) = ((r >> 48) as u16, pick(next()), pick(next()));
            let c = if i % 5 == 0 { [0, 0xffff][i % 2] } else { c };
            assert_eq!(
                update32(c, o, n),
                chained32(c, o, n),
                "{c:#x} {o:#x} {n:#x}"
            );
            let (op, np) = (pick(next()) as u16, pick(next()) as u16);
            assert_eq!(
                update_addr_port(c, o, n, op, np),
                update16(chained32(c, o, n), op, np),
                "{c:#x} {o:#x} {n:#x} {op:#x} {np:#x}"
            );
        }
    }

    /// The branch-free fold and the 20-byte fast path agree with the plain definitions.
    #[test]
    fn fold_and_verify_fast_paths_agree_with_the_definition() {
        fn slow_fold(mut s: u32) -> u16 {
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            s as u16
        }
        let mut x = 0x9e37_79b9u32;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            assert_eq!(fold(x), slow_fold(x), "{x:#x}");
        }
        for s in [0, 0xffff, 0x1_0000, 0x1_fffe, 0xffff_ffff, 0xfffe_0001] {
            assert_eq!(fold(s), slow_fold(s), "{s:#x}");
        }
        let mut h = [0u8; 20];
        for round in 0..5_000u32 {
            for (i, b) in h.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = if round % 7 == 0 {
                    0xff
                } else {
                    (x >> (i % 24)) as u8
                };
            }
            if round % 2 == 0 {
                h[10] = 0;
                h[11] = 0;
                let c = checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            let slow = slow_fold(add_bytes(0, &h)) == 0xffff;
            assert_eq!(verify(&h), slow);
            // The general path (a 21-byte slice with a zero pad) says the same.
            let mut v = h.to_vec();
            v.push(0);
            assert_eq!(verify(&v), slow);
        }
    }

    /// The pseudo header of the highest addresses neither overflows nor loses a carry: the
    /// same folded sum as adding its 16-bit words one by one.
    #[test]
    fn pseudo_header_of_high_addresses() {
        for (s, d, p, len) in [
            ([255u8; 4], [255u8; 4], 17u8, 8u32),
            ([255, 255, 255, 255], [10, 0, 0, 1], 6, 65_535),
            ([0xff, 0xfe, 0xff, 0xff], [0xff, 0xff, 0, 1], 1, 0x1_0000),
            ([10, 0, 0, 1], [192, 0, 2, 1], 6, 20),
        ] {
            let words = [
                u16::from_be_bytes([s[0], s[1]]),
                u16::from_be_bytes([s[2], s[3]]),
                u16::from_be_bytes([d[0], d[1]]),
                u16::from_be_bytes([d[2], d[3]]),
                u16::from(p),
                (len >> 16) as u16,
                len as u16,
            ];
            let mut want = 0u32;
            for w in words {
                want += u32::from(w);
                want = (want & 0xffff) + (want >> 16);
            }
            let got = pseudo_header_sum(s.into(), d.into(), p, len);
            assert_eq!(fold(got), fold(want), "{s:?} {d:?} {p} {len}");
        }
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0x00])
        );
    }

    #[test]
    fn incremental_matches_full() {
        let mut data = [
            0x45u8, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&data));
        let old = u16::from_be_bytes([data[8], data[9]]);
        data[8] = 63;
        let new = u16::from_be_bytes([data[8], data[9]]);
        let c2 = update16(c, old, new);
        data[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(c2, checksum(&data));
    }

    #[test]
    fn patch_odd_offset() {
        let mut d = [1u8, 2, 0, 0, 5, 6, 7, 8, 9];
        let c = checksum(&d);
        d[2..4].copy_from_slice(&c.to_be_bytes());
        patch(&mut d, 2, 5, &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert!(verify(&d));
        assert_eq!(&d[5..], &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn update_bytes_odd() {
        let mut d = [1u8, 2, 3, 4, 5];
        let c = checksum(&d);
        let old = d;
        d[2] = 9;
        d[4] = 0xee;
        assert_eq!(update_bytes(c, &old, &d), checksum(&d));
    }
}
