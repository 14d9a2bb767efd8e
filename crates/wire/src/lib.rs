//! `wire`: zero-copy views over the packet headers nfrs reads and writes (Ethernet, ARP, IPv4,
//! TCP, UDP, ICMP), checksums (full and RFC 1624 incremental), builders for packets the host emits,
//! and the packet line syntax of SCENARIOS.md. Allocates nothing on the packet path; may not depend
//! on any other nfrs crate.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod tcp;
pub mod udp;

use std::fmt;

/// A byte range of a header field.
pub type Field = core::ops::Range<usize>;

/// Why a view refused a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the header (or the length it announces) needs.
    Truncated,
    /// A length or version field that cannot be right.
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated"),
            Error::Malformed => f.write_str("malformed"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of the views.
pub type Result<T> = core::result::Result<T, Error>;
