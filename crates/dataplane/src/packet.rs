//! The packet I/O of one interface: AF_XDP ([`crate::xdp`]) where the interface takes it,
//! else a raw AF_PACKET socket with a TPACKET_V3 receive ring when the kernel grants one (else
//! plain `recv` per frame) and `send` per frame. `[live] io` and `NFRS_PACKET_IO` (which wins)
//! choose: `auto` (AF_XDP, falling back to AF_PACKET with the reason), `xdp` (AF_XDP or a
//! clear error), `packet` (AF_PACKET with its ring), `recv` (AF_PACKET, plain recv).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const ETH_P_ALL: u16 = 0x0003;

/// Which packet I/O to use on the interfaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoChoice {
    /// AF_XDP where it can be set up, else AF_PACKET (the reason reported).
    #[default]
    Auto,
    /// AF_XDP or an error.
    Xdp,
    /// AF_PACKET with a TPACKET_V3 receive ring (plain recv if the kernel refuses the ring).
    Packet,
    /// AF_PACKET with plain recv per frame.
    Recv,
}

impl IoChoice {
    /// Parses `auto`, `xdp`, `packet` (or `ring`), `recv`.
    pub fn parse(s: &str) -> Option<IoChoice> {
        Some(match s {
            "auto" => IoChoice::Auto,
            "xdp" => IoChoice::Xdp,
            "packet" | "ring" => IoChoice::Packet,
            "recv" => IoChoice::Recv,
            _ => return None,
        })
    }

    /// The choice in force: `NFRS_PACKET_IO` if set (an unknown value is an error), else
    /// `file` (the host file's `[live] io`).
    pub fn resolve(file: IoChoice) -> Result<IoChoice, String> {
        match std::env::var("NFRS_PACKET_IO") {
            Ok(v) if !v.is_empty() => IoChoice::parse(&v)
                .ok_or_else(|| format!("NFRS_PACKET_IO=`{v}`: expected auto, xdp, packet or recv")),
            _ => Ok(file),
        }
    }
}

/// A raw packet socket on one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    /// The interface's name.
    pub name: String,
    /// Its kernel index.
    pub ifindex: i32,
    /// Its MAC (read from sysfs).
    pub mac: [u8; 6],
    ring: Option<crate::ring::Ring>,
    /// Why there is no ring, if there is none.
    pub ring_error: Option<String>,
    /// AF_XDP, when in use (the AF_PACKET socket then receives nothing: it only holds the
    /// promiscuous membership of a bridge port).
    xdp: Option<crate::xdp::XdpSocket>,
    /// Why AF_XDP is not in use, when `auto` fell back.
    pub xdp_error: Option<String>,
    /// Frames and bytes in and out (metrics); `send` counts what it sent.
    pub counters: std::sync::Arc<crate::metrics::IfCounters>,
}

/// The interface's MAC as sysfs shows it.
pub fn interface_mac(name: &str) -> io::Result<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address"))?;
    nfrs_scenario::host::parse_mac(text.trim()).map_err(io::Error::other)
}

/// The interface's index, or an error naming it.
pub fn interface_index(name: &str) -> io::Result<i32> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .map_err(|e| io::Error::new(e.kind(), format!("interface `{name}`: {e}")))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("interface `{name}`: bad ifindex")))
}

/// What the kernel's own stack would do on an interface nfrs attaches: each entry is a reason
/// it would not stay silent (down, ARP on, an IPv4 address of its own).
pub fn kernel_noise(name: &str) -> io::Result<Vec<String>> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
        .map_err(|e| io::Error::new(e.kind(), format!("interface `{name}`: {e}")))?;
    let flags = u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).map_err(|_| {
        io::Error::other(format!("interface `{name}`: bad flags `{}`", text.trim()))
    })?;
    let mut v = Vec::new();
    if flags & libc::IFF_UP as u32 == 0 {
        v.push(format!("{name} is down (ip link set {name} up)"));
    }
    if flags & libc::IFF_NOARP as u32 == 0 {
        v.push(format!(
            "{name} has ARP on: the kernel answers ARP too (ip link set {name} arp off)"
        ));
    }
    if has_ipv4(name) {
        v.push(format!(
            "{name} carries an IPv4 address: the kernel stack answers too (ip -4 addr flush dev {name})"
        ));
    }
    Ok(v)
}

