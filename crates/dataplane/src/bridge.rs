//! Bridge mode of `nfrs run`: the layer-2 part the daemon owns. The engine learns source MACs
//! and runs bridged IPv4 through PREROUTING / FORWARD / POSTROUTING with br_netfilter's
//! devices (`nfrs_engine::engine::Engine::receive` on a port); what is left here is where a
//! frame leaves at layer 2: the forwarding database lookup for frames the engine never sees
//! (ARP and every other non-IPv4 type, bridged unfiltered), the bridge's own MAC, and the
//! choice of Ethernet header for what the engine emits on a port.

use nfrs_engine::host::HostNet;

/// The number of learned MACs the table holds at most: entries age out after the bridge's
/// `ageing_time` ([`age`], from the daemon's periodic work); a table still full of live entries
/// (a flood of made-up source MACs) is emptied, and the bridge floods until it has learned again.
pub const FDB_MAX: usize = 16384;

/// Where a frame for a destination MAC leaves a bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L2 {
    /// Nowhere: the destination sits behind the port it came from.
    Nowhere,
    /// Out of this port (learned).
    One(usize),
    /// Out of every port but the one it came from (unknown, broadcast or multicast).
    Flood,
}

/// The forwarding decision of bridge `b` for `dmac`, never back out of `from` (the kernel's
/// br_handle_frame_finish: a known unicast MAC goes to its port, anything else floods).
pub fn l2_dest(h: &HostNet, b: usize, dmac: [u8; 6], from: Option<usize>) -> L2 {
    if dmac[0] & 1 == 0 {
        // Kernel rule (br_handle_frame_finish): the lookup takes any entry still held; aged
        // ones are removed by the periodic sweep (`age`), as the kernel's fdb cleanup work does.
        if let Some(p) = h.fdb.port_unaged(&dmac) {
            if h.ifaces().get(p).and_then(|i| i.bridge) == Some(b) {
                return if Some(p) == from {
                    L2::Nowhere
                } else {
                    L2::One(p)
                };
            }
        }
    }
    L2::Flood
}

/// Calls `f` with each port a frame for `dmac` leaves bridge `b` by.
pub fn for_each_port(
    h: &HostNet,
    b: usize,
    dmac: [u8; 6],
    from: Option<usize>,
    mut f: impl FnMut(usize),
) {
    match l2_dest(h, b, dmac, from) {
        L2::Nowhere => {}
        L2::One(p) => f(p),
        L2::Flood => {
            for &p in &h.ifaces()[b].ports {
                if Some(p) != from {
                    f(p)
                }
            }
        }
    }
}

/// Learns at `now` that `smac` sits behind `port` (group source addresses are never learned);
/// a full table first loses its aged entries, then, if still full, everything.
pub fn learn(h: &mut HostNet, smac: [u8; 6], port: usize, now: u64) {
    if h.fdb.len() >= FDB_MAX && !h.fdb.contains(&smac) {
        age(h, now);
        if h.fdb.len() >= FDB_MAX {
            h.fdb.clear();
        }
    }
    h.learn(smac, port, now);
}

/// The periodic sweep: forgets MACs not heard from for their bridge's ageing time (the kernel's
/// br_fdb_cleanup), and empties a table grown past [`FDB_MAX`] anyway.
pub fn age(h: &mut HostNet, now: u64) {
    h.fdb.expire(now);
    if h.fdb.len() > FDB_MAX {
        h.fdb.clear();
    }
}

/// A bridge's MAC as Linux gives it when none is set: the smallest of its ports' MACs
/// (br_stp_recalculate_bridge_id).
pub fn bridge_mac(port_macs: impl IntoIterator<Item = [u8; 6]>) -> Option<[u8; 6]> {
    port_macs.into_iter().min()
}

/// How the daemon frames an IPv4 packet the engine emitted on interface `q` while handling a
/// frame received on `dev` with Ethernet header `mac`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Bridged through: it keeps the received frame's addresses.
    Keep,
    /// A REJECT's TCP reset about a bridged frame: back out of the port the frame came by,
    /// from the frame's destination MAC to its source MAC (nf_send_reset with bridge
    /// netfilter; measured on Linux 6.18: `dst_of_syn > src_of_syn ... Flags [R.]` on the
    /// sender's wire).
    Reverse,
    /// Sent by the host at layer 3 out of bridge `b`: resolve the next hop on the bridge.
    Bridge(usize),
    /// Out of a routed interface.
    Routed,
}

