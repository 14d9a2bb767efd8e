//! Where `nfrs run` writes the kernel log lines the engine produces (LOG and TRACE targets,
//! conntrack's invalid-packet and table-full messages): standard error (the default), syslog
//! (a datagram per line to `/dev/log`, RFC 3164 `<PRI>TAG[PID]: MSG`, the timestamp and host
//! left to the local syslog daemon as RFC 3164 §4.3.2 lets a relay add them), journald (its
//! native protocol: one datagram per line to `/run/systemd/journal/socket` with `MESSAGE=`,
//! `PRIORITY=`, `SYSLOG_FACILITY=` and `SYSLOG_IDENTIFIER=nfrs`), `auto` (journald when its
//! socket exists, else syslog when `/dev/log` exists, else standard error; chosen once at start)
//! or a file (one line per message after an RFC 3339 UTC time). Each line's severity is the kernel's: a LOG
//! rule's `--log-level` (default 4, warning), 5 (notice) for conntrack's invalid-packet lines
//! (nf_log_syslog's default loginfo), 4 for TRACE, "table full" and `net_ratelimit: N
//! callbacks suppressed`; the engine gives it with each line (`Ev::Log::level`). The facility
//! is configurable (default `kern`).
//!
//! The packet thread never blocks on the log: lines go through a bounded queue to a writer
//! thread; when it is full they are dropped and counted, and the next line written says how
//! many were lost. Rate limits are the kernel's and happen before this point (conntrack's
//! table-full message is `net_ratelimit`ed; the kernel does not rate-limit invalid-packet
//! lines nor LOG lines — `-m limit` does).

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// Lines queued before new ones are dropped.
pub const QUEUE: usize = 8192;

/// Where lines go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sink {
    /// Standard error, the bare kernel text.
    #[default]
    Stderr,
    /// A syslog socket (`/dev/log`) with a facility number (0 = kern).
    Syslog {
        /// The socket.
        path: PathBuf,
        /// Facility number (RFC 3164 table 1).
        facility: u8,
    },
    /// journald's native socket with a facility number (0 = kern).
    Journald {
        /// The socket.
        path: PathBuf,
        /// Facility number (RFC 3164 table 1), as `SYSLOG_FACILITY=`.
        facility: u8,
    },
    /// A file, appended to.
    File(PathBuf),
}

impl Sink {
    /// Where lines go, for the startup report.
    pub fn describe(&self) -> String {
        match self {
            Sink::Stderr => "standard error".into(),
            Sink::Syslog { path, facility } => {
                format!("syslog {} (facility {facility})", path.display())
            }
            Sink::Journald { path, facility } => {
                format!("journald {} (facility {facility})", path.display())
            }
            Sink::File(p) => format!("file {}", p.display()),
        }
    }
}

/// journald's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// The syslog socket.
pub const DEV_LOG: &str = "/dev/log";

/// `log = "auto"`: journald when `journal` (its socket) exists, else syslog when `dev_log`
/// exists, else standard error.
pub fn auto_sink(journal: &std::path::Path, dev_log: &std::path::Path, facility: u8) -> Sink {
    if journal.exists() {
        Sink::Journald {
            path: journal.into(),
            facility,
        }
    } else if dev_log.exists() {
        Sink::Syslog {
            path: dev_log.into(),
            facility,
        }
    } else {
        Sink::Stderr
    }
}

