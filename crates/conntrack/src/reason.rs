//! Why the kernel's trackers call a packet invalid (or ignore it), worded exactly as the kernel
//! logs it after `nf_ct_proto_<N>: ` when `nf_conntrack_log_invalid` asks for it.

use core::fmt;

use crate::tcp::TcpState;
use crate::tuple::Addr;

/// Kernel tick rate of the reference machine (CONFIG_HZ=250, read from /proc/config.gz);
/// only used where the kernel prints a value in jiffies.
pub const HZ: u32 = 250;

/// A tracker message. `Display` gives the kernel's text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    /// TCP header shorter than its data offset.
    TcpTruncated,
    /// TCP checksum wrong (checked in PREROUTING).
    TcpBadChecksum,
    /// Flag combination outside the valid set.
    TcpInvalidFlags,
    /// The packet cannot start a connection.
    TcpInvalidNew,
    /// Accepted without state change (state table says ignore).
    TcpIgnored {
        /// Flag class.
        index: u8,
        /// Direction 0/1.
        dir: u8,
        /// State at the time.
        state: TcpState,
    },
    /// State table says invalid.
    TcpInvalidState {
        /// Flag class.
        index: u8,
        /// Direction 0/1.
        dir: u8,
        /// State at the time.
        state: TcpState,
    },
    /// RFC 5961 challenge ACK ignored.
    TcpChallengeAckIgnored,
    /// RST below the acknowledged sequence.
    TcpInvalidRst,
    /// Data overshooting the receive window by this many bytes (ignored).
    TcpBytesMore(u32),
    /// Sequence above the upper bound.
    TcpSeqOver(u32),
    /// ACK for data not seen.
    TcpAckOver(u32),
    /// Sequence under the lower bound (retransmission; ignored).
    TcpSeqUnder(u32),
    /// ACK under the lower bound (ignored).
    TcpAckUnder(u32),
    /// Timeout lowered after an invalid FIN/RST answer.
    TcpLowerTimeout {
        /// Flag class of this packet.
        index: u8,
        /// Direction 0/1.
        dir: u8,
        /// Flag class of the previous packet.
        last_index: u8,
        /// New timeout in jiffies.
        jiffies: u32,
    },
    /// UDP header incomplete.
    UdpShort,
    /// UDP length field wrong.
    UdpTruncated,
    /// UDP checksum wrong.
    UdpBadChecksum,
    /// UDP-Lite header incomplete.
    UdpliteShort,
    /// UDP-Lite checksum coverage outside 8..=length.
    UdpliteCoverage,
    /// UDP-Lite without a checksum.
    UdpliteChecksumMissing,
    /// UDP-Lite checksum wrong (as the kernel checks it).
    UdpliteBadChecksum,
    /// SCTP header incomplete.
    SctpShort,
    /// SCTP CRC32c wrong.
    SctpBadCrc,
    /// SCTP chunk layout refused (kernel do_basic_checks).
    SctpBasicChecks {
        /// Index of the offending chunk.
        count: u32,
        /// Its type.
        ty: u8,
        /// Its length field as the kernel prints it (not byte-swapped).
        len: u16,
        /// INIT/INIT_ACK/SHUTDOWN_COMPLETE seen.
        flag: u8,
    },
    /// SCTP verification tag mismatch (values as the kernel prints them).
    SctpVtag {
        /// Tag in the packet.
        got: u32,
        /// Tag expected.
        want: u32,
        /// Direction 0/1.
        dir: u8,
    },
    /// SCTP state table says invalid.
    SctpInvalid {
        /// State number.
        old_state: u8,
        /// Direction 0/1.
        dir: u8,
        /// Chunk type.
        ty: u8,
    },
    /// ICMP header incomplete.
    IcmpShort,
    /// ICMP checksum wrong.
    IcmpBadChecksum,
    /// ICMP type above 18.
    IcmpInvalidType,
    /// ICMP error whose outer destination is not the quoted connection's.
    IcmpOuterDaddr {
        /// Outer destination address.
        outer: u32,
        /// The connection's destination in that direction.
        inner: u32,
    },
}