/// Whether the kernel has an IPv4 address on interface `name` (SIOCGIFADDR).
fn has_ipv4(name: &str) -> bool {
    if name.len() >= libc::IFNAMSIZ {
        return false;
    }
    // SAFETY: plain socket(2) call; the result is checked and closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` is a fresh descriptor we exclusively own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &b) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = b as libc::c_char;
    }
    // SAFETY: `ifr` is a valid ifreq with a NUL-terminated name, writable for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFADDR, &mut ifr) };
    r == 0
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl PacketSocket {
    /// Opens interface `name` with the packet I/O `NFRS_PACKET_IO` names, else AF_PACKET
    /// (its ring when the kernel grants it).
    pub fn open(name: &str) -> io::Result<PacketSocket> {
        let io = IoChoice::resolve(IoChoice::Packet).map_err(io::Error::other)?;
        PacketSocket::open_with(name, io)
    }

    /// Opens interface `name` with packet I/O `io` (already resolved against the
    /// environment): AF_XDP, or a non-blocking raw AF_PACKET socket bound to it that does not
    /// see the frames it sends itself.
    pub fn open_with(name: &str, io: IoChoice) -> io::Result<PacketSocket> {
        let ifindex = interface_index(name)?;
        let mac = interface_mac(name)?;
        let (xdp, xdp_error) = match io {
            IoChoice::Auto | IoChoice::Xdp => match crate::xdp::XdpSocket::open(name, ifindex) {
                Ok(x) => (Some(x), None),
                Err(e) if io == IoChoice::Xdp => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("AF_XDP on `{name}` (xdp forced): {e}"),
                    ))
                }
                Err(e) => (None, Some(e.to_string())),
            },
            _ => (None, None),
        };
        // Under AF_XDP the packet socket listens to no protocol: it receives nothing.
        let proto = if xdp.is_some() { 0 } else { ETH_P_ALL };
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto.to_be()),
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor we exclusively own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // The ring must exist before the socket is bound.
        let (ring, ring_error) = if xdp.is_some() {
            (None, Some("AF_XDP".to_string()))
        } else if io == IoChoice::Recv {
            (None, Some("NFRS_PACKET_IO=recv".to_string()))
        } else {
            match crate::ring::Ring::new(fd.as_raw_fd()) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            }
        };
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto.to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: the pointer and length describe `sll`, alive for the call.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        })?;
        let one: libc::c_int = 1;
        // SAFETY: the pointer and length describe `one`, alive for the call.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            )
        })?;
        Ok(PacketSocket {
            fd,
            name: name.to_string(),
            ifindex,
            mac,
            ring,
            ring_error,
            xdp,
            xdp_error,
            counters: Default::default(),
        })
    }

    /// Puts the interface in promiscuous mode for as long as this socket lives (a bridge port
    /// must see frames for every MAC; the kernel drops the membership when the socket closes).
    pub fn set_promisc(&self) -> io::Result<()> {
        let mreq = libc::packet_mreq {
            mr_ifindex: self.ifindex,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        // SAFETY: the pointer and length describe `mreq`, alive for the call.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                &mreq as *const libc::packet_mreq as *const libc::c_void,
                std::mem::size_of::<libc::packet_mreq>() as u32,
            )
        })?;
        Ok(())
    }

    /// Whether AF_XDP is in use.
    pub fn is_xdp(&self) -> bool {
        self.xdp.is_some()
    }

    /// The receive method in use, for the startup report.
    pub fn method(&self) -> String {
        if let Some(x) = &self.xdp {
            return format!("AF_XDP ({})", x.describe());
        }
        let why = match &self.xdp_error {
            Some(e) => format!(" (AF_XDP unavailable: {e})"),
            None => String::new(),
        };
        let m = match (&self.ring, &self.ring_error) {
            (Some(_), _) => format!(
                "AF_PACKET, TPACKET_V3 receive ring ({} blocks of {} KiB), send per frame",
                crate::ring::BLOCK_NR,
                crate::ring::BLOCK_SIZE / 1024
            ),
            (None, e) => format!(
                "AF_PACKET, recv/send per frame (no ring: {})",
                e.as_deref().unwrap_or("?")
            ),
        };
        m + &why
    }

    /// Calls `f` with the frames waiting now (at most `max` with plain recv); `buf` is the
    /// receive buffer of the plain way.
    pub fn recv_batch(
        &self,
        buf: &mut [u8],
        max: usize,
        f: &mut dyn FnMut(&[u8]),
    ) -> io::Result<usize> {
        if let Some(x) = &self.xdp {
            return Ok(x.recv_batch(max, f));
        }
        if let Some(r) = &self.ring {
            return Ok(r.for_each(f));
        }
        let mut n = 0;
        while n < max {
            match self.recv(buf)? {
                Some(len) if len <= buf.len() => f(&buf[..len]),
                Some(_) => {}
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }

    /// Receives one frame into `buf`; `Ok(None)` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: `buf` is valid for writes of its length for the call.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(n as usize))
    }

    /// Sends one whole frame (under AF_XDP: queues it; [`PacketSocket::flush`] or a full
    /// batch sends it).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        if let Some(x) = &self.xdp {
            x.send(frame)?;
            self.counters.tx(frame.len());
            return Ok(());
        }
        // SAFETY: `frame` is valid for reads of its length for the call.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.counters.tx(n as usize);
        Ok(())
    }
}

