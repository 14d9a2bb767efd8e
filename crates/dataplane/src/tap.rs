//! The TUN device of `nfrs run` (`[live] tap = "nfrs0"`): the way between the engine and the
//! host kernel's own stack, so that packets nfrs delivers locally (after INPUT; REDIRECT and DNAT
//! to a local address included) reach real local processes, and what those processes send
//! crosses nfrs's OUTPUT and POSTROUTING before it leaves.
//!
//! The device is a layer-3 TUN (`IFF_TUN | IFF_NO_PI`: bare IPv4 packets, no Ethernet header,
//! so no ARP to fake). At start the daemon gives the kernel, on that device, every address nfrs
//! owns (interfaces and bridges, with their prefix: the kernel adds the connected route and the
//! broadcast address itself) and one route per `[[route]]` of the host file (device the TUN,
//! preferred source the first address of the route's interface), so the kernel's answers and
//! connections go back into the TUN and nfrs routes them. The interfaces nfrs attaches get
//! `rp_filter = 1` while it runs: on AF_PACKET their frames also reach the kernel's stack
//! directly (nfrs reads them beside it; AF_XDP takes them away), and a local destination there
//! must not be delivered around nfrs's rules; strict reverse-path filtering drops them, since
//! every source routes back through the TUN, not the interface. The device is not persistent:
//! it vanishes, with its addresses and routes, when the daemon exits.

use crate::daemon::{emit_events, Live, Ports, Wire};
use crate::netlink::{Msg, Socket, NLM_F_CREATE, NLM_F_EXCL};
use nfrs_engine::engine::Engine;
use nfrs_scenario::Host;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Largest packet read from the device.
const RX_MAX: usize = 65535;
/// Packets read from the device per poll round (so it cannot starve the interfaces).
pub const BATCH: usize = 64;

/// The open TUN device.
#[derive(Debug)]
pub struct Tap {
    dev: std::fs::File,
    /// The device's name.
    pub name: String,
    /// Its kernel index (0 for a test stand-in).
    pub ifindex: u32,
    rx: Vec<u8>,
    /// Sysctl files changed at start, with the values to put back at exit.
    restore: Vec<(PathBuf, String)>,
    /// Packets read from the kernel and sent through OUTPUT.
    pub from_kernel: u64,
    /// Packets handed to the kernel.
    pub to_kernel: u64,
    /// The kernel conntrack entries behind `SO_ORIGINAL_DST` (`[live] tap_original_dst`).
    pub origdst: Option<crate::origdst::OrigDst>,
}

impl Tap {
    /// A stand-in over any packet-preserving descriptor (a datagram socket in tests).
    pub fn from_fd(fd: OwnedFd, name: &str) -> Tap {
        Tap {
            dev: std::fs::File::from(fd),
            name: name.to_string(),
            ifindex: 0,
            rx: vec![0u8; RX_MAX],
            restore: Vec::new(),
            from_kernel: 0,
            to_kernel: 0,
            origdst: None,
        }
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }

    /// Hands one IPv4 packet to the kernel; false when it was not taken.
    pub fn deliver(&mut self, ip: &[u8]) -> bool {
        let ok = matches!((&self.dev).write(ip), Ok(n) if n == ip.len());
        self.to_kernel += u64::from(ok);
        ok
    }

