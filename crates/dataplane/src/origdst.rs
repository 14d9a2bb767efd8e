//! `SO_ORIGINAL_DST` for connections nfrs redirected to a local process through the TUN device
//! (`[live] tap`, `tap_original_dst`): a transparent proxy (squid `http_port ... intercept`)
//! asks the kernel for the destination its accepted connection had before REDIRECT/DNAT, but
//! the gateway's kernel never saw that NAT — nfrs did it. So, before the first packet (the SYN)
//! of such a connection is written to the TUN, nfrs inserts an entry with the same two tuples
//! into the kernel's own conntrack table through ctnetlink (`IPCTNL_MSG_CT_NEW`, create
//! exclusive), which is where the kernel's answer comes from.
//!
//! Kernel facts this rests on (measured on Linux 6.18 in a namespace with no iptables/nft rule,
//! see crates/dataplane/README.md): `getsockopt(SOL_IP, SO_ORIGINAL_DST)` looks the socket's
//! own tuple (local → peer) up in the namespace's conntrack hash and answers the original
//! direction's destination of the entry found, ENOENT without one; the kernel does not track
//! the TUN's packets itself while no rule needs conntrack there (`conntrack -L` stays empty
//! during a connection, and an inserted entry's state and timeout are never touched by the
//! connection's packets), so the inserted entry clashes with nothing; the NAT status bits
//! cannot be set through ctnetlink (the kernel keeps them unchangeable; conntrack-tools says
//! "ignoring DST_NAT") and the lookup does not need them. When some rule does make the kernel
//! track there, the inserted entry meets the redirected SYN as its reply direction and the
//! connection does not open (measured), so [`OrigDst::kernel_tracks`] probes at start and the
//! daemon leaves the feature off then.
//!
//! The message is the one `conntrack -I -p tcp -s C -d D --sport CP --dport DP --reply-src L
//! --reply-dst C --reply-port-src LP --reply-port-dst CP --state SYN_SENT -t 120` sends
//! (recorded with strace; the unit test checks the bytes). The entry lives 120 s (the kernel's
//! SYN_SENT timeout: the proxy asks right after accept); each SYN of such a connection inserts
//! it again, an existing entry with either tuple (an earlier connection from the same client
//! port) is deleted first, so a stale one never answers for a new connection. Entries are never
//! assured, so a full kernel table early-drops them; they cannot pile up beyond 120 s of
//! redirected connections. Only TCP (the kernel answers `SO_ORIGINAL_DST` for TCP and SCTP
//! only; SCTP is not done) and the engine's zone 0.

use nfrs_conntrack::conn::status;
use nfrs_conntrack::table::ConnTable;
use nfrs_conntrack::tuple::Tuple;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Seconds an inserted entry lives in the kernel (its SYN_SENT timeout).
pub const TIMEOUT_S: u32 = 120;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_ERROR: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_PROTOINFO: u16 = 4;
const CTA_TIMEOUT: u16 = 7;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;
const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: u16 = 4;
const CTA_PROTOINFO_TCP_FLAGS_REPLY: u16 = 5;
/// TCP_CONNTRACK_SYN_SENT.
const TCP_SYN_SENT: u8 = 1;
/// Window-scale flags conntrack-tools sends with `--state`: SACK_PERM | BE_LIBERAL, as flags
/// and as mask (the kernel never checks them here: it does not track these packets).
const TCP_FLAGS: [u8; 2] = [0x0a, 0x0a];

/// Largest message built (an insert is 164 bytes).
const MSG_MAX: usize = 192;

/// A message under construction in a fixed buffer (no allocation).
struct Msg {
    buf: [u8; MSG_MAX],
    len: usize,
}

impl Msg {
    fn new(kind: u16, flags: u16, seq: u32) -> Msg {
        let mut m = Msg {
            buf: [0; MSG_MAX],
            len: 16,
        };
        m.buf[4..6].copy_from_slice(&(NFNL_SUBSYS_CTNETLINK << 8 | kind).to_ne_bytes());
        m.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        m.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        // nfgenmsg: AF_INET, version 0, resource id 0.
        m.put(&[libc::AF_INET as u8, 0, 0, 0]);
        m
    }

