//! `nfrs run`: the daemon. One packet thread owns the engine (rules, conntrack, NAT) and the
//! AF_PACKET sockets; a control thread serves `control.sock`. A rule command on one rule
//! (`-A -I -R -D`) is patched into the engine by the packet thread between two packets
//! (`Engine::patch`) and answered, the store written behind it (`Behind`); any other change
//! gets its engine built in full on the control thread, which the packet thread swaps in
//! between two packets, moving the conntrack table across. No packet meets half a ruleset and
//! established connections survive either way.

use crate::arp::{self, Neighbours, Resolve};
use crate::bridge;
use crate::cmds;
use crate::control;
use crate::ctsave;
use crate::hostfile::{self, HostFile};
use crate::packet::{self, PacketSocket};
use crate::proto::{Request, Response};
use nfrs_conntrack::CtConfig;
use nfrs_engine::engine::{Engine, Ev};
use nfrs_engine::host::HostNet;
use nfrs_engine::patch::{Edit, RuleChange};
use nfrs_rules::store::{write_atomic, Store};
use nfrs_rules::tool;
use nfrs_rules::Ruleset;
use nfrs_scenario::Host;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What `nfrs run` is given.
#[derive(Clone, Debug)]
pub struct Config {
    /// The store directory.
    pub store: PathBuf,
    /// The host file.
    pub host_file: PathBuf,
    /// `--metrics ADDR:PORT`: serve Prometheus text there.
    pub metrics: Option<String>,
}

/// The sysctls set at run time, kept in the store.
pub const SYSCTL_FILE: &str = "sysctl.conf";

static STOP: AtomicBool = AtomicBool::new(false);
/// Packets for the host itself that were dropped (no TUN device, `[live] tap`, or the kernel
/// did not take them), for the metrics.
static LOCAL_DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signals() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: sigaction is plain data (zeroed is valid); the handler only stores to an
        // atomic, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn own_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|u| u.parse().ok()))
        })
        .unwrap_or(0)
}

/// Reads `DIR/sysctl.conf` (`name = value` lines).
pub fn load_sysctls(store: &Path) -> Result<BTreeMap<String, String>, String> {
    let path = store.join(SYSCTL_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut m = BTreeMap::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("{}:{}: expected `name = value`", path.display(), i + 1))?;
        m.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(m)
}

fn save_sysctls(store: &Path, m: &BTreeMap<String, String>) -> Result<(), String> {
    let mut text = String::from("# set with nfrs sysctl -w while nfrs run was running\n");
    for (k, v) in m {
        text.push_str(&format!("{k} = {v}\n"));
    }
    write_atomic(store, SYSCTL_FILE, text.as_bytes()).map_err(|e| e.to_string())
}

/// What the packet thread owns.
pub struct Live {
    /// The engine in force.
    pub engine: Engine,
    /// The packet clock now (monotonic, ns since start).
    pub now: u64,
    /// Packet buffers to reuse.
    pub pool: Vec<Vec<u8>>,
    /// `conntrack -E` listeners and what they last saw.
    pub events: crate::events::Events,
    /// Where the kernel log lines go.
    pub log: crate::logsink::Logger,
}

#[cfg(test)]
impl Live {
    /// A daemon's packet-thread state around `engine` for tests: the clock at 1 us, no
    /// buffers, listeners or log sink.
    pub(crate) fn for_test(engine: Engine) -> Live {
        Live {
            engine,
            now: 1_000,
            pool: Vec::new(),
            events: Default::default(),
            log: Default::default(),
        }
    }
}

/// Packet buffers kept for reuse.
const POOL_MAX: usize = 64;

type Job = Box<dyn FnOnce(&mut Live) -> Response + Send>;

/// Shared by both threads.
struct Shared {
    /// The host model (its sysctls follow `nfrs sysctl -w`).
    host: Mutex<Host>,
    /// Conntrack settings in force (for a table created by a later ruleset too).
    ctcfg: Mutex<CtConfig>,
    store: Store,
    /// The ruleset in force, kept between store tools with what their checks learnt (so a
    /// rule command is checked alone, not with its whole table); the lock is held by a tool
    /// from reading the ruleset to putting its change in force. `None`: copied from the
    /// engine at the next tool (at the start, and after a change that failed).
    tools: Mutex<Option<Ruleset>>,
    jobs: mpsc::Sender<(Job, mpsc::Sender<Response>)>,
    wake: Mutex<UnixStream>,
    /// The store written behind the answers of rule commands patched into the engine.
    behind: Behind,
}

/// The store file written behind the answers (`nfrs run`): a rule command patched into the
/// engine (`Engine::patch`) is answered once in force, and a writer thread then writes the
/// ruleset the tools keep, several changes in one write when they come together. Off
/// ([`Behind::on`] false, the [`Dispatcher`] default), or after a write behind failed, a
/// change is written before its answer and refused when it cannot be.
#[derive(Default)]
struct Behind {
    st: Mutex<BehindState>,
    cv: std::sync::Condvar,
    /// Held while the store file is written, by the writer or by a change written before its
    /// answer, so that an older ruleset never lands after a newer one.
    write: Mutex<()>,
}

#[derive(Default)]
struct BehindState {
    /// The writer runs.
    on: bool,
    /// Changes put in force and not yet asked of the writer / covered by a write.
    asked: u64,
    written: u64,
    /// `asked` when the writer last tried (a failed write is tried again at the next change).
    tried: u64,
    /// The last write behind failed (with this error) and nothing has been written since.
    failed: Option<String>,
    stop: bool,
    /// Rule commands patched into the engine so far.
    patched: u64,
    /// The changes noted since the writer last looked, in order: it applies them to its own
    /// copy of the ruleset, so it need not copy the tools' one (under their lock) each time.
    queue: Vec<RuleChange>,
    /// A change was written in full since: the writer's copy is out of date.
    fresh: bool,
}

/// How long the writer waits for more changes before writing (and at most in all), so a
/// burst of commands (kube-proxy's) costs one write.
const BEHIND_QUIET: Duration = Duration::from_millis(20);
const BEHIND_MAX_WAIT: Duration = Duration::from_millis(500);

impl Behind {
    fn state(&self) -> std::sync::MutexGuard<'_, BehindState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A change is in force and not yet in the store.
    fn note(&self, c: RuleChange) {
        let mut st = self.state();
        st.asked += 1;
        st.queue.push(c);
        self.cv.notify_all();
    }

    /// Everything in force is in the store (a full write succeeded).
    fn covered(&self) {
        let mut st = self.state();
        st.written = st.asked;
        st.tried = st.asked;
        st.failed = None;
        st.queue.clear();
        st.fresh = true;
    }
}

/// The writer behind the answers: waits for a change, lets a burst finish, takes the ruleset
/// the tools keep and writes it to the store.
fn write_behind(sh: Arc<Shared>) {
    // The writer's own copy of the ruleset in force (the tools' one is copied at the first
    // change and after a change written in full).
    let mut shadow: Option<Ruleset> = None;
    loop {
        {
            let mut st = sh.behind.state();
            while !st.stop && st.asked == st.tried {
                st = sh.behind.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.stop {
                return;
            }
        }
        let t0 = Instant::now();
        let mut seen = sh.behind.state().asked;
        while t0.elapsed() < BEHIND_MAX_WAIT {
            std::thread::sleep(BEHIND_QUIET);
            let st = sh.behind.state();
            if st.stop || st.asked == seen {
                break;
            }
            seen = st.asked;
        }
        let gen;
        let _w;
        if shadow.is_some() && !sh.behind.state().fresh {
            // The writer's copy, brought up to date with the changes noted since.
            let changes = {
                let mut st = sh.behind.state();
                gen = st.asked;
                std::mem::take(&mut st.queue)
            };
            _w = sh.behind.write.lock().unwrap_or_else(|e| e.into_inner());
            let rs = shadow.as_mut().expect("checked");
            // A change written in full meanwhile holds these: the copy is out of date. A change
            // that does not apply: the tools' ruleset is taken again.
            if sh.behind.state().fresh || !changes.iter().all(|c| c.apply(rs)) {
                shadow = None;
                continue;
            }
        } else {
            // The tools' ruleset is copied under their lock (the queue cleared with it: the
            // copy holds those changes), then the store's write lock is taken before that one
            // is let go (a change written before its answer holds the tools' lock while it
            // waits for the write lock: never the other way round).
            let tools = sh.tools.lock().unwrap_or_else(|e| e.into_inner());
            {
                let mut st = sh.behind.state();
                gen = st.asked;
                st.queue.clear();
                st.fresh = false;
            }
            let rs = match tools.as_ref() {
                Some(rs) => Ok(rs.clone()),
                None => sh.live_ruleset(None).map_err(|r| r.stderr),
            };
            _w = sh.behind.write.lock().unwrap_or_else(|e| e.into_inner());
            drop(tools);
            match rs {
                Ok(rs) => shadow = Some(rs),
                Err(e) => {
                    let mut st = sh.behind.state();
                    st.tried = st.tried.max(gen);
                    eprintln!("nfrs run: writing the store behind failed: {e}");
                    st.failed = Some(e);
                    continue;
                }
            }
        }
        let rs = shadow.as_ref().expect("set above");
        let r = (|| {
            let mut text = Vec::new();
            nfrs_rules::save::save_store_to(rs, &mut text).map_err(|e| e.to_string())?;
            let _lock = sh
                .store
                .lock(Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            let r = write_atomic(&sh.store.dir, "ruleset.rules", &text).map_err(|e| e.to_string());
            drop_elsewhere(text);
            r
        })();
        let mut st = sh.behind.state();
        st.tried = st.tried.max(gen);
        match r {
            Ok(()) => {
                st.written = st.written.max(gen);
                st.failed = None;
            }
            Err(e) => {
                eprintln!(
                    "nfrs run: writing the store behind failed: {e} (the change is in force; the next change is written before its answer)"
                );
                st.failed = Some(e);
            }
        }
    }
}

/// Starts the writer behind the answers.
fn start_write_behind(shared: &Arc<Shared>) -> Result<std::thread::JoinHandle<()>, String> {
    shared.behind.state().on = true;
    let sh = shared.clone();
    std::thread::Builder::new()
        .name("nfrs-store".into())
        .spawn(move || write_behind(sh))
        .map_err(|e| e.to_string())
}

/// Stops the writer behind the answers, after the write it is doing.
fn stop_write_behind(shared: &Shared, writer: std::thread::JoinHandle<()>) {
    shared.behind.state().stop = true;
    shared.behind.cv.notify_all();
    let _ = writer.join();
    let _w = shared
        .behind
        .write
        .lock()
        .unwrap_or_else(|e| e.into_inner());
}

/// Whether the store can take a write of the ruleset now (checked before a change is put in
/// force and answered, its write following): a read-only file system, or less room than the
/// store file takes, refuses it with the error the write would give.
fn store_writable(dir: &Path) -> Result<(), String> {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return Ok(());
    };
    // SAFETY: `c` is a NUL-terminated path that outlives the call; `v` is a plain C struct
    // the call fills (zeroed first), read only when the call succeeds.
    let mut v: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut v) } != 0 {
        return Ok(());
    }
    let err = |code| {
        format!(
            "{}: {}",
            dir.display(),
            std::io::Error::from_raw_os_error(code)
        )
    };
    if v.f_flag & libc::ST_RDONLY != 0 {
        return Err(err(libc::EROFS));
    }
    let need = std::fs::metadata(dir.join("ruleset.rules")).map_or(0, |m| m.len()) + 64 * 1024;
    if (v.f_bavail as u64).saturating_mul(v.f_frsize as u64) < need {
        return Err(err(libc::ENOSPC));
    }
    Ok(())
}

