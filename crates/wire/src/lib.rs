//! `wire`: zero-copy views over the packet headers nfrs reads and writes (Ethernet, ARP, IPv4,
//! TCP, UDP, ICMP), checksums (full and RFC 1624 incremental), builders for packets the host emits,
//! and the packet line syntax of SCENARIOS.md. Allocates nothing on the packet path; may not depend
//! on any other nfrs crate.
//!
//! # Public API
//!
//! Views (smoltcp style: `new_unchecked`, `new_checked`, `check_len`; after `check_len` no
//! accessor or setter panics; `set_*` write raw, `update_*` also fix checksums per RFC 1624):
//! [`ethernet::Frame`], [`arp::Packet`], [`ipv4::Packet`], [`tcp::Packet`] (+ [`tcp::OptionIter`]),
//! [`udp::Packet`] (zero-checksum rule kept), [`icmp::Packet`]. Checksums: [`checksum`].
//!
//! Hot path (no allocation):
//! - [`desc::PacketDesc::parse_frame`] / [`desc::PacketDesc::parse_ipv4`]`(buf, l3_off)`: parse
//!   once into a plain `Copy` descriptor (offsets, addresses, ports, TCP seq/ack/flags/win,
//!   ICMP type/code/id, fragment word); [`desc::QuotedDesc::parse`] for an ICMP error's quote.
//! - [`desc::mangle`]`::{set_src_addr, set_dst_addr, set_src_port, set_dst_port,
//!   set_icmp_id, set_ttl, dec_ttl, set_tos, set_ip_id, set_seq, set_ack, set_mss,
//!   set_tcp_flags, set_df, set_flags_frag, write_ip_header}`: header writes that fix the IP and transport checksums incrementally and
//!   keep the descriptor in step.
//! - [`emit`]: the host's own packets written into a caller's buffer — [`emit::tcp_reset`]
//!   (stack or REJECT), [`emit::icmp_error`] (Linux's 576-byte quote), [`emit::echo_reply`],
//!   [`emit::ipv4_header`], record-route receipt and echo ([`emit::record_route_on_receipt`],
//!   [`emit::echo_options`]), and the measured rules [`emit::may_answer_with_icmp_error`] and
//!   [`emit::reject_is_silent`]; checked byte for byte against frames captured from Linux 6.18.
//!
//! Packet line syntax (test input and result text; allocates, not for the packet path):
//! - [`line::parse_input_line`]`(&str) -> Result<InputLine { time_us, dev, spec }, LineError>`
//! - [`line::PacketSpec::parse`]`(&str)`: `<proto> <src>[:port] > <dst>[:port] [fields]`
//! - [`line::strip_comment`]: drop `#` comments and blanks (None for an empty line)
//! - [`build::build_frame`]`(&PacketSpec, &FrameCtx) -> Result<Vec<u8>, BuildError>` (Ethernet
//!   frame), [`build::build_ipv4`] (IP packet only); `FrameCtx { src_mac, dst_mac, ip_id,
//!   allow_masked }`
//! - [`print::format_ipv4`]`(&[u8], &mut String)`, [`print::format_frame`]`(&[u8], &mut String)`:
//!   the canonical printed form; `*_masked` variants take [`print::Masks`] (`ipid=*`, `rand1`).

//!
//! # Example
//!
//! ```
//! use nfrs_wire::build::{build_frame, FrameCtx};
//! use nfrs_wire::desc::{mangle, PacketDesc};
//! use nfrs_wire::line::parse_input_line;
//! use nfrs_wire::print::frame_to_string;
//!
//! let l = parse_input_line("0.010 lan0 tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=S seq=100 win=64240 mss=1460")?;
//! assert_eq!((l.time_us, l.dev.as_str()), (10_000, "lan0"));
//! let mut f = build_frame(&l.spec, &FrameCtx { ip_id: 1, ..FrameCtx::default() })?;
//! let mut d = PacketDesc::parse_frame(&f)?;
//! mangle::dec_ttl(&mut f, &mut d);
//! mangle::set_src_addr(&mut f, &mut d, "192.0.2.1".parse()?);
//! assert_eq!(
//!     frame_to_string(&f),
//!     "tcp 192.0.2.1:40000 > 203.0.113.9:443 ttl=63 tos=0x00 id=1 flags=S seq=100 ack=0 win=64240 mss=1460"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arp;
pub mod build;
pub mod checksum;
pub mod desc;
pub mod emit;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod line;
pub mod print;
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
