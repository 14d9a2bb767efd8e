//! The firewall host as the packet path needs it: interfaces (names, addresses, MACs, MTUs),
//! the routing decision for received and locally generated packets, neighbours, listening
//! sockets and the sysctls the path reads. Built once from `nfrs_scenario::Host`.

use crate::matches::HostInfo;
use crate::pkt::IfName;
use nfrs_scenario::{Host, ListenProto};

/// One interface.
#[derive(Clone, Debug)]
pub struct Iface {
    /// Its name.
    pub name: IfName,
    /// Addresses (host order) with prefix lengths; the first is the primary one.
    pub addrs: Vec<(u32, u8)>,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its MTU.
    pub mtu: u32,
    /// A bridge's ports (device indexes); empty for an interface.
    pub ports: Vec<usize>,
    /// The bridge this interface is a port of.
    pub bridge: Option<usize>,
    /// A bridge's ageing time in nanoseconds (how long a learned MAC is kept without a frame
    /// from it); 0 for an interface.
    pub ageing: u64,
}

/// The netmask of a prefix length (0..=32), without a branch: the ones shifted out of a
/// 64-bit word leave 0 for /0.
#[inline]
fn mask(prefix: u8) -> u32 {
    (u64::from(u32::MAX) << (32 - u32::from(prefix.min(32)))) as u32
}

/// A route: destination network, gateway, device.
#[derive(Clone, Copy, Debug)]
pub struct RouteEntry {
    /// Network (host order).
    pub net: u32,
    /// Prefix length.
    pub prefix: u8,
    /// Gateway (None: on link).
    pub via: Option<u32>,
    /// Device index.
    pub dev: usize,
}

/// Where a received packet goes (the kernel's `ip_route_input` result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InRoute {
    /// To one of the host's addresses.
    Local,
    /// To a broadcast address (delivered locally).
    Broadcast,
    /// To a multicast group the host is in (224.0.0.1), delivered locally.
    Multicast,
    /// To be forwarded out of `dev` towards `nexthop`.
    Forward {
        /// Output device index.
        dev: usize,
        /// Next hop.
        nexthop: u32,
    },
    /// Forwarding is on but no route: ICMP net unreachable.
    NoRoute,
    /// Dropped by routing without an answer (martians, forwarding off, multicast without a
    /// multicast route).
    Drop,
}

/// A listening socket.
#[derive(Clone, Copy, Debug)]
pub struct Listener {
    /// 6 or 17.
    pub proto: u8,
    /// Port.
    pub port: u16,
    /// Address (None: any).
    pub addr: Option<u32>,
}

/// The host.
///
/// Interfaces and routes are private: routing reads a compiled copy of their addresses and
/// routes, so they are read through [`HostNet::ifaces`] and [`HostNet::routes`] and changed
/// only through [`HostNet::edit`], which compiles them again before it returns. The other
/// fields feed nothing compiled (the packet path reads them as they are) and stay public.
#[derive(Clone, Debug)]
pub struct HostNet {
    /// Interfaces (devices) in file order, then the bridges; a device's index is its place here.
    ifaces: Vec<Iface>,
    /// Connected routes then static ones.
    routes: Vec<RouteEntry>,
    /// Static neighbours (device, address, MAC).
    pub neighbours: Vec<(usize, u32, [u8; 6])>,
    /// Open sockets.
    pub listeners: Vec<Listener>,
    /// net.ipv4.ip_forward.
    pub ip_forward: bool,
    /// net.ipv4.ip_default_ttl.
    pub default_ttl: u8,
    /// net.ipv4.icmp_echo_ignore_broadcasts.
    pub echo_ignore_broadcasts: bool,
    /// net.ipv4.icmp_echo_ignore_all.
    pub echo_ignore_all: bool,
    /// Per device: the larger of net.ipv4.conf.{all,DEV}.rp_filter (0 off, 1 strict, 2 loose).
    pub rp_filter: Vec<u8>,
    /// Per device: net.ipv4.conf.{all,DEV}.send_redirects (either one set).
    pub send_redirects: Vec<bool>,
    /// net.bridge.bridge-nf-call-iptables (1 in a new namespace).
    pub bridge_call_iptables: bool,
    /// The bridges' learned MAC → port table.
    pub fdb: Fdb,
    /// The frame last received on a bridge port was DNATed to a host on the same bridge and
    /// re-addressed (its Ethernet destination is the new next hop's, not the received one):
    /// the live daemon resolves it on the bridge instead of keeping the received header.
    pub readdressed: bool,
    /// `ifaces`' addresses and `routes` compiled for the packet path (see [`Fib`]); rebuilt
    /// whenever either changes ([`HostNet::edit`]).
    fib: Fib,
}

/// The host's addresses and routes as the packet path reads them, compiled from
/// [`HostNet::ifaces`] and [`HostNet::routes`] (the same answers as scanning those, fewer
/// instructions): every address with its subnet broadcast worked out, a 64-bit filter that
/// rules most addresses out of being the host's without the scan, and the routes longest
/// prefix first (a stable sort, so connected routes still win ties) with their masks, so the
/// first match is the kernel's longest-prefix match.
#[derive(Clone, Debug, Default)]
struct Fib {
    /// (address, subnet broadcast or u32::MAX when the prefix has none (/31, /32)).
    addrs: Vec<(u32, u32)>,
    /// Bit [`filter_bit`] of every address and broadcast in `addrs`.
    filter: u64,
    /// (network, mask, device, gateway), longest prefix first.
    routes: Vec<(u32, u32, usize, Option<u32>)>,
}