    /// Reads the next packet the kernel sent (non-blocking): its length in [`Tap::packet`].
    pub fn recv(&mut self) -> Option<usize> {
        loop {
            match (&self.dev).read(&mut self.rx) {
                Ok(0) => return None,
                Ok(n) => {
                    self.from_kernel += 1;
                    return Some(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
    }

    /// The packet [`Tap::recv`] read (`n` bytes).
    pub fn packet(&self, n: usize) -> &[u8] {
        &self.rx[..n.min(self.rx.len())]
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        for (path, value) in self.restore.drain(..) {
            let _ = std::fs::write(&path, value);
        }
    }
}

/// `nfrs run`'s start: with `[live] tap = NAME`, sets the device up (the report on stderr) and
/// turns the engine's modelled host stack off (with `original_dst`, opens the ctnetlink socket
/// of [`crate::origdst`]); without, nothing.
pub fn start(
    name: &Option<String>,
    host: &Host,
    engine: &mut Engine,
    original_dst: bool,
) -> Result<Option<Tap>, String> {
    let Some(name) = name else {
        return Ok(None);
    };
    let (mut tap, report) = setup(name, host)?;
    for l in report {
        eprintln!("nfrs run: {l}");
    }
    if original_dst {
        match crate::origdst::OrigDst::open() {
            Ok(mut o) => match o.kernel_tracks() {
                Ok(false) => {
                    tap.origdst = Some(o);
                    eprintln!("nfrs run: TUN {name}: REDIRECT/DNAT to local processes entered in the kernel's conntrack table (SO_ORIGINAL_DST)");
                }
                Ok(true) => eprintln!("nfrs run: warning: TUN {name}: the kernel tracks connections in this namespace itself (an iptables/nft rule uses conntrack): SO_ORIGINAL_DST entries off (the kernel would take a redirected SYN as the reply of nfrs's entry and the connection would not open)"),
                Err(e) => eprintln!("nfrs run: warning: TUN {name}: cannot probe the kernel's conntrack over loopback ({e}): SO_ORIGINAL_DST entries off"),
            },
            Err(e) => eprintln!("nfrs run: warning: TUN {name}: no ctnetlink socket ({e}): SO_ORIGINAL_DST will not answer"),
        }
    }
    engine.external_stack = true;
    Ok(Some(tap))
}

/// What the kernel sent into the TUN (at most [`BATCH`] packets): each enters the engine's
/// OUTPUT path (raw, conntrack, mangle, nat, filter, routing, POSTROUTING) as a packet of the
/// host's own, and what comes out is sent like any other packet.
pub fn from_host<P: Ports + ?Sized>(live: &mut Live, ports: &P, w: &mut Wire) {
    for _ in 0..BATCH {
        let Some(t) = w.tap.as_mut() else { return };
        let Some(n) = t.recv() else { return };
        let pkt = t.packet(n);
        // IPv4 only (the kernel may send IPv6 router solicitations on the device).
        if n < 20 || pkt[0] >> 4 != 4 {
            continue;
        }
        let mut ip = live.pool.pop().unwrap_or_else(|| Vec::with_capacity(2048));
        ip.clear();
        ip.extend_from_slice(pkt);
        let watched = if live.events.active() {
            crate::events::packet_tuple(&ip)
        } else {
            None
        };
        live.engine.events.clear();
        live.engine.send_host(ip, None, live.now, false);
        if let (Some(t), Some(ct)) = (watched, live.engine.ct.as_mut()) {
            live.events.after_packet(ct, &t, live.now);
        }
        emit_events(live, ports, w, usize::MAX, &[0; 14]);
    }
}

/// Opens TUN device `name`, brings it up with the host's addresses and routes, and sets
/// `rp_filter = 1` on the attached interfaces. Returns the device and lines for the startup
/// report (warnings start with `warning:`).
pub fn setup(name: &str, host: &Host) -> Result<(Tap, Vec<String>), String> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('/') {
        return Err(format!("[live] tap = `{name}`: not a valid interface name"));
    }
    let fd = open_tun(name).map_err(|e| format!("TUN device `{name}`: /dev/net/tun: {e}"))?;
    let mut tap = Tap::from_fd(fd, name);
    tap.ifindex = ifindex(name).map_err(|e| format!("TUN device `{name}`: {e}"))?;
    let mut report = Vec::new();
    let mut nl = Socket::open(libc::NETLINK_ROUTE).map_err(|e| format!("netlink: {e}"))?;
    let mtu = host.interfaces.iter().map(|i| i.mtu).max().unwrap_or(1500);
    nl.request(&mut link_msg(tap.ifindex, mtu))
        .map_err(|e| format!("TUN device `{name}`: setting it up (mtu {mtu}): {e}"))?;
    let owned = host
        .interfaces
        .iter()
        .map(|i| (&i.name, &i.addresses))
        .chain(host.bridges.iter().map(|b| (&b.name, &b.addresses)));
    let mut given = Vec::new();
    for (dev, addrs) in owned.clone() {
        for a in addrs {
            match nl.request(&mut addr_msg(tap.ifindex, a.addr, a.prefix)) {
                Ok(()) => given.push(format!("{}/{} ({dev})", a.addr, a.prefix)),
                Err(e) => report.push(format!(
                    "warning: {name}: address {}/{} ({dev}): {e}",
                    a.addr, a.prefix
                )),
            }
        }
    }
    let mut routes = Vec::new();
    for r in &host.routes {
        let d = r.dest();
        let src = owned
            .clone()
            .find(|(n, _)| **n == r.dev)
            .and_then(|(_, a)| a.first())
            .map(|c| c.addr);
        let text = format!(
            "{}/{}{}",
            d.addr,
            d.prefix,
            src.map(|s| format!(" src {s}")).unwrap_or_default()
        );
        match nl.request(&mut route_msg(tap.ifindex, d.addr, d.prefix, src)) {
            Ok(()) => routes.push(text),
            Err(e) => report.push(format!("warning: {name}: route {text}: {e}")),
        }
    }
    for i in &host.interfaces {
        let path = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{}/rp_filter", i.name));
        let Ok(old) = std::fs::read_to_string(&path) else {
            report.push(format!("warning: {}: cannot read rp_filter", i.name));
            continue;
        };
        if old.trim() != "1" {
            match std::fs::write(&path, "1") {
                Ok(()) => tap.restore.push((path, old)),
                Err(e) => report.push(format!("warning: {}: rp_filter = 1: {e}", i.name)),
            }
        }
    }
    if std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/rp_filter")
        .is_ok_and(|v| v.trim() == "2")
    {
        report.push(
            "warning: net.ipv4.conf.all.rp_filter = 2 (loose) wins over the interfaces' 1: the kernel may deliver packets for nfrs's addresses around nfrs's rules (sysctl -w net.ipv4.conf.all.rp_filter=0)".into(),
        );
    }
    report.insert(
        0,
        format!(
            "TUN {name} (ifindex {}, mtu {mtu}): local processes behind INPUT/OUTPUT; kernel addresses {}; routes {}; rp_filter=1 on {}",
            tap.ifindex,
            if given.is_empty() { "none".into() } else { given.join(", ") },
            if routes.is_empty() { "connected only".into() } else { routes.join(", ") },
            host.interfaces.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
        ),
    );
    Ok((tap, report))
}

/// Opens `/dev/net/tun` as layer-3 device `name` (non-persistent, non-blocking).
fn open_tun(name: &str) -> io::Result<OwnedFd> {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &b) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = b as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: `dev` is an open /dev/net/tun; `ifr` is a valid ifreq (NUL-terminated name, the
    // flags set) that the kernel reads and writes during the call only.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(dev))
}

fn ifindex(name: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("{name}: bad ifindex")))
}

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

/// Sets the link up with `mtu` (as `ip link set DEV up mtu MTU`).
fn link_msg(ifindex: u32, mtu: u32) -> Msg {
    // ifinfomsg: family, pad, type; index; flags; change mask.
    let mut head = [0u8; 16];
    head[0] = libc::AF_UNSPEC as u8;
    head[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    head[8..12].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
    head[12..16].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
    let mut m = Msg::new(RTM_NEWLINK, 0, &head);
    m.attr(4, &mtu.to_ne_bytes()); // IFLA_MTU
    m
}

/// Adds `addr/prefix`, with its broadcast address below /31 (as `ip addr add A/P brd +`).
fn addr_msg(ifindex: u32, addr: Ipv4Addr, prefix: u8) -> Msg {
    // ifaddrmsg: family, prefix length, flags, scope universe; index.
    let mut head = [libc::AF_INET as u8, prefix, 0, 0, 0, 0, 0, 0];
    head[4..].copy_from_slice(&ifindex.to_ne_bytes());
    let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &head);
    m.attr(2, &addr.octets()); // IFA_LOCAL
    m.attr(1, &addr.octets()); // IFA_ADDRESS
    if prefix < 31 {
        let host = u32::MAX >> prefix;
        let brd = Ipv4Addr::from(u32::from(addr) | host);
        m.attr(4, &brd.octets()); // IFA_BROADCAST
    }
    m
}

/// Adds a link-scope route `dst/prefix dev ifindex [src]` to the main table (as `ip route add
/// D/P dev DEV src S proto static scope link`).
fn route_msg(ifindex: u32, dst: Ipv4Addr, prefix: u8, src: Option<Ipv4Addr>) -> Msg {
    // rtmsg: family, dst_len, src_len, tos, table main, protocol static, scope link, type
    // unicast; flags 0.
    let head = [
        libc::AF_INET as u8,
        prefix,
        0,
        0,
        254,
        4,
        253,
        1,
        0,
        0,
        0,
        0,
    ];
    let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &head);
    if prefix > 0 {
        m.attr(1, &dst.octets()); // RTA_DST
    }
    if let Some(s) = src {
        m.attr(7, &s.octets()); // RTA_PREFSRC
    }
    m.attr(4, &ifindex.to_ne_bytes()); // RTA_OIF
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::hex;

