//! ARP for the addresses nfrs owns: answers requests for them, resolves next hops, and holds a
//! few packets per unresolved neighbour meanwhile (a small fixed bound; the kernel's queue is
//! bounded in bytes by `unres_qlen_bytes` instead).

use std::collections::HashMap;

/// Ethernet type of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// A whole ARP frame (Ethernet header + 28-byte Ethernet/IPv4 ARP body).
pub const ARP_FRAME_LEN: usize = 42;

/// An Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender MAC.
    pub sha: [u8; 6],
    /// Sender IPv4 address.
    pub spa: u32,
    /// Target MAC.
    pub tha: [u8; 6],
    /// Target IPv4 address.
    pub tpa: u32,
}

fn mac_at(b: &[u8], at: usize) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an ARP frame (with its Ethernet header); anything but Ethernet/IPv4 ARP is `None`.
pub fn parse(frame: &[u8]) -> Option<Arp> {
    if frame.len() < ARP_FRAME_LEN || frame[12..14] != ETH_P_ARP.to_be_bytes() {
        return None;
    }
    let a = &frame[14..];
    // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4.
    if a[0..6] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    Some(Arp {
        op: u16::from_be_bytes([a[6], a[7]]),
        sha: mac_at(a, 8),
        spa: u32_at(a, 14),
        tha: mac_at(a, 18),
        tpa: u32_at(a, 24),
    })
}

/// Builds an ARP frame: Ethernet to `dst`, from `arp.sha`.
pub fn build(dst: [u8; 6], arp: &Arp) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&arp.sha);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..20].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
    f[20..22].copy_from_slice(&arp.op.to_be_bytes());
    f[22..28].copy_from_slice(&arp.sha);
    f[28..32].copy_from_slice(&arp.spa.to_be_bytes());
    f[32..38].copy_from_slice(&arp.tha);
    f[38..42].copy_from_slice(&arp.tpa.to_be_bytes());
    f
}

/// The reply to a request for one of our addresses.
pub fn reply(our_mac: [u8; 6], req: &Arp) -> [u8; ARP_FRAME_LEN] {
    build(
        req.sha,
        &Arp {
            op: 2,
            sha: our_mac,
            spa: req.tpa,
            tha: req.sha,
            tpa: req.spa,
        },
    )
}

/// A broadcast request for `target` from (`our_mac`, `our_ip`).
pub fn request(our_mac: [u8; 6], our_ip: u32, target: u32) -> [u8; ARP_FRAME_LEN] {
    build(
        [0xff; 6],
        &Arp {
            op: 1,
            sha: our_mac,
            spa: our_ip,
            tha: [0; 6],
            tpa: target,
        },
    )
}

/// Packets held per unresolved neighbour.
pub const QUEUE_PER_NEIGHBOUR: usize = 3;
/// How often a request for the same neighbour is repeated.
pub const RETRY_NS: u64 = 1_000_000_000;
/// How long a learned entry is trusted before it is asked again (kernel: reachable time, ~30 s;
/// nfrs refreshes on every ARP it hears from the neighbour).
pub const ENTRY_TTL_NS: u64 = 60_000_000_000;
/// Requests sent for a stale entry (one every [`RETRY_NS`]) before it is dropped; meanwhile
/// packets still go to the stale MAC (kernel: a STALE entry is used while it is probed, and
/// fails after ucast_solicit = 3 unanswered probes).
pub const STALE_PROBES: u64 = 3;

/// Packets waiting for a neighbour: (last request time, IPv4 packets).
type Held = (u64, Vec<Vec<u8>>);

/// The neighbour table of all interfaces.
#[derive(Default, Debug)]
pub struct Neighbours {
    /// (device, address) → (MAC, learned at; `u64::MAX` for static entries).
    entries: HashMap<(usize, u32), ([u8; 6], u64)>,
    /// Unresolved: (device, address) → (last request time, held IPv4 packets).
    pending: HashMap<(usize, u32), Held>,
    /// Stale entries being asked again: (device, address) → last request time.
    probed: HashMap<(usize, u32), u64>,
}

/// What to do for a packet to a next hop.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolve {
    /// Send to this MAC.
    Mac([u8; 6]),
    /// Send to this (stale) MAC, and send an ARP request now to confirm it.
    Refresh([u8; 6]),
    /// Held; send an ARP request now.
    Ask,
    /// Held (or dropped when the queue is full); a request is already out.
    Wait,
}

impl Neighbours {
    /// A static entry (`[[neighbour]]`).
    pub fn add_static(&mut self, dev: usize, addr: u32, mac: [u8; 6]) {
        self.entries.insert((dev, addr), (mac, u64::MAX));
    }

    /// Learns (or refreshes) a neighbour; returns the packets that waited for it.
    pub fn learn(&mut self, dev: usize, addr: u32, mac: [u8; 6], now: u64) -> Vec<Vec<u8>> {
        let e = self.entries.entry((dev, addr)).or_insert((mac, now));
        if e.1 != u64::MAX {
            *e = (mac, now);
        }
        self.probed.remove(&(dev, addr));
        self.pending
            .remove(&(dev, addr))
            .map(|(_, q)| q)
            .unwrap_or_default()
    }

