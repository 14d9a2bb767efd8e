//! A tracked connection: both tuples, status flags, mark, zone, deadline and protocol state.

use crate::config::{Nanos, SEC};
use crate::tcp::TcpTrack;
use crate::tuple::Tuple;

/// Direction of a packet relative to the connection's first packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Dir {
    /// Same way as the packet that created the connection.
    Original = 0,
    /// The answer direction.
    Reply = 1,
}

impl Dir {
    /// 0 for original, 1 for reply (the kernel's array index).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The other direction.
    pub fn flip(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }
}

/// Connection status bits, at the kernel's bit positions (`enum ip_conntrack_status`).
pub mod status {
    /// Created from an expectation (a helper's related connection).
    pub const EXPECTED: u16 = 1 << 0;
    /// A packet was seen in the reply direction.
    pub const SEEN_REPLY: u16 = 1 << 1;
    /// The connection will not be early-dropped.
    pub const ASSURED: u16 = 1 << 2;
    /// In the hash table.
    pub const CONFIRMED: u16 = 1 << 3;
    /// Source NAT applies (original direction source rewritten).
    pub const SRC_NAT: u16 = 1 << 4;
    /// Destination NAT applies.
    pub const DST_NAT: u16 = 1 << 5;
    /// Both NAT kinds.
    pub const NAT_MASK: u16 = SRC_NAT | DST_NAT;
    /// TCP sequence numbers are adjusted (helpers).
    pub const SEQ_ADJUST: u16 = 1 << 6;
    /// Source NAT decision made (possibly a null binding).
    pub const SRC_NAT_DONE: u16 = 1 << 7;
    /// Destination NAT decision made (possibly a null binding).
    pub const DST_NAT_DONE: u16 = 1 << 8;
    /// Being removed.
    pub const DYING: u16 = 1 << 9;
    /// Timeout is not refreshed by packets.
    pub const FIXED_TIMEOUT: u16 = 1 << 10;
    /// A NAT clash was resolved by letting a duplicate in (never becomes assured).
    pub const NAT_CLASH: u16 = 1 << 12;
}

/// Protocol-specific state.
#[derive(Clone, Copy, Debug)]
pub enum ProtoState {
    /// TCP state machine and window tracking.
    Tcp(TcpTrack),
    /// UDP: when the 2 s "stream" rule starts to count.
    Udp {
        /// Time after which a two-way flow becomes a stream (first packet + 2 s).
        stream_ts: Nanos,
    },
    /// GRE: the two timeouts fixed when the connection was created (seconds).
    Gre {
        /// Timeout while unreplied.
        timeout: u32,
        /// Timeout once replied.
        stream_timeout: u32,
    },
    /// SCTP state and verification tags.
    Sctp(crate::sctp::SctpTrack),
    /// ICMP and generic protocols keep no state beyond the timeout.
    None,
}

/// One connection, ≤ 128 bytes, aligned to a cache line: in the table's array each entry
/// fills exactly two lines (unaligned, a 128-byte entry straddles three, and a lookup in a
/// large table misses on each).
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
pub struct Conn {
    /// Original and reply tuples, indexed by [`Dir::index`].
    pub tuple: [Tuple; 2],
    /// Confirmed: absolute deadline. Unconfirmed: relative timeout, made absolute at confirm
    /// (kernel rule: the timeout counts from confirmation, not from creation).
    pub timeout: Nanos,
    /// Per-protocol state.
    pub proto: ProtoState,
    /// Connection mark (`CONNMARK`, `-m connmark`).
    pub mark: u32,
    /// Status bits, see [`status`].
    pub status: u16,
    /// Conntrack zone.
    pub zone: u16,
    /// Hash chain links of the two directions (table internal).
    pub(crate) next: [u32; 2],
    /// NAT by-source chain link (table internal).
    pub(crate) src_next: u32,
    /// Slot of the master connection for expected ones (u32::MAX: none).
    pub(crate) master: u32,
}

impl Conn {
    /// A fresh entry (no status, no protocol state) — for tests and tools; the table creates
    /// its own through `track`.
    pub fn new(orig: Tuple, reply: Tuple, zone: u16) -> Conn {
        Conn {
            tuple: [orig, reply],
            timeout: 0,
            proto: ProtoState::None,
            mark: 0,
            status: 0,
            zone,
            next: [u32::MAX; 2],
            src_next: u32::MAX,
            master: u32::MAX,
        }
    }

    /// The master connection of an expected (RELATED) connection.
    pub fn master(&self) -> Option<crate::table::ConnId> {
        (self.master != u32::MAX).then_some(crate::table::ConnId(self.master))
    }

    /// Original-direction tuple.
    pub fn orig(&self) -> &Tuple {
        &self.tuple[0]
    }

    /// Reply-direction tuple (after NAT, what answers look like).
    pub fn reply(&self) -> &Tuple {
        &self.tuple[1]
    }

    /// Whether all bits of `bits` are set.
    pub fn has(&self, bits: u16) -> bool {
        self.status & bits == bits
    }

    /// In the table (confirmed)?
    pub fn is_confirmed(&self) -> bool {
        self.has(status::CONFIRMED)
    }

    /// Has its timeout passed at `now`? (Unconfirmed entries never expire.)
    pub fn is_expired(&self, now: Nanos) -> bool {
        self.is_confirmed() && self.timeout <= now
    }

    /// Seconds left, as the listings print them (truncated; 0 once passed).
    pub fn timeout_secs(&self, now: Nanos) -> u64 {
        if !self.is_confirmed() {
            return self.timeout / SEC;
        }
        self.timeout.saturating_sub(now) / SEC
    }

    /// TCP state, if this is a TCP connection.
    pub fn tcp(&self) -> Option<&TcpTrack> {
        match &self.proto {
            ProtoState::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// Kernel rule (nf_ct_refresh): a packet sets the timeout to `secs` from now; before
    /// confirmation the value stays relative. FIXED_TIMEOUT connections are not refreshed.
    pub fn refresh(&mut self, secs: u32, now: Nanos) {
        if self.has(status::FIXED_TIMEOUT) {
            return;
        }
        let rel = secs as Nanos * SEC;
        self.timeout = if self.is_confirmed() { now + rel } else { rel };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_fits_in_128_bytes() {
        let size = core::mem::size_of::<Conn>();
        println!("size_of::<Conn>() = {size}");
        assert!(size <= 128, "Conn is {size} bytes");
        // Whole cache lines: an array of entries never has one straddle a line boundary.
        assert_eq!(core::mem::align_of::<Conn>(), 64);
        assert_eq!(size % 64, 0);
    }

    #[test]
    fn refresh_is_relative_until_confirmed() {
        let t = Tuple::ports(17, 1, 2, 3, 4);
        let mut c = Conn::new(t, t.reply().unwrap(), 0);
        c.refresh(30, 5 * SEC);
        assert_eq!(c.timeout, 30 * SEC);
        assert!(!c.is_expired(100 * SEC));
        c.status |= status::CONFIRMED;
        c.refresh(30, 5 * SEC);
        assert_eq!(c.timeout, 35 * SEC);
        assert_eq!(c.timeout_secs(6 * SEC), 29);
        assert!(c.is_expired(35 * SEC));
        c.status |= status::FIXED_TIMEOUT;
        c.refresh(1, 0);
        assert_eq!(c.timeout, 35 * SEC);
    }
}