/// A 64-bit filter's bit for `a` (a multiplicative hash's top 6 bits).
#[inline]
fn filter_bit(a: u32) -> u64 {
    1u64 << (a.wrapping_mul(0x9e37_79b1) >> 26)
}

impl Fib {
    fn compile(ifaces: &[Iface], routes: &[RouteEntry]) -> Fib {
        let mut f = Fib::default();
        for i in ifaces {
            for &(x, p) in &i.addrs {
                let bcast = if p < 31 { x | !mask(p) } else { u32::MAX };
                f.addrs.push((x, bcast));
                f.filter |= filter_bit(x) | filter_bit(bcast);
            }
        }
        let mut sorted: Vec<&RouteEntry> = routes.iter().collect();
        sorted.sort_by_key(|r| std::cmp::Reverse(r.prefix));
        f.routes = sorted
            .into_iter()
            .map(|r| (r.net, mask(r.prefix), r.dev, r.via))
            .collect();
        f
    }
}

/// The bridges' forwarding database: learned MAC → port, each entry with the time it stops
/// counting (last frame from that MAC plus the bridge's ageing time).
#[derive(Clone, Debug, Default)]
pub struct Fdb {
    map: std::collections::HashMap<[u8; 6], (usize, u64)>,
}

impl Fdb {
    /// Records that a frame from `mac` came in on `port` at `now`; the entry lasts `ageing`
    /// nanoseconds from then. No allocation once the table has room for `mac`.
    pub fn learn(&mut self, mac: [u8; 6], port: usize, now: u64, ageing: u64) {
        self.map.insert(mac, (port, now.saturating_add(ageing)));
    }

    /// The port `mac` was learned on, unless it has aged out by `now`.
    // Kernel rule (br_fdb has_expired): an entry is gone once last-seen + ageing_time <= now;
    // the kernel's cleanup work removes it then, so a lookup after that floods.
    pub fn port(&self, mac: &[u8; 6], now: u64) -> Option<usize> {
        match self.map.get(mac) {
            Some(&(p, until)) if now < until => Some(p),
            _ => None,
        }
    }

    /// The port `mac` was learned on, aged or not (the kernel's lookup: ageing is left to a
    /// periodic sweep, [`Fdb::expire`]).
    pub fn port_unaged(&self, mac: &[u8; 6]) -> Option<usize> {
        self.map.get(mac).map(|e| e.0)
    }

