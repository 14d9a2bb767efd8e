//! ICMP message view (RFC 792): echo-like messages (identifier, sequence) and errors quoting the
//! offending datagram (IP header and at least its first 8 payload bytes).
//!
//! After [`Packet::check_len`] succeeds no accessor or setter can panic.

use crate::checksum;
use crate::{Error, Result};
use std::net::Ipv4Addr;

mod field {
    use crate::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ID: Field = 4..6;
    pub const SEQ: Field = 6..8;
    pub const MTU: Field = 6..8;
    pub const GATEWAY: Field = 4..8;
    pub const POINTER: usize = 4;
    pub const DATA: usize = 8;
}

/// ICMP header length.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 2;

/// ICMP message types nfrs names.
pub mod msg_type {
    /// Echo reply
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect
    pub const REDIRECT: u8 = 5;
    /// Echo request
    pub const ECHO_REQUEST: u8 = 8;
    /// Router advertisement
    pub const ROUTER_ADVERT: u8 = 9;
    /// Router solicitation
    pub const ROUTER_SOLICIT: u8 = 10;
    /// Time exceeded
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem
    pub const PARAM_PROBLEM: u8 = 12;
    /// Timestamp request
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp reply
    pub const TIMESTAMP_REPLY: u8 = 14;
    /// Information request
    pub const INFO_REQUEST: u8 = 15;
    /// Information reply
    pub const INFO_REPLY: u8 = 16;
    /// Address mask request
    pub const ADDRESS_MASK: u8 = 17;
    /// Address mask reply
    pub const ADDRESS_MASK_REPLY: u8 = 18;
}

/// True for the error types that quote a datagram (3, 4, 5, 11, 12), as the kernel's
/// `icmp_is_err` counts them.
pub fn is_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// True for the query types whose bytes 4..8 are identifier and sequence (echo, timestamp,
/// information, address mask, requests and replies).
pub fn is_echo_like(t: u8) -> bool {
    matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18)
}

/// A read/write view of an ICMP message.
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

    /// Ok when the 8-byte header is present.
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

    /// Type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Identifier (echo-like types).
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ID)
    }

    /// Sequence number (echo-like types).
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SEQ)
    }

    /// Next-hop MTU (type 3 code 4, RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::MTU)
    }

    /// Gateway address (type 5).
    pub fn gateway(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::GATEWAY];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Pointer (type 12).
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// Bytes 4..8 as one word.
    pub fn rest_of_header(&self) -> u32 {
        let b = &self.buffer.as_ref()[4..8];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Data after the header (for errors: the quoted datagram).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// True when the checksum verifies over the whole message.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set16(&mut self, f: crate::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the type (checksum untouched).
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the code (checksum untouched).
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set16(field::CHECKSUM, v)
    }

    /// Sets the identifier (checksum untouched).
    pub fn set_echo_ident(&mut self, v: u16) {
        self.set16(field::ID, v)
    }

    /// Sets the sequence number (checksum untouched).
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.set16(field::SEQ, v)
    }

    /// Sets bytes 4..8 (checksum untouched).
    pub fn set_rest_of_header(&mut self, v: u32) {
        self.buffer.as_mut()[4..8].copy_from_slice(&v.to_be_bytes());
    }

    /// Mutable data.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Computes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Sets the identifier, fixing the checksum.
    pub fn update_echo_ident(&mut self, v: u16) {
        checksum::patch(
            self.buffer.as_mut(),
            CHECKSUM_OFFSET,
            field::ID.start,
            &v.to_be_bytes(),
        );
    }

    /// Sets the sequence number, fixing the checksum.
    pub fn update_echo_seq_no(&mut self, v: u16) {
        checksum::patch(
            self.buffer.as_mut(),
            CHECKSUM_OFFSET,
            field::SEQ.start,
            &v.to_be_bytes(),
        );
    }

    /// Sets the type and code, fixing the checksum.
    pub fn update_type_code(&mut self, t: u8, c: u8) {
        checksum::patch(self.buffer.as_mut(), CHECKSUM_OFFSET, 0, &[t, c]);
    }

    /// Writes `bytes` into the data at `at` (e.g. a rewritten quoted header), fixing the
    /// checksum; at most 12 bytes per call. Returns false (nothing written) when out of range.
    pub fn update_data(&mut self, at: usize, bytes: &[u8]) -> bool {
        let start = field::DATA + at;
        if bytes.len() > 12 || start + bytes.len() > self.buffer.as_ref().len() {
            return false;
        }
        checksum::patch(self.buffer.as_mut(), CHECKSUM_OFFSET, start, bytes);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // echo request id=5 seq=9 "ping", checksum filled.
    static ECHO: [u8; 12] = [8, 0, 0x19, 0x21, 0, 5, 0, 9, b'p', b'i', b'n', b'g'];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (8, 0));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (5, 9));
        assert_eq!(p.data(), b"ping");
        assert!(p.verify_checksum());
        assert!(is_echo_like(p.msg_type()) && !is_error(p.msg_type()));
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(8);
        p.set_echo_ident(5);
        p.set_echo_seq_no(9);
        p.data_mut().copy_from_slice(b"ping");
        p.fill_checksum();
        assert_eq!(b, ECHO);
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
        assert!(Packet::new_checked(&ECHO[..8]).unwrap().data().is_empty());
    }

    #[test]
    fn errors_and_updates() {
        let mut b = [3u8, 4, 0, 0, 0, 0, 0x05, 0xdc, 0x45, 0, 0, 0];
        let mut p = Packet::new_unchecked(&mut b[..]);
        assert_eq!(p.next_hop_mtu(), 1500);
        assert!(is_error(p.msg_type()));
        p.fill_checksum();
        assert!(p.update_data(1, &[0x10, 0x20, 0x30]));
        assert!(!p.update_data(2, &[1, 2, 3]));
        p.update_type_code(11, 0);
        p.update_echo_ident(0x1234);
        p.update_echo_seq_no(0x5678);
        assert!(p.verify_checksum());
        assert_eq!(p.gateway(), Ipv4Addr::new(0x12, 0x34, 0x56, 0x78));
        assert_eq!(p.pointer(), 0x12);
    }
}