    fn put(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    /// One attribute with its payload, padded to 4 bytes (padding zero).
    fn attr(&mut self, ty: u16, payload: &[u8]) {
        let l = 4 + payload.len();
        self.put(&(l as u16).to_ne_bytes());
        self.put(&ty.to_ne_bytes());
        self.put(payload);
        self.len = (self.len + 3) & !3;
    }

    /// Opens a nested attribute; [`Msg::end`] with the returned offset closes it.
    fn nest(&mut self, ty: u16) -> usize {
        let at = self.len;
        self.put(&[0, 0]);
        self.put(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let l = (self.len - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&l.to_ne_bytes());
    }

    fn tuple(&mut self, ty: u16, t: &Tuple) {
        let outer = self.nest(ty);
        let ip = self.nest(CTA_TUPLE_IP);
        self.attr(CTA_IP_V4_SRC, &t.src.to_be_bytes());
        self.attr(CTA_IP_V4_DST, &t.dst.to_be_bytes());
        self.end(ip);
        let proto = self.nest(CTA_TUPLE_PROTO);
        self.attr(CTA_PROTO_NUM, &[t.proto]);
        self.attr(CTA_PROTO_SRC_PORT, &t.src_l4.to_be_bytes());
        self.attr(CTA_PROTO_DST_PORT, &t.dst_l4.to_be_bytes());
        self.end(proto);
        self.end(outer);
    }

    fn bytes(&mut self) -> &[u8] {
        let l = self.len as u32;
        self.buf[..4].copy_from_slice(&l.to_ne_bytes());
        &self.buf[..self.len]
    }
}

/// The insert: entry `orig` / `reply`, TCP SYN_SENT, [`TIMEOUT_S`], create exclusive, acked.
fn insert_msg(orig: &Tuple, reply: &Tuple, seq: u32) -> Msg {
    let mut m = Msg::new(
        IPCTNL_MSG_CT_NEW,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE,
        seq,
    );
    m.tuple(CTA_TUPLE_ORIG, orig);
    m.tuple(CTA_TUPLE_REPLY, reply);
    m.attr(CTA_TIMEOUT, &TIMEOUT_S.to_be_bytes());
    let pi = m.nest(CTA_PROTOINFO);
    let tcp = m.nest(CTA_PROTOINFO_TCP);
    m.attr(CTA_PROTOINFO_TCP_STATE, &[TCP_SYN_SENT]);
    m.attr(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, &TCP_FLAGS);
    m.attr(CTA_PROTOINFO_TCP_FLAGS_REPLY, &TCP_FLAGS);
    m.end(tcp);
    m.end(pi);
    m
}

/// The delete of the entry holding tuple `t` in direction `ty` (orig or reply), acked.
fn delete_msg(ty: u16, t: &Tuple, seq: u32) -> Msg {
    let mut m = Msg::new(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, seq);
    m.tuple(ty, t);
    m
}

/// The get of the entry whose original tuple is `t`, acked (the entry, then the ack).
fn get_msg(t: &Tuple, seq: u32) -> Msg {
    let mut m = Msg::new(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_ACK, seq);
    m.tuple(CTA_TUPLE_ORIG, t);
    m
}

/// The ctnetlink socket of the daemon's namespace and what it did.
#[derive(Debug)]
pub struct OrigDst {
    fd: OwnedFd,
    seq: u32,
    rx: [u8; 512],
    /// Entries inserted.
    pub inserted: u64,
    /// Inserts the kernel refused (other than an existing entry, which is replaced).
    pub failed: u64,
    /// The last refusal's errno.
    pub last_error: i32,
}

impl OrigDst {
    /// Opens a NETLINK_NETFILTER socket in the current network namespace.
    pub fn open() -> io::Result<OrigDst> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_NETFILTER,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero sockaddr_nl is valid (pid 0: the kernel picks the port id).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: sa is a valid sockaddr_nl of the size passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OrigDst {
            fd,
            seq: 1,
            rx: [0; 512],
            inserted: 0,
            failed: 0,
            last_error: 0,
        })
    }

