//! IPv4 header view (RFC 791): options, fragments, header checksum.
//!
//! [`Packet::check_header_len`] guarantees the fixed header and the options are present (enough
//! for a packet quoted inside an ICMP error); [`Packet::check_len`] also requires the whole
//! datagram its total length announces. After either succeeds no accessor or setter can panic:
//! the payload is clamped to the bytes really present.

use crate::checksum;
use crate::{Error, Result};
use std::net::Ipv4Addr;

/// IP protocol numbers nfrs decodes.
pub mod protocol {
    /// ICMP
    pub const ICMP: u8 = 1;
    /// TCP
    pub const TCP: u8 = 6;
    /// UDP
    pub const UDP: u8 = 17;
}

mod field {
    use crate::Field;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of the header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Reserved ("evil") flag bit of the flags/offset word.
pub const FLAG_RF: u16 = 0x8000;
/// Don't Fragment.
pub const FLAG_DF: u16 = 0x4000;
/// More Fragments.
pub const FLAG_MF: u16 = 0x2000;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn be16(b: &[u8], f: crate::Field) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}

fn addr(b: &[u8], f: crate::Field) -> Ipv4Addr {
    Ipv4Addr::new(b[f.start], b[f.start + 1], b[f.start + 2], b[f.start + 3])
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ok when version is 4, IHL >= 5 and the header with its options is present.
    pub fn check_header_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 || self.header_len() < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if b.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// [`Packet::check_header_len`], and the total length covers the header and is present.
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        let tl = usize::from(self.total_len());
        if tl < self.header_len() {
            return Err(Error::Malformed);
        }
        if self.buffer.as_ref().len() < tl {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Type of service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification field.
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    /// Flags and fragment offset word as on the wire.
    pub fn flags_frag(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLG_OFF)
    }

    /// Reserved flag.
    pub fn rf(&self) -> bool {
        self.flags_frag() & FLAG_RF != 0
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & 0x1fff) << 3
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol number.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::SRC_ADDR)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// Option bytes (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        let hl = self.header_len().max(MIN_HEADER_LEN);
        &self.buffer.as_ref()[MIN_HEADER_LEN..hl]
    }

    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()])
    }

    /// The payload bytes present: up to the total length, clamped to the buffer.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let hl = self.header_len();
        let end = usize::from(self.total_len()).clamp(hl, b.len().max(hl));
        &b[hl..end]
    }

    /// True when fewer bytes are present than the total length announces (a quoted packet).
    pub fn is_cut(&self) -> bool {
        self.buffer.as_ref().len() < usize::from(self.total_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set16(&mut self, f: crate::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets version 4 and the header length in bytes (multiple of 4, 20..=60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets the TOS byte (checksum untouched).
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }

    /// Sets the total length (checksum untouched).
    pub fn set_total_len(&mut self, v: u16) {
        self.set16(field::LENGTH, v)
    }

    /// Sets the identification (checksum untouched).
    pub fn set_ident(&mut self, v: u16) {
        self.set16(field::IDENT, v)
    }

    /// Sets the flags/offset word (checksum untouched).
    pub fn set_flags_frag(&mut self, v: u16) {
        self.set16(field::FLG_OFF, v)
    }

    /// Sets the TTL (checksum untouched).
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol (checksum untouched).
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set16(field::CHECKSUM, v)
    }

    /// Sets the source address (checksum untouched).
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address (checksum untouched).
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    /// Mutable option bytes.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len().max(MIN_HEADER_LEN);
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..hl]
    }

    /// Mutable payload (same bounds as [`Packet::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let len = self.buffer.as_ref().len();
        let end = usize::from(self.total_len()).clamp(hl, len.max(hl));
        &mut self.buffer.as_mut()[hl..end]
    }

    fn patch16(&mut self, f: crate::Field, new: u16) {
        let old = be16(self.buffer.as_ref(), f.clone());
        self.set16(f, new);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Sets the TTL and fixes the header checksum incrementally.
    pub fn update_ttl(&mut self, v: u8) {
        let b = self.buffer.as_ref();
        let new = u16::from_be_bytes([v, b[field::PROTOCOL]]);
        self.patch16(field::TTL..field::TTL + 2, new);
    }

    /// Sets the TOS byte and fixes the header checksum incrementally.
    pub fn update_tos(&mut self, v: u8) {
        let b = self.buffer.as_ref();
        let new = u16::from_be_bytes([b[field::VER_IHL], v]);
        self.patch16(field::VER_IHL..field::VER_IHL + 2, new);
    }

    /// Sets the identification and fixes the header checksum incrementally.
    pub fn update_ident(&mut self, v: u16) {
        self.patch16(field::IDENT, v);
    }

    /// Sets the flags/offset word and fixes the header checksum incrementally.
    pub fn update_flags_frag(&mut self, v: u16) {
        self.patch16(field::FLG_OFF, v);
    }

    /// Sets the total length and fixes the header checksum incrementally.
    pub fn update_total_len(&mut self, v: u16) {
        self.patch16(field::LENGTH, v);
    }

    /// Sets the source address and fixes the header checksum incrementally (IP header only).
    pub fn update_src_addr(&mut self, a: Ipv4Addr) {
        let old = u32::from(self.src_addr());
        self.set_src_addr(a);
        let c = checksum::update32(self.checksum(), old, u32::from(a));
        self.set_checksum(c);
    }

    /// Sets the destination address and fixes the header checksum incrementally (IP header only).
    pub fn update_dst_addr(&mut self, a: Ipv4Addr) {
        let old = u32::from(self.dst_addr());
        self.set_dst_addr(a);
        let c = checksum::update32(self.checksum(), old, u32::from(a));
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.0.0.2 -> 203.0.113.9, TCP, total 44, id 1, ttl 64, checksum filled.
    static HDR: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 10, 0, 0, 2, 203,
        0, 113, 9, 0xde, 0xad, 0xbe, 0xef,
    ];

    fn filled() -> [u8; 24] {
        let mut b = HDR;
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        b
    }

    #[test]
    fn test_deconstruct() {
        let b = filled();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 1);
        assert!(p.dont_frag() && !p.more_frags() && !p.rf());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::TCP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(203, 0, 113, 9));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.options().is_empty());
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 24];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_and_header_len(20);
        p.set_total_len(24);
        p.set_ident(1);
        p.set_flags_frag(FLAG_DF);
        p.set_ttl(64);
        p.set_protocol(6);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.set_dst_addr(Ipv4Addr::new(203, 0, 113, 9));
        p.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        p.fill_checksum();
        assert_eq!(b, filled());
    }

    #[test]
    fn test_truncated() {
        let b = filled();
        assert_eq!(Packet::new_checked(&b[..19]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&b[..23]).unwrap_err(), Error::Truncated);
        let p = Packet::new_unchecked(&b[..22]);
        assert!(p.check_header_len().is_ok());
        assert!(p.is_cut());
        assert_eq!(p.payload(), &[0xde, 0xad]);
        let mut bad = b;
        bad[0] = 0x44;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
        let mut bad = b;
        bad[3] = 10;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
        // Total length below the header length: checked header still yields an empty payload.
        assert!(Packet::new_unchecked(&bad[..]).payload().is_empty());
    }

    #[test]
    fn options_and_fragments() {
        let mut b = [0u8; 28];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_and_header_len(24);
        p.set_total_len(28);
        p.set_flags_frag(FLAG_MF | (1480 / 8));
        p.options_mut().copy_from_slice(&[0x94, 0x04, 0, 0]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert!(p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(p.payload().len(), 4);
    }

    #[test]
    fn incremental_updates() {
        let mut b = filled();
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.update_ttl(63);
        p.update_tos(0x10);
        p.update_ident(0xbeef);
        p.update_src_addr(Ipv4Addr::new(192, 0, 2, 1));
        p.update_dst_addr(Ipv4Addr::new(198, 51, 100, 7));
        p.update_flags_frag(0);
        p.update_total_len(24);
        assert!(p.verify_checksum());
        let c = p.checksum();
        p.fill_checksum();
        assert_eq!(c, p.checksum());
    }
}