    /// Where a packet to `nexthop` on `dev` goes; `ip` is held when the MAC is unknown.
    pub fn resolve(&mut self, dev: usize, nexthop: u32, ip: &[u8], now: u64) -> Resolve {
        if let Some(&(mac, at)) = self.entries.get(&(dev, nexthop)) {
            let age = now.saturating_sub(at);
            if at == u64::MAX || age < ENTRY_TTL_NS {
                return Resolve::Mac(mac);
            }
            if age < ENTRY_TTL_NS + STALE_PROBES * RETRY_NS {
                let last = self.probed.entry((dev, nexthop)).or_insert(0);
                if *last == 0 || now.saturating_sub(*last) >= RETRY_NS {
                    *last = now.max(1);
                    return Resolve::Refresh(mac);
                }
                return Resolve::Mac(mac);
            }
            self.entries.remove(&(dev, nexthop));
            self.probed.remove(&(dev, nexthop));
        }
        let p = self
            .pending
            .entry((dev, nexthop))
            .or_insert((0, Vec::new()));
        if p.1.len() < QUEUE_PER_NEIGHBOUR {
            p.1.push(ip.to_vec());
        }
        if p.0 == 0 || now.saturating_sub(p.0) >= RETRY_NS {
            p.0 = now.max(1);
            Resolve::Ask
        } else {
            Resolve::Wait
        }
    }

    /// Drops queues whose neighbour never answered for 3 retries.
    pub fn expire(&mut self, now: u64) {
        self.pending
            .retain(|_, (at, _)| now.saturating_sub(*at) < 3 * RETRY_NS);
    }

    /// Learned and static entries, as (device, address, MAC).
    pub fn list(&self) -> Vec<(usize, u32, [u8; 6])> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .map(|(&(d, a), &(m, _))| (d, a, m))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A who-has 10.0.1.1 tell 10.0.1.2 request laid out per RFC 826.
    const REQ: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0x01, 0x01, 0x08, 0x06, 0, 1, 8, 0, 6,
        4, 0, 1, 0x02, 0, 0, 0, 0x01, 0x01, 10, 0, 1, 2, 0, 0, 0, 0, 0, 0, 10, 0, 1, 1,
    ];

    #[test]
    fn parse_and_answer() {
        let a = parse(&REQ).unwrap();
        assert_eq!(a.op, 1);
        assert_eq!(a.spa, 0x0a00_0102);
        assert_eq!(a.tpa, 0x0a00_0101);
        let me = [0x02, 0, 0, 0, 0, 0x01];
        let r = reply(me, &a);
        let b = parse(&r).unwrap();
        assert_eq!(&r[0..6], &a.sha);
        assert_eq!(
            (b.op, b.sha, b.spa, b.tha, b.tpa),
            (2, me, a.tpa, a.sha, a.spa)
        );
        let q = parse(&request(me, 0x0a00_0101, 0x0a00_0109)).unwrap();
        assert_eq!((q.op, q.tpa, q.tha), (1, 0x0a00_0109, [0; 6]));
        assert!(parse(&REQ[..41]).is_none());
        let mut ipv6 = REQ;
        ipv6[16] = 0x86;
        assert!(parse(&ipv6).is_none());
    }

    #[test]
    fn queue_until_learned() {
        let mut n = Neighbours::default();
        assert_eq!(n.resolve(0, 9, b"p1", 10), Resolve::Ask);
        assert_eq!(n.resolve(0, 9, b"p2", 20), Resolve::Wait);
        assert_eq!(n.resolve(0, 9, b"p3", 30), Resolve::Wait);
        assert_eq!(n.resolve(0, 9, b"p4", 40), Resolve::Wait);
        assert_eq!(n.resolve(0, 9, b"p5", 10 + RETRY_NS), Resolve::Ask);
        let held = n.learn(0, 9, [1; 6], 50 + RETRY_NS);
        assert_eq!(held, vec![b"p1".to_vec(), b"p2".to_vec(), b"p3".to_vec()]);
        assert_eq!(n.resolve(0, 9, b"p6", 60 + RETRY_NS), Resolve::Mac([1; 6]));
        // A learned entry goes stale: packets still go to its MAC while it is asked again,
        // once a second; an answer makes it fresh.
        let stale = 50 + RETRY_NS + ENTRY_TTL_NS;
        assert_eq!(n.resolve(0, 9, b"p7", stale), Resolve::Refresh([1; 6]));
        assert_eq!(n.resolve(0, 9, b"p8", stale + 10), Resolve::Mac([1; 6]));
        assert_eq!(
            n.resolve(0, 9, b"p9", stale + RETRY_NS),
            Resolve::Refresh([1; 6])
        );
        assert!(n.learn(0, 9, [1; 6], stale + RETRY_NS + 5).is_empty());
        assert_eq!(
            n.resolve(0, 9, b"pa", stale + 2 * RETRY_NS),
            Resolve::Mac([1; 6])
        );
        // Unanswered for STALE_PROBES requests, it is dropped and the next packet is held.
        let t = stale + RETRY_NS + 5 + ENTRY_TTL_NS;
        for k in 0..STALE_PROBES {
            assert_eq!(
                n.resolve(0, 9, b"pb", t + k * RETRY_NS),
                Resolve::Refresh([1; 6])
            );
        }
        assert_eq!(
            n.resolve(0, 9, b"pc", t + STALE_PROBES * RETRY_NS),
            Resolve::Ask
        );
        n.add_static(1, 7, [2; 6]);
        n.learn(1, 7, [3; 6], 5);
        assert_eq!(n.resolve(1, 7, b"x", u64::MAX - 1), Resolve::Mac([2; 6]));
        n.expire(u64::MAX - 1);
        assert!(n.pending.is_empty());
    }
}