/// Why [`Shared::patch_in`] did not put a change in force.
enum Refused {
    /// The store cannot take it (the error): refused.
    Store(String),
    /// The engine cannot take it in place: compile in full.
    Engine(Box<RuleChange>, String),
}

/// A rule command the engine may take in place: which chain, what, and where (found before
/// the tool runs, for `-D` by rule).
struct Plan {
    table: nfrs_rules::TableKind,
    chain: String,
    cmd: nfrs_rules::parse::Cmd,
    /// 0-based position (for `-A` the chain's length before).
    at: usize,
}

impl Plan {
    /// `iptables -A/-I/-D/-R` of one rule on a chain of a table in force; None for
    /// anything else (compiled in full).
    fn of(tool: &str, args: &[String], rs: &Ruleset) -> Option<Plan> {
        use nfrs_rules::parse::Cmd;
        if !matches!(tool, "iptables" | "iptables-legacy") {
            return None;
        }
        let c = nfrs_rules::parse::parse_command_with(args, false, None, false)
            .0
            .ok()?;
        let chain = rs.table(c.table)?.chain(&c.chain)?;
        let len = chain.rules.len();
        let at = match c.cmd {
            Cmd::Append if c.rules.len() == 1 => len,
            Cmd::Insert if c.rules.len() == 1 => (c.rulenum.max(1) - 1) as usize,
            Cmd::Replace | Cmd::DeleteNum if c.rulenum >= 1 => (c.rulenum - 1) as usize,
            Cmd::Delete if c.rules.len() == 1 => {
                chain.rules.iter().position(|r| r.same_as(&c.rules[0]))?
            }
            _ => return None,
        };
        Some(Plan {
            table: c.table,
            chain: c.chain,
            cmd: c.cmd,
            at,
        })
    }

    /// The change as the ruleset now holds it (after the tool ran).
    fn change(&self, rs: &Ruleset) -> Option<RuleChange> {
        use nfrs_rules::parse::Cmd;
        let rules = &rs.table(self.table)?.chain(&self.chain)?.rules;
        let edit = match self.cmd {
            Cmd::Append | Cmd::Insert => Edit::Insert {
                at: self.at,
                rule: rules.get(self.at)?.clone(),
            },
            Cmd::Replace => Edit::Replace {
                at: self.at,
                rule: rules.get(self.at)?.clone(),
            },
            _ => Edit::Delete { at: self.at },
        };
        Some(RuleChange {
            table: self.table,
            chain: self.chain.clone(),
            edit,
        })
    }
}

/// Copies the counters of `live` (the ruleset in force before `c`) into `rs` (the same
/// ruleset with `c` applied by the tool): the changed chain's rules shifted around the
/// change; the policy counters the tool reset stay reset.
fn carry_counters(live: &Ruleset, rs: &mut Ruleset, c: &RuleChange) {
    for t in &mut rs.tables {
        let Some(from) = live.table(t.kind) else {
            continue;
        };
        for ch in &mut t.chains {
            let Some(old) = from.chain(&ch.name) else {
                continue;
            };
            if t.kind != c.table && ch.is_builtin() {
                ch.counters = old.counters;
            }
            let changed = t.kind == c.table && ch.name == c.chain;
            for (k, r) in ch.rules.iter_mut().enumerate() {
                let src = match (&c.edit, changed) {
                    (_, false) => Some(k),
                    (Edit::Insert { at, .. }, true) if k == *at => None,
                    (Edit::Insert { at, .. }, true) if k > *at => Some(k - 1),
                    (Edit::Delete { at }, true) if k >= *at => Some(k + 1),
                    (Edit::Replace { at, .. }, true) if k == *at => None,
                    _ => Some(k),
                };
                if let Some(o) = src.and_then(|i| old.rules.get(i)) {
                    r.counters = o.counters;
                }
            }
        }
    }
}

