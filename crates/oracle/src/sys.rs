//! Thin wrappers over the system calls the lab needs: entering network namespaces, raw
//! AF_PACKET sockets, netlink, file locks, CPU pinning, polling. Every `unsafe` block here is a
//! plain libc call on values this module owns; each states its invariant.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Opens a file read-only with close-on-exec.
pub fn open_ro(path: &str) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Switches the calling thread into the network namespace `fd` refers to.
pub fn setns_net(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: setns only reads the fd; a bad fd yields an error, not UB.
    cvt(unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

/// Runs `f` with the calling thread inside the network namespace `ns` (a /run/netns path),
/// and switches back to `home` afterwards, also when `f` fails.
pub fn in_netns<T>(
    home: &OwnedFd,
    ns: &OwnedFd,
    f: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    setns_net(ns)?;
    let r = f();
    setns_net(home).expect("cannot return to the original network namespace");
    r
}

/// Pins the calling thread to the CPU it currently runs on; returns that CPU.
pub fn pin_to_current_cpu() -> io::Result<usize> {
    // SAFETY: sched_getcpu has no arguments and no memory effects.
    let cpu = cvt(unsafe { libc::sched_getcpu() })? as usize;
    // SAFETY: `set` is a plain bitmask struct, zero-initialised then filled via the CPU_* helpers
    // that index within its fixed size (cpu < CPU_SETSIZE is checked by CPU_SET).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        cvt(libc::sched_setaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &set,
        ))?;
    }
    Ok(cpu)
}

/// Takes an flock on `path` (created if needed), shared or exclusive; released on drop.
pub struct FileLock(OwnedFd);

impl FileLock {
    /// Blocks until the lock is held.
    pub fn acquire(path: &str, exclusive: bool) -> io::Result<FileLock> {
        let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `c` is a valid C string; the mode is a plain integer.
        let fd = cvt(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        })?;
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        loop {
            // SAFETY: flock on an fd we own.
            let r = unsafe { libc::flock(fd.as_raw_fd(), op) };
            if r == 0 {
                return Ok(FileLock(fd));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            if crate::signals::interrupted() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: unlocking an fd we own; errors are irrelevant since close releases it too.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// The index of interface `name` in the calling thread's namespace.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// A raw AF_PACKET socket bound to one interface: sends frames and receives every frame the
/// interface receives (not the ones it sends).
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

impl PacketSocket {
    /// Opens the socket on interface `ifindex` of the calling thread's namespace.
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket creation.
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(proto),
            )
        })?;
        // SAFETY: `fd` was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value, then filled in.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: the pointer and length describe `sll`, alive for the call.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        })?;
        let one: libc::c_int = 1;
        // SAFETY: the option value points at a live c_int of the stated size.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_IGNORE_OUTGOING,
                &one as *const libc::c_int as *const libc::c_void,
                4,
            )
        })?;
        let sz: libc::c_int = 4 << 20;
        // SAFETY: as above.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &sz as *const libc::c_int as *const libc::c_void,
                4,
            );
        }
        Ok(PacketSocket { fd, ifindex })
    }

    /// Sends one whole Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll zeroed then filled; buffer pointer/length describe `frame`.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        if frame.len() >= 6 {
            sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        }
        // SAFETY: see above; the kernel copies the frame before returning.
        let n = cvt_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        })?;
        if n != frame.len() {
            return Err(io::Error::other("short AF_PACKET send"));
        }
        Ok(())
    }

    /// Receives one frame if one is waiting (non-blocking).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        recv_nb(self.fd.as_raw_fd(), buf)
    }

    /// The raw fd, for polling.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// One non-blocking receive; `None` when nothing is waiting.
pub fn recv_nb(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: the buffer pointer/length describe `buf`, alive and writable for the call.
    let r = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(None),
            io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some((r as usize).min(buf.len())))
}

/// Waits until `fd` is readable or `timeout` passes; true when readable.
pub fn poll_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one pollfd, alive for the call.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

/// A raw IPv4 socket (IP_HDRINCL) to send packets as the host itself.
pub struct RawIpSocket(OwnedFd);

impl RawIpSocket {
    /// Opens it in the calling thread's namespace.
    pub fn open() -> io::Result<RawIpSocket> {
        // SAFETY: plain socket creation.
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::IPPROTO_RAW,
            )
        })?;
        // SAFETY: `fd` was just created and is owned by nobody else.
        Ok(RawIpSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends a whole IPv4 packet (header included) towards its destination address.
    pub fn send(&self, packet: &[u8], dst: std::net::Ipv4Addr) -> io::Result<()> {
        // SAFETY: sockaddr_in zeroed then filled; buffer pointer/length describe `packet`.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as u16;
        sin.sin_addr.s_addr = u32::from(dst).to_be();
        // SAFETY: as above.
        cvt_size(unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                packet.as_ptr() as *const libc::c_void,
                packet.len(),
                0,
                &sin as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        })?;
        Ok(())
    }
}