impl PacketSocket {
    /// The kernel's loss counters of the packet I/O, when it keeps any (AF_XDP).
    pub fn io_stats(&self) -> Option<String> {
        self.xdp.as_ref().map(|x| x.stats())
    }

    /// Sends what `send` queued (AF_XDP); nothing to do for AF_PACKET.
    pub fn flush(&self) -> io::Result<()> {
        match &self.xdp {
            Some(x) => x.flush(),
            None => Ok(()),
        }
    }
}

impl AsRawFd for PacketSocket {
    /// The descriptor to poll for received frames.
    fn as_raw_fd(&self) -> RawFd {
        match &self.xdp {
            Some(x) => x.as_raw_fd(),
            None => self.fd.as_raw_fd(),
        }
    }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes; returns the readable flags.
pub fn poll_readable(fds: &[RawFd], ready: &mut Vec<bool>, timeout_ms: i32) -> io::Result<()> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is a valid array of `p.len()` pollfd entries for the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    ready.clear();
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            ready.resize(fds.len(), false);
            return Ok(());
        }
        return Err(e);
    }
    ready.extend(
        p.iter()
            .map(|x| x.revents & (libc::POLLIN | libc::POLLERR) != 0),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interface_is_named() {
        let e = PacketSocket::open("nfrs-no-such0").unwrap_err();
        assert!(e.to_string().contains("nfrs-no-such0"), "{e}");
    }

    #[test]
    fn kernel_noise_names_the_interface() {
        let e = kernel_noise("nfrs-no-such0").unwrap_err();
        assert!(e.to_string().contains("nfrs-no-such0"));
        // Loopback's flags (0x9 here: UP|LOOPBACK) lack IFF_NOARP, so that complaint appears.
        let v = kernel_noise("lo").unwrap();
        assert!(v.iter().any(|m| m.contains("has ARP on")), "{v:?}");
    }

    #[test]
    fn io_choices() {
        assert_eq!(IoChoice::parse("auto"), Some(IoChoice::Auto));
        assert_eq!(IoChoice::parse("xdp"), Some(IoChoice::Xdp));
        assert_eq!(IoChoice::parse("packet"), Some(IoChoice::Packet));
        assert_eq!(IoChoice::parse("ring"), Some(IoChoice::Packet));
        assert_eq!(IoChoice::parse("recv"), Some(IoChoice::Recv));
        assert_eq!(IoChoice::parse("XDP"), None);
        assert_eq!(IoChoice::default(), IoChoice::Auto);
    }

    #[test]
    fn loopback_mac_and_index() {
        assert_eq!(interface_mac("lo").unwrap(), [0; 6]);
        assert!(interface_index("lo").unwrap() >= 1);
    }
}