/// The framing of packet `ip` the engine emitted on `q`: a packet the engine forwarded between
/// two ports of the bridge the frame came in on, and not addressed to the bridge itself, was
/// bridged (unless DNAT re-addressed it: [`HostNet::readdressed`]); the host's TCP reset about
/// such a frame, on the port it came by, is a REJECT's (the engine sends it there directly);
/// anything else leaving a port was routed or sent by the host out of the bridge device.
pub fn framing(
    h: &HostNet,
    dev: usize,
    mac: &[u8; 14],
    q: usize,
    host_made: bool,
    ip: &[u8],
) -> Framing {
    let Some(qb) = h.ifaces().get(q).and_then(|i| i.bridge) else {
        return if h.ifaces().get(q).is_some_and(|i| !i.ports.is_empty()) {
            Framing::Bridge(q)
        } else {
            Framing::Routed
        };
    };
    let in_b = h.ifaces().get(dev).and_then(|i| i.bridge);
    let bridged = in_b == Some(qb) && mac[..6] != h.ifaces()[qb].mac[..];
    if !host_made && bridged && h.readdressed {
        // DNATed to another host on the bridge: the kernel re-addresses the frame to the new
        // destination's neighbour entry (br_nf_pre_routing_finish_bridge); resolve it here.
        Framing::Bridge(qb)
    } else if !host_made && bridged {
        Framing::Keep
    } else if host_made && bridged && q == dev && mac[0] & 1 == 0 && is_tcp_reset(ip) {
        Framing::Reverse
    } else {
        Framing::Bridge(qb)
    }
}

