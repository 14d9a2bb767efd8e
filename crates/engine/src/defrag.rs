//! IPv4 reassembly as Linux does it (ip_fragment.c / inet_fragment.c): queues keyed by
//! (source, destination, protocol, id); a fragment overlapping one already queued kills the
//! whole queue (RFC 5722 as Linux applies it to IPv4 too), an exact duplicate is dropped alone;
//! the datagram is complete when the last fragment is in and no hole is left. The reassembled
//! packet keeps the pieces' geometry so it can leave again as the same fragments. A queue
//! lives net.ipv4.ipfrag_time from its first fragment; [`Defrag::expire`] hands back the
//! queues whose time ran out, with their first fragment when it came (for ip_expire's ICMP).

use crate::pkt::PktType;
use nfrs_conntrack::Nanos;
use std::collections::HashMap;

/// Kernel default net.ipv4.ipfrag_time: 30 s.
pub const FRAG_TIMEOUT: Nanos = 30_000_000_000;

#[derive(Debug, Default)]
struct Queue {
    /// (offset, payload bytes) in arrival order.
    pieces: Vec<(usize, Vec<u8>)>,
    /// The first fragment's IP header.
    head: Option<Vec<u8>>,
    /// Total payload length, once the last fragment is in.
    total: Option<usize>,
    /// Largest fragment seen (IP total length).
    max_size: usize,
    /// When the queue was created.
    born: Nanos,
    /// Who queued it (set by the fragment that created the queue).
    origin: Origin,
}

/// Where a queue's fragments came from: the kernel's defrag user and the receiving device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Receiving device (index), None when not an interface of the host (loopback).
    pub iif: Option<usize>,
    /// Link-layer type of the frame.
    pub pkttype: PktType,
    /// Conntrack defrag (before PREROUTING) rather than local delivery.
    pub conntrack: bool,
}

/// A queue whose time ran out.
#[derive(Debug, PartialEq, Eq)]
pub struct Expired {
    /// When it ran out.
    pub at: Nanos,
    /// Its first fragment (header and data) as received, when that fragment had come.
    pub head: Option<Vec<u8>>,
    /// Who queued it.
    pub origin: Origin,
}

/// What one fragment did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Held, waiting for the rest.
    Queued,
    /// Dropped (an overlap killed its queue, a duplicate, or an impossible fragment).
    Dropped,
    /// The datagram is complete: the reassembled packet, and the pieces' (offset, length)
    /// in offset order (the geometry to fragment it again with).
    Complete(Vec<u8>, Vec<(usize, usize)>, usize),
}

/// The reassembly queues.
#[derive(Debug)]
pub struct Defrag {
    queues: HashMap<(u32, u32, u8, u16), Queue>,
    /// net.ipv4.ipfrag_time.
    pub timeout: Nanos,
}

impl Default for Defrag {
    fn default() -> Self {
        Defrag {
            queues: HashMap::new(),
            timeout: FRAG_TIMEOUT,
        }
    }
}

impl Defrag {
    /// True when no queue is held.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Removes the queues whose time ran out by `now` and hands them back, earliest first.
    /// Kernel rule (ip_frag_init's timer): a queue runs out ipfrag_time after its creation,
    /// whatever came later.
    pub fn expire(&mut self, now: Nanos) -> Vec<Expired> {
        let timeout = self.timeout;
        if !self
            .queues
            .values()
            .any(|q| q.born.saturating_add(timeout) <= now)
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        self.queues.retain(|_, q| {
            let at = q.born.saturating_add(timeout);
            if at > now {
                return true;
            }
            let head = q.head.as_ref().and_then(|h| {
                let first = q.pieces.iter().find(|(o, _)| *o == 0)?;
                let mut b = h.clone();
                b.extend_from_slice(&first.1);
                Some(b)
            });
            out.push(Expired {
                at,
                head,
                origin: q.origin,
            });
            false
        });
        out.sort_by_key(|e| e.at);
        out
    }