    /// Does the kernel track connections in this namespace itself (some iptables/nft rule
    /// needs conntrack)? Then an inserted entry would meet the SYN as its own reply direction
    /// and the connection would not open (measured), so the daemon leaves the feature off.
    /// Probed with one UDP datagram over loopback between two sockets of its own, then a
    /// ctnetlink get of that flow; `Err` when the probe cannot run (loopback down).
    pub fn kernel_tracks(&mut self) -> io::Result<bool> {
        let lo = std::net::Ipv4Addr::LOCALHOST;
        let rx = std::net::UdpSocket::bind((lo, 0))?;
        let tx = std::net::UdpSocket::bind((lo, 0))?;
        let to = rx.local_addr()?.port();
        tx.send_to(b"nfrs probe", (lo, to))?;
        let t = Tuple {
            src: u32::from(lo),
            dst: u32::from(lo),
            src_l4: tx.local_addr()?.port(),
            dst_l4: to,
            proto: 17,
        };
        match self.request(|seq| get_msg(&t, seq)) {
            0 => {
                self.request(|seq| delete_msg(CTA_TUPLE_ORIG, &t, seq));
                Ok(true)
            }
            libc::ENOENT => Ok(false),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Called with each packet about to be handed to the TUN: for a TCP SYN (no ACK) whose
    /// engine connection has DST_NAT, the entry goes into the kernel's table first.
    pub fn before_delivery(&mut self, ct: &ConnTable, ip: &[u8], now: u64) {
        let Some(reply) = syn_reply_tuple(ip) else {
            return;
        };
        let Some((id, _)) = ct.find(&reply, 0, now) else {
            return;
        };
        let c = ct.get(id);
        if c.status & status::DST_NAT == 0 {
            return;
        }
        let (orig, reply) = (c.tuple[0], c.tuple[1]);
        match self.insert(&orig, &reply) {
            Ok(()) => self.inserted += 1,
            Err(e) => {
                self.failed += 1;
                self.last_error = e;
            }
        }
    }

    /// Inserts the entry; one already holding either tuple is deleted and the insert retried.
    pub fn insert(&mut self, orig: &Tuple, reply: &Tuple) -> Result<(), i32> {
        let e = self.request(|seq| insert_msg(orig, reply, seq));
        if e != libc::EEXIST {
            return if e == 0 { Ok(()) } else { Err(e) };
        }
        // Deleting by one tuple may leave another entry holding the other one.
        self.request(|seq| delete_msg(CTA_TUPLE_REPLY, reply, seq));
        self.request(|seq| delete_msg(CTA_TUPLE_ORIG, orig, seq));
        match self.request(|seq| insert_msg(orig, reply, seq)) {
            0 => Ok(()),
            e => Err(e),
        }
    }

    /// Deletes the kernel entry whose reply tuple is `reply`; 0 or the errno.
    pub fn delete(&mut self, reply: &Tuple) -> i32 {
        self.request(|seq| delete_msg(CTA_TUPLE_REPLY, reply, seq))
    }

    /// Sends one acked request and reads its answer: 0 or the errno. The kernel handles a
    /// ctnetlink request inside sendto, so the answer is queued when it returns.
    fn request(&mut self, build: impl FnOnce(u32) -> Msg) -> i32 {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut m = build(seq);
        let b = m.bytes();
        // SAFETY: an all-zero sockaddr_nl is valid: pid 0 is the kernel.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: b and sa are valid for the lengths passed.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
        }
        // Answers to earlier requests that were not read (none expected) are skipped by seq.
        loop {
            // SAFETY: rx is a valid writable buffer of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.rx.as_mut_ptr().cast(),
                    self.rx.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                return io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO);
            }
            if let Some(e) = ack_errno(&self.rx[..n as usize], seq) {
                return e;
            }
        }
    }
}

/// The errno of an NLMSG_ERROR answer (0 for an ack) to request `seq`; None for anything else.
fn ack_errno(b: &[u8], seq: u32) -> Option<i32> {
    if b.len() < 20 {
        return None;
    }
    let ty = u16::from_ne_bytes([b[4], b[5]]);
    let s = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
    if ty != NLMSG_ERROR || s != seq {
        return None;
    }
    Some(-i32::from_ne_bytes([b[16], b[17], b[18], b[19]]))
}