impl Reason {
    /// The protocol number the kernel logs the message under (`nf_ct_proto_<N>`).
    pub fn proto(&self) -> u8 {
        use Reason::*;
        match self {
            UdpShort | UdpTruncated | UdpBadChecksum => 17,
            UdpliteShort | UdpliteCoverage | UdpliteChecksumMissing | UdpliteBadChecksum => 136,
            SctpShort
            | SctpBadCrc
            | SctpBasicChecks { .. }
            | SctpVtag { .. }
            | SctpInvalid { .. } => 132,
            IcmpShort | IcmpBadChecksum | IcmpInvalidType | IcmpOuterDaddr { .. } => 1,
            _ => 6,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Reason::*;
        match *self {
            TcpTruncated => f.write_str("truncated packet"),
            TcpBadChecksum | UdpBadChecksum | UdpliteBadChecksum => f.write_str("bad checksum"),
            UdpliteCoverage => f.write_str("invalid checksum coverage"),
            SctpShort => f.write_str("nf_ct_sctp: short packet "),
            SctpBadCrc => f.write_str("nf_ct_sctp: bad CRC "),
            // The kernel's message ends in a newline, which the log line carries.
            SctpBasicChecks { count, ty, len, flag } => writeln!(
                f,
                "do_basic_checks failed. chunk num {count}, type {ty}, len {len} flag {flag}"
            ),
            SctpVtag { got, want, dir } => {
                write!(f, "verification tag check failed {got:x} vs {want:x} for dir {dir}")
            }
            SctpInvalid { old_state, dir, ty } => {
                write!(f, "Invalid, old_state {old_state}, dir {dir}, type {ty}")
            }
            UdpliteChecksumMissing => f.write_str("checksum missing"),
            TcpInvalidFlags => f.write_str("invalid tcp flag combination"),
            TcpInvalidNew => f.write_str("invalid new"),
            TcpIgnored { index, dir, state } => {
                write!(f, "packet (index {index}) in dir {dir} ignored, state {}", state.name())
            }
            TcpInvalidState { index, dir, state } => {
                write!(f, "packet (index {index}) in dir {dir} invalid, state {}", state.name())
            }
            TcpChallengeAckIgnored => f.write_str("challenge-ack ignored"),
            TcpInvalidRst => f.write_str("invalid rst"),
            TcpBytesMore(n) => write!(f, "{n} bytes more than expected"),
            TcpSeqOver(n) => write!(f, "SEQ is over upper bound {n} (over the window of the receiver)"),
            TcpAckOver(n) => write!(f, "ACK is over upper bound {n} (ACKed data not seen yet)"),
            TcpSeqUnder(n) => write!(f, "SEQ is under lower bound {n} (already ACKed data retransmitted)"),
            TcpAckUnder(n) => write!(f, "ignored ACK under lower bound {n} (possible overly delayed)"),
            TcpLowerTimeout { index, dir, last_index, jiffies } => write!(
                f,
                "packet (index {index}, dir {dir}) response for index {last_index} lower timeout to {jiffies}"
            ),
            UdpShort | UdpliteShort | IcmpShort => f.write_str("short packet"),
            UdpTruncated => f.write_str("truncated/malformed packet"),
            IcmpBadChecksum => f.write_str("bad hw icmp checksum"),
            IcmpInvalidType => f.write_str("invalid icmp type"),
            IcmpOuterDaddr { outer, inner } => {
                write!(f, "outer daddr {} != inner {}", Addr(outer), Addr(inner))
            }
        }
    }
}

/// The start of the kernel's log line for a tracker message: `nf_ct_proto_6: <text> `
/// (the packet's LOG fields follow, at level 5).
pub struct LogPrefix(pub Reason);

impl fmt::Display for LogPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nf_ct_proto_{}: {} ", self.0.proto(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_over_reads_as_in_the_kernel_log() {
        // Line recorded from the kernel (KERNEL-ORACLE-NOTES.md, log_invalid=6).
        let want =
            "nf_ct_proto_6: SEQ is over upper bound 66162 (over the window of the receiver) ";
        assert_eq!(LogPrefix(Reason::TcpSeqOver(66162)).to_string(), want);
    }

    #[test]
    fn icmp_and_udp_messages_use_their_protocol() {
        let r = Reason::IcmpOuterDaddr {
            outer: 0x0a000001,
            inner: 0x0a000002,
        };
        assert_eq!(
            LogPrefix(r).to_string(),
            "nf_ct_proto_1: outer daddr 10.0.0.1 != inner 10.0.0.2 "
        );
        assert_eq!(
            LogPrefix(Reason::UdpTruncated).to_string(),
            "nf_ct_proto_17: truncated/malformed packet "
        );
    }
}