    /// Takes the fragment `ip` (a whole IPv4 fragment, header included) at time `now`;
    /// `origin` is remembered when it starts a queue. Call [`Defrag::expire`] first: queues
    /// whose time ran out are not looked at here.
    pub fn add(&mut self, ip: &[u8], now: Nanos, origin: Origin) -> Outcome {
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let ff = u16::from_be_bytes([ip[6], ip[7]]);
        let off = usize::from(ff & 0x1fff) * 8;
        let mf = ff & 0x2000 != 0;
        let key = (
            u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]),
            u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]),
            ip[9],
            u16::from_be_bytes([ip[4], ip[5]]),
        );
        let data = &ip[ihl.min(tot)..tot];
        let mut end = off + data.len();
        let q = self.queues.entry(key).or_insert_with(|| Queue {
            born: now,
            origin,
            ..Queue::default()
        });
        if !mf {
            // Kernel rule: a second, different end is corrupt.
            if end < q.pieces.iter().map(|(o, d)| o + d.len()).max().unwrap_or(0)
                || q.total.is_some_and(|t| t != end)
            {
                self.queues.remove(&key);
                return Outcome::Dropped;
            }
            q.total = Some(end);
        } else {
            // Kernel rule: non-last fragments end on an 8-byte boundary (extra bytes ignored).
            end &= !7;
            if q.total.is_some_and(|t| end > t) {
                self.queues.remove(&key);
                return Outcome::Dropped;
            }
        }
        if end <= off {
            return Outcome::Dropped;
        }
        let data = &data[..end - off];
        for (o, d) in &q.pieces {
            let e = o + d.len();
            if *o == off && e == end {
                return Outcome::Dropped;
            }
            if off < e && *o < end {
                self.queues.remove(&key);
                return Outcome::Dropped;
            }
        }
        q.pieces.push((off, data.to_vec()));
        q.max_size = q.max_size.max(tot);
        if off == 0 {
            q.head = Some(ip[..ihl].to_vec());
        }
        let Some(total) = q.total else {
            return Outcome::Queued;
        };
        let Some(head) = q.head.clone() else {
            return Outcome::Queued;
        };
        let mut spans: Vec<(usize, usize)> = q.pieces.iter().map(|(o, d)| (*o, d.len())).collect();
        spans.sort();
        let mut at = 0;
        for (o, l) in &spans {
            if *o != at {
                return Outcome::Queued;
            }
            at = o + l;
        }
        if at != total {
            return Outcome::Queued;
        }
        let q = self.queues.remove(&key).unwrap_or_default();
        let mut pkt = head.clone();
        pkt.resize(head.len() + total, 0);
        for (o, d) in &q.pieces {
            pkt[head.len() + o..head.len() + o + d.len()].copy_from_slice(d);
        }
        let len = (head.len() + total) as u16;
        pkt[2..4].copy_from_slice(&len.to_be_bytes());
        let keep_df = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x4000;
        pkt[6..8].copy_from_slice(&keep_df.to_be_bytes());
        pkt[10] = 0;
        pkt[11] = 0;
        let c = nfrs_wire::checksum::checksum(&pkt[..head.len()]);
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
        Outcome::Complete(pkt, spans, q.max_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfrs_wire::build::{build_ipv4, FrameCtx};
    use nfrs_wire::line::PacketSpec;

    fn ip(s: &str) -> Vec<u8> {
        build_ipv4(&PacketSpec::parse(s).unwrap(), &FrameCtx::default()).unwrap()
    }

    #[test]
    fn in_order_out_of_order_and_overlap() {
        let mut d = Defrag::default();
        let o = Origin::default();
        let a = ip("udp 10.0.0.2:5000 > 10.0.0.1:514 id=901 mf nocsum ulen=24 len=8");
        let b = ip("udp 10.0.0.2 > 10.0.0.1 id=901 frag=16 len=8");
        assert_eq!(d.add(&b, 0, o), Outcome::Queued);
        match d.add(&a, 1, o) {
            Outcome::Complete(p, spans, max) => {
                assert_eq!(p.len(), 44);
                assert_eq!(spans, vec![(0, 16), (16, 8)]);
                assert_eq!(max, 36);
                assert!(nfrs_wire::checksum::verify(&p[..20]));
            }
            o => panic!("{o:?}"),
        }
        let a = ip("udp 10.0.0.2:5000 > 198.51.100.7:53 id=902 mf len=24");
        let b = ip("udp 10.0.0.2 > 198.51.100.7 id=902 frag=24 mf len=16");
        let c = ip("udp 10.0.0.2 > 198.51.100.7 id=902 frag=16 len=16");
        assert_eq!(d.add(&a, 0, o), Outcome::Queued);
        assert_eq!(d.add(&b, 0, o), Outcome::Dropped, "overlap kills the queue");
        assert_eq!(d.add(&c, 0, o), Outcome::Queued, "a new queue");
    }

    #[test]
    fn queues_run_out_after_the_timeout_from_creation() {
        let mut d = Defrag {
            timeout: 1_000,
            ..Defrag::default()
        };
        let o = Origin {
            iif: Some(0),
            pkttype: PktType::Host,
            conntrack: true,
        };
        let first = ip("udp 10.0.0.2:5000 > 10.0.0.1:514 id=901 mf nocsum ulen=24 len=8");
        let later = ip("udp 10.0.0.2 > 10.0.0.1 id=902 frag=24 mf len=8");
        assert_eq!(d.add(&first, 0, o), Outcome::Queued);
        assert_eq!(d.add(&later, 500, Origin::default()), Outcome::Queued);
        assert!(d.expire(999).is_empty());
        let e = d.expire(1_000);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].at, 1_000);
        assert_eq!(e[0].origin, o);
        assert_eq!(
            e[0].head.as_deref(),
            Some(&first[..]),
            "the first fragment as received"
        );
        let e = d.expire(10_000);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].at, 1_500);
        assert_eq!(e[0].head, None, "no first fragment: nothing to quote");
        assert!(d.is_empty());
    }
}
