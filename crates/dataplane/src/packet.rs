//! The packet I/O of one interface: AF_XDP ([`crate::xdp`]) where the interface takes it,
//! else a raw AF_PACKET socket with a TPACKET_V3 receive ring when the kernel grants one (else
//! plain `recv` per frame); AF_PACKET sends are queued ([`TxQueue`]) and leave in one
//! `sendmmsg` call a batch. `[live] io` and `NFRS_PACKET_IO` (which wins)
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
    /// AF_PACKET frames waiting for [`PacketSocket::flush`].
    txq: std::cell::RefCell<TxQueue>,
}

/// Frames queued on an AF_PACKET socket at most, before they must go out.
pub const TX_BATCH: usize = 64;
/// Bytes of queued frames at most (frames larger than this are sent alone).
const TX_BYTES: usize = TX_BATCH * 2048;

/// AF_PACKET frames waiting to be sent, stored back to back in one buffer allocated once, so
/// one `sendmmsg` call sends a whole batch without an allocation.
#[derive(Debug)]
pub struct TxQueue {
    bytes: Vec<u8>,
    /// Each queued frame's end offset in `bytes`.
    ends: Vec<usize>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

impl Default for TxQueue {
    fn default() -> TxQueue {
        TxQueue {
            bytes: Vec::with_capacity(TX_BYTES),
            ends: Vec::with_capacity(TX_BATCH),
            iovs: Vec::with_capacity(TX_BATCH),
            msgs: Vec::with_capacity(TX_BATCH),
        }
    }
}

impl TxQueue {
    /// Whether `len` more bytes fit in the queue (one more frame included).
    fn fits(&self, len: usize) -> bool {
        self.ends.len() < TX_BATCH && self.bytes.len() + len <= TX_BYTES
    }

    fn push(&mut self, head: &[u8], body: &[u8]) {
        self.bytes.extend_from_slice(head);
        self.bytes.extend_from_slice(body);
        self.ends.push(self.bytes.len());
    }

    /// How many frames are queued.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Sends every queued frame with `sendmmsg` on `fd`, in order, and empties the queue; a
    /// frame the kernel refuses is skipped (the rest still go). Returns the bytes of each frame
    /// sent through `sent`, and the first error.
    fn send_all(&mut self, fd: RawFd, sent: &mut dyn FnMut(usize)) -> io::Result<()> {
        let n = self.ends.len();
        if n == 0 {
            return Ok(());
        }
        self.iovs.clear();
        let mut start = 0;
        for &end in &self.ends {
            self.iovs.push(libc::iovec {
                // The kernel only reads through this pointer (sendmmsg).
                iov_base: self.bytes[start..].as_ptr() as *mut libc::c_void,
                iov_len: end - start,
            });
            start = end;
        }
        self.msgs.clear();
        for iov in self.iovs.iter_mut() {
            // SAFETY: mmsghdr is plain data; zeroed is a valid value (no address, no control).
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
            self.msgs.push(m);
        }
        let mut first_err = None;
        let mut at = 0;
        while at < n {
            // SAFETY: msgs[at..n] are initialised headers, each pointing at one iovec of
            // `iovs`, which points into `bytes`; none of them moves or is dropped during the
            // call, and the kernel writes only each header's msg_len.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.msgs[at..].as_mut_ptr(),
                    (n - at) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r <= 0 {
                // Zero is not an answer sendmmsg gives for a non-empty batch: taken as a refusal
                // of the frame at `at`, so the loop always moves on.
                let e = if r == 0 {
                    io::Error::from(io::ErrorKind::WriteZero)
                } else {
                    io::Error::last_os_error()
                };
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The frame at `at` was refused (too big, no buffer space...): it is lost, as
                // a refused send() loses it; the ones after it still go.
                first_err.get_or_insert(e);
                at += 1;
                continue;
            }
            for i in at..at + r as usize {
                sent(self.iovs[i].iov_len);
            }
            at += r as usize;
        }
        self.bytes.clear();
        self.ends.clear();
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
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

/// Sets the integer socket option `name` of `level` on `fd`.
pub(crate) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, alive for the call; the kernel only
    // reads it.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
    })
    .map(drop)
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
        set_int_option(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            1,
        )?;
        // Sent frames go straight to the driver (packet_direct_xmit), not through the
        // interface's queueing discipline; best effort. This daemon is the interface's only
        // sender (the kernel's stack is kept off it), so there is nothing to share a qdisc with.
        if std::env::var("NFRS_QDISC_BYPASS").as_deref() != Ok("0") {
            let _ = set_int_option(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                1,
            );
        }
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
            txq: Default::default(),
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
                "AF_PACKET, TPACKET_V3 receive ring ({} blocks of {} KiB), sendmmsg of up to {TX_BATCH} frames",
                crate::ring::BLOCK_NR,
                crate::ring::BLOCK_SIZE / 1024
            ),
            (None, e) => format!(
                "AF_PACKET, recv per frame, sendmmsg of up to {TX_BATCH} frames (no ring: {})",
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

    /// Queues one whole frame for sending: [`PacketSocket::flush`], or a full queue, sends
    /// what is queued (AF_XDP: on its tx ring; AF_PACKET: one `sendmmsg` call). Frames leave
    /// in the order they were queued.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.send_parts(&[], frame)
    }

    /// [`PacketSocket::send`] of the frame `head` followed by `body`, copied once, straight
    /// into the send queue (no joined copy first).
    pub fn send_parts(&self, head: &[u8], body: &[u8]) -> io::Result<()> {
        let len = head.len() + body.len();
        if let Some(x) = &self.xdp {
            x.send(head, body)?;
            self.counters.tx(len);
            return Ok(());
        }
        let mut q = self.txq.borrow_mut();
        let mut res = Ok(());
        if !q.fits(len) {
            res = self.send_queued(&mut q);
        }
        if q.fits(len) {
            q.push(head, body);
            return res;
        }
        // Larger than the whole queue: alone, after what was queued before it.
        let iov = [
            libc::iovec {
                iov_base: head.as_ptr() as *mut libc::c_void,
                iov_len: head.len(),
            },
            libc::iovec {
                iov_base: body.as_ptr() as *mut libc::c_void,
                iov_len: body.len(),
            },
        ];
        // SAFETY: msghdr is plain data; zeroed is a valid value (no address, no control).
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        m.msg_iov = iov.as_ptr() as *mut libc::iovec;
        m.msg_iovlen = 2;
        // SAFETY: `m` points at `iov`, whose buffers are valid for reads of their lengths for
        // the call; the kernel only reads them.
        let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &m, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.counters.tx(n as usize);
        res
    }

    fn send_queued(&self, q: &mut TxQueue) -> io::Result<()> {
        let c = &self.counters;
        q.send_all(self.fd.as_raw_fd(), &mut |len| c.tx(len))
    }

    /// Frames queued and not yet sent (AF_PACKET).
    pub fn queued(&self) -> usize {
        self.txq.borrow().len()
    }
}

