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
//! (recorded with strace; the unit test checks the bytes). The entry is deleted when nfrs's
//! own connection ends ([`OrigDst::sweep`], once a second: TIME_WAIT, CLOSE or gone; the
//! daemon's exit deletes the rest), with the tuples `conntrack -D` starts its delete with, and
//! lives at most 120 s (the kernel's SYN_SENT timeout: the proxy asks right after accept);
//! each SYN of such a connection inserts it again, an existing entry with either tuple (an
//! earlier connection from the same client port) is deleted first, so a stale one never
//! answers for a new connection. Entries are never assured, so a full kernel table
//! early-drops them. Only TCP (the kernel answers `SO_ORIGINAL_DST` for TCP and SCTP
//! only; SCTP is not done) and the engine's zone 0.

use crate::netlink::{Msg, Socket, NLM_F_CREATE, NLM_F_EXCL};
use nfrs_conntrack::{status, Conn, ConnTable, Nanos, ProtoState, TcpState, Tuple, SEC};
use std::collections::HashMap;
use std::io;

/// Seconds an inserted entry lives in the kernel (its SYN_SENT timeout).
pub const TIMEOUT_S: u32 = 120;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
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
/// Inserted entries remembered for their removal; beyond, an entry just lives its timeout.
const HELD_MAX: usize = 65536;

/// A ctnetlink request of `kind`: its nfgenmsg is AF_INET, version 0, resource id 0.
fn ct_msg(kind: u16, flags: u16) -> Msg {
    Msg::new(
        NFNL_SUBSYS_CTNETLINK << 8 | kind,
        flags,
        &[libc::AF_INET as u8, 0, 0, 0],
    )
}

fn put_tuple(m: &mut Msg, ty: u16, t: &Tuple) {
    let outer = m.nest(ty);
    let ip = m.nest(CTA_TUPLE_IP);
    m.attr(CTA_IP_V4_SRC, &t.src.to_be_bytes());
    m.attr(CTA_IP_V4_DST, &t.dst.to_be_bytes());
    m.end(ip);
    let proto = m.nest(CTA_TUPLE_PROTO);
    m.attr(CTA_PROTO_NUM, &[t.proto]);
    m.attr(CTA_PROTO_SRC_PORT, &t.src_l4.to_be_bytes());
    m.attr(CTA_PROTO_DST_PORT, &t.dst_l4.to_be_bytes());
    m.end(proto);
    m.end(outer);
}

