//! The daemon's one netlink client: rtnetlink for the TUN device's link, addresses and routes
//! ([`crate::tap`]), ctnetlink for the `SO_ORIGINAL_DST` entries ([`crate::origdst`]).
//!
//! A request is built in a fixed buffer ([`Msg`]: header, family header, attributes, nested
//! attributes; no allocation), then [`Socket::request`] sends it and reads its acknowledgement:
//! every request asks for one (`NLM_F_ACK`), and the kernel's refusal comes back as the errno
//! it put in the `NLMSG_ERROR` answer. Other messages before the ack (a get's entry, answers to
//! older requests) are skipped by sequence number.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_EXCL`: do not replace an existing object.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;
/// Marks an attribute whose payload is attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_ERROR: u16 = 2;
/// Header of every message: length, type, flags, sequence, port id.
const HDR: usize = 16;

/// Largest request built (a ctnetlink insert is 164 bytes).
pub const MSG_MAX: usize = 256;

/// A request under construction in a fixed buffer.
pub struct Msg {
    buf: [u8; MSG_MAX],
    len: usize,
    /// Something did not fit: the request is refused rather than sent cut.
    overflow: bool,
}

/// An open nested attribute: its offset, for [`Msg::end`].
#[must_use]
pub struct Nest(usize);

impl Msg {
    /// A request of type `ty` with `flags` (`NLM_F_REQUEST | NLM_F_ACK` added), then the
    /// family's fixed header `head`.
    pub fn new(ty: u16, flags: u16, head: &[u8]) -> Msg {
        let mut m = Msg {
            buf: [0; MSG_MAX],
            len: HDR,
            overflow: false,
        };
        m.buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        m.buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.put(head);
        m
    }

    fn put(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(d) => {
                d.copy_from_slice(b);
                self.len += b.len();
            }
            None => self.overflow = true,
        }
    }

    /// One attribute with its payload.
    pub fn attr(&mut self, ty: u16, payload: &[u8]) {
        self.put(&((4 + payload.len()) as u16).to_ne_bytes());
        self.put(&ty.to_ne_bytes());
        self.put(payload);
        // Zero padding to the netlink alignment, 4 bytes.
        let pad = (4 - self.len % 4) % 4;
        self.put(&[0; 3][..pad]);
    }

    /// Opens a nested attribute of type `ty`; [`Msg::end`] closes it.
    pub fn nest(&mut self, ty: u16) -> Nest {
        let at = self.len;
        self.put(&[0, 0]);
        self.put(&(ty | NLA_F_NESTED).to_ne_bytes());
        Nest(at)
    }

    /// Closes a nested attribute: its length now covers what was added since [`Msg::nest`].
    pub fn end(&mut self, n: Nest) {
        if self.overflow {
            return;
        }
        let l = (self.len - n.0) as u16;
        self.buf[n.0..n.0 + 2].copy_from_slice(&l.to_ne_bytes());
    }

    /// The whole message with sequence number `seq`.
    pub fn bytes(&mut self, seq: u32) -> io::Result<&[u8]> {
        if self.overflow {
            return Err(io::Error::other(format!(
                "netlink: request longer than {MSG_MAX} bytes"
            )));
        }
        let l = self.len as u32;
        self.buf[..4].copy_from_slice(&l.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        Ok(&self.buf[..self.len])
    }
}

/// A netlink socket bound in the current network namespace.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    rx: Vec<u8>,
}

impl Socket {
    /// Opens and binds a socket of netlink family `protocol` (`NETLINK_ROUTE`, ...).
    pub fn open(protocol: libc::c_int) -> io::Result<Socket> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by socket(2) and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let sa = kernel_addr();
        // SAFETY: sa is a valid sockaddr_nl of the size passed (port id 0: the kernel
        // picks ours).
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Socket {
            fd,
            seq: 1,
            rx: vec![0; 4096],
        })
    }

    /// Sends `m` and reads its acknowledgement: `Ok` for an ack, the kernel's errno as an
    /// OS error for a refusal, another error when no answer came.
    pub fn request(&mut self, m: &mut Msg) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let b = m.bytes(seq)?;
        let sa = kernel_addr();
        // SAFETY: b and sa are valid for reads of the lengths passed, during the call only.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel handles these requests inside sendto: the answer is queued when it
        // returns, so the reads never wait (the packet thread makes some of these requests).
        loop {
            // SAFETY: rx is valid for writes of its length during the call.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.rx.as_mut_ptr().cast(),
                    self.rx.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return Err(match e.raw_os_error() {
                    Some(libc::EAGAIN) => io::Error::other(format!(
                        "netlink: no answer to request {seq} when sendto returned"
                    )),
                    _ => e,
                });
            }
            if let Some(errno) = ack_errno(&self.rx[..n as usize], seq) {
                return match errno {
                    0 => Ok(()),
                    e => Err(io::Error::from_raw_os_error(e)),
                };
            }
        }
    }
}