impl PacketSocket {
    /// The kernel's loss counters of the packet I/O, when it keeps any (AF_XDP).
    pub fn io_stats(&self) -> Option<String> {
        self.xdp.as_ref().map(|x| x.stats())
    }

    /// Sends what `send` queued: AF_XDP's kick, AF_PACKET's `sendmmsg`.
    pub fn flush(&self) -> io::Result<()> {
        match &self.xdp {
            Some(x) => x.flush(),
            None => self.send_queued(&mut self.txq.borrow_mut()),
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

/// Descriptors to wait on and the readiness of each, kept between rounds of the packet loop
/// (no allocation a round).
#[derive(Debug, Default)]
pub struct PollSet {
    p: Vec<libc::pollfd>,
    /// Whether each descriptor, in the order given, was readable (or in error) at the last
    /// [`PollSet::wait`].
    pub ready: Vec<bool>,
}

impl PollSet {
    /// A set over `fds`, all waited for readability.
    pub fn new(fds: &[RawFd]) -> PollSet {
        PollSet {
            p: fds
                .iter()
                .map(|&fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect(),
            ready: vec![false; fds.len()],
        }
    }

    /// Waits until one of the descriptors is readable or `timeout_ms` passes (0: only looks)
    /// and sets [`PollSet::ready`].
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<()> {
        // SAFETY: `p` is a valid array of `p.len()` pollfd entries for the call.
        let r = unsafe {
            libc::poll(
                self.p.as_mut_ptr(),
                self.p.len() as libc::nfds_t,
                timeout_ms,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            self.ready.iter_mut().for_each(|r| *r = false);
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        for (r, x) in self.ready.iter_mut().zip(&self.p) {
            *r = x.revents & (libc::POLLIN | libc::POLLERR) != 0;
        }
        Ok(())
    }
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

    /// A unix datagram pair stands in for the packet socket: each message is one frame.
    fn dgram_pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors socketpair writes.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        // SAFETY: both descriptors are fresh and owned by nobody else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn read_all(fd: &OwnedFd) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 70_000];
        loop {
            // SAFETY: `buf` is valid for writes of its length for the call.
            let n = unsafe {
                libc::recv(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                return out;
            }
            out.push(buf[..n as usize].to_vec());
        }
    }

    #[test]
    fn tx_queue_sends_in_order_in_one_batch_and_skips_a_refused_frame() {
        let (a, b) = dgram_pair();
        let mut q = TxQueue::default();
        let frames: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 60 + usize::from(i)]).collect();
        for f in &frames {
            assert!(q.fits(f.len()));
            // Given as a header and the rest: queued as one frame.
            q.push(&f[..14], &f[14..]);
        }
        assert_eq!(q.len(), 5);
        let mut sent = Vec::new();
        q.send_all(a.as_raw_fd(), &mut |len| sent.push(len))
            .unwrap();
        assert!(q.is_empty());
        assert_eq!(sent, vec![60, 61, 62, 63, 64]);
        assert_eq!(read_all(&b), frames);
        // A frame larger than the socket's send buffer is refused (EMSGSIZE): it alone is
        // lost, the frames around it still go, and the error is returned.
        set_int_option(a.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096).unwrap();
        let big = vec![7u8; 60_000];
        q.push(&[], &frames[0]);
        q.push(&big, &[]);
        q.push(&frames[1], &[]);
        let mut sent = Vec::new();
        let e = q
            .send_all(a.as_raw_fd(), &mut |len| sent.push(len))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE), "{e}");
        assert_eq!(sent, vec![60, 61]);
        assert_eq!(read_all(&b), vec![frames[0].clone(), frames[1].clone()]);
        assert!(q.is_empty());
    }

    #[test]
    fn tx_queue_limits() {
        let mut q = TxQueue::default();
        for _ in 0..TX_BATCH {
            assert!(q.fits(60));
            q.push(&[0u8; 14], &[0u8; 46]);
        }
        assert!(!q.fits(60), "at most TX_BATCH frames");
        let q = TxQueue::default();
        assert!(q.fits(TX_BYTES));
        assert!(
            !q.fits(TX_BYTES + 1),
            "a frame larger than the queue goes alone"
        );
    }

    #[test]
    fn loopback_mac_and_index() {
        assert_eq!(interface_mac("lo").unwrap(), [0; 6]);
        assert!(interface_index("lo").unwrap() >= 1);
    }
}
