//! UDP header view (RFC 768).
//!
//! After [`Packet::check_len`] succeeds no accessor or setter can panic. The `update_*` setters
//! keep UDP's zero-checksum rule: a checksum of 0 means "none" and stays 0; a computed 0 is sent
//! as 0xffff.

use crate::checksum;
use crate::{Error, Result};
use std::net::Ipv4Addr;

mod field {
    use crate::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// UDP header length.
pub const HEADER_LEN: usize = 8;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn be16(b: &[u8], f: crate::Field) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
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

    /// Ok when the 8-byte header is present. (The length field is not checked here; see
    /// [`Packet::len_field_ok`].)
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field.
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// True when the length field is below the header length (never the case when well formed).
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) < HEADER_LEN
    }

    /// True when the length field equals the buffer length.
    pub fn len_field_ok(&self) -> bool {
        usize::from(self.len()) == self.buffer.as_ref().len()
    }

    /// Checksum field (0: none).
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Payload after the header (the whole rest of the buffer).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True when the checksum is absent (0) or verifies over the whole buffer.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0
            || checksum::verify_transport(
                src,
                dst,
                crate::ipv4::protocol::UDP,
                self.buffer.as_ref(),
            )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set16(&mut self, f: crate::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the source port (checksum untouched).
    pub fn set_src_port(&mut self, v: u16) {
        self.set16(field::SRC_PORT, v)
    }

    /// Sets the destination port (checksum untouched).
    pub fn set_dst_port(&mut self, v: u16) {
        self.set16(field::DST_PORT, v)
    }

    /// Sets the length field (checksum untouched).
    pub fn set_len(&mut self, v: u16) {
        self.set16(field::LENGTH, v)
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set16(field::CHECKSUM, v)
    }

    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes the checksum over the whole buffer (a computed 0 stored as 0xffff).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::transport_checksum(
            src,
            dst,
            crate::ipv4::protocol::UDP,
            self.buffer.as_ref(),
        );
        self.set_checksum(checksum::udp_wire(c));
    }

    fn patch(&mut self, at: usize, bytes: &[u8]) {
        if self.checksum() == 0 {
            // No checksum: write the field and leave "none" in place.
            self.buffer.as_mut()[at..at + bytes.len()].copy_from_slice(bytes);
            return;
        }
        let c = checksum::patch(self.buffer.as_mut(), field::CHECKSUM.start, at, bytes);
        self.set_checksum(checksum::udp_wire(c));
    }

    /// Sets the source port, fixing a present checksum.
    pub fn update_src_port(&mut self, v: u16) {
        self.patch(field::SRC_PORT.start, &v.to_be_bytes())
    }

    /// Sets the destination port, fixing a present checksum.
    pub fn update_dst_port(&mut self, v: u16) {
        self.patch(field::DST_PORT.start, &v.to_be_bytes())
    }

    /// Fixes a present checksum for a pseudo-header address change.
    pub fn update_pseudo_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = self.checksum();
        if c == 0 {
            return;
        }
        let c = checksum::update32(c, u32::from(old), u32::from(new));
        self.set_checksum(checksum::udp_wire(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    const DST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 53);

    static DGRAM: [u8; 12] = [
        0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&DGRAM[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 12));
        assert!(p.len_field_ok());
        assert_eq!(p.checksum(), 0);
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(p.payload(), b"abcd");
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(5353);
        p.set_dst_port(53);
        p.set_len(12);
        p.payload_mut().copy_from_slice(b"abcd");
        assert_eq!(b, DGRAM);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            Packet::new_checked(&DGRAM[..7]).unwrap_err(),
            Error::Truncated
        );
        let p = Packet::new_checked(&DGRAM[..8]).unwrap();
        assert!(p.payload().is_empty());
        assert!(!p.len_field_ok());
    }

    #[test]
    fn zero_checksum_rule() {
        let mut b = DGRAM;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.update_src_port(1);
        p.update_pseudo_addr(SRC, DST);
        assert_eq!(p.checksum(), 0);
        assert_eq!(p.src_port(), 1);
        // A payload whose checksum computes to 0 must carry 0xffff.
        let mut b = DGRAM;
        b[10..12].copy_from_slice(&[0, 0]);
        let c0 = checksum::transport_checksum(SRC, DST, 17, &b);
        b[10..12].copy_from_slice(&c0.to_be_bytes());
        assert_eq!(checksum::transport_checksum(SRC, DST, 17, &b), 0);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC, DST));
    }
}
