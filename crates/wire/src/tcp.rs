//! TCP header view (RFC 9293) with option parsing (RFC 7323 wscale/timestamps, RFC 2018 SACK).
//!
//! After [`Packet::check_len`] succeeds no accessor or setter can panic. The `update_*` setters
//! fix the TCP checksum incrementally (RFC 1624); the option iterator never reads past the
//! header, and reports a malformed option instead of panicking.

use crate::checksum;
use crate::{Error, Result};
use std::net::Ipv4Addr;

mod field {
    use crate::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    pub const OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// Offset of the checksum field in the TCP header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;
/// Header length without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Flag bits of byte 13, and the order the canonical text prints them in (`FSRPAUEC`).
pub mod flags {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
    /// URG
    pub const URG: u8 = 0x20;
    /// ECE
    pub const ECE: u8 = 0x40;
    /// CWR
    pub const CWR: u8 = 0x80;
    /// Letters in print order with their bits.
    pub const LETTERS: [(char, u8); 8] = [
        ('F', FIN),
        ('S', SYN),
        ('R', RST),
        ('P', PSH),
        ('A', ACK),
        ('U', URG),
        ('E', ECE),
        ('C', CWR),
    ];
}

/// Option kinds.
pub mod kind {
    /// End of option list
    pub const EOL: u8 = 0;
    /// No-operation
    pub const NOP: u8 = 1;
    /// Maximum segment size
    pub const MSS: u8 = 2;
    /// Window scale
    pub const WSCALE: u8 = 3;
    /// SACK permitted
    pub const SACK_PERM: u8 = 4;
    /// SACK blocks
    pub const SACK: u8 = 5;
    /// Timestamps
    pub const TIMESTAMP: u8 = 8;
}

/// One TCP option as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// kind 0; the iterator stops after it.
    EndOfList,
    /// kind 1
    NoOperation,
    /// kind 2, length 4
    Mss(u16),
    /// kind 3, length 3
    WindowScale(u8),
    /// kind 4, length 2
    SackPermitted,
    /// kind 5: the raw blocks (a multiple of 8 bytes when well formed); see [`sack_blocks`].
    Sack(&'a [u8]),
    /// kind 8, length 10
    Timestamp {
        /// TSval
        tsval: u32,
        /// TSecr
        tsecr: u32,
    },
    /// Any other kind, or a known kind with an unexpected length: kind and data bytes.
    Unknown(u8, &'a [u8]),
}

/// Iterates the (left, right) edges of a SACK option's data.
pub fn sack_blocks(data: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
    data.chunks_exact(8).map(|c| {
        (
            u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
        )
    })
}

/// Iterator over the options area: yields `(offset within the options area, option)`, or one
/// `Err(Malformed)` (length byte missing, below 2, or past the end) and then stops.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> OptionIter<'a> {
    /// Iterates an options area.
    pub fn new(data: &'a [u8]) -> OptionIter<'a> {
        OptionIter {
            data,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<(usize, TcpOption<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let at = self.pos;
        let k = self.data[at];
        match k {
            kind::EOL => {
                self.done = true;
                return Some(Ok((at, TcpOption::EndOfList)));
            }
            kind::NOP => {
                self.pos += 1;
                return Some(Ok((at, TcpOption::NoOperation)));
            }
            _ => {}
        }
        let len = match self.data.get(at + 1) {
            Some(&l) if l >= 2 && at + usize::from(l) <= self.data.len() => usize::from(l),
            _ => {
                self.done = true;
                return Some(Err(Error::Malformed));
            }
        };
        let d = &self.data[at + 2..at + len];
        self.pos += len;
        let opt = match (k, d.len()) {
            (kind::MSS, 2) => TcpOption::Mss(u16::from_be_bytes([d[0], d[1]])),
            (kind::WSCALE, 1) => TcpOption::WindowScale(d[0]),
            (kind::SACK_PERM, 0) => TcpOption::SackPermitted,
            (kind::SACK, _) => TcpOption::Sack(d),
            (kind::TIMESTAMP, 8) => TcpOption::Timestamp {
                tsval: u32::from_be_bytes([d[0], d[1], d[2], d[3]]),
                tsecr: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
            },
            _ => TcpOption::Unknown(k, d),
        };
        Some(Ok((at, opt)))
    }
}

/// A read/write view of a TCP segment (header, options, payload).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn be16(b: &[u8], f: crate::Field) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}

fn be32(b: &[u8], f: crate::Field) -> u32 {
    u32::from_be_bytes([b[f.start], b[f.start + 1], b[f.start + 2], b[f.start + 3]])
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

    /// Ok when the 20-byte header and the options its data offset announces are present.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.header_len() < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if b.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
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

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::OFF] >> 4) * 4
    }

    /// The 4 reserved bits after the data offset.
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::OFF] & 0x0f
    }

    /// The flags byte (see [`flags`]).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Window field (unscaled).
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WIN)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT)
    }

    /// Options area bytes.
    pub fn options(&self) -> &[u8] {
        let hl = self.header_len().max(MIN_HEADER_LEN);
        &self.buffer.as_ref()[MIN_HEADER_LEN..hl]
    }

    /// Iterates the options.
    pub fn option_iter(&self) -> OptionIter<'_> {
        OptionIter::new(self.options())
    }

    /// Payload after the header.
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len().max(MIN_HEADER_LEN);
        &self.buffer.as_ref()[hl..]
    }

    /// Sequence space the segment occupies: payload length plus one for SYN and one for FIN.
    pub fn segment_len(&self) -> u32 {
        let mut n = self.payload().len() as u32;
        if self.flags() & flags::SYN != 0 {
            n += 1;
        }
        if self.flags() & flags::FIN != 0 {
            n += 1;
        }
        n
    }

    /// True when the checksum verifies over the whole buffer with this pseudo header.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::verify_transport(src, dst, crate::ipv4::protocol::TCP, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set16(&mut self, f: crate::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }

    fn set32(&mut self, f: crate::Field, v: u32) {
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

    /// Sets the sequence number (checksum untouched).
    pub fn set_seq_number(&mut self, v: u32) {
        self.set32(field::SEQ, v)
    }

    /// Sets the acknowledgment number (checksum untouched).
    pub fn set_ack_number(&mut self, v: u32) {
        self.set32(field::ACK, v)
    }

    /// Sets the header length in bytes (multiple of 4) and the reserved bits.
    pub fn set_header_len(&mut self, len: usize, reserved: u8) {
        self.buffer.as_mut()[field::OFF] = (((len / 4) as u8) << 4) | (reserved & 0x0f);
    }

    /// Sets the flags byte (checksum untouched).
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    /// Sets the window (checksum untouched).
    pub fn set_window_len(&mut self, v: u16) {
        self.set16(field::WIN, v)
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set16(field::CHECKSUM, v)
    }

    /// Sets the urgent pointer (checksum untouched).
    pub fn set_urgent_at(&mut self, v: u16) {
        self.set16(field::URGENT, v)
    }

    /// Mutable options area.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len().max(MIN_HEADER_LEN);
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..hl]
    }

    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len().max(MIN_HEADER_LEN);
        &mut self.buffer.as_mut()[hl..]
    }

    /// Computes and stores the checksum over the whole buffer with this pseudo header.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::transport_checksum(
            src,
            dst,
            crate::ipv4::protocol::TCP,
            self.buffer.as_ref(),
        );
        self.set_checksum(c);
    }

    fn patch(&mut self, at: usize, bytes: &[u8]) {
        checksum::patch(self.buffer.as_mut(), CHECKSUM_OFFSET, at, bytes);
    }

    /// Sets the source port, fixing the checksum.
    pub fn update_src_port(&mut self, v: u16) {
        self.patch(field::SRC_PORT.start, &v.to_be_bytes())
    }

    /// Sets the destination port, fixing the checksum.
    pub fn update_dst_port(&mut self, v: u16) {
        self.patch(field::DST_PORT.start, &v.to_be_bytes())
    }

    /// Sets the sequence number, fixing the checksum.
    pub fn update_seq_number(&mut self, v: u32) {
        self.patch(field::SEQ.start, &v.to_be_bytes())
    }

    /// Sets the acknowledgment number, fixing the checksum.
    pub fn update_ack_number(&mut self, v: u32) {
        self.patch(field::ACK.start, &v.to_be_bytes())
    }

    /// Sets the window, fixing the checksum.
    pub fn update_window_len(&mut self, v: u16) {
        self.patch(field::WIN.start, &v.to_be_bytes())
    }

    /// Sets the flags byte, fixing the checksum.
    pub fn update_flags(&mut self, v: u8) {
        self.patch(field::FLAGS, &[v])
    }

    /// Sets the urgent pointer, fixing the checksum.
    pub fn update_urgent_at(&mut self, v: u16) {
        self.patch(field::URGENT.start, &v.to_be_bytes())
    }

    /// Fixes the checksum for a pseudo-header address change (NAT rewrote the IP header).
    pub fn update_pseudo_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update32(self.checksum(), u32::from(old), u32::from(new));
        self.set_checksum(c);
    }

    /// Rewrites the MSS option value (first MSS option), fixing the checksum. Returns the old
    /// value, or `None` when the segment has no well-formed MSS option.
    pub fn update_mss(&mut self, v: u16) -> Option<u16> {
        let mut found = None;
        for item in self.option_iter() {
            match item {
                Ok((at, TcpOption::Mss(old))) => {
                    found = Some((at, old));
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let (at, old) = found?;
        self.patch(MIN_HEADER_LEN + at + 2, &v.to_be_bytes());
        Some(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

    // SYN 40000 -> 443 seq=100 win=64240 mss=1460 sackok ts=1/0 wscale=7, Linux layout.
    static SYN: [u8; 40] = [
        0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 100, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 2, 4,
        0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 443));
        assert_eq!((p.seq_number(), p.ack_number()), (100, 0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), flags::SYN);
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.segment_len(), 1);
        let opts: Vec<_> = p.option_iter().map(|o| o.unwrap().1).collect();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamp { tsval: 1, tsecr: 0 },
                TcpOption::NoOperation,
                TcpOption::WindowScale(7),
            ]
        );
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 40];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(40000);
        p.set_dst_port(443);
        p.set_seq_number(100);
        p.set_header_len(40, 0);
        p.set_flags(flags::SYN);
        p.set_window_len(64240);
        p.options_mut().copy_from_slice(&SYN[20..]);
        assert_eq!(b, SYN);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            Packet::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&SYN[..39]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = SYN;
        bad[12] = 0x40;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn malformed_options() {
        // MSS with a length running past the options area, then a zero length.
        let it: Vec<_> = OptionIter::new(&[1, 2, 9, 0]).collect();
        assert_eq!(
            it,
            vec![Ok((0, TcpOption::NoOperation)), Err(Error::Malformed)]
        );
        let it: Vec<_> = OptionIter::new(&[30, 0, 0, 0]).collect();
        assert_eq!(it, vec![Err(Error::Malformed)]);
        let it: Vec<_> = OptionIter::new(&[2]).collect();
        assert_eq!(it, vec![Err(Error::Malformed)]);
        let it: Vec<_> = OptionIter::new(&[2, 3, 5, 0]).collect();
        assert_eq!(
            it,
            vec![
                Ok((0, TcpOption::Unknown(2, &[5][..]))),
                Ok((3, TcpOption::EndOfList))
            ]
        );
        let sack = [5, 10, 0, 0, 0, 1, 0, 0, 0, 9];
        let it: Vec<_> = OptionIter::new(&sack).collect();
        let Ok((_, TcpOption::Sack(d))) = it[0] else {
            panic!()
        };
        assert_eq!(sack_blocks(d).collect::<Vec<_>>(), vec![(1, 9)]);
    }

    #[test]
    fn incremental_updates() {
        let mut b = SYN;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST);
        p.update_src_port(1234);
        p.update_dst_port(80);
        p.update_seq_number(0xdead_beef);
        p.update_ack_number(77);
        p.update_window_len(5);
        p.update_flags(flags::SYN | flags::ACK);
        p.update_urgent_at(3);
        assert_eq!(p.update_mss(1400), Some(1460));
        let nat = Ipv4Addr::new(192, 0, 2, 1);
        p.update_pseudo_addr(SRC, nat);
        assert!(p.verify_checksum(nat, DST));
        let c = p.checksum();
        p.fill_checksum(nat, DST);
        assert_eq!(c, p.checksum());
    }
}