    /// Forgets every entry that has aged out by `now`; returns how many went.
    pub fn expire(&mut self, now: u64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, e| now < e.1);
        before - self.map.len()
    }

    /// Entries held (aged ones included until [`Fdb::expire`] runs).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `mac` has an entry (aged or not).
    pub fn contains(&self, mac: &[u8; 6]) -> bool {
        self.map.contains_key(mac)
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

impl HostNet {
    /// Builds the host of a scenario.
    pub fn new(h: &Host) -> Result<HostNet, String> {
        let ifaces: Vec<Iface> = h
            .interfaces
            .iter()
            .map(|i| Iface {
                name: IfName::new(&i.name),
                addrs: i
                    .addresses
                    .iter()
                    .map(|c| (u32::from(c.addr), c.prefix))
                    .collect(),
                mac: i.mac,
                mtu: i.mtu,
                ports: Vec::new(),
                bridge: None,
                ageing: 0,
            })
            .collect();
        let mut ifaces = ifaces;
        for b in &h.bridges {
            let bi = ifaces.len();
            let mut ports = Vec::new();
            for p in &b.ports {
                let pi = h.interface_index(p).ok_or_else(|| {
                    format!("nfrs replay: bridge `{}` names unknown port `{p}`", b.name)
                })? - 1;
                ifaces[pi].bridge = Some(bi);
                ports.push(pi);
            }
            let mtu = ports.iter().map(|&p| ifaces[p].mtu).min().unwrap_or(1500);
            ifaces.push(Iface {
                name: IfName::new(&b.name),
                addrs: b
                    .addresses
                    .iter()
                    .map(|c| (u32::from(c.addr), c.prefix))
                    .collect(),
                mac: b.mac,
                mtu,
                ports,
                bridge: None,
                ageing: u64::from(b.ageing_time) * 1_000_000_000,
            });
        }
        // Devices are the interfaces in file order, then the bridges.
        let dev_of = |name: &str| {
            h.interface_index(name)
                .map(|i| i - 1)
                .or_else(|| {
                    h.bridges
                        .iter()
                        .position(|b| b.name == name)
                        .map(|i| h.interfaces.len() + i)
                })
                .ok_or_else(|| {
                    format!("nfrs replay: route or neighbour names unknown device `{name}`")
                })
        };
        let mut routes = Vec::new();
        for (d, i) in ifaces.iter().enumerate() {
            for &(a, p) in &i.addrs {
                if p < 32 {
                    routes.push(RouteEntry {
                        net: a & mask(p),
                        prefix: p,
                        via: None,
                        dev: d,
                    });
                }
            }
        }
        for r in &h.routes {
            let c = r.dest();
            routes.push(RouteEntry {
                net: u32::from(c.addr) & mask(c.prefix),
                prefix: c.prefix,
                via: r.via.map(u32::from),
                dev: dev_of(&r.dev)?,
            });
        }
        let mut neighbours = Vec::new();
        for n in &h.neighbours {
            neighbours.push((dev_of(&n.dev)?, u32::from(n.address), n.mac));
        }
        let listeners = h
            .listen
            .iter()
            .map(|l| Listener {
                proto: match l.proto {
                    ListenProto::Tcp => 6,
                    ListenProto::Udp => 17,
                },
                port: l.port,
                addr: l.address.map(u32::from),
            })
            .collect();
        let flag =
            |name: &str, default: bool| h.sysctl(name).map(|v| v.trim() != "0").unwrap_or(default);
        let send_redirects = ifaces
            .iter()
            .map(|i| {
                let dflt = flag("net.ipv4.conf.default.send_redirects", true);
                flag("net.ipv4.conf.all.send_redirects", true)
                    || flag(
                        &format!("net.ipv4.conf.{}.send_redirects", i.name.as_str()),
                        dflt,
                    )
            })
            .collect();
        let num = |name: &str, default: u8| {
            h.sysctl(name)
                .and_then(|v| v.trim().parse::<u8>().ok())
                .unwrap_or(default)
        };
        let rp_filter = ifaces
            .iter()
            .map(|i| {
                let dflt = num("net.ipv4.conf.default.rp_filter", 0);
                num("net.ipv4.conf.all.rp_filter", 0).max(num(
                    &format!("net.ipv4.conf.{}.rp_filter", i.name.as_str()),
                    dflt,
                ))
            })
            .collect();
        Ok(HostNet {
            rp_filter,
            ifaces,
            routes,
            neighbours,
            listeners,
            ip_forward: flag("net.ipv4.ip_forward", false),
            default_ttl: h
                .sysctl("net.ipv4.ip_default_ttl")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(64),
            echo_ignore_broadcasts: flag("net.ipv4.icmp_echo_ignore_broadcasts", true),
            echo_ignore_all: flag("net.ipv4.icmp_echo_ignore_all", false),
            send_redirects,
            bridge_call_iptables: flag("net.bridge.bridge-nf-call-iptables", true),
            fdb: Default::default(),
            readdressed: false,
            fib: Fib::default(),
        }
        .compiled())
    }

    fn compiled(mut self) -> HostNet {
        self.recompile();
        self
    }

    /// Compiles `ifaces`' addresses and `routes` again for the packet path.
    fn recompile(&mut self) {
        self.fib = Fib::compile(&self.ifaces, &self.routes);
    }

    /// The devices: interfaces in file order, then the bridges (a device's index is its place
    /// here).
    #[inline]
    pub fn ifaces(&self) -> &[Iface] {
        &self.ifaces
    }

    /// The routes: connected ones (one per address with a prefix under /32, in address
    /// order), then the static ones in file order.
    #[inline]
    pub fn routes(&self) -> &[RouteEntry] {
        &self.routes
    }

    /// Changes the devices and routes in place through `f`, then compiles them again for the
    /// packet path, so the next packet is routed by what `f` left. The devices can be
    /// changed (addresses, MTU, MAC...) but not added or removed: device indexes are held
    /// elsewhere (neighbours, per-device sysctls, bridge ports, the daemon's sockets). Routes
    /// can be added, removed, reordered or changed. Connected routes are not derived again
    /// from changed addresses: `f` adds or removes those itself when it wants them (the
    /// kernel adds and removes an address's prefix route with it). Returns what `f` returns.
    ///
    /// # Panics
    /// When `f` leaves a route whose device does not exist (`dev` not below
    /// `ifaces().len()`).
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut [Iface], &mut Vec<RouteEntry>) -> R) -> R {
        let r = f(&mut self.ifaces, &mut self.routes);
        let n = self.ifaces.len();
        if let Some(bad) = self.routes.iter().find(|r| r.dev >= n) {
            panic!(
                "HostNet::edit: route {bad:?} names device {} of {n}",
                bad.dev
            );
        }
        self.recompile();
        r
    }

    /// The index of device `name`.
    pub fn dev(&self, name: &str) -> Option<usize> {
        self.ifaces.iter().position(|i| i.name.as_str() == name)
    }

    /// The index of device `name` (byte comparison, no text conversion).
    pub fn dev_by_name(&self, name: &IfName) -> Option<usize> {
        self.ifaces.iter().position(|i| i.name == *name)
    }

    /// One of the host's own addresses (127/8 counts: the loopback device).
    pub fn is_local(&self, a: u32) -> bool {
        a >> 24 == 127
            || (self.fib.filter & filter_bit(a) != 0 && self.fib.addrs.iter().any(|e| e.0 == a))
    }

    /// A broadcast address: 255.255.255.255 or a connected subnet's broadcast.
    pub fn is_broadcast(&self, a: u32) -> bool {
        // (a == u32::MAX answers first, so the u32::MAX of "no broadcast" never matches.)
        a == u32::MAX
            || (self.fib.filter & filter_bit(a) != 0 && self.fib.addrs.iter().any(|e| e.1 == a))
    }

    /// Longest-prefix route to `dst` (connected routes win ties, as they come first).
    #[inline]
    pub fn lookup(&self, dst: u32) -> Option<(usize, u32)> {
        // The compiled routes are longest prefix first: the first match is the longest.
        self.fib
            .routes
            .iter()
            .find(|r| dst & r.1 == r.0)
            .map(|r| (r.2, r.3.unwrap_or(dst)))
    }

    /// The source address the host uses on `dev` towards `nexthop`: an address whose subnet
    /// holds the next hop, else the primary one.
    pub fn source_for(&self, dev: usize, nexthop: u32) -> u32 {
        let i = &self.ifaces[dev];
        i.addrs
            .iter()
            .find(|&&(a, p)| a & mask(p) == nexthop & mask(p))
            .or(i.addrs.first())
            .map(|&(a, _)| a)
            .unwrap_or(0)
    }

    /// The kernel's input routing for a packet from `src` to `dst` arriving on `indev`, with
    /// the reverse path filter (fib_validate_source): strict wants the route back to the
    /// source through `indev`, loose any route back.
    pub fn route_input_on(&self, indev: Option<usize>, src: u32, dst: u32) -> InRoute {
        let r = self.route_input(src, dst);
        let Some(dev) = indev else { return r };
        let mode = self.rp_filter.get(dev).copied().unwrap_or(0);
        if mode == 0 || src == 0 || matches!(r, InRoute::Drop) {
            return r;
        }
        match self.lookup(src) {
            None => InRoute::Drop,
            Some((d, _)) if mode == 1 && d != dev => InRoute::Drop,
            _ => r,
        }
    }

    /// The kernel's input routing for a packet from `src` to `dst` (no reverse path check).
    pub fn route_input(&self, src: u32, dst: u32) -> InRoute {
        let martian_src = src >> 28 == 0xe || src == u32::MAX || src >> 24 == 127;
        if dst >> 28 == 0xe {
            if martian_src {
                return InRoute::Drop;
            }
            // Kernel rule: only groups the host joined are delivered (all-hosts on every
            // interface); others need a multicast route, which a plain host lacks.
            return if dst == 0xe000_0001 {
                InRoute::Multicast
            } else {
                InRoute::Drop
            };
        }
        if dst == u32::MAX {
            return InRoute::Broadcast;
        }
        if martian_src || src == 0 {
            return InRoute::Drop;
        }
        // One pass over the addresses for is_broadcast(dst), is_local(dst), is_local(src),
        // then the same decisions in the same order; none of them can hold when the filter
        // has neither address (the usual case of a forwarded packet).
        let (mut bcast_dst, mut local_dst, mut local_src) = (false, false, false);
        if self.fib.filter & (filter_bit(dst) | filter_bit(src)) != 0 {
            for &(x, b) in &self.fib.addrs {
                // (dst == u32::MAX returned above, so the u32::MAX of "no broadcast" never
                // matches.)
                bcast_dst |= b == dst;
                local_dst |= x == dst;
                local_src |= x == src;
            }
        }
        if bcast_dst {
            return InRoute::Broadcast;
        }
        if dst == 0 || dst >> 24 == 127 {
            return InRoute::Drop;
        }
        // (src >> 24 == 127 was refused above as a martian, so is_local(src) is the scan.)
        if local_dst {
            // Kernel rule (fib_validate_source): a source that is one of our own addresses
            // is a martian.
            if local_src {
                return InRoute::Drop;
            }
            return InRoute::Local;
        }
        if local_src {
            return InRoute::Drop;
        }
        if !self.ip_forward {
            return InRoute::Drop;
        }
        match self.lookup(dst) {
            Some((dev, nexthop)) => InRoute::Forward { dev, nexthop },
            None => InRoute::NoRoute,
        }
    }

    /// The MAC of `addr` on `dev`: a static neighbour, else `02:00:00:00:01:NN`.
    pub fn neighbour_mac(&self, dev: usize, addr: u32) -> [u8; 6] {
        // A bridge's neighbours default to its first port's neighbour MAC.
        let dflt = match self.ifaces[dev].ports.first() {
            Some(&p) => p,
            None => dev,
        };
        self.neighbours
            .iter()
            .find(|(d, a, _)| *d == dev && *a == addr)
            .map(|(_, _, m)| *m)
            .unwrap_or([2, 0, 0, 0, 1, (dflt + 1) as u8])
    }

    /// Learns that frames from `smac` come in on bridge port `port` at `now` (group and zero
    /// source addresses are never learned), for the ageing time of the port's bridge.
    pub fn learn(&mut self, smac: [u8; 6], port: usize, now: u64) {
        if smac[0] & 1 != 0 || smac == [0; 6] {
            return;
        }
        let Some(b) = self.ifaces.get(port).and_then(|i| i.bridge) else {
            return;
        };
        let ageing = self.ifaces[b].ageing;
        self.fdb.learn(smac, port, now, ageing);
    }

    /// Where a bridge sends a frame for `dmac` that came in on port `from` at `now`: the
    /// learned port (unless aged out), else every port but `from` (flooding). No allocation:
    /// see [`BridgeOut::port`].
    pub fn bridge_out(
        &self,
        bridge: usize,
        dmac: [u8; 6],
        from: Option<usize>,
        now: u64,
    ) -> BridgeOut {
        if dmac[0] & 1 == 0 {
            if let Some(p) = self.fdb.port(&dmac, now) {
                return if Some(p) == from {
                    BridgeOut::None
                } else {
                    BridgeOut::One(p)
                };
            }
        }
        BridgeOut::Flood { bridge, from }
    }

    /// The ports a bridge sends a frame for `dmac` to, not back to `from` (allocates; for tools
    /// and tests — the packet path uses [`HostNet::bridge_out`]).
    pub fn bridge_ports(
        &self,
        bridge: usize,
        dmac: [u8; 6],
        from: Option<usize>,
        now: u64,
    ) -> Vec<usize> {
        let out = self.bridge_out(bridge, dmac, from, now);
        (0..out.count(self))
            .filter_map(|i| out.port(self, i))
            .collect()
    }

    /// Whether `a` lies in a connected subnet of device `dev` (inet_addr_onlink).
    pub fn onlink(&self, dev: usize, a: u32) -> bool {
        self.ifaces[dev]
            .addrs
            .iter()
            .any(|&(x, p)| x & mask(p) == a & mask(p))
    }

    /// Whether a socket listens on `proto`/`addr`:`port`.
    pub fn listening(&self, proto: u8, addr: u32, port: u16) -> bool {
        self.listeners
            .iter()
            .any(|l| l.proto == proto && l.port == port && l.addr.is_none_or(|a| a == addr))
    }
}