/// The kernel's address (port id 0).
fn kernel_addr() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain data; all zero is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa
}

/// In one received datagram: the errno of the `NLMSG_ERROR` answer to request `seq` (0 for
/// an ack); `None` when it holds none.
fn ack_errno(b: &[u8], seq: u32) -> Option<i32> {
    let mut off = 0;
    while off + HDR <= b.len() {
        let h = &b[off..];
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len < HDR || len > h.len() {
            return None;
        }
        let ty = u16::from_ne_bytes([h[4], h[5]]);
        let s = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        if ty == NLMSG_ERROR && s == seq && len >= HDR + 4 {
            return Some(-i32::from_ne_bytes([h[16], h[17], h[18], h[19]]));
        }
        off += (len + 3) & !3;
    }
    None
}

/// Bytes from hex text (whitespace ignored): recorded messages in the tests.
#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_sized() {
        let mut m = Msg::new(20, 0, &[2, 24, 0, 0]);
        m.attr(4, &[1, 2, 3, 4]);
        let n = m.nest(1);
        m.attr(3, b"lo\0");
        m.end(n);
        let b = m.bytes(9).unwrap();
        assert_eq!(
            b,
            [
                40, 0, 0, 0, 20, 0, 5, 0, 9, 0, 0, 0, 0, 0, 0, 0, // header
                2, 24, 0, 0, // family header
                8, 0, 4, 0, 1, 2, 3, 4, // attribute
                12, 0, 1, 0x80, 7, 0, 3, 0, b'l', b'o', 0, 0, // nest, padded inner
            ]
        );
    }

    #[test]
    fn an_overlong_request_is_refused_not_cut() {
        let mut m = Msg::new(20, 0, &[]);
        let n = m.nest(1);
        for _ in 0..40 {
            m.attr(1, &[0; 4]);
        }
        m.end(n);
        let e = m.bytes(1).unwrap_err();
        assert!(e.to_string().contains("longer than 256 bytes"), "{e}");
        let mut m = Msg::new(20, 0, &[]);
        m.attr(1, &[0; 236]);
        assert_eq!(m.bytes(1).unwrap().len(), MSG_MAX);
        m.attr(1, &[]);
        assert!(m.bytes(1).is_err());
    }

    fn answer(ty: u16, seq: u32, err: i32) -> Vec<u8> {
        let mut a = vec![0u8; 36];
        a[0] = 36;
        a[4..6].copy_from_slice(&ty.to_ne_bytes());
        a[8..12].copy_from_slice(&seq.to_ne_bytes());
        a[16..20].copy_from_slice(&err.to_ne_bytes());
        a
    }

    #[test]
    fn acks_are_found_by_sequence() {
        assert_eq!(
            ack_errno(&answer(NLMSG_ERROR, 5, -libc::EEXIST), 5),
            Some(libc::EEXIST)
        );
        assert_eq!(ack_errno(&answer(NLMSG_ERROR, 5, 0), 5), Some(0));
        assert_eq!(ack_errno(&answer(NLMSG_ERROR, 5, 0), 6), None, "older seq");
        assert_eq!(ack_errno(&answer(0x100, 5, 0), 5), None, "not an error");
        assert_eq!(ack_errno(&answer(NLMSG_ERROR, 5, 0)[..10], 5), None);
        // Two messages in one datagram: an entry, then the ack.
        let mut two = answer(0x100, 5, 0);
        two.extend(answer(NLMSG_ERROR, 5, -libc::ENOENT));
        assert_eq!(ack_errno(&two, 5), Some(libc::ENOENT));
        // A length beyond the datagram stops the walk.
        let mut bad = answer(NLMSG_ERROR, 5, 0);
        bad[0] = 200;
        assert_eq!(ack_errno(&bad, 5), None);
    }

    /// Any user: a NETLINK_ROUTE request the kernel refuses comes back as its errno (a link
    /// change for an index that does not exist).
    #[test]
    fn the_kernel_refusal_is_its_errno() {
        let Ok(mut s) = Socket::open(libc::NETLINK_ROUTE) else {
            eprintln!("skipped: no NETLINK_ROUTE socket");
            return;
        };
        let mut head = [0u8; 16];
        head[4..8].copy_from_slice(&0x7fff_fff0i32.to_ne_bytes());
        let mut m = Msg::new(16, 0, &head); // RTM_NEWLINK
        let e = s.request(&mut m).unwrap_err();
        assert!(
            matches!(e.raw_os_error(), Some(libc::ENODEV | libc::EPERM)),
            "{e}"
        );
    }
}
