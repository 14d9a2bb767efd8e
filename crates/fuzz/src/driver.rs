//! The fuzz loop: every corpus entry once, then mutated entries until the time is up. Each
//! input runs under `catch_unwind` and is timed; a panic is a crash, an input over the hang
//! limit (1 s) a hang, and a watchdog thread ends the process with the input saved if one
//! input never returns. Inputs with a new outcome signature join the in-memory corpus.

use crate::fnv;
use crate::mutate::{mutate, Rng};
use crate::seeds;
use crate::targets::{exec, State, Target};
use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// How to run a target.
#[derive(Clone, Debug)]
pub struct RunOpts {
    /// How long to fuzz (after the corpus pass).
    pub seconds: f64,
    /// The mutation seed.
    pub seed: u64,
    /// The starting corpus (empty: the target's corpus directory).
    pub corpus: Vec<Vec<u8>>,
    /// Where crash files go (`<target>-<hash>`); None writes none.
    pub crash_dir: Option<PathBuf>,
    /// Where inputs with a new outcome go; None keeps them in memory only.
    pub save_new: Option<PathBuf>,
    /// An input running longer than this is a hang.
    pub hang: Duration,
    /// A single input still running after this ends the process (a real hang).
    pub watchdog: Duration,
}

impl Default for RunOpts {
    fn default() -> Self {
        RunOpts {
            seconds: 2.0,
            seed: 1,
            corpus: Vec::new(),
            crash_dir: None,
            save_new: None,
            hang: Duration::from_secs(1),
            watchdog: Duration::from_secs(20),
        }
    }
}

/// What went wrong with one input.
#[derive(Clone, Debug, PartialEq)]
pub enum FindingKind {
    /// It panicked with this message (and location).
    Panic(String),
    /// It took this long.
    Hang(Duration),
}

/// A crash or hang and the input that causes it.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Panic or hang.
    pub kind: FindingKind,
    /// The input.
    pub input: Vec<u8>,
    /// The crash file written, if any.
    pub file: Option<PathBuf>,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Inputs executed (corpus pass included).
    pub cases: u64,
    /// Wall time spent.
    pub elapsed: Duration,
    /// Corpus size at the end (seeds plus inputs with new outcomes).
    pub corpus: usize,
    /// Distinct outcome signatures seen.
    pub signatures: usize,
    /// The slowest input's time.
    pub slowest: Duration,
    /// Distinct crashes and hangs (one input each).
    pub findings: Vec<Finding>,
}

thread_local! {
    static CAPTURE: RefCell<Option<String>> = const { RefCell::new(None) };
    static CAPTURING: RefCell<bool> = const { RefCell::new(false) };
}

/// Installs (once) a panic hook that records the message of panics on fuzzing threads and
/// leaves every other thread's panics to the previous hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(|c| *c.borrow()) {
                let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                    s.to_string()
                } else if let Some(s) = info.payload().downcast_ref::<String>() {
                    s.clone()
                } else {
                    "(non-string panic)".to_string()
                };
                let loc = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                CAPTURE.with(|c| *c.borrow_mut() = Some(format!("{msg} at {loc}")));
            } else {
                prev(info);
            }
        }));
    });
}

/// Runs `input` once, catching a panic: `Ok(signature)` or `Err(panic message)`.
pub fn exec_caught(target: Target, st: &State, input: &[u8]) -> Result<u64, String> {
    install_hook();
    CAPTURING.with(|c| *c.borrow_mut() = true);
    let r = catch_unwind(AssertUnwindSafe(|| exec(target, st, input)));
    CAPTURING.with(|c| *c.borrow_mut() = false);
    r.map_err(|_| {
        CAPTURE
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| "(panic)".into())
    })
}

/// The input as a report shows it: text as is (escaped), binary as hex.
pub fn show_input(target: Target, input: &[u8]) -> String {
    if target.shape() == crate::mutate::Shape::Binary {
        input.iter().map(|b| format!("{b:02x}")).collect()
    } else {
        let s = String::from_utf8_lossy(input);
        s.escape_debug().to_string()
    }
}

/// A panic message without numbers and ids: one finding per distinct bug, not per input.
fn bug_key(msg: &str) -> String {
    let at = msg.rfind(" at ").map(|i| &msg[i..]).unwrap_or("");
    let head: String = msg
        .chars()
        .take(60)
        .filter(|c| !c.is_ascii_digit())
        .collect();
    format!("{head}{at}")
}