/// Whether `ip` is a TCP segment with RST set.
fn is_tcp_reset(ip: &[u8]) -> bool {
    let ihl = usize::from(ip.first().map_or(0, |b| b & 0xf)) * 4;
    ip.len() >= ihl + 14 && ihl >= 20 && ip[9] == 6 && ip[ihl + 13] & 0x04 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostNet {
        let text = "description = \"t\"\n[[interface]]\nname = \"p0\"\n[[interface]]\nname = \"p1\"\n[[interface]]\nname = \"p2\"\n[[interface]]\nname = \"wan0\"\naddress = \"192.0.2.1/24\"\n[[bridge]]\nname = \"br0\"\nports = [\"p0\", \"p1\", \"p2\"]\naddress = \"10.0.0.1/24\"\n";
        let sc = nfrs_scenario::parse(text, std::path::Path::new("t.toml")).unwrap();
        HostNet::new(&sc.host).unwrap()
    }

    fn ports(h: &HostNet, dmac: [u8; 6], from: Option<usize>) -> Vec<usize> {
        let mut v = Vec::new();
        for_each_port(h, 4, dmac, from, |p| v.push(p));
        v
    }

    #[test]
    fn learning_and_flooding() {
        let mut h = host();
        let a = [2, 0, 0, 0, 0, 0xa];
        // Unknown: every other port.
        assert_eq!(ports(&h, a, Some(1)), vec![0, 2]);
        learn(&mut h, a, 2, 0);
        assert_eq!(l2_dest(&h, 4, a, Some(0)), L2::One(2));
        assert_eq!(ports(&h, a, Some(0)), vec![2]);
        // Back where it came from: nowhere.
        assert_eq!(ports(&h, a, Some(2)), Vec::<usize>::new());
        // Broadcast floods even when "learned".
        assert_eq!(ports(&h, [0xff; 6], Some(0)), vec![1, 2]);
        // A group source address is not learned.
        learn(&mut h, [0x01, 0, 0x5e, 0, 0, 1], 0, 0);
        assert_eq!(h.fdb.len(), 1);
        // A station that moves is learned again.
        learn(&mut h, a, 1, 0);
        assert_eq!(ports(&h, a, Some(0)), vec![1]);
    }

    #[test]
    fn learned_table_is_bounded() {
        let mut h = host();
        for i in 0..FDB_MAX as u32 + 10 {
            let b = i.to_be_bytes();
            learn(&mut h, [2, 0, b[0], b[1], b[2], b[3]], 0, 0);
        }
        assert!(h.fdb.len() <= FDB_MAX);
    }

    #[test]
    fn learned_macs_age_out() {
        const S: u64 = 1_000_000_000;
        let mut h = host();
        assert_eq!(h.ifaces()[4].ageing, 300 * S);
        let (a, b) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]);
        learn(&mut h, a, 2, 0);
        learn(&mut h, b, 0, 200 * S);
        // Still held just before 300 s; a sweep then keeps it.
        age(&mut h, 300 * S - 1);
        assert_eq!(ports(&h, a, Some(0)), vec![2]);
        // At 300 s without a frame from it, it is forgotten: frames for it flood again.
        age(&mut h, 300 * S);
        assert_eq!(ports(&h, a, Some(0)), vec![1, 2]);
        assert_eq!(l2_dest(&h, 4, b, Some(1)), L2::One(0));
        // A frame from it refreshes the entry.
        learn(&mut h, b, 0, 450 * S);
        age(&mut h, 700 * S);
        assert_eq!(l2_dest(&h, 4, b, Some(1)), L2::One(0));
        age(&mut h, 750 * S);
        assert_eq!(l2_dest(&h, 4, b, Some(1)), L2::Flood);
        assert!(h.fdb.is_empty());
    }

    #[test]
    fn a_full_table_loses_aged_entries_first() {
        const S: u64 = 1_000_000_000;
        let mut h = host();
        for i in 0..FDB_MAX as u32 - 1 {
            let b = i.to_be_bytes();
            learn(&mut h, [2, 0, b[0], b[1], b[2], b[3]], 0, 0);
        }
        let fresh = [2, 1, 0, 0, 0, 1];
        learn(&mut h, fresh, 1, 299 * S);
        assert_eq!(h.fdb.len(), FDB_MAX);
        // Full at 301 s: the old entries have aged, the fresh one stays.
        learn(&mut h, [2, 1, 0, 0, 0, 2], 2, 301 * S);
        assert_eq!(h.fdb.len(), 2);
        assert_eq!(l2_dest(&h, 4, fresh, Some(0)), L2::One(1));
    }

    #[test]
    fn framing_of_emitted_packets() {
        let h = host();
        let bmac = h.ifaces()[4].mac;
        let other = [0x02, 0, 0, 0, 0, 0xb, 0x02, 0, 0, 0, 0, 0xa, 8, 0];
        let mut to_bridge = other;
        to_bridge[..6].copy_from_slice(&bmac);
        let icmp = [
            0x45u8, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0,
            0, 0,
        ];
        let mut rst = vec![
            0x45u8, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 3, 10, 0, 0, 2,
        ];
        rst.extend_from_slice(&[
            0, 80, 0x9c, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 0x50, 0x14, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(framing(&h, 0, &other, 1, false, &icmp), Framing::Keep);
        // Re-addressed by DNAT on the bridge: resolved again rather than kept.
        let mut h2 = h.clone();
        h2.readdressed = true;
        assert_eq!(framing(&h2, 0, &other, 1, false, &icmp), Framing::Bridge(4));
        // The host's own answer out of a port: resolved on the bridge.
        assert_eq!(framing(&h, 0, &other, 0, true, &icmp), Framing::Bridge(4));
        // A REJECT's reset about a bridged frame: back by its port, addresses swapped.
        assert_eq!(framing(&h, 0, &other, 0, true, &rst), Framing::Reverse);
        assert_eq!(framing(&h, 0, &other, 1, true, &rst), Framing::Bridge(4));
        assert_eq!(
            framing(&h, 0, &to_bridge, 0, true, &rst),
            Framing::Bridge(4)
        );
        // Routed by the bridge's address back out of the bridge.
        assert_eq!(
            framing(&h, 0, &to_bridge, 1, false, &icmp),
            Framing::Bridge(4)
        );
        // Routed from a plain interface out of a port.
        assert_eq!(framing(&h, 3, &other, 1, false, &icmp), Framing::Bridge(4));
        assert_eq!(framing(&h, 0, &other, 3, false, &icmp), Framing::Routed);
        assert_eq!(framing(&h, 0, &other, 4, false, &icmp), Framing::Bridge(4));
        assert!(!is_tcp_reset(&rst[..30]));
    }

    #[test]
    fn bridge_mac_is_the_smallest_port_mac() {
        assert_eq!(
            bridge_mac([[0x0a, 0, 0, 0, 0, 1], [0x02, 9, 9, 9, 9, 9]]),
            Some([0x02, 9, 9, 9, 9, 9])
        );
        assert_eq!(bridge_mac([]), None);
    }
}