impl HostInfo for HostNet {
    fn fib_lookup(&self, addr: u32) -> Option<(u8, Option<&IfName>)> {
        // The local table first (own addresses and 127/8 are local, subnet broadcasts are
        // broadcast), then the main table's longest prefix (unicast).
        if self.is_local(addr) {
            return Some((2, None));
        }
        if self.is_broadcast(addr) {
            return Some((3, None));
        }
        self.lookup(addr)
            .map(|(d, _)| (1, Some(&self.ifaces[d].name)))
    }

    fn dev_mtu(&self, dev: &str) -> Option<u32> {
        self.dev(dev).map(|d| self.ifaces[d].mtu)
    }

    fn route_mtu(&self, addr: u32) -> Option<u32> {
        if self.is_local(addr) {
            // The loopback device's MTU.
            return Some(65536);
        }
        self.lookup(addr).map(|(d, _)| self.ifaces[d].mtu)
    }

    fn addr_type(&self, addr: u32, dev: Option<&str>) -> u8 {
        let on_dev = |i: &Iface| dev.is_none_or(|d| i.name.as_str() == d);
        // Kernel rule (__inet_dev_addr_type): 0.0.0.0/8 and 255.255.255.255 are broadcast,
        // 224/4 multicast, else the type of the route found (unicast when none is).
        if addr >> 24 == 0 || addr == u32::MAX {
            return 3;
        }
        if addr >> 28 == 0xe {
            return 5;
        }
        if addr >> 24 == 127 {
            return if dev.is_none() { 2 } else { 1 };
        }
        if self
            .ifaces
            .iter()
            .any(|i| on_dev(i) && i.addrs.iter().any(|&(a, _)| a == addr))
        {
            return 2;
        }
        if self.ifaces.iter().any(|i| {
            on_dev(i)
                && i.addrs
                    .iter()
                    .any(|&(a, p)| p < 31 && (a | !mask(p)) == addr)
        }) {
            return 3;
        }
        1
    }
}