impl Shared {
    /// Runs `job` on the packet thread between two packets and returns its answer.
    fn on_packet_thread(&self, job: Job) -> Response {
        let (tx, rx) = mpsc::channel();
        if self.jobs.send((job, tx)).is_err() {
            return Response::error(1, "nfrs run: stopping");
        }
        if let Ok(mut w) = self.wake.lock() {
            let _ = w.write(&[1]);
        }
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| Response::error(1, "nfrs run: the packet thread did not answer"))
    }

    /// The ruleset in force with its live counters: `kept` (the copy the tools keep) gets them
    /// on the packet thread, or without one the engine's ruleset is copied out there.
    fn live_ruleset(&self, kept: Option<Ruleset>) -> Result<Ruleset, Response> {
        let (tx, rx) = mpsc::channel();
        let r = self.on_packet_thread(Box::new(move |l: &mut Live| {
            let rs = match kept {
                Some(mut rs) => {
                    if l.engine.write_counters_into(&mut rs) {
                        rs
                    } else {
                        // Not the ruleset in force after all: freed off the packet thread.
                        drop_elsewhere(rs);
                        l.engine.ruleset_with_counters()
                    }
                }
                None => l.engine.ruleset_with_counters(),
            };
            let _ = tx.send(rs);
            Response::default()
        }));
        rx.recv().map_err(|_| r)
    }

    /// Puts a changed ruleset in force: the store written (atomically, under its lock) while a
    /// copy of the ruleset is compiled, then the engine swapped in on the packet thread. A
    /// failure refuses the change and leaves store and engine as they were (a store written
    /// for an engine that did not compile gets the ruleset in force back). `restored`: the
    /// input's table blocks the store keeps as they are after an iptables-restore of `input`.
    /// Gives `rs` back: the engine gets a copy.
    fn put_in_force(
        &self,
        rs: Ruleset,
        input: &str,
        restored: Option<&nfrs_rules::restore::InputBlocks>,
    ) -> Result<Ruleset, String> {
        let store = &self.store;
        // No write behind lands in between (this write holds every change up to now).
        let _w = self.behind.write.lock().unwrap_or_else(|e| e.into_inner());
        let (written, compiled) = std::thread::scope(|s| {
            let writer = s.spawn(|| -> Result<(), String> {
                let mut text = Vec::new();
                match restored {
                    Some(b) => nfrs_rules::save::save_store_after_restore(&rs, input, b, &mut text),
                    None => nfrs_rules::save::save_store_to(&rs, &mut text),
                }
                .map_err(|e| e.to_string())?;
                let lock = store.lock(Duration::from_secs(10));
                let r = lock.map_err(|e| e.to_string()).and_then(|_lock| {
                    write_atomic(&store.dir, "ruleset.rules", &text).map_err(|e| e.to_string())
                });
                drop_elsewhere(text);
                r
            });
            let compiled = self
                .host
                .lock()
                .map(|h| h.clone())
                .map_err(|_| "poisoned".to_string())
                .and_then(|host| {
                    let hn = HostNet::new(&host)?;
                    Engine::new(hn, rs.clone(), &host.effective_sysctls())
                        .map_err(|e| format!("the new ruleset was not swapped in: {e}"))
                });
            let written = writer
                .join()
                .unwrap_or_else(|_| Err("writing the store failed".into()));
            (written, compiled)
        });
        let new = match (written, compiled) {
            (Ok(()), Ok(new)) => {
                self.behind.covered();
                new
            }
            (Err(e), compiled) => {
                // The atomic write left the store as it was.
                if let Ok(new) = compiled {
                    drop_elsewhere(new);
                }
                return Err(e);
            }
            (Ok(()), Err(e)) => {
                let back = self
                    .live_ruleset(None)
                    .map_err(|r| r.stderr)
                    .and_then(|back| {
                        let _lock = store
                            .lock(Duration::from_secs(10))
                            .map_err(|e| e.to_string())?;
                        store.save(&back).map_err(|e| e.to_string())
                    });
                return Err(match back {
                    Ok(()) => e,
                    Err(b) => format!("{e}; putting the ruleset in force back in the store: {b}"),
                });
            }
        };
        let cfg = self.ctcfg.lock().map_err(|_| "poisoned")?.clone();
        let (tx, rx) = mpsc::channel();
        let r = self.on_packet_thread(Box::new(move |l: &mut Live| {
            // The old engine leaves the packet thread, to be freed elsewhere.
            let _ = tx.send(swap_engine(&mut l.engine, new, cfg));
            Response::default()
        }));
        if let Ok(old) = rx.try_recv() {
            drop_elsewhere(old);
        }
        if r.code != 0 {
            return Err(r.stderr);
        }
        Ok(rs)
    }

    fn handle(&self, req: Request) -> Response {
        match req {
            Request::Ping {} => Response {
                code: 0,
                stdout: format!("nfrs run: pid {}\n", std::process::id()),
                stderr: String::new(),
            },
            Request::Tool { tool, args, stdin } => self.tool(&tool, args, stdin),
            Request::Conntrack { args } => self.on_packet_thread(Box::new(move |l: &mut Live| {
                let now = l.now;
                if let Some(ct) = l.engine.ct.as_mut() {
                    let ev = &mut l.events;
                    ct.expire(now, &mut |_, c| ev.expired(c, now));
                }
                let r = cmds::conntrack(&mut l.engine, &args, now);
                // Deleted from user space: DESTROY events with the remaining timeout.
                l.events.sweep(l.engine.ct.as_mut(), l.now, Some(0));
                r
            })),
            Request::Events { .. } => Response::error(
                2,
                "nfrs run: conntrack -E streams only through the control socket",
            ),
            Request::Sysctl { args } => self.sysctl(&args),
            Request::Check { packet } => self.check(&packet),
        }
    }

    /// A request that may stream: `conntrack -E` subscribes to the packet thread's events.
    fn handle_streaming(&self, req: Request) -> control::Reply {
        let Request::Events { args } = req else {
            return control::Reply::Once(self.handle(req));
        };
        let wanted = match crate::events::parse_args(&args) {
            Ok(w) => w,
            Err(r) => return control::Reply::Once(r),
        };
        let (tx, rx) = mpsc::sync_channel(crate::events::QUEUE);
        let listener = crate::events::Listener::new(tx, wanted);
        let closed = listener.closed.clone();
        let r = self.on_packet_thread(Box::new(move |l: &mut Live| {
            if l.events.listeners() >= crate::events::MAX_LISTENERS {
                return Response::error(
                    1,
                    format!(
                        "nfrs run: {} conntrack -E listeners already",
                        crate::events::MAX_LISTENERS
                    ),
                );
            }
            l.events.subscribe(listener, l.engine.ct.as_ref(), l.now);
            Response::default()
        }));
        if r.code != 0 {
            return control::Reply::Once(r);
        }
        control::Reply::Stream(rx, closed)
    }

    /// `nfrs check`: the live state is read between two packets; the packet runs elsewhere.
    fn check(&self, packet: &str) -> Response {
        let (tx, rx) = mpsc::channel();
        let r = self.on_packet_thread(Box::new(move |l: &mut Live| {
            let _ = tx.send(crate::check::State::of(&l.engine, l.now));
            Response::default()
        }));
        let Ok(state) = rx.recv() else {
            return r;
        };
        let Ok(host) = self.host.lock().map(|h| h.clone()) else {
            return Response::error(1, "nfrs run: poisoned");
        };
        match crate::check::check(&state, &host, packet) {
            Ok(stdout) => Response {
                code: 0,
                stdout,
                stderr: String::new(),
            },
            Err(e) => Response::error(2, e),
        }
    }

    fn tool(&self, tool: &str, args: Vec<String>, stdin: String) -> Response {
        if !tool::known(tool) {
            return Response::error(2, format!("nfrs run: unknown tool `{tool}`"));
        }
        if let Some(e) = refused_tool_args(tool, &args) {
            return Response::error(2, e);
        }
        let proc_file = (tool == "proc" && args.len() == 1)
            .then(|| args[0].trim_start_matches("/proc/").trim_start_matches('/'));
        if let Some(file @ ("net/nf_conntrack" | "net/nf_conntrack_expect")) = proc_file {
            let expect = file.ends_with("expect");
            return self.on_packet_thread(Box::new(move |l: &mut Live| {
                let mut out = Response::default();
                if let Some(ct) = l.engine.ct.as_mut() {
                    ct.expire(l.now, &mut |_, _| {});
                    out.stdout = if expect {
                        cmds::proc_expect(ct, l.now)
                    } else {
                        cmds::proc_conntrack(ct, l.now, None)
                    };
                }
                out
            }));
        }
        let p = match tool::prepare(tool, &args) {
            Ok(p) => p,
            Err(o) => return answer(o, Vec::new()),
        };
        // One tool at a time: each applies to the ruleset the previous one put in force.
        let t0 = Instant::now();
        let mut kept = self.tools.lock().unwrap_or_else(|e| e.into_inner());
        // A rule command patched in prints no counters: the kept ruleset goes without the
        // live ones (the packet thread's 2-4 ms at 100k rules saved); a listing gets them.
        let kept_rs = kept.take();
        let plan = kept_rs.as_ref().and_then(|rs| Plan::of(tool, &args, rs));
        let mut rs = match (plan.is_some(), kept_rs) {
            (true, Some(rs)) => rs,
            (_, kept_rs) => match self.live_ruleset(kept_rs) {
                Ok(rs) => rs,
                Err(r) => return r,
            },
        };
        // (No ruleset kept: the engine's, copied with its counters, tells where.)
        let plan = plan.or_else(|| Plan::of(tool, &args, &rs));
        let mut stdout = Vec::new();
        let mut out = p.apply(&mut rs, &stdin, &mut stdout);
        if !out.changed {
            // A listing writes nothing: the store's counters are brought up to date with
            // each change and at a graceful stop.
            *kept = Some(rs);
            return answer(out, stdout);
        }
        let change = plan.filter(|_| out.code == 0).and_then(|p| p.change(&rs));
        let mut how = String::from("compiled");
        let done = match change {
            Some(c) => match self.patch_in(&rs, c) {
                Ok(()) => {
                    how = "patched".into();
                    Ok(rs)
                }
                Err(Refused::Store(e)) => Err(e),
                Err(Refused::Engine(c, why)) => {
                    how = format!("compiled ({why})");
                    // Compiled in full: the ruleset gets the live counters first.
                    match self.live_ruleset(None) {
                        Ok(live) => {
                            carry_counters(&live, &mut rs, &c);
                            drop_elsewhere(live);
                            self.put_in_force(rs, &stdin, None)
                        }
                        Err(r) => Err(r.stderr),
                    }
                }
            },
            None => {
                let restored = out.restored.take();
                self.put_in_force(rs, &stdin, restored.as_ref())
            }
        };
        match done {
            Ok(rs) => *kept = Some(rs),
            // The change is not in force: the next tool copies the engine's ruleset again.
            Err(e) => {
                out.stderr.push_str(&format!("nfrs run: {e}\n"));
                out.code = out.code.max(4);
            }
        }
        if std::env::var_os("NFRS_RUN_TIMES").is_some() {
            eprintln!(
                "nfrs run: {tool} {} {how} and answered in {:.3} ms",
                args.join(" "),
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
        answer(out, stdout)
    }

    /// Puts one rule command in force by patching the engine. With the store written behind
    /// (and no write behind failed since the last good one) the store's room is checked
    /// first and the writer told after; otherwise the store is written first. `Engine`: the
    /// engine cannot take it in place (nothing changed, the store maybe written already):
    /// compile in full.
    fn patch_in(&self, rs: &Ruleset, c: RuleChange) -> Result<(), Refused> {
        let behind = {
            let st = self.behind.state();
            st.on && st.failed.is_none()
        };
        if behind {
            store_writable(&self.store.dir).map_err(Refused::Store)?;
        } else {
            let _w = self.behind.write.lock().unwrap_or_else(|e| e.into_inner());
            let mut text = Vec::new();
            nfrs_rules::save::save_store_to(rs, &mut text)
                .map_err(|e| Refused::Store(e.to_string()))?;
            let lock = self.store.lock(Duration::from_secs(10));
            lock.map_err(|e| e.to_string())
                .and_then(|_lock| {
                    write_atomic(&self.store.dir, "ruleset.rules", &text).map_err(|e| e.to_string())
                })
                .map_err(Refused::Store)?;
            drop_elsewhere(text);
            self.behind.covered();
        }
        let (tx, rx) = mpsc::channel();
        let r = self.on_packet_thread(Box::new(move |l: &mut Live| {
            let res = l.engine.patch(&c);
            let _ = tx.send((res, c));
            Response::default()
        }));
        match rx.try_recv() {
            Ok((Ok(()), c)) => {
                self.behind.state().patched += 1;
                if behind {
                    self.behind.note(c);
                }
                Ok(())
            }
            Ok((Err(e), c)) => Err(Refused::Engine(Box::new(c), e.0)),
            Err(_) => Err(Refused::Store(r.stderr)),
        }
    }

    fn sysctl(&self, args: &[String]) -> Response {
        let a = match cmds::parse_sysctl_args(args) {
            Ok(a) => a,
            Err(e) => return Response::error(255, e),
        };
        let mut out = Response::default();
        let mut changed = false;
        for (name, value) in a.items {
            let dotted = cmds::dotted(&name);
            let slashed = dotted.replace('.', "/");
            let missing =
                || format!("sysctl: cannot stat /proc/sys/{slashed}: No such file or directory\n");
            let Ok(mut host) = self.host.lock() else {
                return Response::error(1, "nfrs run: poisoned");
            };
            let Ok(mut cfg) = self.ctcfg.lock() else {
                return Response::error(1, "nfrs run: poisoned");
            };
            let count = self.count();
            let Some(cur) = cmds::sysctl_get(&dotted, &cfg, count, &host.sysctls) else {
                out.stderr.push_str(&missing());
                out.code = 1;
                continue;
            };
            let shown = match value {
                None => cur,
                Some(v) => {
                    let bad = format!("sysctl: setting key \"{dotted}\": Invalid argument\n");
                    if cmds::HOST_SYSCTLS.contains(&dotted.as_str()) {
                        let Some(v) = cmds::check_host_value(&dotted, &v) else {
                            out.stderr.push_str(&bad);
                            out.code = 1;
                            continue;
                        };
                        host.sysctls
                            .insert(dotted.clone(), cmds::stored_host_value(&dotted, &v));
                        let snap = host.sysctls.clone();
                        drop(host);
                        self.on_packet_thread(Box::new(move |l: &mut Live| {
                            cmds::apply_host_sysctls(&mut l.engine, &snap);
                            Response::default()
                        }));
                        changed = true;
                        v
                    } else {
                        let bare = dotted.rsplit('.').next().unwrap_or("").to_string();
                        if let Err(e) = cfg.set(&bare, &v) {
                            out.stderr.push_str(&bad);
                            out.stderr.push_str(&format!("nfrs: {e}\n"));
                            out.code = 1;
                            continue;
                        }
                        let vv = v.clone();
                        let set = bare.clone();
                        self.on_packet_thread(Box::new(move |l: &mut Live| {
                            if let Some(ct) = l.engine.ct.as_mut() {
                                let _ = ct.set_sysctl(&set, &vv);
                            }
                            Response::default()
                        }));
                        host.sysctls.insert(dotted.clone(), v.clone());
                        changed = true;
                        cfg.get(&bare).unwrap_or(v)
                    }
                }
            };
            if a.values_only {
                out.stdout.push_str(&format!("{shown}\n"));
            } else if !(a.quiet && args.iter().any(|x| x.contains('='))) {
                out.stdout.push_str(&format!("{dotted} = {shown}\n"));
            }
        }
        if changed {
            let m = self
                .host
                .lock()
                .map(|h| h.sysctls.clone())
                .unwrap_or_default();
            if let Err(e) = save_sysctls(&self.store.dir, &m) {
                out.stderr.push_str(&format!("nfrs run: {e}\n"));
                out.code = out.code.max(1);
            }
        }
        out
    }

    fn count(&self) -> u32 {
        let (tx, rx) = mpsc::channel();
        self.on_packet_thread(Box::new(move |l: &mut Live| {
            let _ = tx.send(l.engine.ct.as_ref().map(|c| c.count()).unwrap_or(0));
            Response::default()
        }));
        rx.recv().unwrap_or(0)
    }
}

/// A request's tool arguments the daemon will not pass on: another store (the daemon runs
/// the tool on its own store, as root) or a file for iptables-restore to read (clients send
/// the rules as the request's stdin).
pub fn refused_tool_args(tool: &str, args: &[String]) -> Option<String> {
    if let Some(a) = args
        .iter()
        .find(|a| *a == "--store" || a.starts_with("--store="))
    {
        return Some(format!(
            "nfrs run: `{a}` is not allowed through the control socket (the daemon acts on its own store)"
        ));
    }
    if tool.ends_with("restore") {
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-T" | "--table" | "-M" | "--modprobe" | "-W" | "--wait-interval" => {
                    it.next();
                }
                "-w" | "--wait" if it.peek().is_some_and(|v| v.parse::<u32>().is_ok()) => {
                    it.next();
                }
                f if !f.starts_with('-') => {
                    return Some(format!(
                        "nfrs run: iptables-restore reads no file through the control socket (`{f}`); send the rules on stdin"
                    ))
                }
                _ => {}
            }
        }
    }
    None
}

/// Swaps `new` in for `old`, keeping `old`'s conntrack table (with its settings) when the new
/// ruleset uses conntrack; a table the new engine creates gets `cfg`. Returns the engine taken
/// out, for the caller to drop away from the packet thread (freeing the compiled tables of a
/// 100k-rule ruleset takes 50-190 ms, measured, which would stop forwarding that long).
#[must_use = "drop the replaced engine off the packet thread"]
pub fn swap_engine(old: &mut Engine, mut new: Engine, cfg: CtConfig) -> Engine {
    // The bridges' learned MACs stay (the host is the same; only the rules changed).
    new.host.fdb = std::mem::take(&mut old.host.fdb);
    new.ratelimit_notes = old.ratelimit_notes;
    new.external_stack = old.external_stack;
    new.set_random_seed(os_seed());
    if let Some(t) = new.ct.as_mut() {
        match old.ct.take() {
            Some(kept) => *t = kept,
            None => t.set_config(cfg),
        }
    }
    std::mem::replace(old, new)
}

/// A seed for the engine's match random source (`-m statistic --mode random`): replay keeps a
/// fixed seed for repeatable output, a live daemon draws a fresh one at each start and swap, as
/// the kernel's choices differ from boot to boot. Read once, never on the packet path.
fn os_seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => u64::from_le_bytes(b),
        // No /dev/urandom (a bare chroot): the time and pid still differ between starts.
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            t ^ (u64::from(std::process::id()) << 32)
        }
    }
}

/// A tool's answer as the control socket sends it.
fn answer(out: tool::ToolOutput, stdout: Vec<u8>) -> Response {
    let mut text = match String::from_utf8(stdout) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    if text.is_empty() {
        text = out.stdout;
    }
    Response {
        code: out.code,
        stdout: text,
        stderr: out.stderr,
    }
}

/// Frees `v` on a thread of its own: a 100k-rule ruleset or engine takes tens of
/// milliseconds to free, which the answer need not wait for.
fn drop_elsewhere<T: Send + 'static>(v: T) {
    // No thread to be had: `v` went with the closure, freed here.
    let _ = std::thread::Builder::new()
        .name("nfrs-free".into())
        .spawn(move || drop(v));
}