/// Runs `target` as `opts` says.
pub fn run(target: Target, opts: &RunOpts) -> Report {
    let st = State::new();
    let mut corpus = if opts.corpus.is_empty() {
        seeds::load_corpus(&seeds::corpus_dir(target))
    } else {
        opts.corpus.clone()
    };
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let dict = seeds::dictionary(target, &corpus);
    let mut rng = Rng::new(opts.seed);
    let mut report = Report::default();
    let mut sigs: HashSet<u64> = HashSet::new();
    let mut keys: HashSet<String> = HashSet::new();

    // Watchdog: the input being run and when it started (ms since `t0`, u64::MAX when idle).
    let t0 = Instant::now();
    let started = Arc::new(AtomicU64::new(u64::MAX));
    let current = Arc::new(Mutex::new(Vec::<u8>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let dog = {
        let (started, current, done) = (started.clone(), current.clone(), done.clone());
        let limit = opts.watchdog.as_millis() as u64;
        let crash_dir = opts.crash_dir.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let s = started.load(Ordering::Relaxed);
                let now = t0.elapsed().as_millis() as u64;
                if s != u64::MAX && now.saturating_sub(s) > limit {
                    let input = current.lock().map(|g| g.clone()).unwrap_or_default();
                    let file = crash_dir.as_ref().and_then(|d| {
                        write_crash(d, &format!("{}-hang", target.name()), &input).ok()
                    });
                    eprintln!(
                        "nfrs-fuzz: {}: an input has run for over {} ms (hang); saved as {:?}\ninput: {}",
                        target.name(),
                        limit,
                        file,
                        show_input(target, &input)
                    );
                    std::process::exit(3);
                }
            }
        })
    };

    let deadline = t0 + Duration::from_secs_f64(opts.seconds.max(0.0));
    let seed_count = corpus.len();
    let mut i = 0usize;
    let mut input = Vec::new();
    loop {
        // The time limit holds for the corpus pass too (short test runs on a slow build).
        if i > 0 && Instant::now() >= deadline {
            break;
        }
        if i < seed_count {
            input.clear();
            input.extend_from_slice(&corpus[i]);
        } else {
            let parent = rng.below(corpus.len());
            let other = rng.below(corpus.len());
            input.clear();
            input.extend_from_slice(&corpus[parent]);
            let other = corpus[other].clone();
            mutate(&mut rng, &mut input, &other, &dict, target.shape());
        }
        i += 1;
        if let Ok(mut g) = current.lock() {
            g.clear();
            g.extend_from_slice(&input);
        }
        let t = Instant::now();
        started.store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
        let r = exec_caught(target, &st, &input);
        started.store(u64::MAX, Ordering::Relaxed);
        let took = t.elapsed();
        report.cases += 1;
        report.slowest = report.slowest.max(took);
        let kind = match r {
            Ok(sig) => {
                if sigs.insert(sig) && i > seed_count && corpus.len() < 5_000 {
                    corpus.push(input.clone());
                    if let Some(d) = &opts.save_new {
                        let _ = seeds::save_input(d, &input);
                    }
                }
                if took > opts.hang {
                    Some(FindingKind::Hang(took))
                } else {
                    None
                }
            }
            Err(msg) => Some(FindingKind::Panic(msg)),
        };
        if let Some(kind) = kind {
            let key = match &kind {
                FindingKind::Panic(m) => bug_key(m),
                FindingKind::Hang(_) => "hang".to_string(),
            };
            if keys.insert(key) && report.findings.len() < 50 {
                let file = opts.crash_dir.as_ref().and_then(|d| {
                    let prefix = match kind {
                        FindingKind::Panic(_) => target.name().to_string(),
                        FindingKind::Hang(_) => format!("{}-slow", target.name()),
                    };
                    write_crash(d, &prefix, &input).ok()
                });
                report.findings.push(Finding {
                    kind,
                    input: input.clone(),
                    file,
                });
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = dog.join();
    report.elapsed = t0.elapsed();
    report.corpus = corpus.len();
    report.signatures = sigs.len();
    report
}

fn write_crash(dir: &Path, prefix: &str, input: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let p = dir.join(format!("{prefix}-{:016x}", fnv(input)));
    std::fs::write(&p, input)?;
    Ok(p)
}