    /// Recorded on Linux 6.18 (x86-64) with `strace -e write=3 -xx` of iproute2 6.1 in a
    /// namespace whose TUN device t0 has index 2: `ip link set t0 up mtu 1400`, `ip addr add
    /// 10.0.0.1/24 brd + dev t0`, `ip route add 203.0.113.0/24 dev t0 src 10.0.0.1 proto
    /// static scope link` (sequence numbers as ip sent them).
    #[cfg(target_endian = "little")]
    #[test]
    fn requests_equal_iproute2() {
        let link = hex("28000000 1000 0500 dacf076b 00000000
            00000000 02000000 01000000 01000000 0800 0400 78050000");
        let addr = hex("30000000 1400 0506 dacf076b 00000000 02180000 02000000
            0800 0200 0a000001 0800 0100 0a000001 0800 0400 0a0000ff");
        let route = hex(
            "34000000 1800 0506 dbcf076b 00000000 02180000 fe04fd01 00000000
            0800 0100 cb007100 0800 0700 0a000001 0800 0400 02000000",
        );
        let a = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(link_msg(2, 1400).bytes(0x6b07_cfda).unwrap(), &link[..]);
        assert_eq!(addr_msg(2, a, 24).bytes(0x6b07_cfda).unwrap(), &addr[..]);
        let mut r = route_msg(2, Ipv4Addr::new(203, 0, 113, 0), 24, Some(a));
        assert_eq!(r.bytes(0x6b07_cfdb).unwrap(), &route[..]);
    }

    #[test]
    fn bad_names_are_refused() {
        let h = Host::default();
        for n in ["", "a/b", "sixteen-chars-xx"] {
            assert!(setup(n, &h).unwrap_err().contains("not a valid"), "{n}");
        }
    }

    #[test]
    fn a_stand_in_carries_whole_packets() {
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut t = Tap::from_fd(OwnedFd::from(a), "t0");
        assert_eq!(t.recv(), None);
        b.send(&[0x45, 1, 2, 3]).unwrap();
        let n = t.recv().unwrap();
        assert_eq!(t.packet(n), &[0x45, 1, 2, 3]);
        assert!(t.deliver(&[9, 8, 7]));
        let mut r = [0u8; 16];
        assert_eq!(b.recv(&mut r).unwrap(), 3);
        assert_eq!((t.from_kernel, t.to_kernel), (1, 1));
    }

    use crate::daemon::recorder::Recorder as Rec;

    const PEER: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];

    /// A routed gateway (a: 10.0.0.1/24, b: 10.0.1.1/24) with `rules`; with `tap`, a stand-in
    /// TUN whose kernel side is returned.
    fn gateway(
        rules: &str,
        tap: bool,
    ) -> (Live, Rec, Wire, Option<std::os::unix::net::UnixDatagram>) {
        let h = crate::hostfile::parse(
            "[[interface]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\n[[interface]]\nname = \"b\"\naddress = \"10.0.1.1/24\"\n[sysctl]\n\"net.ipv4.ip_forward\" = \"1\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
        .host;
        let rs = nfrs_rules::restore::restore_new(rules, &Default::default()).unwrap();
        let mut engine = Engine::new(
            nfrs_engine::host::HostNet::new(&h).unwrap(),
            rs,
            &h.effective_sysctls(),
        )
        .unwrap();
        let mut w = Wire::default();
        let mut kernel = None;
        if tap {
            let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            w.tap = Some(Tap::from_fd(OwnedFd::from(a), "t0"));
            engine.external_stack = true;
            kernel = Some(b);
        }
        // The peers' MACs are known (no ARP in these tests).
        w.neigh.add_static(0, 0x0a00_0002, PEER);
        w.neigh.add_static(1, 0x0a00_0102, PEER);
        let live = Live::for_test(engine);
        let rec = Rec {
            macs: vec![[0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2]],
            sent: Default::default(),
        };
        (live, rec, w, kernel)
    }

    fn ip(line: &str) -> Vec<u8> {
        let l = nfrs_wire::line::parse_input_line(line).unwrap();
        nfrs_wire::build::build_ipv4(&l.spec, &Default::default()).unwrap()
    }

    fn frame(dev_mac: [u8; 6], line: &str) -> Vec<u8> {
        let mut f = dev_mac.to_vec();
        f.extend_from_slice(&PEER);
        f.extend_from_slice(&[8, 0]);
        f.extend_from_slice(&ip(line));
        f
    }

    fn kernel_reads(k: &std::os::unix::net::UnixDatagram) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let mut b = [0u8; 2048];
        while let Ok(n) = k.recv(&mut b) {
            v.push(b[..n].to_vec());
        }
        v
    }

    fn desc(ip: &[u8]) -> nfrs_wire::desc::PacketDesc {
        nfrs_wire::desc::PacketDesc::parse_ipv4(ip, 0).unwrap()
    }

    #[test]
    fn without_a_tun_the_model_answers_and_other_local_packets_are_dropped() {
        let (mut live, rec, mut w, _) = gateway("*filter\nCOMMIT\n", false);
        let ping = frame(
            rec.macs[0],
            "0 a icmp 10.0.0.2 > 10.0.0.1 type=8 id=1 seq=1",
        );
        crate::daemon::frame_in(&mut live, &rec, &mut w, 0, &ping);
        let sent = rec.sent.take();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].1[14 + 20], 0, "the engine's echo reply");
        assert_eq!(w.local_dropped, 1);
    }

    #[test]
    fn local_packets_cross_the_tun_and_the_kernels_answers_cross_output() {
        let rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j DROP\n-A OUTPUT -p icmp --icmp-type echo-reply -j ACCEPT\nCOMMIT\n";
        let (mut live, rec, mut w, k) = gateway(rules, true);
        let k = k.unwrap();
        // A ping to the gateway: handed to the kernel as it came, the model stays silent.
        let ping = frame(
            rec.macs[0],
            "0 a icmp 10.0.0.2 > 10.0.0.1 type=8 id=1 seq=1",
        );
        crate::daemon::frame_in(&mut live, &rec, &mut w, 0, &ping);
        assert!(rec.sent.take().is_empty());
        let got = kernel_reads(&k);
        assert_eq!(got, vec![ping[14..].to_vec()]);
        assert_eq!(w.local_dropped, 0);
        // The kernel's echo reply crosses OUTPUT (counted) and leaves by a to the peer.
        let reply = ip("0 a icmp 10.0.0.1 > 10.0.0.2 type=0 id=1 seq=1");
        k.send(&reply).unwrap();
        from_host(&mut live, &rec, &mut w);
        let sent = rec.sent.take();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, 0);
        assert_eq!(&sent[0].1[..12], &[PEER, rec.macs[0]].concat()[..]);
        assert_eq!(&sent[0].1[14..], &reply[..]);
        let save = nfrs_rules::save::save_store(&live.engine.ruleset_with_counters());
        assert!(save.contains("[1:28] -A OUTPUT -p icmp"), "{save}");
        // INPUT drops port 22 before the kernel sees it; port 80 passes.
        let ssh = frame(rec.macs[0], "0 a tcp 10.0.0.2:40000 > 10.0.0.1:22 flags=S");
        crate::daemon::frame_in(&mut live, &rec, &mut w, 0, &ssh);
        assert!(kernel_reads(&k).is_empty());
        let web = frame(rec.macs[0], "0 a tcp 10.0.0.2:40000 > 10.0.0.1:80 flags=S");
        crate::daemon::frame_in(&mut live, &rec, &mut w, 0, &web);
        assert_eq!(kernel_reads(&k).len(), 1);
        // No RST from the model for either.
        assert!(rec.sent.take().is_empty());
        // Not IPv4 from the kernel (an IPv6 router solicitation): ignored.
        k.send(&[0x60, 0, 0, 0, 0, 8, 58, 255]).unwrap();
        from_host(&mut live, &rec, &mut w);
        assert!(rec.sent.take().is_empty());
    }

    #[test]
    fn redirect_reaches_the_kernel_and_its_reply_is_translated_back() {
        let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -i a -p tcp --dport 80 -j REDIRECT --to-ports 3128\nCOMMIT\n";
        let (mut live, rec, mut w, k) = gateway(rules, true);
        let k = k.unwrap();
        let syn = frame(
            rec.macs[0],
            "0 a tcp 10.0.0.2:40000 > 198.51.100.10:80 flags=S seq=1",
        );
        crate::daemon::frame_in(&mut live, &rec, &mut w, 0, &syn);
        let got = kernel_reads(&k);
        assert_eq!(got.len(), 1);
        let d = desc(&got[0]);
        assert_eq!((d.dst, d.dport), (Ipv4Addr::new(10, 0, 0, 1), 3128));
        assert!(nfrs_wire::checksum::verify_transport(
            d.src,
            d.dst,
            6,
            &got[0][20..]
        ));
        // squid's SYN-ACK from 10.0.0.1:3128 leaves as from 198.51.100.10:80.
        let synack = ip("0 a tcp 10.0.0.1:3128 > 10.0.0.2:40000 flags=SA seq=9 ack=2");
        k.send(&synack).unwrap();
        from_host(&mut live, &rec, &mut w);
        let sent = rec.sent.take();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let d = desc(&sent[0].1[14..]);
        assert_eq!(
            (d.src, d.sport, d.dst, d.dport),
            (
                Ipv4Addr::new(198, 51, 100, 10),
                80,
                Ipv4Addr::new(10, 0, 0, 2),
                40000
            )
        );
        let c = crate::cmds::conntrack(&mut live.engine, &["-L".into()], 2_000);
        assert!(
            c.stdout.contains("dst=198.51.100.10 sport=40000 dport=80 src=10.0.0.1 dst=10.0.0.2 sport=3128 dport=40000"),
            "{}",
            c.stdout
        );
    }

    /// Root only (skipped otherwise), in a network namespace of its own: a redirected SYN puts
    /// the SO_ORIGINAL_DST entry into the kernel's table; the sweep keeps it while the engine's
    /// connection is open and deletes it once the connection reached TIME_WAIT; a second
    /// connection's entry goes when the engine's entry is deleted (`conntrack -D`).
    #[test]
    fn the_kernel_entry_goes_when_the_connection_ends() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: not root");
            return;
        }
        if std::process::Command::new("conntrack")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped: no conntrack tool");
            return;
        }
        std::thread::spawn(|| {
            // SAFETY: unshare affects only this thread; what it starts later inherits it.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                eprintln!("skipped: unshare: {}", io::Error::last_os_error());
                return;
            }
            let kernel = |dport: &str| {
                let o = std::process::Command::new("conntrack")
                    .args(["-L", "-p", "tcp", "--dport", dport])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&o.stdout).into_owned()
            };
            let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -i a -p tcp -j REDIRECT --to-ports 3128\nCOMMIT\n";
            let (mut live, rec, mut w, k) = gateway(rules, true);
            let k = k.unwrap();
            w.tap.as_mut().unwrap().origdst = Some(crate::origdst::OrigDst::open().unwrap());
            let client = |live: &mut Live, w: &mut Wire, l: &str| {
                let f = frame(rec.macs[0], &format!("0 a tcp 10.0.0.2:40000 > 198.51.100.10:80 win=64240 {l}"));
                crate::daemon::frame_in(live, &rec, w, 0, &f);
            };
            let squid = |live: &mut Live, w: &mut Wire, l: &str| {
                k.send(&ip(&format!("0 a tcp 10.0.0.1:3128 > 10.0.0.2:40000 win=64240 {l}")))
                    .unwrap();
                from_host(live, &rec, w);
            };
            let sweep = |live: &mut Live, w: &mut Wire| {
                let o = w.tap.as_mut().unwrap().origdst.as_mut().unwrap();
                o.sweep(live.engine.ct.as_ref(), live.now);
                o.removed
            };
            client(&mut live, &mut w, "flags=S seq=1");
            let want = "src=10.0.0.2 dst=198.51.100.10 sport=40000 dport=80 [UNREPLIED] src=10.0.0.1 dst=10.0.0.2 sport=3128 dport=40000";
            assert!(kernel("80").contains(want), "{}", kernel("80"));
            squid(&mut live, &mut w, "flags=SA seq=9 ack=2");
            client(&mut live, &mut w, "flags=A seq=2 ack=10");
            client(&mut live, &mut w, "flags=FA seq=2 ack=10");
            assert_eq!(sweep(&mut live, &mut w), 0);
            assert!(kernel("80").contains(want), "kept while closing");
            squid(&mut live, &mut w, "flags=FA seq=10 ack=3");
            client(&mut live, &mut w, "flags=A seq=3 ack=11");
            let c = crate::cmds::conntrack(&mut live.engine, &["-L".into()], live.now);
            assert!(c.stdout.contains("TIME_WAIT"), "{}", c.stdout);
            assert_eq!(sweep(&mut live, &mut w), 1);
            assert_eq!(kernel("80"), "", "deleted at TIME_WAIT");
            assert_eq!(rec.sent.take().len(), 2, "SYN-ACK and FIN left by a");
            // A second connection; its engine entry deleted by the user.
            let f = frame(rec.macs[0], "0 a tcp 10.0.0.2:40001 > 198.51.100.10:81 win=64240 flags=S seq=1");
            crate::daemon::frame_in(&mut live, &rec, &mut w, 0, &f);
            assert!(kernel("81").contains("sport=3128 dport=40001"), "{}", kernel("81"));
            assert_eq!(sweep(&mut live, &mut w), 1, "still open");
            let args = ["-D".into(), "-p".into(), "tcp".into(), "--dport".into(), "81".into()];
            crate::cmds::conntrack(&mut live.engine, &args, live.now);
            assert_eq!(sweep(&mut live, &mut w), 2);
            assert_eq!(kernel("81"), "");
            // A fourth, its kernel entry past the 120 s it was inserted with: forgotten, not
            // deleted (the kernel dropped it itself; here the clock is the test's, so it is
            // still there).
            let f = frame(
                rec.macs[0],
                "0 a tcp 10.0.0.2:40003 > 198.51.100.10:83 win=64240 flags=S seq=1",
            );
            crate::daemon::frame_in(&mut live, &rec, &mut w, 0, &f);
            let at = live.now;
            live.now += 120 * nfrs_conntrack::SEC;
            assert_eq!(sweep(&mut live, &mut w), 2, "forgotten, not deleted");
            assert!(kernel("83").contains("dport=40003"));
            live.now = at;
            // A third, left open: the daemon's exit (the device dropped) deletes it.
            let f = frame(rec.macs[0], "0 a tcp 10.0.0.2:40002 > 198.51.100.10:82 win=64240 flags=S seq=1");
            crate::daemon::frame_in(&mut live, &rec, &mut w, 0, &f);
            assert!(kernel("82").contains("dport=40002"));
            drop(w);
            assert_eq!(kernel("82"), "", "deleted at exit");
            assert!(kernel("83").contains("dport=40003"), "not held any more");
            assert_eq!(kernel_reads(&k).len(), 7, "the client's seven packets reached the kernel");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_bridge_address_reaches_the_kernel_and_the_answer_leaves_by_the_stations_port() {
        let mut h = crate::hostfile::parse(
            "[[interface]]\nname = \"p0\"\n[[interface]]\nname = \"p1\"\n[[bridge]]\nname = \"br0\"\nports = [\"p0\", \"p1\"]\naddress = \"10.0.0.1/24\"\n[live]\nmode = \"bridge\"\n",
            std::path::Path::new("br.toml"),
        )
        .unwrap()
        .host;
        let macs = vec![[0x0a, 0, 0, 0, 0, 1], [0x0a, 0, 0, 0, 0, 2]];
        h.interfaces[0].mac = macs[0];
        h.interfaces[1].mac = macs[1];
        h.bridges[0].mac = macs[0];
        let rs =
            nfrs_rules::restore::restore_new("*filter\nCOMMIT\n", &Default::default()).unwrap();
        let mut engine = Engine::new(
            nfrs_engine::host::HostNet::new(&h).unwrap(),
            rs,
            &h.effective_sysctls(),
        )
        .unwrap();
        engine.external_stack = true;
        let (a, k) = std::os::unix::net::UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        k.set_nonblocking(true).unwrap();
        let mut w = Wire {
            tap: Some(Tap::from_fd(OwnedFd::from(a), "t0")),
            ..Default::default()
        };
        // Station 10.0.0.2 behind p0; the bridge (device 2) knows its MAC.
        w.neigh.add_static(2, 0x0a00_0002, PEER);
        let mut live = Live {
            engine,
            now: 1_000,
            pool: Vec::new(),
            events: Default::default(),
            log: Default::default(),
        };
        let rec = Rec {
            macs: macs.clone(),
            sent: Default::default(),
        };
        let ping = frame(macs[0], "0 p0 icmp 10.0.0.2 > 10.0.0.1 type=8 id=1 seq=1");
        crate::daemon::frame_in(&mut live, &rec, &mut w, 0, &ping);
        assert!(rec.sent.take().is_empty(), "the model stays silent");
        assert_eq!(kernel_reads(&k), vec![ping[14..].to_vec()]);
        k.send(&ip("0 br0 icmp 10.0.0.1 > 10.0.0.2 type=0 id=1 seq=1"))
            .unwrap();
        from_host(&mut live, &rec, &mut w);
        let sent = rec.sent.take();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, 0, "by the port the station was learned on");
        assert_eq!(&sent[0].1[..12], &[PEER, macs[0]].concat()[..]);
    }
}