/// One journald native-protocol datagram into `out`: `KEY=value` lines, a value with a newline
/// in the binary form (`KEY`, newline, its length as 64-bit little endian, the value, newline).
/// The identifier is `nfrs` (`journalctl -t nfrs`); the facility makes `journalctl
/// --facility=kern` show the lines beside the kernel's own.
pub fn journal_datagram(facility: u8, level: u8, text: &str, out: &mut Vec<u8>) {
    out.clear();
    let mut field = |k: &str, v: &[u8]| {
        out.extend_from_slice(k.as_bytes());
        if v.contains(&b'\n') {
            out.push(b'\n');
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(v);
        out.push(b'\n');
    };
    field("MESSAGE", text.trim_end().as_bytes());
    field("PRIORITY", &[b'0' + level.min(7)]);
    field("SYSLOG_FACILITY", facility.to_string().as_bytes());
    field("SYSLOG_IDENTIFIER", b"nfrs");
}

/// RFC 3164 facility numbers by name.
pub fn facility(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// The packet thread's end of the log.
pub struct Logger {
    tx: Option<SyncSender<(u8, String)>>,
    /// Lines dropped because the queue was full.
    pub lost: Arc<AtomicU64>,
    /// The daemon's network namespace for the table-full line (None: the initial one).
    pub netns: Option<u32>,
}

impl Default for Logger {
    /// Standard error, written directly (tests, the fuzz dispatcher).
    fn default() -> Self {
        Logger {
            tx: None,
            lost: Arc::new(AtomicU64::new(0)),
            netns: None,
        }
    }
}

/// The initial network namespace's inode number (the kernel's NET_NS_INIT_INO, as
/// `/proc/self/ns/net` shows it there: measured 4026531833 on Linux 6.18).
pub const INIT_NETNS: u32 = 0xEFFF_FFF9;

/// This process's network namespace (None: the initial one, or unknown).
pub fn own_netns() -> Option<u32> {
    let l = std::fs::read_link("/proc/self/ns/net").ok()?;
    let n: u32 = l
        .to_str()?
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()?;
    (n != INIT_NETNS).then_some(n)
}

/// The engine writes the table-full line with the replay mask for the namespace (`in netns *`);
/// live, the kernel names the namespace's inode, or nothing in the initial namespace.
pub fn fix_netns(text: String, netns: Option<u32>) -> String {
    const MASKED: &str = "table full in netns *,";
    if !text.contains(MASKED) {
        return text;
    }
    let with = match netns {
        Some(n) => format!("table full in netns {n},"),
        None => "table full,".to_string(),
    };
    text.replacen(MASKED, &with, 1)
}

impl Logger {
    /// Starts the writer thread for `sink`.
    pub fn start(sink: Sink) -> Result<Logger, String> {
        let (tx, rx) = sync_channel(QUEUE);
        let lost = Arc::new(AtomicU64::new(0));
        let mut w = Writer::open(sink, lost.clone())?;
        std::thread::Builder::new()
            .name("nfrs-log".into())
            .spawn(move || w.run(rx))
            .map_err(|e| e.to_string())?;
        Ok(Logger {
            tx: Some(tx),
            lost,
            netns: own_netns(),
        })
    }

    /// Queues one line at kernel level `level` (never blocks).
    pub fn log(&self, text: String, level: u8) {
        let text = fix_netns(text, self.netns);
        match &self.tx {
            Some(tx) => match tx.try_send((level, text)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.lost.fetch_add(1, Ordering::Relaxed);
                }
            },
            None => eprintln!("{text}"),
        }
    }
}

struct Writer {
    sink: Sink,
    sock: Option<UnixDatagram>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    lost: Arc<AtomicU64>,
    reported: u64,
    tag: String,
    /// The datagram being built (journald).
    buf: Vec<u8>,
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` of the wall clock (the writer thread only).
fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (year, month, day) = nfrs_rules::save::civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

impl Writer {
    fn open(sink: Sink, lost: Arc<AtomicU64>) -> Result<Writer, String> {
        let mut w = Writer {
            sink: sink.clone(),
            sock: None,
            file: None,
            lost,
            reported: 0,
            tag: format!("nfrs[{}]", std::process::id()),
            buf: Vec::new(),
        };
        match &sink {
            Sink::Stderr => {}
            Sink::Syslog { path, .. } | Sink::Journald { path, .. } => {
                let what = if matches!(sink, Sink::Syslog { .. }) {
                    "syslog"
                } else {
                    "journald"
                };
                let s = UnixDatagram::unbound().map_err(|e| e.to_string())?;
                s.connect(path)
                    .map_err(|e| format!("{what} socket {}: {e}", path.display()))?;
                w.sock = Some(s);
            }
            Sink::File(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("log file {}: {e}", p.display()))?;
                w.file = Some(std::io::BufWriter::new(f));
            }
        }
        Ok(w)
    }

    fn run(&mut self, rx: Receiver<(u8, String)>) {
        while let Ok((level, text)) = rx.recv() {
            let lost = self.lost.load(Ordering::Relaxed);
            if lost > self.reported {
                let n = lost - self.reported;
                self.reported = lost;
                self.write(
                    4,
                    &format!("nfrs run: {n} log lines dropped (the log writer fell behind)"),
                );
            }
            self.write(level, &text);
            // Flush once the queue is drained, so lines are not held back.
            while let Ok((l, t)) = rx.try_recv() {
                self.write(l, &t);
            }
            if let Some(f) = self.file.as_mut() {
                let _ = f.flush();
            }
        }
    }

    fn write(&mut self, level: u8, text: &str) {
        match &self.sink {
            Sink::Stderr => eprintln!("{text}"),
            Sink::Syslog { facility, .. } => {
                let msg = syslog_line(*facility, level, &self.tag, text);
                if let Some(s) = &self.sock {
                    if s.send(msg.as_bytes()).is_err() {
                        self.lost.fetch_add(1, Ordering::Relaxed);
                        self.reported += 1;
                    }
                }
            }
            Sink::Journald { facility, .. } => {
                journal_datagram(*facility, level, text, &mut self.buf);
                if let Some(s) = &self.sock {
                    if s.send(&self.buf).is_err() {
                        self.lost.fetch_add(1, Ordering::Relaxed);
                        self.reported += 1;
                    }
                }
            }
            Sink::File(_) => {
                if let Some(f) = self.file.as_mut() {
                    let _ = writeln!(f, "{} {text}", rfc3339_now());
                }
            }
        }
    }
}

/// One RFC 3164 message as a local syslog daemon takes it: `<PRI>TAG: MSG`, PRI = facility ×
/// 8 + severity.
pub fn syslog_line(facility: u8, level: u8, tag: &str, text: &str) -> String {
    format!(
        "<{}>{tag}: {}",
        u16::from(facility) * 8 + u16::from(level.min(7)),
        text.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_syslog_lines_and_netns() {
        assert_eq!(facility("kern"), Some(0));
        assert_eq!(facility("local7"), Some(23));
        assert_eq!(facility("bogus"), None);
        assert_eq!(
            syslog_line(0, 4, "nfrs[7]", "x: IN=a \n"),
            "<4>nfrs[7]: x: IN=a"
        );
        assert_eq!(syslog_line(16, 6, "t", "m"), "<134>t: m");
        let full = "nf_conntrack: nf_conntrack: table full in netns *, dropping packet";
        assert_eq!(
            fix_netns(full.into(), Some(4026532177)),
            "nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet"
        );
        assert_eq!(
            fix_netns(full.into(), None),
            "nf_conntrack: nf_conntrack: table full, dropping packet"
        );
        assert_eq!(fix_netns("x: IN=a".into(), None), "x: IN=a");
    }

    #[test]
    fn syslog_socket_and_file_sinks() {
        let dir = std::env::temp_dir().join(format!("nfrs-logsink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dev_log = dir.join("log.sock");
        let server = UnixDatagram::bind(&dev_log).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let lg = Logger::start(Sink::Syslog {
            path: dev_log.clone(),
            facility: facility("local3").unwrap(),
        })
        .unwrap();
        lg.log("drop: IN=lan0 OUT= SRC=10.0.0.2".into(), 6);
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert_eq!(
            got,
            format!(
                "<158>nfrs[{}]: drop: IN=lan0 OUT= SRC=10.0.0.2",
                std::process::id()
            )
        );
        let path = dir.join("nfrs.log");
        let lf = Logger::start(Sink::File(path.clone())).unwrap();
        lf.log("a: IN=x".into(), 4);
        lf.log("b: IN=y".into(), 2);
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("Z a: IN=x"), "{text}");
        assert!(lines[0].starts_with("20") && lines[0].as_bytes()[10] == b'T');
        assert!(Logger::start(Sink::Syslog {
            path: dir.join("absent.sock"),
            facility: 0
        })
        .is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn journald_datagrams() {
        let mut d = Vec::new();
        journal_datagram(0, 4, "drop: IN=lan0 OUT= SRC=10.0.0.2 \n", &mut d);
        assert_eq!(
            String::from_utf8(d.clone()).unwrap(),
            "MESSAGE=drop: IN=lan0 OUT= SRC=10.0.0.2\nPRIORITY=4\nSYSLOG_FACILITY=0\nSYSLOG_IDENTIFIER=nfrs\n"
        );
        // A newline inside a value: the binary form, length little endian.
        journal_datagram(19, 9, "a\nb", &mut d);
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\nPRIORITY=7\nSYSLOG_FACILITY=19\nSYSLOG_IDENTIFIER=nfrs\n");
        assert_eq!(d, want);

        let dir = std::env::temp_dir().join(format!("nfrs-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("socket");
        let server = UnixDatagram::bind(&sock).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let lg = Logger::start(Sink::Journald {
            path: sock.clone(),
            facility: 0,
        })
        .unwrap();
        lg.log(
            "nf_conntrack: table full in netns *, dropping packet".into(),
            4,
        );
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let netns = match own_netns() {
            Some(n) => format!(" in netns {n}"),
            None => String::new(),
        };
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!("MESSAGE=nf_conntrack: table full{netns}, dropping packet\nPRIORITY=4\nSYSLOG_FACILITY=0\nSYSLOG_IDENTIFIER=nfrs\n")
        );
        let absent = dir.join("absent");
        let e = Logger::start(Sink::Journald {
            path: absent.clone(),
            facility: 0,
        })
        .err()
        .unwrap();
        assert!(e.contains("journald socket"), "{e}");
        // auto: journald, else syslog, else stderr.
        let dev_log = dir.join("devlog");
        assert_eq!(auto_sink(&absent, &absent, 0), Sink::Stderr);
        std::fs::write(&dev_log, "").unwrap();
        assert_eq!(
            auto_sink(&absent, &dev_log, 3),
            Sink::Syslog {
                path: dev_log.clone(),
                facility: 3
            }
        );
        assert_eq!(
            auto_sink(&sock, &dev_log, 0),
            Sink::Journald {
                path: sock.clone(),
                facility: 0
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