/// The insert: entry `orig` / `reply`, TCP SYN_SENT, [`TIMEOUT_S`], create exclusive.
fn insert_msg(orig: &Tuple, reply: &Tuple) -> Msg {
    let mut m = ct_msg(IPCTNL_MSG_CT_NEW, NLM_F_EXCL | NLM_F_CREATE);
    put_tuple(&mut m, CTA_TUPLE_ORIG, orig);
    put_tuple(&mut m, CTA_TUPLE_REPLY, reply);
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

/// The delete of the entry holding tuple `t` in direction `ty` (orig or reply).
fn delete_one_msg(ty: u16, t: &Tuple) -> Msg {
    let mut m = ct_msg(IPCTNL_MSG_CT_DELETE, 0);
    put_tuple(&mut m, ty, t);
    m
}

/// The delete of entry `orig` / `reply` as `conntrack -D` starts it: both tuples (the kernel
/// finds the entry by the original one; conntrack-tools adds the entry's other attributes,
/// which a delete does not read).
fn delete_msg(orig: &Tuple, reply: &Tuple) -> Msg {
    let mut m = ct_msg(IPCTNL_MSG_CT_DELETE, 0);
    put_tuple(&mut m, CTA_TUPLE_ORIG, orig);
    put_tuple(&mut m, CTA_TUPLE_REPLY, reply);
    m
}

/// The get of the entry whose original tuple is `t` (the entry, then the ack).
fn get_msg(t: &Tuple) -> Msg {
    let mut m = ct_msg(IPCTNL_MSG_CT_GET, 0);
    put_tuple(&mut m, CTA_TUPLE_ORIG, t);
    m
}

/// The errno of a failed request (EIO when the failure was not the kernel's answer).
fn errno(r: io::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// The ctnetlink socket of the daemon's namespace and what it did.
#[derive(Debug)]
pub struct OrigDst {
    nl: Socket,
    /// Entries in the kernel by their reply tuple: the original tuple and when inserted.
    held: HashMap<Tuple, (Tuple, Nanos)>,
    /// Entries inserted.
    pub inserted: u64,
    /// Inserts the kernel refused (other than an existing entry, which is replaced).
    pub failed: u64,
    /// The last refusal's errno.
    pub last_error: i32,
    /// Entries deleted because their connection ended in the engine.
    pub removed: u64,
}

impl OrigDst {
    /// Opens a NETLINK_NETFILTER socket in the current network namespace.
    pub fn open() -> io::Result<OrigDst> {
        Ok(OrigDst {
            nl: Socket::open(libc::NETLINK_NETFILTER)?,
            held: HashMap::new(),
            inserted: 0,
            failed: 0,
            last_error: 0,
            removed: 0,
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
        match self.nl.request(&mut get_msg(&t)) {
            Ok(()) => {
                let _ = self.nl.request(&mut delete_one_msg(CTA_TUPLE_ORIG, &t));
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Called with each packet about to be handed to the TUN: for a TCP SYN (no ACK) whose
    /// engine connection has DST_NAT, the entry goes into the kernel's table first.
    pub fn before_delivery(&mut self, ct: &ConnTable, ip: &[u8], now: Nanos) {
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
            Ok(()) => {
                self.inserted += 1;
                if self.held.len() < HELD_MAX || self.held.contains_key(&reply) {
                    self.held.insert(reply, (orig, now));
                }
            }
            Err(e) => {
                self.failed += 1;
                self.last_error = e;
            }
        }
    }

    /// Once a second: deletes the kernel entries whose engine connection ended (gone, or TCP
    /// TIME_WAIT or CLOSE: both sides finished or one reset, so the local process has accepted
    /// and is done with it); forgets those older than [`TIMEOUT_S`] (the kernel dropped them).
    pub fn sweep(&mut self, ct: Option<&ConnTable>, now: Nanos) {
        let nl = &mut self.nl;
        let mut removed = 0;
        self.held.retain(|reply, (orig, at)| {
            if now.saturating_sub(*at) >= u64::from(TIMEOUT_S) * SEC {
                return false;
            }
            let live = ct.is_some_and(|ct| {
                ct.find(reply, 0, now)
                    .is_some_and(|(id, _)| open(ct.get(id), orig))
            });
            // Counted when the kernel deleted it (ENOENT: gone already, by conntrack -D/-F in
            // the namespace or early drop).
            if !live && nl.request(&mut delete_msg(orig, reply)).is_ok() {
                removed += 1;
            }
            live
        });
        self.removed += removed;
    }

    /// Inserts the entry; one already holding either tuple is deleted and the insert retried.
    /// `Err`: the errno.
    pub fn insert(&mut self, orig: &Tuple, reply: &Tuple) -> Result<(), i32> {
        let e = errno(self.nl.request(&mut insert_msg(orig, reply)));
        if e != libc::EEXIST {
            return if e == 0 { Ok(()) } else { Err(e) };
        }
        // Deleting by one tuple may leave another entry holding the other one.
        let _ = self.nl.request(&mut delete_one_msg(CTA_TUPLE_REPLY, reply));
        let _ = self.nl.request(&mut delete_one_msg(CTA_TUPLE_ORIG, orig));
        match errno(self.nl.request(&mut insert_msg(orig, reply))) {
            0 => Ok(()),
            e => Err(e),
        }
    }

    /// Deletes the kernel entry whose reply tuple is `reply`; 0 or the errno.
    pub fn delete(&mut self, reply: &Tuple) -> i32 {
        errno(self.nl.request(&mut delete_one_msg(CTA_TUPLE_REPLY, reply)))
    }
}

/// Is engine connection `c` still the one of kernel entry `orig`, and not ended?
fn open(c: &Conn, orig: &Tuple) -> bool {
    let ended = match &c.proto {
        ProtoState::Tcp(t) => matches!(t.state(), TcpState::TimeWait | TcpState::Close),
        _ => false,
    };
    c.tuple[0] == *orig && !ended
}

impl Drop for OrigDst {
    /// The daemon's exit ends every connection: no entry of its own stays behind.
    fn drop(&mut self) {
        for (reply, (orig, _)) in self.held.drain() {
            let _ = self.nl.request(&mut delete_msg(&orig, &reply));
        }
    }
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
    use crate::netlink::hex;

    fn t(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Tuple {
        Tuple {
            src: u32::from_be_bytes(src),
            dst: u32::from_be_bytes(dst),
            src_l4: sp,
            dst_l4: dp,
            proto: 6,
        }
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
        assert_eq!(insert_msg(&orig, &reply).bytes(7).unwrap(), &want[..]);
    }

    /// Recorded on Linux 6.18 (x86-64) with `strace -e sendto -e write=4 -xx` of `conntrack
    /// -D -p tcp -s 10.0.1.2 -d 198.51.100.10 --sport 40000 --dport 80` (conntrack-tools
    /// 1.4.7) deleting the entry the insert above made, 119 s left: the dump's entry sent
    /// back, 224 bytes. nfrs sends its first two attributes, the tuples (the kernel's delete
    /// reads the original tuple, else the reply one, the zone and the id; not the status,
    /// timeout, mark, protoinfo and synproxy attributes after them).
    #[cfg(target_endian = "little")]
    #[test]
    fn delete_bytes_begin_as_conntrack_tools_delete() {
        let recorded = hex("e0000000 0201 0500 3bca076b 00000000 02000000
            3400 0180 1400 0180 0800 0100 0a000102 0800 0200 c633640a
                      1c00 0280 0500 0100 06000000 0600 0200 9c400000 0600 0300 00500000
            3400 0280 1400 0180 0800 0100 0a000101 0800 0200 0a000102
                      1c00 0280 0500 0100 06000000 0600 0200 0c380000 0600 0300 9c400000
            0800 0300 00000008 0800 0700 00000077 0800 0800 00000000
            3000 0480 2c00 0180 0500 0100 01000000 0600 0400 0a000000 0600 0500 0a000000
                      0500 0200 00000000 0500 0300 00000000
            1c00 1880 0800 0100 00000000 0800 0200 00000000 0800 0300 00000000");
        assert_eq!(recorded.len(), 224);
        let mut want = recorded[..20 + 2 * 52].to_vec();
        want[0] = want.len() as u8;
        let orig = t([10, 0, 1, 2], [198, 51, 100, 10], 40000, 80);
        let reply = t([10, 0, 1, 1], [10, 0, 1, 2], 3128, 40000);
        let seq = u32::from_le_bytes([0x3b, 0xca, 0x07, 0x6b]);
        assert_eq!(delete_msg(&orig, &reply).bytes(seq).unwrap(), &want[..]);
        // By one tuple: the same tuple attribute alone.
        let mut one = delete_one_msg(CTA_TUPLE_REPLY, &reply);
        let b = one.bytes(seq).unwrap();
        assert_eq!(b[0], 72);
        assert_eq!(&b[1..20], &want[1..20]);
        assert_eq!(&b[20..], &want[72..124]);
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