/// The ports a bridged frame leaves by, as [`HostNet::bridge_out`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeOut {
    /// Nowhere (the destination sits behind the port it came from).
    None,
    /// The learned port.
    One(usize),
    /// Every port of `bridge` except `from`.
    Flood {
        /// The bridge device.
        bridge: usize,
        /// The port the frame came in on, if any.
        from: Option<usize>,
    },
}

impl BridgeOut {
    /// How many candidate slots to walk with [`BridgeOut::port`].
    pub fn count(&self, host: &HostNet) -> usize {
        match *self {
            BridgeOut::None => 0,
            BridgeOut::One(_) => 1,
            BridgeOut::Flood { bridge, .. } => host.ifaces[bridge].ports.len(),
        }
    }

    /// The port in slot `i`, or None when that slot is the port the frame came from.
    pub fn port(&self, host: &HostNet, i: usize) -> Option<usize> {
        match *self {
            BridgeOut::None => None,
            BridgeOut::One(p) => (i == 0).then_some(p),
            BridgeOut::Flood { bridge, from } => {
                let p = *host.ifaces[bridge].ports.get(i)?;
                (Some(p) != from).then_some(p)
            }
        }
    }

    /// The last slot that names a port (the one that may take the frame without a copy).
    pub fn last(&self, host: &HostNet) -> Option<usize> {
        (0..self.count(host))
            .rev()
            .find(|&i| self.port(host, i).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn mask_of_every_prefix() {
        assert_eq!(mask(0), 0);
        assert_eq!(mask(1), 0x8000_0000);
        assert_eq!(mask(24), 0xffff_ff00);
        assert_eq!(mask(31), 0xffff_fffe);
        assert_eq!(mask(32), u32::MAX);
        for p in 1..=32u8 {
            assert_eq!(mask(p), u32::MAX << (32 - u32::from(p)), "/{p}");
        }
    }

    fn host(extra: &str) -> HostNet {
        let text = format!(
            "description = \"t\"\n[[interface]]\nname = \"p0\"\n[[interface]]\nname = \"p1\"\n[[interface]]\nname = \"p2\"\n[[bridge]]\nname = \"br0\"\nports = [\"p0\", \"p1\", \"p2\"]\n{extra}"
        );
        let sc = nfrs_scenario::parse(&text, std::path::Path::new("t.toml")).unwrap();
        HostNet::new(&sc.host).unwrap()
    }

    #[test]
    fn learned_macs_age_after_the_bridge_ageing_time() {
        let mut h = host("");
        assert_eq!(h.ifaces()[3].ageing, 300 * S);
        let a = [2, 0, 0, 0, 0, 0xa];
        h.learn(a, 1, 10 * S);
        assert_eq!(h.bridge_out(3, a, Some(0), 310 * S - 1), BridgeOut::One(1));
        assert_eq!(h.bridge_ports(3, a, Some(0), 310 * S - 1), vec![1]);
        // Kernel rule: gone once last-seen + ageing_time <= now, so the frame floods.
        assert_eq!(h.bridge_ports(3, a, Some(0), 310 * S), vec![1, 2]);
        // Held until swept; a frame from it refreshes it.
        assert!(h.fdb.contains(&a));
        h.learn(a, 2, 400 * S);
        assert_eq!(h.bridge_out(3, a, Some(0), 699 * S), BridgeOut::One(2));
        assert_eq!(h.fdb.expire(700 * S), 1);
        assert!(h.fdb.is_empty());
        // Group and zero source addresses, and non-ports, are never learned.
        h.learn([1, 0, 0x5e, 0, 0, 1], 0, 0);
        h.learn([0; 6], 0, 0);
        h.learn(a, 3, 0);
        assert!(h.fdb.is_empty());
    }

    /// The routing decision as plain scans of `ifaces` and `routes` (what the compiled
    /// [`Fib`] must answer exactly).
    fn reference_route(h: &HostNet, indev: usize, src: u32, dst: u32) -> InRoute {
        let lookup = |d: u32| {
            let mut best: Option<&RouteEntry> = None;
            for r in h.routes() {
                if d & mask(r.prefix) == r.net && best.is_none_or(|b| r.prefix > b.prefix) {
                    best = Some(r);
                }
            }
            best.map(|r| (r.dev, r.via.unwrap_or(d)))
        };
        let any = |f: &dyn Fn(u32, u8) -> bool| {
            h.ifaces()
                .iter()
                .any(|i| i.addrs.iter().any(|&(x, p)| f(x, p)))
        };
        let is_local = |a: u32| a >> 24 == 127 || any(&|x, _| x == a);
        let is_bcast = |a: u32| a == u32::MAX || any(&|x, p| p < 31 && (x | !mask(p)) == a);
        let martian_src = src >> 28 == 0xe || src == u32::MAX || src >> 24 == 127;
        let r = if dst >> 28 == 0xe {
            if martian_src {
                InRoute::Drop
            } else if dst == 0xe000_0001 {
                InRoute::Multicast
            } else {
                InRoute::Drop
            }
        } else if dst == u32::MAX {
            InRoute::Broadcast
        } else if martian_src || src == 0 {
            InRoute::Drop
        } else if is_bcast(dst) {
            InRoute::Broadcast
        } else if dst == 0 || dst >> 24 == 127 {
            InRoute::Drop
        } else if is_local(dst) {
            if is_local(src) {
                InRoute::Drop
            } else {
                InRoute::Local
            }
        } else if is_local(src) || !h.ip_forward {
            InRoute::Drop
        } else {
            match lookup(dst) {
                Some((dev, nexthop)) => InRoute::Forward { dev, nexthop },
                None => InRoute::NoRoute,
            }
        };
        let mode = h.rp_filter[indev];
        if mode == 0 || src == 0 || r == InRoute::Drop {
            return r;
        }
        match lookup(src) {
            None => InRoute::Drop,
            Some((d, _)) if mode == 1 && d != indev => InRoute::Drop,
            _ => r,
        }
    }

    /// The kinds of change [`random_edit`] makes through [`HostNet::edit`].
    const EDITS: [&str; 9] = [
        "route added",
        "route removed",
        "route changed",
        "address added",
        "address removed",
        "address prefix changed",
        "routes reordered",
        "routes cleared",
        "addresses and routes moved to another device",
    ];

    /// Addresses near the random hosts' ones.
    const BASES: [u32; 4] = [0x0a00_0000, 0xc000_0200, 0xac10_0000, 0x0a00_0100];

    fn draw(next: &mut impl FnMut() -> u64) -> u32 {
        BASES[(next() % 4) as usize] | (next() as u32 & 0x1ff)
    }

    /// Makes one change of kind `EDITS[kind]` to `h` with random parts; the new address it
    /// draws joins `pool` (so the packets drawn afterwards use it).
    fn random_edit(
        h: &mut HostNet,
        kind: usize,
        next: &mut impl FnMut() -> u64,
        pool: &mut Vec<u32>,
    ) {
        let a = draw(next);
        pool.push(a);
        let (x, y, z) = (next() as usize, next() as usize, next() as usize);
        let n = h.ifaces().len();
        h.edit(|ifaces, routes| match kind {
            0 => {
                let p = [0, 8, 16, 23, 24, 32][x % 6];
                routes.push(RouteEntry {
                    net: a & mask(p),
                    prefix: p,
                    via: (y % 2 == 0).then_some(a ^ 1),
                    dev: z % n,
                });
            }
            1 if !routes.is_empty() => {
                routes.remove(x % routes.len());
            }
            2 if !routes.is_empty() => {
                let i = x % routes.len();
                let r = &mut routes[i];
                match y % 4 {
                    0 => {
                        r.prefix = [0, 8, 16, 23, 24, 32][z % 6];
                        r.net &= mask(r.prefix);
                    }
                    1 => r.net = a & mask(r.prefix),
                    2 => r.dev = z % n,
                    _ => r.via = if r.via.is_some() { None } else { Some(a) },
                }
            }
            3 => {
                let p = [8, 16, 24, 30, 31, 32][y % 6];
                let d = z % n;
                ifaces[d].addrs.push((a, p));
                // With its connected route or without.
                if x % 2 == 0 && p < 32 {
                    routes.push(RouteEntry {
                        net: a & mask(p),
                        prefix: p,
                        via: None,
                        dev: d,
                    });
                }
            }
            4 | 5 => {
                let i = &mut ifaces[z % n];
                if !i.addrs.is_empty() {
                    let k = x % i.addrs.len();
                    if kind == 4 {
                        i.addrs.remove(k);
                    } else {
                        i.addrs[k].1 = [8, 16, 24, 30, 31, 32][y % 6];
                    }
                }
            }
            6 => routes.reverse(),
            7 => routes.clear(),
            8 => {
                // Device 0's addresses and routes go to the last device.
                let moved = std::mem::take(&mut ifaces[0].addrs);
                ifaces[n - 1].addrs.extend(moved);
                for r in routes.iter_mut().filter(|r| r.dev == 0) {
                    r.dev = n - 1;
                }
            }
            _ => {}
        });
    }

    /// Random hosts (addresses of every prefix length, overlapping static routes, /0 and /32
    /// routes, rp_filter modes) and addresses drawn near theirs: the compiled routing gives
    /// the plain scans' answers as built, and again after each of a run of random changes
    /// through [`HostNet::edit`] (every kind in [`EDITS`] many times); each kind changed some
    /// answers, so a compiled copy left stale would have failed.
    #[test]
    fn compiled_routing_follows_every_kind_of_edit() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        const ROUNDS: usize = 300;
        const CHANGES: usize = 6;
        const PAIRS: usize = 60;
        let mut checked = 0;
        let mut seen = [0; 6];
        let (mut done, mut changed) = ([0; EDITS.len()], [0; EDITS.len()]);
        for round in 0..ROUNDS {
            let mut text = String::from("description = \"t\"\n");
            let nif = 1 + next() % 4;
            let mut addrs = Vec::new();
            for i in 0..nif {
                text.push_str(&format!("[[interface]]\nname = \"e{i}\"\naddresses = ["));
                for k in 0..1 + next() % 3 {
                    let a = draw(&mut next);
                    let p = [8, 16, 24, 30, 31, 32][(next() % 6) as usize];
                    addrs.push(a);
                    let sep = if k == 0 { "" } else { ", " };
                    text.push_str(&format!("{sep}\"{}/{p}\"", std::net::Ipv4Addr::from(a)));
                }
                text.push_str("]\n");
            }
            for _ in 0..next() % 5 {
                let a = draw(&mut next);
                let p = [0, 8, 16, 23, 24, 32][(next() % 6) as usize];
                let net = a & mask(p);
                let dev = next() % nif;
                let via = if next() % 2 == 0 {
                    format!("via = \"{}\"\n", std::net::Ipv4Addr::from(addrs[0] ^ 1))
                } else {
                    String::new()
                };
                text.push_str(&format!(
                    "[[route]]\nto = \"{}/{p}\"\n{via}dev = \"e{dev}\"\n",
                    std::net::Ipv4Addr::from(net)
                ));
            }
            text.push_str("[sysctl]\n");
            text.push_str(&format!("\"net.ipv4.ip_forward\" = {}\n", round % 5 != 0));
            text.push_str(&format!(
                "\"net.ipv4.conf.all.rp_filter\" = {}\n",
                next() % 3
            ));
            let sc = nfrs_scenario::parse(&text, std::path::Path::new("t.toml")).unwrap();
            let mut h = HostNet::new(&sc.host).unwrap();
            for change in 0..=CHANGES {
                // Change 0 is the host as built; then edits of kinds drawn at random (so each
                // kind follows every other one).
                let kind = (next() % EDITS.len() as u64) as usize;
                let before = h.clone();
                if change > 0 {
                    random_edit(&mut h, kind, &mut next, &mut addrs);
                    done[kind] += 1;
                }
                let pick = |r: u64, addrs: &[u32]| -> u32 {
                    let a = addrs[(r >> 8) as usize % addrs.len()];
                    match r % 8 {
                        0 => a,
                        1 => a | 0xff,
                        2 => a | 0xffff,
                        3 => a & 0xffff_ff00,
                        4 => a ^ (r >> 20) as u32 & 0x3ff,
                        5 => [0, u32::MAX, 0x7f00_0001, 0xe000_0001, 0xe000_0002]
                            [(r >> 40) as usize % 5],
                        _ => (r >> 32) as u32,
                    }
                };
                let mut differs = false;
                for _ in 0..PAIRS {
                    let (src, dst) = (pick(next(), &addrs), pick(next(), &addrs));
                    let dev = (next() % h.ifaces().len() as u64) as usize;
                    let got = h.route_input_on(Some(dev), src, dst);
                    seen[match got {
                        InRoute::Local => 0,
                        InRoute::Broadcast => 1,
                        InRoute::Multicast => 2,
                        InRoute::Forward { .. } => 3,
                        InRoute::NoRoute => 4,
                        InRoute::Drop => 5,
                    }] += 1;
                    let what = || {
                        let edit = if change > 0 { EDITS[kind] } else { "none" };
                        format!(
                            "{text}\nsrc {src:#x} dst {dst:#x} dev {dev}\n\
                             edit {change} ({edit})\n{h:?}"
                        )
                    };
                    assert_eq!(got, reference_route(&h, dev, src, dst), "{}", what());
                    differs |= got != before.route_input_on(Some(dev), src, dst);
                    for a in [src, dst] {
                        let want = {
                            let mut best: Option<&RouteEntry> = None;
                            for r in h.routes() {
                                if a & mask(r.prefix) == r.net
                                    && best.is_none_or(|b| r.prefix > b.prefix)
                                {
                                    best = Some(r);
                                }
                            }
                            best.map(|r| (r.dev, r.via.unwrap_or(a)))
                        };
                        assert_eq!(h.lookup(a), want, "{}", what());
                        assert_eq!(
                            h.is_local(a),
                            a >> 24 == 127
                                || h.ifaces().iter().any(|i| i.addrs.iter().any(|x| x.0 == a)),
                            "{}",
                            what()
                        );
                        differs |= h.lookup(a) != before.lookup(a);
                    }
                    checked += 1;
                }
                if change > 0 && differs {
                    changed[kind] += 1;
                }
            }
        }
        assert_eq!(checked, ROUNDS * (CHANGES + 1) * PAIRS);
        // Every kind of answer came up, each many times.
        assert!(seen.iter().all(|&n| n > 100), "{seen:?}");
        // Every kind of edit changed the answers of some hosts (so the checks above see it).
        for (k, n) in changed.iter().enumerate() {
            assert!(
                done[k] > 100 && *n > done[k] / 10,
                "{}: {n} of {} edits changed an answer ({changed:?} of {done:?})",
                EDITS[k],
                done[k]
            );
        }
        eprintln!("edits that changed an answer: {changed:?} of {done:?}");
    }

    /// A route left on a device the host does not have is refused at once (routing would
    /// otherwise index past the devices on the packet that takes it).
    #[test]
    #[should_panic(expected = "names device 7 of 4")]
    fn an_edit_leaving_a_route_on_no_device_panics() {
        let mut h = host("");
        h.edit(|_, routes| {
            routes.push(RouteEntry {
                net: 0,
                prefix: 0,
                via: None,
                dev: 7,
            })
        });
    }

    /// What the closure returns comes back; an edit that changes nothing leaves the answers.
    #[test]
    fn edit_returns_what_the_closure_returns() {
        let mut h = host("[[route]]\nto = \"0.0.0.0/0\"\ndev = \"p1\"\n");
        let n = h.edit(|ifaces, routes| ifaces.len() + routes.len());
        assert_eq!(n, 5);
        assert_eq!(h.lookup(0x0808_0808), Some((1, 0x0808_0808)));
        let gone = h.edit(|_, routes| routes.pop());
        assert_eq!(gone.map(|r| r.dev), Some(1));
        assert_eq!(h.lookup(0x0808_0808), None);
    }

    #[test]
    fn ageing_time_comes_from_the_bridge_table() {
        let mut h = host("ageing_time = 2\n");
        let a = [2, 0, 0, 0, 0, 0xa];
        h.learn(a, 0, S);
        assert_eq!(h.fdb.port(&a, 3 * S - 1), Some(0));
        assert_eq!(h.fdb.port(&a, 3 * S), None);
        assert_eq!(h.fdb.port_unaged(&a), Some(0));
    }
}
