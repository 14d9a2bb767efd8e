//! The control socket `DIR/control.sock`: a Unix stream socket, mode 0600 (0660 with a control
//! group), whose peers are checked with SO_PEERCRED: root, the daemon's own user, or a member of
//! the configured group. One request and one response per connection ([`crate::proto`]).

use crate::proto::{self, ReadError, Request, Response};
use std::io::BufReader;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The socket's file name inside the store.
pub const SOCKET_NAME: &str = "control.sock";
/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A peer's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Reads SO_PEERCRED of a connected Unix socket.
pub fn peer_of(s: &UnixStream) -> std::io::Result<Peer> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `cred`, alive and writable for the call.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Peer {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// The supplementary groups of a process (from /proc; empty when it is gone).
fn groups_of(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Whether `peer` may manage the daemon running as `own_uid`.
pub fn allowed(peer: Peer, own_uid: u32, group: Option<u32>, groups: &[u32]) -> bool {
    peer.uid == 0
        || peer.uid == own_uid
        || group.is_some_and(|g| peer.gid == g || groups.contains(&g))
}

/// The control socket's path in a store directory.
pub fn socket_path(store: &Path) -> PathBuf {
    store.join(SOCKET_NAME)
}

/// Binds the control socket, replacing a stale one; refuses when a daemon answers on it.
pub fn bind(store: &Path, group: Option<u32>) -> Result<UnixListener, String> {
    let path = socket_path(store);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            return Err(format!(
                "{}: another nfrs run owns this store",
                path.display()
            ));
        }
        std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let l = UnixListener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(g) = group {
        std::os::unix::fs::chown(&path, None, Some(g))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(l)
}

/// Serves one connection: checks the peer, reads a request, answers it with `handle`.
/// Every failure is answered (when the peer is still there) and never ends the daemon.
pub fn serve_one(
    s: UnixStream,
    own_uid: u32,
    group: Option<u32>,
    handle: &mut dyn FnMut(Request) -> Response,
) {
    let _ = s.set_read_timeout(Some(READ_TIMEOUT));
    let _ = s.set_write_timeout(Some(READ_TIMEOUT));
    let mut w = match s.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let resp = match peer_of(&s) {
        Ok(p) if allowed(p, own_uid, group, &groups_of(p.pid)) => {
            let mut r = BufReader::new(s);
            match proto::read_line(&mut r).and_then(|l| proto::parse_request(&l)) {
                Ok(req) => handle(req),
                Err(ReadError::Closed) => return,
                Err(e) => Response::error(2, format!("nfrs run: {e}")),
            }
        }
        Ok(p) => Response::error(
            13,
            format!(
                "nfrs run: permission denied for uid {} (root or the control group only)",
                p.uid
            ),
        ),
        Err(e) => Response::error(13, format!("nfrs run: cannot check the peer: {e}")),
    };
    let _ = proto::write_msg(&mut w, &resp);
}

/// What a streaming-capable handler answers.
pub enum Reply {
    /// One response, then the connection closes.
    Once(Response),
    /// An accepted stream: every response from the receiver is written, one per line, until
    /// the client goes away (noticed within a second even when nothing is sent); the flag is
    /// set then, so the sender can forget it.
    Stream(
        std::sync::mpsc::Receiver<Response>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ),
}

/// Like [`serve_one`], but a handler may answer with a stream; the stream is written by a
/// thread of its own, so the caller can serve the next connection at once.
pub fn serve_one_streaming(
    s: UnixStream,
    own_uid: u32,
    group: Option<u32>,
    handle: &mut dyn FnMut(Request) -> Reply,
) {
    let mut stream = None;
    let mut h = |req: Request| match handle(req) {
        Reply::Once(r) => r,
        Reply::Stream(rx, closed) => {
            stream = Some((rx, closed));
            Response::default()
        }
    };
    let Ok(keep) = s.try_clone() else {
        return;
    };
    serve_one(s, own_uid, group, &mut h);
    if let Some((rx, closed)) = stream {
        // Without a thread the receiver goes with the closure: the sender sees it at once.
        let _ = std::thread::Builder::new()
            .name("nfrs-events".into())
            .spawn(move || {
                forward(keep, rx);
                closed.store(true, std::sync::atomic::Ordering::Relaxed);
            });
    }
}

/// Writes `rx`'s responses to `s` until either side is gone.
fn forward(mut s: UnixStream, rx: std::sync::mpsc::Receiver<Response>) {
    use std::io::Read;
    use std::sync::mpsc::RecvTimeoutError;
    let _ = s.set_write_timeout(Some(READ_TIMEOUT));
    let mut probe = [0u8; 64];
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(r) => {
                if proto::write_msg(&mut s, &r).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // The client sends nothing more: end of file means it is gone.
                if s.set_nonblocking(true).is_err() {
                    return;
                }
                let gone = matches!((&s).read(&mut probe), Ok(0))
                    || matches!((&s).read(&mut probe), Err(ref e) if e.kind() != std::io::ErrorKind::WouldBlock);
                let _ = s.set_nonblocking(false);
                if gone {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

static STREAM_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn stream_stop(_: libc::c_int) {
    STREAM_STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// A client's streaming request: `on_msg` gets each response (the first accepts or refuses)
/// until the daemon closes the stream or SIGINT/SIGTERM arrives. `None`: no daemon.
pub fn stream(
    store: &Path,
    req: &Request,
    on_msg: &mut dyn FnMut(&Response),
) -> Option<Result<(), String>> {
    let path = socket_path(store);
    let s = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Some(Err(format!(
                "{}: permission denied (root or the control group only)",
                path.display()
            )))
        }
        Err(_) => return None,
    };
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: sigaction is plain data (zeroed is valid); the handler only stores to an
        // atomic, which is async-signal-safe. No SA_RESTART: a blocked read returns EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = stream_stop as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    Some((|| {
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        proto::write_msg(&mut w, req).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut r = BufReader::new(s);
        let mut pending: Vec<u8> = Vec::new();
        loop {
            if STREAM_STOP.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            use std::io::BufRead;
            match r.read_until(b'\n', &mut pending) {
                Ok(0) => return Ok(()),
                Ok(_) if pending.ends_with(b"\n") => {
                    pending.pop();
                    let msg = proto::parse_response(&pending)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    pending.clear();
                    on_msg(&msg);
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
    })())
}

/// Sends `req` to the daemon of `store`; `None` when no daemon accepts connections there.
pub fn request(store: &Path, req: &Request) -> Option<Result<Response, String>> {
    let path = socket_path(store);
    let s = match UnixStream::connect(&path) {
        Ok(s) => s,
        // A daemon runs but this user may not manage it: say so rather than bypass it.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Some(Err(format!(
                "{}: permission denied (root or the control group only)",
                path.display()
            )))
        }
        Err(_) => return None,
    };
    Some((|| {
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        proto::write_msg(&mut w, req).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut r = BufReader::new(s);
        let line = proto::read_line(&mut r).map_err(|e| format!("{}: {e}", path.display()))?;
        proto::parse_response(&line).map_err(|e| format!("{}: {e}", path.display()))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Write};

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nfrs-ctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn who_may_connect() {
        let p = |uid, gid| Peer { pid: 1, uid, gid };
        assert!(allowed(p(0, 0), 0, None, &[]));
        assert!(!allowed(p(1000, 1000), 0, None, &[]));
        assert!(allowed(p(1000, 1000), 1000, None, &[]));
        assert!(allowed(p(1000, 50), 0, Some(50), &[]));
        assert!(allowed(p(1000, 1000), 0, Some(50), &[4, 50]));
        assert!(!allowed(p(1000, 1000), 0, Some(50), &[4]));
    }

    #[test]
    fn socket_serves_and_survives_garbage() {
        let d = tmpdir("serve");
        let l = bind(&d, None).unwrap();
        let mode = std::fs::metadata(socket_path(&d))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second daemon on the same store is refused while the first listens.
        assert!(bind(&d, None).unwrap_err().contains("another nfrs run"));
        let me = unsafe_free_uid();
        let t = std::thread::spawn(move || {
            let mut n = 0;
            // The liveness probe of the second bind, garbage, oversized, ping.
            for s in l.incoming().take(4) {
                serve_one(s.unwrap(), me, None, &mut |r| {
                    n += 1;
                    Response {
                        code: 0,
                        stdout: format!("{n}: {r:?}"),
                        stderr: String::new(),
                    }
                });
            }
        });
        // Garbage gets an error reply.
        let mut s = UnixStream::connect(socket_path(&d)).unwrap();
        s.write_all(b"{\"op\":\"format-disk\"}\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(&s).read_line(&mut line).unwrap();
        let r = proto::parse_response(line.trim_end().as_bytes()).unwrap();
        assert_eq!(r.code, 2);
        assert!(r.stderr.contains("malformed"), "{}", r.stderr);
        // An oversized line too.
        let mut s = UnixStream::connect(socket_path(&d)).unwrap();
        let big = vec![b'a'; proto::MAX_MESSAGE + 2];
        let _ = s.write_all(&big);
        let mut line = String::new();
        std::io::BufReader::new(&s).read_line(&mut line).unwrap();
        assert!(line.contains("longer than"), "{line}");
        // Then a real request is served.
        let r = request(&d, &Request::Ping {}).unwrap().unwrap();
        assert_eq!(r.code, 0);
        assert_eq!(r.stdout, "1: Ping");
        t.join().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
        assert!(request(&d, &Request::Ping {}).is_none());
    }

    fn unsafe_free_uid() -> u32 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|u| u.parse().ok()))
            .unwrap()
    }
}