/// The periodic conntrack snapshot (`[live] ct_save_interval`): the packet thread makes the
/// text, a writer thread puts it in the store, so the packet thread never waits on the disk.
struct CtSaver {
    /// The interval in nanoseconds (0: off).
    every: u64,
    /// When the last round was due (packet-thread clock).
    last: u64,
    /// Set while the writer holds a snapshot: a round finding it set is skipped.
    busy: Arc<AtomicBool>,
    tx: Option<mpsc::Sender<String>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl CtSaver {
    fn start(store: &Path, secs: u64) -> Result<CtSaver, String> {
        let busy = Arc::new(AtomicBool::new(false));
        let mut s = CtSaver {
            every: secs.saturating_mul(1_000_000_000),
            last: 0,
            busy: busy.clone(),
            tx: None,
            writer: None,
        };
        if secs == 0 {
            return Ok(s);
        }
        let (tx, rx) = mpsc::channel::<String>();
        let dir = store.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("nfrs-ctsave".into())
            .spawn(move || {
                // An error is printed when writing starts failing, and once more when it works
                // again: a full or read-only disk does not flood the log.
                let mut failing = false;
                for text in rx {
                    match write_atomic(&dir, ctsave::FILE, text.as_bytes()) {
                        Ok(()) if failing => {
                            failing = false;
                            eprintln!("nfrs run: conntrack snapshot: written again");
                        }
                        Ok(()) => {}
                        Err(e) if !failing => {
                            failing = true;
                            eprintln!("nfrs run: conntrack snapshot: {e} (forwarding goes on; printed once until a write works)");
                        }
                        Err(_) => {}
                    }
                    busy.store(false, Ordering::Release);
                }
            })
            .map_err(|e| e.to_string())?;
        s.tx = Some(tx);
        s.writer = Some(writer);
        Ok(s)
    }

    /// On the packet thread: hands a snapshot to the writer when one is due and the previous
    /// one is written.
    fn tick(&mut self, live: &Live) {
        if self.every == 0 || live.now.saturating_sub(self.last) < self.every {
            return;
        }
        self.last = live.now;
        let (Some(ct), Some(tx)) = (live.engine.ct.as_ref(), self.tx.as_ref()) else {
            return;
        };
        if self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let (text, _) = ctsave::save(ct, live.now);
        if tx.send(text).is_err() {
            self.busy.store(false, Ordering::Release);
        }
    }

    /// Waits for the snapshot being written (the stop's own save must come after it).
    fn finish(&mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Restores the connections a graceful stop (or the last periodic snapshot before a crash)
/// saved. With periodic snapshots (`keep`) the file stays the last snapshot until the first
/// round replaces it, so a second crash before that round loses nothing; otherwise it is
/// removed, so a crash later never brings back entries older than this start.
fn restore_conntrack(engine: &mut Engine, store: &Path, keep: bool) {
    let path = store.join(ctsave::FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    match engine.ct.as_mut() {
        Some(ct) => {
            let r = ctsave::restore(ct, &text, 0);
            eprintln!("nfrs run: {} saved connections restored", r.n);
            for e in r.errs.iter().take(5) {
                eprintln!("nfrs run: {}: {e}", path.display());
            }
            if keep {
                return;
            }
        }
        None => eprintln!(
            "nfrs run: {}: not restored, no rule uses conntrack",
            path.display()
        ),
    }
    let _ = std::fs::remove_file(&path);
}

/// Replaces each interface's MAC with the real one of the attached kernel interface; a
/// bridge's ports go promiscuous and the bridge takes the smallest port MAC, as Linux does.
fn attach(host: &mut Host, io: packet::IoChoice) -> Result<Vec<PacketSocket>, String> {
    let mut socks = Vec::new();
    for i in host.interfaces.iter_mut() {
        let s = PacketSocket::open_with(&i.name, io)
            .map_err(|e| format!("cannot attach to `{}`: {e}", i.name))?;
        i.mac = s.mac;
        socks.push(s);
    }
    for b in host.bridges.iter_mut() {
        let macs = b
            .ports
            .iter()
            .filter_map(|p| socks.iter().find(|s| s.name == *p));
        for s in macs.clone() {
            s.set_promisc().map_err(|e| {
                format!("bridge `{}`: promiscuous mode on `{}`: {e}", b.name, s.name)
            })?;
        }
        if let Some(m) = bridge::bridge_mac(macs.map(|s| s.mac)) {
            b.mac = m;
        }
    }
    Ok(socks)
}

/// Runs the daemon until SIGTERM/SIGINT. Prints what it attached to on stderr.
pub fn run(cfg: &Config) -> Result<(), String> {
    let HostFile { mut host, live } = hostfile::load(&cfg.host_file)?;
    let ct_save_secs = live.ct_save_interval;
    let store = Store::at(&cfg.store);
    std::fs::create_dir_all(&store.dir).map_err(|e| format!("{}: {e}", store.dir.display()))?;
    for (k, v) in load_sysctls(&store.dir)? {
        host.sysctls.insert(k, v);
    }
    let socks = attach(&mut host, packet::IoChoice::resolve(live.io)?)?;
    // The store stays locked from its load until the daemon is ready, and the control socket
    // exists from the start: a command sent meanwhile either waits on the socket (served once
    // the packet thread runs) or acted on the store before the load. Without this, a command
    // in the window between load and socket changed the store directly and the daemon's
    // next counters write undid it (measured: 1 of 3 rules lost).
    let startup_lock = store
        .lock(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let listener = control::bind(&store.dir, live.control_group)?;
    let rs = store.load().map_err(|e| e.to_string())?;
    let sysctls = host.effective_sysctls();
    let mut ctcfg = CtConfig::default();
    for (k, v) in &sysctls {
        if CtConfig::owns(k) {
            ctcfg
                .set(k, v)
                .map_err(|e| format!("{}: {e}", cfg.host_file.display()))?;
        }
    }
    let logger = crate::logsink::Logger::start(live.log.clone())?;
    eprintln!("nfrs run: log lines to {}", live.log.describe());
    // The engine gets a copy; the loaded ruleset, with what its load's checks learnt, is kept
    // for the store tools, so the first command neither copies the ruleset out of the engine
    // on the packet thread (60-100 ms for 100k rules) nor checks its whole table.
    let mut engine =
        Engine::new(HostNet::new(&host)?, rs.clone(), &sysctls).map_err(|e| e.to_string())?;
    // Live: the kernel's `net_ratelimit: N callbacks suppressed` lines are printed.
    engine.ratelimit_notes = true;
    let tap = crate::tap::start(&live.tap, &host, &mut engine, live.tap_original_dst)?;
    engine.set_random_seed(os_seed());
    restore_conntrack(&mut engine, &store.dir, ct_save_secs > 0);
    drop(startup_lock);
    install_signals();
    for s in &socks {
        for w in packet::kernel_noise(&s.name).unwrap_or_default() {
            eprintln!("nfrs run: warning: {w}");
        }
        let m = s.mac;
        eprintln!(
            "nfrs run: {} (ifindex {}, {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}): {}",
            s.name,
            s.ifindex,
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
            s.method()
        );
    }
    for b in &host.bridges {
        let m = b.mac;
        eprintln!(
            "nfrs run: bridge {} ({:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}): ports {} (promiscuous), IPv4 through iptables: {}",
            b.name,
            m[0], m[1], m[2], m[3], m[4], m[5],
            b.ports.join(", "),
            if engine.host.bridge_call_iptables { "yes (bridge-nf-call-iptables=1)" } else { "no (bridge-nf-call-iptables=0)" }
        );
    }
    eprintln!(
        "nfrs run: {} mode; control socket {}; conntrack {}",
        live.mode,
        control::socket_path(&store.dir).display(),
        if engine.conntrack_active() {
            "on"
        } else {
            "off until a rule needs it"
        }
    );
    let (wake_r, wake_w) = UnixStream::pair().map_err(|e| e.to_string())?;
    wake_r.set_nonblocking(true).map_err(|e| e.to_string())?;
    let (jobs_tx, jobs_rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        host: Mutex::new(host.clone()),
        ctcfg: Mutex::new(ctcfg),
        store: store.clone(),
        tools: Mutex::new(Some(rs)),
        jobs: jobs_tx,
        wake: Mutex::new(wake_w),
        behind: Behind::default(),
    });
    let writer = start_write_behind(&shared)?;
    let sh = shared.clone();
    let uid = own_uid();
    let group = live.control_group;
    std::thread::Builder::new()
        .name("nfrs-control".into())
        .spawn(move || {
            for s in listener.incoming() {
                match s {
                    Ok(s) => {
                        control::serve_one_streaming(s, uid, group, &mut |r| sh.handle_streaming(r))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
        .map_err(|e| e.to_string())?;
    if let Some(addr) = &cfg.metrics {
        let listener =
            std::net::TcpListener::bind(addr).map_err(|e| format!("--metrics {addr}: {e}"))?;
        eprintln!(
            "nfrs run: metrics on http://{}/metrics",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let sh = shared.clone();
        let ifaces: Vec<(String, Arc<crate::metrics::IfCounters>)> = socks
            .iter()
            .map(|s| (s.name.clone(), s.counters.clone()))
            .collect();
        std::thread::Builder::new()
            .name("nfrs-metrics".into())
            .spawn(move || {
                crate::metrics::serve(listener, || {
                    let (tx, rx) = mpsc::channel();
                    sh.on_packet_thread(Box::new(move |l: &mut Live| {
                        let ct = l.engine.ct.as_ref();
                        let fig = crate::metrics::CtFigures {
                            active: ct.is_some(),
                            count: ct.map_or(0, |c| c.count()),
                            max: ct.map_or(0, |c| c.config().max),
                            expect: ct.map_or(0, |c| c.expectations(l.now).count() as u32),
                            stats: ct.map(|c| c.stats()).unwrap_or_default(),
                        };
                        let _ = tx.send((l.engine.ruleset_with_counters(), fig));
                        Response::default()
                    }));
                    let Ok((rs, fig)) = rx.recv() else {
                        return "# nfrs run: the packet thread did not answer\n".into();
                    };
                    let refs: Vec<(String, &crate::metrics::IfCounters)> =
                        ifaces.iter().map(|(n, c)| (n.clone(), &**c)).collect();
                    crate::metrics::render(&rs, fig, &refs, LOCAL_DROPPED.load(Ordering::Relaxed))
                })
            })
            .map_err(|e| e.to_string())?;
    }
    let mut live = Live {
        engine,
        now: 0,
        pool: Vec::with_capacity(POOL_MAX),
        events: Default::default(),
        log: logger,
    };
    let start = Instant::now();
    let mut saver = CtSaver::start(&store.dir, ct_save_secs)?;
    if ct_save_secs > 0 {
        eprintln!("nfrs run: conntrack snapshot to the store every {ct_save_secs} s");
    }
    let res = packet_loop(
        &mut live, &socks, &host, &wake_r, &jobs_rx, start, tap, &mut saver,
    );
    saver.finish();
    for s in &socks {
        if let Some(st) = s.io_stats() {
            eprintln!("nfrs run: {}: {st}", s.name);
        }
    }
    if let Some(ct) = live.engine.ct.as_ref() {
        let (text, n) = ctsave::save(ct, start.elapsed().as_nanos() as u64);
        match write_atomic(&store.dir, ctsave::FILE, text.as_bytes()) {
            Ok(()) => eprintln!("nfrs run: {n} connections saved to the store"),
            Err(e) => eprintln!("nfrs run: saving connections: {e}"),
        }
    }
    // Graceful stop: the counters go to the store (after any write behind, which this
    // write supersedes); the socket goes away.
    stop_write_behind(&shared, writer);
    let _ = std::fs::remove_file(control::socket_path(&store.dir));
    let rs = live.engine.ruleset_with_counters();
    if let Ok(_lock) = store.lock(Duration::from_secs(10)) {
        if let Err(e) = store.save(&rs) {
            eprintln!("nfrs run: saving counters: {e}");
        }
    }
    eprintln!("nfrs run: stopped");
    res
}

/// Frames handled between two reads of the packet clock.
const CLOCK_EVERY: usize = 16;

// The loop's whole context, each piece owned by `run`.
#[allow(clippy::too_many_arguments)]
fn packet_loop(
    live: &mut Live,
    socks: &[PacketSocket],
    host: &Host,
    wake: &UnixStream,
    jobs: &mpsc::Receiver<(Job, mpsc::Sender<Response>)>,
    start: Instant,
    tap: Option<crate::tap::Tap>,
    saver: &mut CtSaver,
) -> Result<(), String> {
    let mut fds: Vec<i32> = socks.iter().map(|s| s.as_raw_fd()).collect();
    fds.push(wake.as_raw_fd());
    // The TUN device, polled after the wake-up pipe.
    fds.extend(tap.as_ref().map(|t| t.fd()));
    let mut set = packet::PollSet::new(&fds);
    let mut buf = vec![0u8; 65536 + 64];
    let mut w = Wire {
        tx: Vec::with_capacity(65536 + 14),
        tap,
        batch: Vec::with_capacity(BATCH_MAX),
        ..Default::default()
    };
    for n in &host.neighbours {
        // Keyed by the engine's device index (interfaces, then bridges).
        if let Some(d) = live
            .engine
            .host
            .dev_by_name(&nfrs_engine::pkt::IfName::new(&n.dev))
        {
            w.neigh.add_static(d, u32::from(n.address), n.mac);
        }
    }
    let mut last_gc = 0u64;
    let mut wbuf = [0u8; 64];
    while !STOP.load(Ordering::SeqCst) {
        set.wait(200).map_err(|e| format!("poll: {e}"))?;
        let ready = &set.ready;
        live.now = start.elapsed().as_nanos() as u64;
        for (dev, s) in socks.iter().enumerate() {
            if !ready[dev] {
                continue;
            }
            // A bounded batch per interface, so one busy link cannot starve the others. The
            // clock is read once every CLOCK_EVERY frames, not per frame (a ring pass can hold
            // thousands of frames, so it is still read within a batch).
            let mut k = 0usize;
            let r = s.recv_batch(&mut buf, 64, &mut |frame| {
                if k.is_multiple_of(CLOCK_EVERY) {
                    live.now = start.elapsed().as_nanos() as u64;
                }
                k += 1;
                frame_queue(live, socks, &mut w, dev, frame);
            });
            flush_batch(live, socks, &mut w);
            if let Err(e) = r {
                eprintln!("nfrs run: {}: receive: {e}", s.name);
            }
        }
        if ready.get(socks.len() + 1) == Some(&true) {
            live.now = start.elapsed().as_nanos() as u64;
            crate::tap::from_host(live, socks, &mut w);
        }
        if ready[socks.len()] {
            while let Ok(n) = (&*wake).read(&mut wbuf) {
                if n == 0 {
                    break;
                }
            }
        }
        while let Ok((job, reply)) = jobs.try_recv() {
            live.now = start.elapsed().as_nanos() as u64;
            let _ = reply.send(job(live));
        }
        if live.now.saturating_sub(last_gc) >= 1_000_000_000 {
            last_gc = live.now;
            let now = live.now;
            if let Some(ct) = live.engine.ct.as_mut() {
                let ev = &mut live.events;
                ct.expire(now, &mut |_, c| ev.expired(c, now));
            }
            live.events.sweep(live.engine.ct.as_mut(), now, None);
            // SO_ORIGINAL_DST entries of connections that ended go from the kernel's table.
            if let Some(o) = w.tap.as_mut().and_then(|t| t.origdst.as_mut()) {
                o.sweep(live.engine.ct.as_ref(), now);
            }
            w.neigh.expire(live.now);
            bridge::age(&mut live.engine.host, now);
            saver.tick(live);
        }
        // Every socket queues what is sent (AF_XDP: its tx ring; AF_PACKET: a sendmmsg
        // batch): one call per socket sends it.
        for s in socks {
            if let Err(e) = s.flush() {
                eprintln!("nfrs run: {}: send: {e}", s.name);
            }
        }
    }
    if let Some(t) = &w.tap {
        eprintln!(
            "nfrs run: TUN {}: {} packets handed to the kernel, {} sent by it",
            t.name, t.to_kernel, t.from_kernel
        );
        if let Some(o) = &t.origdst {
            eprintln!("nfrs run: TUN {}: {} kernel conntrack entries for SO_ORIGINAL_DST, {} refused (last errno {}), {} deleted as their connection ended", t.name, o.inserted, o.failed, o.last_error, o.removed);
        }
    }
    if w.local_dropped > 0 {
        eprintln!(
            "nfrs run: {} packets for the host itself were dropped ({})",
            w.local_dropped,
            if w.tap.is_some() {
                "the TUN device did not take them"
            } else {
                "no TUN device: [live] tap = \"nfrs0\" delivers them to local processes"
            }
        );
    }
    Ok(())
}

/// The interfaces frames leave by: the AF_PACKET sockets, or a recorder in tests.
pub trait Ports {
    /// Interface `dev`'s MAC.
    fn mac(&self, dev: usize) -> [u8; 6];
    /// Sends one whole frame out of interface `dev`.
    fn send(&self, dev: usize, frame: &[u8]);
    /// Sends the frame `head` followed by `body` out of interface `dev`; `scratch` may be used
    /// to join them (the sockets copy both straight into their send queue instead).
    fn send_parts(&self, dev: usize, head: &[u8], body: &[u8], scratch: &mut Vec<u8>) {
        scratch.clear();
        scratch.extend_from_slice(head);
        scratch.extend_from_slice(body);
        self.send(dev, scratch);
    }
    /// Counts a frame received on `dev` (metrics).
    fn count_rx(&self, dev: usize, len: usize);
    /// How many interfaces there are (bridges come after them in the engine's devices).
    fn n_ports(&self) -> usize;
}

impl Ports for [PacketSocket] {
    fn mac(&self, dev: usize) -> [u8; 6] {
        self[dev].mac
    }
    fn send(&self, dev: usize, frame: &[u8]) {
        if let Err(e) = self[dev].send(frame) {
            eprintln!("nfrs run: {}: send: {e}", self[dev].name);
        }
    }
    fn send_parts(&self, dev: usize, head: &[u8], body: &[u8], _: &mut Vec<u8>) {
        if let Err(e) = self[dev].send_parts(head, body) {
            eprintln!("nfrs run: {}: send: {e}", self[dev].name);
        }
    }
    fn count_rx(&self, dev: usize, len: usize) {
        self[dev].counters.rx(len);
    }
    fn n_ports(&self) -> usize {
        self.len()
    }
}

/// What the frame handling keeps between frames (besides the engine).
#[derive(Default, Debug)]
pub struct Wire {
    /// The neighbour table (ARP).
    pub neigh: Neighbours,
    /// The frame being built for sending.
    pub tx: Vec<u8>,
    /// Packets for the host itself that were dropped (no TUN device, or it refused them).
    pub local_dropped: u64,
    /// The TUN device to the kernel's own stack (`[live] tap`), if any.
    pub tap: Option<crate::tap::Tap>,
    /// The last packet sent out of a bridge device (the engine's per-port copies of it are
    /// sent once).
    pub last_out: Vec<u8>,
    /// Received IPv4 frames waiting for the engine ([`frame_queue`], [`flush_batch`]).
    pub batch: Vec<nfrs_engine::engine::RxFrame>,
}

/// IPv4 frames handed to the engine together (`Engine::receive_batch`, which reads their
/// connections ahead).
pub const BATCH_MAX: usize = 32;

/// Connections in the table from which a batch reads its connections ahead
/// (`Engine::receive_batch`); below, the frames go one by one (`Engine::receive`).
pub const WARM_MIN_CONNS: u32 = 65_536;

/// One received frame on interface `dev`, handled at once.
pub fn frame_in<P: Ports + ?Sized>(
    live: &mut Live,
    ports: &P,
    w: &mut Wire,
    dev: usize,
    frame: &[u8],
) {
    frame_queue(live, ports, w, dev, frame);
    flush_batch(live, ports, w);
}

/// One received frame on interface `dev`: an IPv4 frame on a routed interface waits in
/// `w.batch` for [`flush_batch`] (called here when the batch is full); anything else is
/// handled at once, after the frames waiting before it (frames keep their order).
pub fn frame_queue<P: Ports + ?Sized>(
    live: &mut Live,
    ports: &P,
    w: &mut Wire,
    dev: usize,
    frame: &[u8],
) {
    if frame.len() < 14 {
        return;
    }
    let me = ports.mac(dev);
    let bridge = live.engine.host.ifaces()[dev].bridge;
    // A routed interface takes only frames for us, broadcasts and multicasts (the NIC's own
    // filter, as the kernel sees); a bridge port takes everything (promiscuous).
    if bridge.is_none() && frame[0..6] != me && frame[0] & 1 == 0 {
        return;
    }
    ports.count_rx(dev, frame.len());
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    // `conntrack -E` compares each packet's connection right after it: one at a time then.
    if ethertype == 0x0800 && bridge.is_none() && !live.events.active() {
        let mut mac = [0u8; 14];
        mac.copy_from_slice(&frame[..14]);
        // Buffers come back from the events, so the steady state allocates nothing.
        let mut ip = live.pool.pop().unwrap_or_else(|| Vec::with_capacity(2048));
        ip.clear();
        ip.extend_from_slice(&frame[14..]);
        w.batch.push(nfrs_engine::engine::RxFrame {
            dev,
            ip,
            mac,
            now: live.now,
            events_end: 0,
        });
        if w.batch.len() >= BATCH_MAX {
            flush_batch(live, ports, w);
        }
        return;
    }
    flush_batch(live, ports, w);
    let now = live.now;
    if let Some(b) = bridge {
        if ethertype != 0x0800 {
            return bridge_other(live, ports, w, dev, b, frame);
        }
    }
    match ethertype {
        arp::ETH_P_ARP => {
            let Some(a) = arp::parse(frame) else { return };
            let ours = live.engine.host.ifaces()[dev]
                .addrs
                .iter()
                .any(|&(x, _)| x == a.tpa);
            if !ours || a.spa == 0 {
                return;
            }
            let held = w.neigh.learn(dev, a.spa, a.sha, now);
            if a.op == 1 {
                ports.send(dev, &arp::reply(me, &a));
            }
            for ip in held {
                send_ip(ports, dev, a.sha, &ip, &mut w.tx);
            }
        }
        0x0800 => {
            let mut mac = [0u8; 14];
            mac.copy_from_slice(&frame[..14]);
            live.engine.events.clear();
            // Buffers come back from the events below, so the steady state allocates nothing.
            let mut ip = live.pool.pop().unwrap_or_else(|| Vec::with_capacity(2048));
            ip.clear();
            ip.extend_from_slice(&frame[14..]);
            let watched = if live.events.active() {
                crate::events::packet_tuple(&frame[14..])
            } else {
                None
            };
            live.engine.receive(dev, ip, mac, now);
            if let (Some(t), Some(ct)) = (watched, live.engine.ct.as_mut()) {
                live.events.after_packet(ct, &t, now);
            }
            emit_events(live, ports, w, dev, &mac);
        }
        _ => {}
    }
}

/// Runs the IPv4 frames waiting in `w.batch` through the engine (exactly one `receive` each,
/// in order) and carries out what each produced, frame by frame.
pub fn flush_batch<P: Ports + ?Sized>(live: &mut Live, ports: &P, w: &mut Wire) {
    // Reading connections ahead pays only once the table is beyond the caches; below that it
    // costs instructions for nothing (the engine's figures: 2942 instructions a packet in
    // batches against 2757 one by one, with 10k connections).
    let large = live
        .engine
        .ct
        .as_ref()
        .is_some_and(|ct| ct.count() >= WARM_MIN_CONNS);
    run_batch(live, ports, w, large);
}

/// [`flush_batch`], reading the connections ahead (`Engine::receive_batch`) or not.
fn run_batch<P: Ports + ?Sized>(live: &mut Live, ports: &P, w: &mut Wire, warm: bool) {
    if w.batch.is_empty() {
        return;
    }
    let mut batch = std::mem::take(&mut w.batch);
    live.engine.events.clear();
    if warm {
        live.engine.receive_batch(&mut batch);
    } else {
        for f in batch.iter_mut() {
            let ip = std::mem::take(&mut f.ip);
            live.engine.receive(f.dev, ip, f.mac, f.now);
            f.events_end = live.engine.events.len();
        }
    }
    // Each frame's events end at its `events_end`; they are carried out with that frame's
    // interface and Ethernet header, as after a `receive` of its own.
    let mut evs = std::mem::take(&mut live.engine.events);
    let mut done = 0;
    for f in &batch {
        let n = f.events_end.saturating_sub(done).min(evs.len());
        done += n;
        emit_list(live, ports, w, f.dev, &f.mac, evs.drain(..n));
    }
    evs.clear();
    live.engine.events = evs;
    batch.clear();
    w.batch = batch;
}

/// Carries out what the engine produced for the packet that came in on `dev` with Ethernet
/// header `mac` (`usize::MAX` and zeros for a packet the host sent through the TUN): packets
/// out, local deliveries to the TUN, log lines.
pub(crate) fn emit_events<P: Ports + ?Sized>(
    live: &mut Live,
    ports: &P,
    w: &mut Wire,
    dev: usize,
    mac: &[u8; 14],
) {
    let mut evs = std::mem::take(&mut live.engine.events);
    emit_list(live, ports, w, dev, mac, evs.drain(..));
    live.engine.events = evs;
}

/// [`emit_events`] over the events `evs` of one packet.
fn emit_list<P: Ports + ?Sized>(
    live: &mut Live,
    ports: &P,
    w: &mut Wire,
    dev: usize,
    mac: &[u8; 14],
    evs: impl Iterator<Item = Ev>,
) {
    // The engine hands a packet out of a bridge device to each port it would flood; the
    // bridge here sends it once, to the resolved neighbour's port.
    let mut last_bridged: Option<(usize, bool)> = None;
    for ev in evs {
        match ev {
            Ev::Out { dev: q, ip, host } => {
                let was = last_bridged.take();
                match bridge::framing(&live.engine.host, dev, mac, q, host, &ip) {
                    bridge::Framing::Keep => {
                        send_frame(ports, q, &mac[..6], &mac[6..12], &ip, &mut w.tx)
                    }
                    bridge::Framing::Reverse => {
                        send_frame(ports, q, &mac[6..12], &mac[..6], &ip, &mut w.tx)
                    }
                    bridge::Framing::Bridge(b) => {
                        if was != Some((b, host)) || w.last_out != ip {
                            out(live, ports, w, b, &ip);
                            w.last_out.clear();
                            w.last_out.extend_from_slice(&ip);
                        }
                        last_bridged = Some((b, host));
                    }
                    bridge::Framing::Routed => out(live, ports, w, q, &ip),
                }
                if live.pool.len() < POOL_MAX {
                    live.pool.push(ip);
                }
            }
            Ev::Local { ip, .. } => {
                last_bridged = None;
                if let (Some(o), Some(ct)) = (
                    w.tap.as_mut().and_then(|t| t.origdst.as_mut()),
                    &live.engine.ct,
                ) {
                    o.before_delivery(ct, &ip, live.now); // SO_ORIGINAL_DST before the SYN
                }
                if !w.tap.as_mut().is_some_and(|t| t.deliver(&ip)) {
                    w.local_dropped += 1;
                    LOCAL_DROPPED.fetch_add(1, Ordering::Relaxed);
                }
                if live.pool.len() < POOL_MAX {
                    live.pool.push(ip);
                }
            }
            Ev::Log { text, level, .. } => live.log.log(text, level),
            Ev::Queued => {}
        }
    }
}

/// A frame that is not IPv4 on port `dev` of bridge `b`: learned and bridged unfiltered
/// (br_netfilter only hands IPv4 to iptables); an ARP for the bridge's own address is answered.
fn bridge_other<P: Ports + ?Sized>(
    live: &mut Live,
    ports: &P,
    w: &mut Wire,
    dev: usize,
    b: usize,
    frame: &[u8],
) {
    let now = live.now;
    let mut smac = [0u8; 6];
    smac.copy_from_slice(&frame[6..12]);
    let mut dmac = [0u8; 6];
    dmac.copy_from_slice(&frame[..6]);
    let host = &mut live.engine.host;
    bridge::learn(host, smac, dev, now);
    let bmac = host.ifaces()[b].mac;
    if dmac != bmac {
        bridge::for_each_port(host, b, dmac, Some(dev), |q| ports.send(q, frame));
    }
    if (dmac != bmac && dmac[0] & 1 == 0)
        || u16::from_be_bytes([frame[12], frame[13]]) != arp::ETH_P_ARP
    {
        return;
    }
    let Some(a) = arp::parse(frame) else { return };
    let ours = host.ifaces()[b].addrs.iter().any(|&(x, _)| x == a.tpa);
    if !ours || a.spa == 0 {
        return;
    }
    let held = w.neigh.learn(b, a.spa, a.sha, now);
    if a.op == 1 {
        ports.send(dev, &arp::reply(bmac, &a));
    }
    for ip in held {
        bridge_send_ip(live, ports, b, a.sha, &ip, &mut w.tx);
    }
}

/// Sends an IPv4 packet out of bridge `b` to `dst` (learned port, else every port), from the
/// bridge's MAC.
fn bridge_send_ip<P: Ports + ?Sized>(
    live: &Live,
    ports: &P,
    b: usize,
    dst: [u8; 6],
    ip: &[u8],
    tx: &mut Vec<u8>,
) {
    let h = &live.engine.host;
    let src = h.ifaces()[b].mac;
    bridge::for_each_port(h, b, dst, None, |q| {
        send_frame(ports, q, &dst, &src, ip, tx)
    });
}

/// Sends an IPv4 packet the engine emitted on layer-3 device `dev` (an interface or a bridge),
/// resolving its next hop.
fn out<P: Ports + ?Sized>(live: &mut Live, ports: &P, w: &mut Wire, dev: usize, ip: &[u8]) {
    let h = &live.engine.host;
    if dev >= h.ifaces().len() || ip.len() < 20 {
        return;
    }
    let is_bridge = !h.ifaces()[dev].ports.is_empty();
    if !is_bridge && dev >= ports.n_ports() {
        return;
    }
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let group = if dst == u32::MAX || h.is_broadcast(dst) {
        Some([0xff; 6])
    } else if dst >> 28 == 0xe {
        // Multicast mapped onto 01:00:5e (RFC 1112).
        Some([
            0x01,
            0,
            0x5e,
            (dst >> 16) as u8 & 0x7f,
            (dst >> 8) as u8,
            dst as u8,
        ])
    } else {
        None
    };
    let resolved = match group {
        Some(m) => Resolve::Mac(m),
        None => {
            let nexthop = match h.lookup(dst) {
                Some((d, via)) if d == dev => via,
                _ => dst,
            };
            let ask = || {
                let src = h.source_for(dev, nexthop);
                if is_bridge {
                    let req = arp::request(h.ifaces()[dev].mac, src, nexthop);
                    bridge::for_each_port(h, dev, [0xff; 6], None, |q| ports.send(q, &req));
                } else {
                    ports.send(dev, &arp::request(ports.mac(dev), src, nexthop));
                }
            };
            match w.neigh.resolve(dev, nexthop, ip, live.now) {
                Resolve::Ask => return ask(),
                Resolve::Refresh(m) => {
                    ask();
                    Resolve::Mac(m)
                }
                r => r,
            }
        }
    };
    if let Resolve::Mac(m) = resolved {
        if is_bridge {
            bridge_send_ip(live, ports, dev, m, ip, &mut w.tx);
        } else {
            send_ip(ports, dev, m, ip, &mut w.tx);
        }
    }
}

fn send_ip<P: Ports + ?Sized>(ports: &P, dev: usize, dst: [u8; 6], ip: &[u8], tx: &mut Vec<u8>) {
    let src = ports.mac(dev);
    send_frame(ports, dev, &dst, &src, ip, tx);
}

fn send_frame<P: Ports + ?Sized>(
    ports: &P,
    dev: usize,
    dst: &[u8],
    src: &[u8],
    ip: &[u8],
    tx: &mut Vec<u8>,
) {
    let mut head = [0u8; 14];
    head[..6].copy_from_slice(dst);
    head[6..12].copy_from_slice(src);
    head[12..].copy_from_slice(&[0x08, 0x00]);
    ports.send_parts(dev, &head, ip, tx);
}

/// The daemon's request handling without sockets or interfaces (fuzzing, tests): the same
/// dispatcher `nfrs run` serves its control socket with, over a worker thread that stands in for
/// the packet thread (it runs the jobs requests hand it; no packet I/O, the clock only moves when
/// a `with_live` caller moves it).
pub struct Dispatcher {
    shared: Arc<Shared>,
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        // The writer behind (if any) lets go of the shared state, and so the packet thread ends.
        self.shared.behind.state().stop = true;
        self.shared.behind.cv.notify_all();
    }
}

impl Dispatcher {
    /// Loads the store's ruleset and `sysctl.conf` as `nfrs run` does (the store tools run in
    /// process, as in `nfrs run`).
    pub fn new(store: &Path, mut host: Host) -> Result<Dispatcher, String> {
        let store = Store::at(store);
        std::fs::create_dir_all(&store.dir).map_err(|e| format!("{}: {e}", store.dir.display()))?;
        for (k, v) in load_sysctls(&store.dir)? {
            host.sysctls.insert(k, v);
        }
        let rs = store.load().map_err(|e| e.to_string())?;
        let sysctls = host.effective_sysctls();
        let mut ctcfg = CtConfig::default();
        for (k, v) in &sysctls {
            if CtConfig::owns(k) {
                ctcfg.set(k, v).map_err(|e| e.to_string())?;
            }
        }
        let engine = Engine::new(HostNet::new(&host)?, rs, &sysctls).map_err(|e| e.to_string())?;
        let (wake_r, wake_w) = UnixStream::pair().map_err(|e| e.to_string())?;
        wake_r.set_nonblocking(true).map_err(|e| e.to_string())?;
        wake_w.set_nonblocking(true).map_err(|e| e.to_string())?;
        let (jobs_tx, jobs_rx) = mpsc::channel::<(Job, mpsc::Sender<Response>)>();
        std::thread::Builder::new()
            .name("nfrs-dispatch".into())
            .spawn(move || {
                let mut live = Live {
                    engine,
                    now: 0,
                    pool: Vec::new(),
                    events: Default::default(),
                    log: Default::default(),
                };
                let mut wbuf = [0u8; 64];
                // Ends when the dispatcher (the only sender) is dropped.
                while let Ok((job, reply)) = jobs_rx.recv() {
                    while matches!((&wake_r).read(&mut wbuf), Ok(n) if n > 0) {}
                    let _ = reply.send(job(&mut live));
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Dispatcher {
            shared: Arc::new(Shared {
                host: Mutex::new(host),
                ctcfg: Mutex::new(ctcfg),
                store,
                tools: Mutex::new(None),
                jobs: jobs_tx,
                wake: Mutex::new(wake_w),
                behind: Behind::default(),
            }),
        })
    }

    /// Answers one request exactly as the control socket of `nfrs run` does.
    pub fn handle(&self, req: Request) -> Response {
        self.shared.handle(req)
    }

    /// Writes the store behind the answers of rule commands, as `nfrs run` does (off by
    /// default: each change is written before its answer).
    pub fn write_behind(&self) -> Result<(), String> {
        start_write_behind(&self.shared).map(drop)
    }

    /// Whether every change in force is in the store (false while a write behind is due or
    /// after one failed), and the last failed write's error.
    pub fn store_state(&self) -> (bool, Option<String>) {
        let st = self.shared.behind.state();
        (st.written == st.asked, st.failed.clone())
    }

    /// How many rule commands were patched into the engine in force (the rest were
    /// compiled in full).
    pub fn patched(&self) -> u64 {
        self.shared.behind.state().patched
    }

    /// Runs `f` on the worker thread with the live state (e.g. to feed packets to the engine).
    pub fn with_live<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Live) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = mpsc::channel();
        self.shared.on_packet_thread(Box::new(move |l: &mut Live| {
            let _ = tx.send(f(l));
            Response::default()
        }));
        rx.recv().ok()
    }
}

/// A stand-in for the interfaces in unit tests (this module's and `tap.rs`'s).
#[cfg(test)]
pub(crate) mod recorder {
    use super::Ports;

    /// Records what the daemon sends, per interface.
    pub(crate) struct Recorder {
        pub(crate) macs: Vec<[u8; 6]>,
        pub(crate) sent: std::cell::RefCell<Vec<(usize, Vec<u8>)>>,
    }

    impl Ports for Recorder {
        fn mac(&self, dev: usize) -> [u8; 6] {
            self.macs[dev]
        }
        fn send(&self, dev: usize, frame: &[u8]) {
            self.sent.borrow_mut().push((dev, frame.to_vec()));
        }
        fn count_rx(&self, _: usize, _: usize) {}
        fn n_ports(&self) -> usize {
            self.macs.len()
        }
    }

    impl Recorder {
        /// What was sent since the last call.
        pub(crate) fn take(&self) -> Vec<(usize, Vec<u8>)> {
            std::mem::take(&mut *self.sent.borrow_mut())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_file_round_trip_and_errors() {
        let d = std::env::temp_dir().join(format!("nfrs-sysctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert!(load_sysctls(&d).unwrap().is_empty());
        let mut m = BTreeMap::new();
        m.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
        m.insert(
            "net.netfilter.nf_conntrack_max".to_string(),
            "10".to_string(),
        );
        save_sysctls(&d, &m).unwrap();
        assert_eq!(load_sysctls(&d).unwrap(), m);
        std::fs::write(d.join(SYSCTL_FILE), "x = 1\nbroken\n").unwrap();
        assert!(load_sysctls(&d).unwrap_err().contains(":2:"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    const SEC_NS: u64 = 1_000_000_000;

    fn engine(rules: &str) -> Engine {
        let h = hostfile::parse(
            "[[interface]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\n[[interface]]\nname = \"b\"\naddress = \"10.0.1.1/24\"\n[sysctl]\n\"net.ipv4.ip_forward\" = \"1\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let rs = nfrs_rules::restore::restore_new(rules, &Default::default()).unwrap();
        Engine::new(
            HostNet::new(&h.host).unwrap(),
            rs,
            &h.host.effective_sysctls(),
        )
        .unwrap()
    }

    #[test]
    fn periodic_snapshot_is_due_skipped_while_busy_and_survives_errors() {
        let base = std::env::temp_dir().join(format!("nfrs-ctsaver-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let live = |now: u64| {
            Live {
            engine: engine("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n"),
            now,
            pool: Vec::new(),
            events: Default::default(),
            log: Default::default(),
        }
        };
        assert!(live(0).engine.ct.is_some());
        let file = |d: &Path| d.join(ctsave::FILE);
        // Not due before the interval; due at it; the writer is joined by finish.
        let d = base.join("ok");
        let mut s = CtSaver::start(&d, 1).unwrap();
        s.tick(&live(SEC_NS / 2));
        s.finish();
        assert!(!file(&d).exists());
        let mut s = CtSaver::start(&d, 1).unwrap();
        s.tick(&live(SEC_NS));
        s.finish();
        let text = std::fs::read_to_string(file(&d)).unwrap();
        assert!(text.starts_with("# nfrs conntrack snapshot"), "{text}");
        // A round while the previous write runs is skipped.
        let d = base.join("busy");
        let mut s = CtSaver::start(&d, 1).unwrap();
        s.busy.store(true, Ordering::SeqCst);
        s.tick(&live(SEC_NS));
        s.finish();
        assert!(!file(&d).exists());
        // Off: nothing ever.
        let d = base.join("off");
        let mut s = CtSaver::start(&d, 0).unwrap();
        s.tick(&live(100 * SEC_NS));
        s.finish();
        assert!(!file(&d).exists());
        // A store that cannot be written: the error is reported, the saver goes on.
        std::fs::write(base.join("plain"), "x").unwrap();
        let d = base.join("plain").join("store");
        let mut s = CtSaver::start(&d, 1).unwrap();
        s.tick(&live(SEC_NS));
        for _ in 0..200 {
            if !s.busy.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        s.tick(&live(2 * SEC_NS));
        s.finish();
        assert!(!file(&d).exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn tools_apply_in_memory_store_follows_changes_only() {
        let dir = std::env::temp_dir().join(format!("nfrs-inmem-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let h = hostfile::parse(
            "[[interface]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\n[[interface]]\nname = \"b\"\naddress = \"10.0.1.1/24\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        // The tools run in process: no `nfrs` executable is involved.
        let d = Dispatcher::new(&dir, h.host).unwrap();
        let tool = |tool: &str, args: &[&str], stdin: &str| {
            d.handle(Request::Tool {
                tool: tool.into(),
                args: args.iter().map(|s| s.to_string()).collect(),
                stdin: stdin.into(),
            })
        };
        let r = tool(
            "iptables-restore",
            &["-c"],
            "*filter\n:INPUT ACCEPT [0:0]\n[7:420] -A INPUT -s 10.0.0.9/32 -j ACCEPT\nCOMMIT\n",
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let stored = || std::fs::read_to_string(dir.join("ruleset.rules")).unwrap();
        assert!(stored().contains("10.0.0.9/32"));
        let r = tool(
            "iptables",
            &["-A", "INPUT", "-s", "10.0.0.8", "-j", "DROP"],
            "",
        );
        assert_eq!((r.code, r.stderr.as_str()), (0, ""));
        // In force at once, and in the store; the counters of the unchanged rule carried over.
        let live = d
            .with_live(|l| nfrs_rules::save::save_store(&l.engine.ruleset_with_counters()))
            .unwrap();
        assert!(live.contains("10.0.0.8/32"), "{live}");
        assert!(stored().contains("-s 10.0.0.8/32 -j DROP"));
        let r = tool("iptables-save", &["-c"], "");
        assert!(
            r.stdout
                .contains("[7:420] -A INPUT -s 10.0.0.9/32 -j ACCEPT\n[0:0] -A INPUT -s 10.0.0.8/32 -j DROP\n"),
            "{}",
            r.stdout
        );
        // A listing does not write the store; a usage error changes nothing.
        let before = std::fs::metadata(dir.join("ruleset.rules"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let r = tool("iptables", &["-S", "INPUT"], "");
        assert_eq!(r.code, 0);
        assert_eq!(
            r.stdout,
            "-P INPUT ACCEPT\n-A INPUT -s 10.0.0.9/32 -j ACCEPT\n-A INPUT -s 10.0.0.8/32 -j DROP\n"
        );
        let r = tool("iptables", &["-A"], "");
        assert_eq!(r.code, 2);
        let after = std::fs::metadata(dir.join("ruleset.rules"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        // -Z zeroes the live counters and the store's.
        let r = tool("iptables", &["-Z", "INPUT"], "");
        assert_eq!(r.code, 0);
        assert!(
            stored().contains("[0:0] -A INPUT -s 10.0.0.9/32 -j ACCEPT"),
            "{}",
            stored()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tool_arguments_cannot_leave_the_store() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (tool, args) in [
            (
                "iptables",
                v(&["--store", "/x", "-A", "INPUT", "-j", "DROP"]),
            ),
            ("iptables-save", v(&["--store=/x"])),
            ("iptables-restore", v(&["-n", "/etc/shadow"])),
            ("iptables-legacy-restore", v(&["-T", "filter", "rules.txt"])),
        ] {
            assert!(refused_tool_args(tool, &args).is_some(), "{tool} {args:?}");
        }
        for (tool, args) in [
            (
                "iptables",
                v(&["-A", "INPUT", "-s", "10.0.0.1", "-j", "DROP"]),
            ),
            (
                "iptables-restore",
                v(&["-n", "-T", "filter", "-w", "5", "-c"]),
            ),
            ("iptables-restore", v(&["--wait", "--noflush"])),
        ] {
            assert_eq!(refused_tool_args(tool, &args), None, "{tool} {args:?}");
        }
    }

    use super::recorder::Recorder;

    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

    fn bridge_live(rules: &str) -> (Live, Recorder) {
        let mut h = hostfile::parse(
            "[[interface]]\nname = \"p0\"\n[[interface]]\nname = \"p1\"\n[[bridge]]\nname = \"br0\"\nports = [\"p0\", \"p1\"]\naddress = \"10.0.0.1/24\"\n[live]\nmode = \"bridge\"\n",
            Path::new("br.toml"),
        )
        .unwrap()
        .host;
        let macs = vec![[0x0a, 0, 0, 0, 0, 1], [0x0a, 0, 0, 0, 0, 2]];
        h.interfaces[0].mac = macs[0];
        h.interfaces[1].mac = macs[1];
        h.bridges[0].mac = bridge::bridge_mac(macs.iter().copied()).unwrap();
        let rs = nfrs_rules::restore::restore_new(rules, &Default::default()).unwrap();
        let engine = Engine::new(HostNet::new(&h).unwrap(), rs, &h.effective_sysctls()).unwrap();
        let live = Live::for_test(engine);
        let rec = Recorder {
            macs,
            sent: Default::default(),
        };
        (live, rec)
    }

    fn frame(dst: [u8; 6], src: [u8; 6], line: &str) -> Vec<u8> {
        let l = nfrs_wire::line::parse_input_line(line).unwrap();
        let ip = nfrs_wire::build::build_ipv4(&l.spec, &Default::default()).unwrap();
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[8, 0]);
        f.extend_from_slice(&ip);
        f
    }

    fn arp_request(src: [u8; 6], spa: u32, tpa: u32) -> Vec<u8> {
        arp::request(src, spa, tpa).to_vec()
    }

    /// The forwarding lab's gateway (`nfrs bench --only lab`): lan0 and wan0, the default route
    /// via a static neighbour, 10 unmatched FORWARD rules before the accepts, MASQUERADE.
    fn lab_gateway() -> (Live, Recorder, Wire) {
        let mut h = hostfile::parse(
            "[[interface]]\nname = \"lan0\"\naddress = \"10.1.0.1/16\"\n[[interface]]\nname = \"wan0\"\naddress = \"192.0.2.1/24\"\n[[route]]\nto = \"default\"\nvia = \"192.0.2.254\"\ndev = \"wan0\"\n[[neighbour]]\naddress = \"192.0.2.254\"\nmac = \"02:00:00:00:00:fe\"\ndev = \"wan0\"\n[sysctl]\n\"net.ipv4.ip_forward\" = \"1\"\n[live]\nmode = \"routed\"\n",
            Path::new("gw.toml"),
        )
        .unwrap()
        .host;
        let macs = vec![[0x0a, 0, 0, 0, 0, 1], [0x0a, 0, 0, 0, 0, 2]];
        h.interfaces[0].mac = macs[0];
        h.interfaces[1].mac = macs[1];
        let mut rules = String::from(
            "*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n",
        );
        for i in 0..10 {
            rules.push_str(&format!(
                "-A FORWARD -s 198.18.0.{i}/32 -p tcp -m tcp --dport 8443 -j DROP\n"
            ));
        }
        rules.push_str("-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A FORWARD -i lan0 -o wan0 -j ACCEPT\nCOMMIT\n");
        let rs = nfrs_rules::restore::restore_new(&rules, &Default::default()).unwrap();
        let engine = Engine::new(HostNet::new(&h).unwrap(), rs, &h.effective_sysctls()).unwrap();
        let live = Live::for_test(engine);
        let rec = Recorder {
            macs,
            sent: Default::default(),
        };
        let mut w = Wire::default();
        w.neigh.add_static(1, 0xc000_02fe, [2, 0, 0, 0, 0, 0xfe]);
        (live, rec, w)
    }

    fn accept_counter(live: &Live) -> (u64, u64) {
        let save = nfrs_rules::save::save_store(&live.engine.ruleset_with_counters());
        let count = |tail: &str| {
            save.lines()
                .find(|l| l.ends_with(tail))
                .and_then(|l| l.strip_prefix('['))
                .and_then(|l| l.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no `{tail}` in {save}"))
        };
        (
            count("-A FORWARD -i lan0 -o wan0 -j ACCEPT"),
            count("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        )
    }

    #[test]
    fn lab_frames_out_equal_the_accept_count_batched_or_not() {
        // 300 one-way UDP flows, each sent 3 times, then a frame for another MAC (not ours:
        // ignored), an ARP request for our lan0 address (answered, between IPv4 frames) and
        // more flows: every IPv4 frame leaves wan0 masqueraded, once, in order, and the
        // lan0 -> wan0 accept counts exactly the frames that left.
        let mut frames = Vec::new();
        for round in 0..3 {
            for i in 0..300u32 {
                let line = format!(
                    "0 lan0 udp 10.1.{}.{}:{} > 203.0.113.{}:9",
                    i / 200,
                    2 + i % 200,
                    1024 + i,
                    1 + i % 250
                );
                frames.push(frame(
                    [0x0a, 0, 0, 0, 0, 1],
                    [0x02, 0, 0, 0, 0, 0x10],
                    &line,
                ));
            }
            if round == 1 {
                frames.push(frame(
                    [0x0a, 9, 9, 9, 9, 9],
                    [0x02, 0, 0, 0, 0, 0x10],
                    "0 lan0 udp 10.1.0.2:1 > 203.0.113.1:9",
                ));
                frames.push(arp_request(
                    [0x02, 0, 0, 0, 0, 0x10],
                    0x0a01_0002,
                    0x0a01_0001,
                ));
            }
        }
        let mut outs = Vec::new();
        // One by one, in batches, in batches read ahead.
        for (batched, warm) in [(false, false), (true, false), (true, true)] {
            let (mut live, rec, mut w) = lab_gateway();
            for f in &frames {
                if batched {
                    frame_queue(&mut live, &rec, &mut w, 0, f);
                    if w.batch.len() >= BATCH_MAX - 1 {
                        run_batch(&mut live, &rec, &mut w, warm);
                    }
                } else {
                    frame_in(&mut live, &rec, &mut w, 0, f);
                }
                live.now += 1_000;
            }
            run_batch(&mut live, &rec, &mut w, warm);
            let sent = rec.take();
            let wan: Vec<&Vec<u8>> = sent
                .iter()
                .filter(|(d, _)| *d == 1)
                .map(|(_, f)| f)
                .collect();
            assert_eq!(wan.len(), 900);
            assert!(wan
                .iter()
                .all(|f| f[..6] == [2, 0, 0, 0, 0, 0xfe] && f[14 + 12..14 + 16] == [192, 0, 2, 1]));
            // The ARP answer went back by lan0.
            assert_eq!(
                sent.iter()
                    .filter(|(d, f)| *d == 0 && f[12..14] == [8, 6])
                    .count(),
                1
            );
            assert_eq!(accept_counter(&live), (900, 0));
            outs.push(sent);
        }
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
    }

    #[test]
    fn bridge_floods_learns_and_filters_with_physdev() {
        let rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m physdev --physdev-in p1 -p udp --dport 9 -j DROP\nCOMMIT\n";
        let (mut live, rec) = bridge_live(rules);
        let mut w = Wire::default();
        // ARP from A on p0 for B: bridged unfiltered (flooded to p1), A learned behind p0.
        let q = arp_request(A, 0x0a00_0002, 0x0a00_0003);
        frame_in(&mut live, &rec, &mut w, 0, &q);
        assert_eq!(rec.take(), vec![(1, q.clone())]);
        // B's answer to A (unicast, not IPv4) goes to p0 only.
        let mut r = q.clone();
        r[..6].copy_from_slice(&A);
        r[6..12].copy_from_slice(&B);
        frame_in(&mut live, &rec, &mut w, 1, &r);
        assert_eq!(rec.take(), vec![(0, r.clone())]);
        // IPv4 A -> B: through FORWARD, out of p1 with the frame's own addresses.
        let f = frame(B, A, "0 p0 udp 10.0.0.2:1000 > 10.0.0.3:9");
        frame_in(&mut live, &rec, &mut w, 0, &f);
        assert_eq!(rec.take(), vec![(1, f.clone())]);
        // B -> A on p1 to port 9: the physdev rule drops it and counts it.
        let g = frame(A, B, "0 p1 udp 10.0.0.3:1000 > 10.0.0.2:9");
        frame_in(&mut live, &rec, &mut w, 1, &g);
        assert!(rec.take().is_empty());
        let save = nfrs_rules::save::save_store(&live.engine.ruleset_with_counters());
        assert!(
            save.contains("[1:28] -A FORWARD -p udp -m physdev --physdev-in p1"),
            "{save}"
        );
        // Another port is not dropped.
        let g2 = frame(A, B, "0 p1 udp 10.0.0.3:1000 > 10.0.0.2:10");
        frame_in(&mut live, &rec, &mut w, 1, &g2);
        assert_eq!(rec.take(), vec![(0, g2)]);
        // A frame for a MAC behind the port it came in by goes nowhere.
        let h = frame(B, A, "0 p1 udp 10.0.0.2:1 > 10.0.0.3:2");
        frame_in(&mut live, &rec, &mut w, 1, &h);
        assert!(rec.take().is_empty());
    }

    #[test]
    fn bridged_reject_resets_back_by_the_port() {
        let rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m physdev --physdev-in p1 -p tcp --dport 8080 -j REJECT --reject-with tcp-reset\nCOMMIT\n";
        let (mut live, rec) = bridge_live(rules);
        let mut w = Wire::default();
        let syn = frame(
            A,
            B,
            "0 p1 tcp 10.0.0.3:40000 > 10.0.0.2:8080 flags=S seq=7",
        );
        frame_in(&mut live, &rec, &mut w, 1, &syn);
        let sent = rec.take();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, f) = &sent[0];
        // Back out of p1, from the SYN's destination MAC to its source MAC (as measured).
        assert_eq!((*port, &f[..6], &f[6..12]), (1, &B[..], &A[..]));
        assert_eq!(
            (f[14 + 9], f[14 + 20 + 13] & 0x04),
            (6, 0x04),
            "a TCP reset"
        );
    }

    #[test]
    fn bridge_answers_for_its_own_address() {
        let (mut live, rec) = bridge_live("*filter\nCOMMIT\n");
        let bmac = live.engine.host.ifaces()[2].mac;
        assert_eq!(bmac, [0x0a, 0, 0, 0, 0, 1]);
        let mut w = Wire::default();
        // Who-has 10.0.0.1 from A on p0: flooded to p1 and answered from the bridge MAC.
        let q = arp_request(A, 0x0a00_0002, 0x0a00_0001);
        frame_in(&mut live, &rec, &mut w, 0, &q);
        let sent = rec.take();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0], (1, q.clone()));
        let (port, reply) = &sent[1];
        assert_eq!(*port, 0);
        let a = arp::parse(reply).unwrap();
        assert_eq!(
            (a.op, a.sha, a.spa, &reply[..6]),
            (2, bmac, 0x0a00_0001, &A[..])
        );
        // A ping to the bridge: one echo reply, out of p0 only, from the bridge MAC to A.
        let p = frame(bmac, A, "0 p0 icmp 10.0.0.2 > 10.0.0.1 type=8 id=1 seq=1");
        frame_in(&mut live, &rec, &mut w, 0, &p);
        let sent = rec.take();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, f) = &sent[0];
        assert_eq!((*port, &f[..6], &f[6..12]), (0, &A[..], &bmac[..]));
        assert_eq!(f[14 + 20], 0, "an echo reply");
    }

    #[test]
    fn swap_keeps_connections() {
        let ct_rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT\nCOMMIT\n";
        let mut e = engine(ct_rules);
        // A UDP packet 10.0.0.2:1000 -> 10.0.1.2:53 creates a connection.
        let l = nfrs_wire::line::parse_input_line("0 a udp 10.0.0.2:1000 > 10.0.1.2:53").unwrap();
        let ip = nfrs_wire::build::build_ipv4(&l.spec, &Default::default()).unwrap();
        // Ethernet header: to interface a's MAC from its default neighbour, IPv4.
        let eth = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 1, 8, 0];
        e.receive(0, ip, eth, 1_000);
        assert!(
            matches!(e.events.first(), Some(Ev::Out { dev: 1, .. })),
            "{:?}",
            e.events
        );
        assert_eq!(cmds::conntrack(&mut e, &["-C".into()], 2_000).stdout, "1\n");
        let dropping = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\nCOMMIT\n";
        let old = swap_engine(&mut e, engine(dropping), CtConfig::default());
        // The conntrack table moved to the new engine; the old one keeps none.
        assert!(old.ct.is_none());
        assert_eq!(cmds::conntrack(&mut e, &["-C".into()], 3_000).stdout, "1\n");
        let l = cmds::conntrack(&mut e, &["-L".into()], 3_000);
        assert!(l.stdout.starts_with("udp      17 "), "{}", l.stdout);
        assert!(l.stderr.contains("1 flow entries have been shown."));
        let d = cmds::conntrack(&mut e, &["-D".into(), "-p".into(), "tcp".into()], 3_000);
        assert_eq!(d.code, 1);
        let d = cmds::conntrack(&mut e, &["-D".into(), "--dport".into(), "53".into()], 3_000);
        assert_eq!(d.code, 0);
        assert!(d.stderr.contains("1 flow entries have been deleted."));
        assert_eq!(cmds::conntrack(&mut e, &["-C".into()], 3_000).stdout, "0\n");
        let f = cmds::conntrack(&mut e, &["-F".into()], 3_000);
        assert!(f
            .stderr
            .ends_with("connection tracking table has been emptied.\n"));
        let bad = cmds::conntrack(&mut e, &["-E".into()], 3_000);
        assert_eq!(bad.code, 2);
        assert!(bad.stderr.contains("`-E'"));
    }
}