/// For an unfragmented IPv4 TCP SYN without ACK: the tuple of its reverse (local → sender),
/// the engine entry's reply tuple when the packet was delivered translated.
fn syn_reply_tuple(ip: &[u8]) -> Option<Tuple> {
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
        return None;
    }
    let hl = usize::from(ip[0] & 0x0f) * 4;
    // Any fragment offset or more-fragments bit: not a whole first packet.
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 || ip.len() < hl + 14 {
        return None;
    }
    let flags = ip[hl + 13];
    if flags & 0x12 != 0x02 {
        return None;
    }
    let be32 = |i: usize| u32::from_be_bytes([ip[i], ip[i + 1], ip[i + 2], ip[i + 3]]);
    let be16 = |i: usize| u16::from_be_bytes([ip[i], ip[i + 1]]);
    Some(Tuple {
        src: be32(16),
        dst: be32(12),
        src_l4: be16(hl + 2),
        dst_l4: be16(hl),
        proto: 6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Tuple {
        Tuple {
            src: u32::from_be_bytes(src),
            dst: u32::from_be_bytes(dst),
            src_l4: sp,
            dst_l4: dp,
            proto: 6,
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Recorded on Linux 6.18 (x86-64, little endian) with `strace -e sendto -xx` of
    /// `conntrack -I -p tcp -s 10.0.1.2 -d 198.51.100.10 --sport 40000 --dport 80 --reply-src
    /// 10.0.1.1 --reply-dst 10.0.1.2 --reply-port-src 3128 --reply-port-dst 40000 --state
    /// SYN_SENT -t 120` (conntrack-tools 1.4.7); the sequence number set to 7 and the two
    /// padding bytes conntrack-tools leaves uninitialised (0x10, 0x72) set to zero.
    #[cfg(target_endian = "little")]
    #[test]
    fn insert_bytes_equal_conntrack_tools() {
        let want = hex("a4000000 0001 0506 07000000 00000000 02000000
            3400 0180 1400 0180 0800 0100 0a000102 0800 0200 c633640a
                      1c00 0280 0500 0100 06000000 0600 0200 9c400000 0600 0300 00500000
            3400 0280 1400 0180 0800 0100 0a000101 0800 0200 0a000102
                      1c00 0280 0500 0100 06000000 0600 0200 0c380000 0600 0300 9c400000
            0800 0700 00000078
            2000 0480 1c00 0180 0500 0100 01000000 0600 0400 0a0a0000 0600 0500 0a0a0000");
        let orig = t([10, 0, 1, 2], [198, 51, 100, 10], 40000, 80);
        let reply = t([10, 0, 1, 1], [10, 0, 1, 2], 3128, 40000);
        let mut m = insert_msg(&orig, &reply, 7);
        assert_eq!(m.bytes(), &want[..]);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn delete_bytes() {
        // The reply tuple alone, as the insert encodes it (ctnetlink deletes by either tuple).
        let want = hex("48000000 0201 0500 09000000 00000000 02000000
            3400 0280 1400 0180 0800 0100 0a000101 0800 0200 0a000102
                      1c00 0280 0500 0100 06000000 0600 0200 0c380000 0600 0300 9c400000");
        let reply = t([10, 0, 1, 1], [10, 0, 1, 2], 3128, 40000);
        let mut m = delete_msg(CTA_TUPLE_REPLY, &reply, 9);
        assert_eq!(m.bytes(), &want[..]);
    }

    fn syn(flags: u8, frag: u16) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 0, 1, 2]);
        p[16..20].copy_from_slice(&[10, 0, 1, 1]);
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&3128u16.to_be_bytes());
        p[33] = flags;
        p
    }

    #[test]
    fn only_first_syns_give_a_tuple() {
        assert_eq!(
            syn_reply_tuple(&syn(0x02, 0x4000)),
            Some(t([10, 0, 1, 1], [10, 0, 1, 2], 3128, 40000))
        );
        assert_eq!(syn_reply_tuple(&syn(0x12, 0)), None, "SYN-ACK");
        assert_eq!(syn_reply_tuple(&syn(0x10, 0)), None, "ACK");
        assert_eq!(syn_reply_tuple(&syn(0x02, 0x2000)), None, "first fragment");
        assert_eq!(syn_reply_tuple(&syn(0x02, 0)[..30]), None, "short");
        let mut udp = syn(0x02, 0);
        udp[9] = 17;
        assert_eq!(syn_reply_tuple(&udp), None, "UDP");
    }

    #[test]
    fn ack_parsing() {
        let mut a = [0u8; 36];
        a[0] = 36;
        a[4] = NLMSG_ERROR as u8;
        a[8] = 5;
        a[16..20].copy_from_slice(&(-libc::EEXIST).to_ne_bytes());
        assert_eq!(ack_errno(&a, 5), Some(libc::EEXIST));
        assert_eq!(ack_errno(&a, 6), None);
        a[16..20].copy_from_slice(&0i32.to_ne_bytes());
        assert_eq!(ack_errno(&a, 5), Some(0));
        assert_eq!(ack_errno(&a[..10], 5), None);
    }

    /// SO_ORIGINAL_DST of an accepted socket: (address, port) or the errno.
    fn original_dst(s: &std::net::TcpStream) -> Result<(std::net::Ipv4Addr, u16), i32> {
        use std::os::fd::AsRawFd;
        // SAFETY: an all-zero sockaddr_in is valid; the kernel writes at most len bytes.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: sin and len are valid for writing; SO_ORIGINAL_DST is 80 (netfilter_ipv4.h).
        let r = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::SOL_IP,
                80,
                (&mut sin as *mut libc::sockaddr_in).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        Ok((
            std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
            u16::from_be(sin.sin_port),
        ))
    }

    /// Root only (skipped otherwise): in a network namespace of its own with no rule, the
    /// kernel takes the inserted entry and answers SO_ORIGINAL_DST from it; a second insert
    /// for the same socket replaces it; after the delete the kernel answers ENOENT.
    #[test]
    fn kernel_answers_original_dst() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: not root");
            return;
        }
        std::thread::spawn(|| {
            // SAFETY: unshare affects only this thread, which owns everything it opens after.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                eprintln!(
                    "skipped: unshare(CLONE_NEWNET): {}",
                    io::Error::last_os_error()
                );
                return;
            }
            let up = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status();
            assert!(up.is_ok_and(|s| s.success()), "ip link set lo up");
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let lp = l.local_addr().unwrap().port();
            let c = std::net::TcpStream::connect(("127.0.0.1", lp)).unwrap();
            let cp = c.local_addr().unwrap().port();
            let (a, _) = l.accept().unwrap();
            assert_eq!(original_dst(&a), Err(libc::ENOENT), "no entry yet");
            let mut od = OrigDst::open().unwrap();
            let reply = t([127, 0, 0, 1], [127, 0, 0, 1], lp, cp);
            od.insert(&t([127, 0, 0, 1], [198, 51, 100, 10], cp, 80), &reply)
                .unwrap();
            assert_eq!(original_dst(&a), Ok(([198, 51, 100, 10].into(), 80)));
            od.insert(&t([127, 0, 0, 1], [203, 0, 113, 7], cp, 8888), &reply)
                .unwrap();
            assert_eq!(
                original_dst(&a),
                Ok(([203, 0, 113, 7].into(), 8888)),
                "replaced"
            );
            assert_eq!(od.delete(&reply), 0);
            assert_eq!(original_dst(&a), Err(libc::ENOENT), "deleted");
            assert_eq!(od.delete(&reply), libc::ENOENT);
            assert!(
                !od.kernel_tracks().unwrap(),
                "no rule: the kernel tracks nothing"
            );
            let rule = ["-A", "INPUT", "-m", "conntrack", "--ctstate", "NEW"];
            if std::process::Command::new("iptables-legacy")
                .args(rule)
                .status()
                .is_ok_and(|s| s.success())
            {
                assert!(
                    od.kernel_tracks().unwrap(),
                    "a conntrack rule: the kernel tracks"
                );
            } else {
                eprintln!("skipped the tracking half: no iptables-legacy");
            }
        })
        .join()
        .unwrap();
    }
}