/// Opens a listening socket (`tcp`) or a bound one (`udp`) on `addr:port` in the calling
/// thread's namespace.
pub fn listen_socket(tcp: bool, addr: std::net::Ipv4Addr, port: u16) -> io::Result<OwnedFd> {
    let ty = if tcp {
        libc::SOCK_STREAM
    } else {
        libc::SOCK_DGRAM
    };
    // SAFETY: plain socket creation.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, ty | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_in zeroed then filled.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as u16;
    sin.sin_port = port.to_be();
    sin.sin_addr.s_addr = u32::from(addr).to_be();
    // SAFETY: pointer/length describe `sin`.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sin as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    })?;
    if tcp {
        // SAFETY: listen on an fd we own.
        cvt(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
    }
    Ok(fd)
}

/// A netlink socket of protocol `proto`, bound, non-blocking.
pub fn netlink_socket(proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto,
        )
    })?;
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl zeroed (pid 0: the kernel assigns one) then filled.
    let mut snl: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    snl.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: pointer/length describe `snl`.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &snl as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    })?;
    let sz: libc::c_int = 8 << 20;
    // SAFETY: the option value points at a live c_int.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &sz as *const libc::c_int as *const libc::c_void,
            4,
        );
    }
    Ok(fd)
}

/// Sends a message on a socket (netlink: to the kernel).
pub fn send_to_kernel(fd: &OwnedFd, msg: &[u8]) -> io::Result<()> {
    // SAFETY: sockaddr_nl zeroed = the kernel (pid 0); buffer describes `msg`.
    let snl: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    let mut snl = snl;
    snl.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: as above.
    cvt_size(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr() as *const libc::c_void,
            msg.len(),
            0,
            &snl as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    })?;
    Ok(())
}

/// Opens /dev/kmsg non-blocking, positioned after the last record.
pub fn open_kmsg() -> io::Result<OwnedFd> {
    let c = CString::new("/dev/kmsg").expect("static path");
    // SAFETY: valid C string.
    let fd = cvt(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    kmsg_seek_end(&fd)?;
    Ok(fd)
}

/// Skips every record written so far.
pub fn kmsg_seek_end(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: lseek on an fd we own.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_END) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads every kmsg record waiting: (syslog priority value, message text).
pub fn kmsg_read_all(fd: &OwnedFd) -> io::Result<Vec<(u32, String)>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16384];
    loop {
        // SAFETY: the buffer pointer/length describe `buf`.
        let r = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => break,
                // A record was overwritten before we read it: continue with the next.
                Some(libc::EPIPE) => continue,
                Some(libc::EINTR) => continue,
                _ => return Err(e),
            }
        }
        let rec = String::from_utf8_lossy(&buf[..r as usize]).into_owned();
        let Some((head, rest)) = rec.split_once(';') else {
            continue;
        };
        let pri: u32 = head.split(',').next().unwrap_or("").parse().unwrap_or(999);
        let msg = rest.split('\n').next().unwrap_or("");
        out.push((pri, unescape_kmsg(msg)));
    }
    Ok(out)
}

/// /dev/kmsg escapes non-printable bytes as `\xHH`; LOG lines are plain ASCII, but a prefix may
/// hold anything: undo the escaping.
fn unescape_kmsg(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a whole file through an fd kept open (re-reads from the start).
pub fn pread_all(fd: &OwnedFd) -> io::Result<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut off: i64 = 0;
    loop {
        // SAFETY: buffer pointer/length describe `buf`.
        let r = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                off,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if r == 0 {
            break;
        }
        out.extend_from_slice(&buf[..r as usize]);
        off += r as i64;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Whether interface `name` has IFF_RUNNING set, in the calling thread's namespace.
pub fn if_running(name: &str) -> io::Result<bool> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: plain socket creation.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is valid; the name fits (checked above) and stays
    // NUL-terminated.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in name.bytes().enumerate() {
        ifr.ifr_name[i] = b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags inside `ifr`, alive for the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) })?;
    // SAFETY: after SIOCGIFFLAGS the union holds the flags.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    Ok(flags as libc::c_int & libc::IFF_RUNNING != 0)
}

/// Deletes a named network namespace as `ip netns del` does: detach its bind mount under
/// /run/netns and remove the file (the namespace dies once nothing holds it).
pub fn delete_netns(name: &str) -> io::Result<()> {
    let path = CString::new(format!("/run/netns/{name}"))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is a valid C string for both calls.
    unsafe {
        libc::umount2(path.as_ptr(), libc::MNT_DETACH);
        cvt(libc::unlink(path.as_ptr()))?;
    }
    Ok(())
}
