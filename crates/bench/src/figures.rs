//! The figures: each group generates its workload, measures nfrs, measures the anchor in the
//! same run where it can, and adds rows (or warnings) to the [`Report`].
//!
//! Extension point: a new figure is a function `fn(&Config, &mut Report)` added to [`GROUPS`]
//! with its `--only` key (see `crate::gateway` for a packet-path group: an Engine built from a
//! scenario host and a ruleset, frames replayed with explicit timestamps). Figures promised by
//! issues 3 and 7 that are not measured yet are listed by [`pending`].

use std::path::{Path, PathBuf};

use nfrs_rules::restore::{restore_new, RestoreOpts};
use nfrs_rules::save::save;

use crate::gen::{self, Generated};
use crate::kernel::{self, Netns};
use crate::measure::{time_runs, time_runs_within, Samples};

/// Time after which a slow nfrs figure takes no further sample (the median is over fewer).
const BUDGET: std::time::Duration = std::time::Duration::from_secs(60);
use crate::report::{Better, Figure, Pending, Report};

/// What one `nfrs bench` run does.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Small sizes: a smoke run of seconds.
    pub quick: bool,
    /// Measure the kernel anchor (needs root and the tools); off: anchors print n/a.
    pub kernel: bool,
    /// Only groups whose key contains this.
    pub only: Option<String>,
    /// Samples a figure (default 5, quick 3).
    pub runs: Option<usize>,
    /// kube-proxy services (default 10000, quick 100).
    pub services: Option<usize>,
    /// Print which group is being measured to stderr (when stderr is a terminal).
    pub progress: bool,
    /// Also count instructions of the hot paths under callgrind (`--instructions`).
    pub instructions: bool,
}

impl Config {
    fn runs(&self) -> usize {
        self.runs.unwrap_or(if self.quick { 3 } else { 5 }).max(1)
    }

    /// `median of N`, with the samples actually taken.
    fn method_of(&self, s: &Samples) -> String {
        if s.len() < self.runs() {
            format!("median of {} (60 s budget)", s.len())
        } else {
            format!("median of {}", s.len())
        }
    }

    /// Whether group `key` is selected by `--only`.
    pub fn selected(&self, key: &str) -> bool {
        self.only.as_deref().is_none_or(|o| key.contains(o))
    }
}

/// A figure group: its `--only` key and the function that measures it.
pub struct Group {
    pub key: &'static str,
    pub about: &'static str,
    pub run: fn(&Config, &mut Report),
}

/// Every group, in table order.
pub const GROUPS: &[Group] = &[
    Group {
        key: "ruleset",
        about: "kube-proxy-shaped ruleset restore and save vs iptables-legacy-restore/-save",
        run: kube_proxy_ruleset,
    },
    Group {
        key: "acl",
        about: "ClassBench-style ACL restore and save vs iptables-legacy-restore/-save",
        run: acl_ruleset,
    },
    Group {
        key: "conntrack",
        about: "connection table: bytes per NATed entry (vs the kernel's nf_conn slab object), new entries/s, lookups/s",
        run: crate::flows::conntrack_figures,
    },
    Group {
        key: "gateway",
        about: "packet path through nfrs-engine: established-flow pps and new connections/s through a MASQUERADE gateway",
        run: crate::gateway::gateway_figures,
    },
    Group {
        key: "classify",
        about: "the ClassBench-style ACL as FORWARD classifier in nfrs-engine, 10k vs 10 rules, verdicts checked",
        run: crate::gateway::classify_figures,
    },
    Group {
        key: "kube",
        about: "new connections through the kube-proxy ruleset (10k vs 10 services) in nfrs-engine",
        run: crate::gateway::kube_figures,
    },
    Group {
        key: "lab",
        about: "forwarded pps (existing flows, 10 and 10k rules) and new connections/s (10 rules) through nfrs run vs the kernel's forwarding, same ruleset, veth netns lab (root)",
        run: crate::lab::lab_figures,
    },
    Group {
        key: "shard",
        about: "multi-core scaling: established-flow pps with 1 vs 2 flow-sharded worker threads (issue 7 goal 5)",
        run: crate::shard::shard_figures,
    },
    Group {
        key: "instructions",
        about: "instructions per packet / connection / rule under callgrind (only with --instructions)",
        run: crate::instr::instruction_figures,
    },
];

/// Runs the selected groups.
pub fn run(cfg: &Config) -> Report {
    let mut report = Report::default();
    for g in GROUPS.iter().filter(|g| cfg.selected(g.key)) {
        if cfg.progress {
            eprintln!("nfrs bench: measuring {} ({})", g.key, g.about);
        }
        (g.run)(cfg, &mut report);
    }
    if cfg.only.is_none() {
        report.pending.extend(pending());
    }
    report
}

/// Figures promised by issues 3 and 7 that cannot be measured yet: none left. The last one,
/// the kernel anchors of the gateway figures (issue 7 goals 1 and 4), is the lab's: existing
/// flows and new connections a second through the kernel and `nfrs run`, same run.
pub fn pending() -> Vec<Pending> {
    Vec::new()
}

/// `1M` for 1_000_000, `100k` for 99_500..100_499, `1.2k` for 1_234, `950` below 1000.
pub fn human_count(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(100_000) {
        let tenths = n / 100_000;
        match tenths % 10 {
            0 => format!("{}M", tenths / 10),
            d => format!("{}.{d}M", tenths / 10),
        }
    } else if n >= 10_000 {
        format!("{}k", (n + 500) / 1000)
    } else if n >= 1000 {
        let tenths = (n + 50) / 100;
        match tenths % 10 {
            0 => format!("{}k", tenths / 10),
            d => format!("{}.{d}k", tenths / 10),
        }
    } else {
        n.to_string()
    }
}

/// A file removed when dropped (the generated ruleset handed to the real tools).
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    pub(crate) fn write(name: &str, data: &str) -> Result<TempFile, String> {
        // Unique per call: runs in one process (the tests run two at once) must not write,
        // read and delete each other's file.
        static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir();
        let path = dir.join(format!(
            "nfrs-bench-{}-{}-{name}",
            std::process::id(),
            FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&path, data).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(TempFile(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The first line where two save outputs differ, `#` comment lines ignored on both sides.
pub fn first_difference(kernel: &str, nfrs: &str) -> Option<(usize, String, String)> {
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let (k, n) = (strip(kernel), strip(nfrs));
    for i in 0..k.len().max(n.len()) {
        let a = k.get(i).map(String::as_str).unwrap_or("<end of output>");
        let b = n.get(i).map(String::as_str).unwrap_or("<end of output>");
        if a != b {
            return Some((i + 1, a.to_string(), b.to_string()));
        }
    }
    None
}

/// An iptables-restore input that empties the tables `g` uses (built-in chains, ACCEPT).
fn reset_input(g: &Generated) -> String {
    let mut s = String::new();
    for (table, _) in &g.per_table {
        s.push_str(&format!("*{table}\n"));
        let chains: &[&str] = match *table {
            "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
            "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
            "raw" => &["PREROUTING", "OUTPUT"],
            _ => &["INPUT", "FORWARD", "OUTPUT"],
        };
        for c in chains {
            s.push_str(&format!(":{c} ACCEPT [0:0]\n"));
        }
        s.push_str("COMMIT\n");
    }
    s
}

/// Kernel timings of one ruleset: restore samples, save samples, the last save output and
/// the samples of one `iptables -A` on the loaded ruleset.
struct KernelRun {
    restore: Samples,
    save: Samples,
    saved: String,
    append: Samples,
}

fn kernel_ruleset(
    g: &Generated,
    file: &Path,
    runs: usize,
    append: &[&str],
) -> Result<KernelRun, String> {
    let ns = Netns::create()?;
    let reset = TempFile::write("reset.rules", &reset_input(g))?;
    let mut restore = Samples::default();
    for _ in 0..runs {
        // Untimed: start every sample from empty tables, as nfrs starts from an empty ruleset.
        ns.run(&["iptables-legacy-restore", "-w"], Some(reset.path()))?
            .check("iptables-legacy-restore (reset)")?;
        let ran = ns.run(&["iptables-legacy-restore", "-w"], Some(file))?;
        ran.check("iptables-legacy-restore -w")?;
        restore.secs.push(ran.secs);
    }
    let mut save = Samples::default();
    let mut saved = String::new();
    for _ in 0..runs {
        let ran = ns.run(&["iptables-legacy-save"], None)?;
        ran.check("iptables-legacy-save")?;
        save.secs.push(ran.secs);
        saved = ran.stdout();
    }
    let mut appended = Samples::default();
    let argv: Vec<&str> = ["iptables-legacy", "-w"]
        .into_iter()
        .chain(append.iter().copied())
        .collect();
    for _ in 0..runs {
        let ran = ns.run(&argv, None)?;
        ran.check(&argv.join(" "))?;
        appended.secs.push(ran.secs);
    }
    Ok(KernelRun {
        restore,
        save,
        saved,
        append: appended,
    })
}

/// [`time_runs_within`] (with [`BUDGET`]) for restores: the previous sample's ruleset is
/// dropped, untimed, before the next sample starts, so every sample starts as the anchor's
/// fresh process does, without another 100k-rule ruleset in memory (measured: keeping one
/// made the next restore 25-35 % slower). The last ruleset is returned.
fn time_restores(
    runs: usize,
    mut f: impl FnMut() -> Result<nfrs_rules::model::Ruleset, String>,
) -> Result<(Samples, Option<nfrs_rules::model::Ruleset>), String> {
    let mut samples = Samples::default();
    let mut last = None;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        if !samples.is_empty() && start.elapsed() >= BUDGET {
            break;
        }
        drop(last.take());
        let t0 = std::time::Instant::now();
        let out = f()?;
        samples.secs.push(t0.elapsed().as_secs_f64());
        last = Some(std::hint::black_box(out));
    }
    Ok((samples, last))
}

/// Restore and save figures of one generated ruleset, with the kernel anchor and the
/// equivalence check of the two save outputs.
fn ruleset_figures(
    cfg: &Config,
    report: &mut Report,
    key: &'static str,
    label: &str,
    g: &Generated,
    append: &[&str],
) {
    let runs = cfg.runs();
    let size = human_count(g.rules);
    let file = match TempFile::write(&format!("{key}.rules"), &g.text) {
        Ok(f) => f,
        Err(e) => {
            report.warnings.push(format!("{label}: {e}"));
            return;
        }
    };

    // nfrs: what `nfrs iptables-restore FILE` does, as one sample: take the store lock, begin
    // the store's temporary file, read the file, parse, validate and commit every table (its
    // rule lines printed beside the parsing where a core is free, written to the temporary
    // file as they are printed), then finish the store (chain lines, lines not printed yet,
    // the index of format 3, fdatasync, rename, fsync of the directory) — nfrs' counterpart
    // of the kernel's table replace inside iptables-legacy-restore's time. The store is a
    // fresh directory, as the anchor starts from empty tables.
    let opts = RestoreOpts::default();
    // Unique per call: runs in one process (tests) must not share a store.
    static STORES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let store_dir = std::env::temp_dir().join(format!(
        "nfrs-bench-store-{}-{key}-{}",
        std::process::id(),
        STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let store = nfrs_rules::store::Store::at(&store_dir);
    // The same without the store first: read, parse, validate, commit in memory (for the
    // note).
    let in_memory = time_restores(runs, || {
        // Read as `nfrs iptables-restore FILE` reads it.
        let text = nfrs_rules::restore::read_input_file(file.path()).map_err(|e| e.to_string())?;
        restore_new(&text, &opts).map_err(|e| e.message.trim_end().to_string())
    })
    .map(|(s, _)| s);
    // The store's finish after the commit (the part of the store write left on the
    // restore's way), and how many samples had every table's lines printed beside.
    let mut finishes = Samples::default();
    let mut all_printed = 0usize;
    let restored = time_restores(runs, || {
        let _lock = store
            .lock(std::time::Duration::from_secs(10))
            .map_err(|e| e.msg)?;
        // As the CLI.
        let begun = store.begin_write().map_err(|e| e.msg)?;
        let opts = RestoreOpts {
            print_sink: Some(begun.sink()),
            ..opts.clone()
        };
        let text = nfrs_rules::restore::read_input_file(file.path()).map_err(|e| e.to_string())?;
        let mut rs = nfrs_rules::Ruleset::default();
        let mut blocks = nfrs_rules::restore::InputBlocks::default();
        nfrs_rules::restore::restore_noting_blocks(
            &mut rs,
            &text,
            &opts,
            &mut String::new(),
            &mut blocks,
        )
        .map_err(|e| e.message.trim_end().to_string())?;
        let t = std::time::Instant::now();
        begun
            .finish_after_restore(&rs, &blocks)
            .map_err(|e| e.msg)?;
        finishes.secs.push(t.elapsed().as_secs_f64());
        all_printed += usize::from(blocks.printed_tables().len() == rs.tables.len());
        Ok::<_, String>(rs)
    });
    // The last sample's store file: its format and how many byte ranges its index lists.
    let stored_as = std::fs::read(store_dir.join("ruleset.rules"))
        .ok()
        .map(|f| {
            let format = if f.starts_with(nfrs_rules::save::STORE_HEAD3.as_bytes()) {
                3
            } else {
                2
            };
            let ranges = store
                .open_indexed()
                .map_or(0, |i| i.blocks.iter().map(|b| b.runs.len()).sum::<usize>());
            (format, ranges)
        });
    // What `nfrs iptables-save` does on a store without a daemon: lock, copy the table
    // blocks from the store file (or, where it cannot, load the store and print), its output
    // going to a pipe another thread drains, as a shell reads its stdout. The saved text of
    // one more run is kept for the comparison with iptables-legacy-save.
    let saved_from_store = time_runs(runs, || save_store_to_pipe(&store, false).map(|_| ()))
        .and_then(|(s, _)| Ok((s, save_store_to_pipe(&store, true)?)));
    // What a save costs where the store file cannot be copied (written before the index, or
    // a table in the store's own form): reading the store back into memory (for a note).
    let store_load = time_runs(runs.min(3), || store.load()).map(|(s, _)| s);
    let _ = std::fs::remove_dir_all(&store_dir);
    let (restore_samples, mut rs) = match restored {
        Ok((s, Some(rs))) => (s, rs),
        Ok((_, None)) => unreachable!("runs >= 1"),
        Err(e) => {
            report.warnings.push(format!(
                "{label}: nfrs restore of the generated ruleset failed: {e}"
            ));
            report.pending.push(Pending {
                name: format!("{label} restore/save, {size} rules"),
                why: format!("nfrs cannot restore it yet: {e}"),
            });
            return;
        }
    };
    let (save_samples, nfrs_saved) = match saved_from_store {
        Ok(x) => x,
        Err(e) => {
            report.warnings.push(format!(
                "{label}: nfrs iptables-save on the store failed: {e}"
            ));
            return;
        }
    };
    // The save printed from the ruleset in memory (what `nfrs run` answers), for a note.
    let in_memory_save = time_runs(runs, || Ok::<_, ()>(save(&rs, None, false)))
        .map(|(s, _)| s)
        .expect("save cannot fail");
    // One rule appended to the loaded ruleset in memory: parse, then `ops::execute`, which
    // changes the committed table in place and checks only what the rule changes (the kernel
    // checks the whole table on every replace, which is what `iptables -A` waits for). The
    // restore left what its checks learnt in the table, so the first command is checked
    // incrementally too. Each sample appends one more rule, on both sides.
    let args: Vec<String> = append.iter().map(|a| a.to_string()).collect();
    let appended = time_runs_within(runs, Some(BUDGET), || {
        let cmd = nfrs_rules::parse::parse_command(&args, false, None).map_err(|e| e.msg)?;
        nfrs_rules::ops::execute(&mut rs, &cmd).map_err(|e| e.msg)
    });
    // The appended rules deleted again (`-D` with the same rule), one a sample, for the note.
    let deleted = appended.as_ref().ok().map(|(samples, _)| {
        let mut del = args.clone();
        if let Some(a) = del.iter_mut().find(|a| *a == "-A") {
            *a = "-D".into();
        }
        time_runs(samples.secs.len(), || {
            let cmd = nfrs_rules::parse::parse_command(&del, false, None).map_err(|e| e.msg)?;
            nfrs_rules::ops::execute(&mut rs, &cmd).map_err(|e| e.msg)
        })
    });

    let anchor = if cfg.kernel {
        kernel::availability().and_then(|()| kernel_ruleset(g, file.path(), runs, append))
    } else {
        Err("kernel anchor not requested (--no-kernel)".to_string())
    };
    let mut restore_fig = Figure {
        key,
        name: format!("{label} restore, {size} rules"),
        value: restore_samples.median() * 1e3,
        unit: "ms",
        better: Better::Lower,
        anchor: "n/a".into(),
        anchor_value: None,
        method: cfg.method_of(&restore_samples),
        notes: Vec::new(),
    };
    let mut save_fig = Figure {
        name: format!("{label} save, {size} rules"),
        value: save_samples.median() * 1e3,
        method: cfg.method_of(&save_samples),
        ..restore_fig.clone()
    };
    let mut append_fig = match &appended {
        Ok((samples, _)) => Some(Figure {
            name: format!("{label} rule append (-A), {size} rules loaded"),
            // Microseconds: the goal is well under a millisecond.
            value: samples.median() * 1e6,
            unit: "us",
            method: cfg.method_of(samples),
            notes: vec![format!(
                "{label}: appended `{}` in memory (parse, append in place, the kernel's checks for what the rule changes: its own checkentry, a loop its jump could close, rules it makes reachable from more hooks); median of {} samples, the first {:.1} us{}; `nfrs iptables -A` on a store also loads and writes the store, and through `nfrs run` the daemon also compiles and swaps the engine",
                append.join(" "),
                samples.secs.len(),
                samples.secs.first().copied().unwrap_or(0.0) * 1e6,
                match &deleted {
                    Some(Ok((d, _))) => format!(
                        "; `-D` of the same rule afterwards {:.1} us (median, no anchor)",
                        d.median() * 1e6
                    ),
                    Some(Err(e)) => format!("; `-D` of the same rule failed: {e}"),
                    None => String::new(),
                }
            )],
            ..restore_fig.clone()
        }),
        Err(e) => {
            report
                .warnings
                .push(format!("{label}: nfrs failed to append `{}`: {e}", append.join(" ")));
            None
        }
    };
    match anchor {
        Ok(k) => {
            if let Some(f) = append_fig.as_mut() {
                f.anchor = "iptables-legacy -w -A (netns)".into();
                f.anchor_value = Some(k.append.median() * 1e6);
            }
            restore_fig.anchor = "iptables-legacy-restore -w (netns)".into();
            restore_fig.anchor_value = Some(k.restore.median() * 1e3);
            if let Ok(m) = &in_memory {
                restore_fig.notes.push(format!(
                    "{label} restore: {:.1} ms of it without the store write (read, parse, validate, commit in memory; {:.1}x iptables-legacy-restore)",
                    m.median() * 1e3,
                    k.restore.median() / m.median()
                ));
            }
            restore_fig
                .notes
                .push(store_split_note(label, &finishes, all_printed, stored_as));
            save_fig.anchor = "iptables-legacy-save (netns)".into();
            save_fig.anchor_value = Some(k.save.median() * 1e3);
            save_fig.notes.push(format!(
                "{label} save: what `nfrs iptables-save` does on a store without a daemon (lock, the table blocks copied from the store file, counters dropped on the way, to a 1 MiB pipe another thread drains); printed from the ruleset held in memory (what `nfrs run` answers) {:.1} ms = {:.1}x iptables-legacy-save",
                in_memory_save.median() * 1e3,
                k.save.median() / in_memory_save.median()
            ));
            if let Ok(l) = &store_load {
                let with_load = l.median() + in_memory_save.median();
                save_fig.notes.push(format!(
                    "{label} save: from a store written before the index (or a table the store keeps in its own lossless form) it reads the store back first: {:.1} ms more, {:.1} ms in all = {:.1}x iptables-legacy-save",
                    l.median() * 1e3,
                    with_load * 1e3,
                    k.save.median() / with_load
                ));
            }
            match first_difference(&k.saved, &nfrs_saved) {
                None => restore_fig.notes.push(format!(
                    "{label}: nfrs save output equals iptables-legacy-save's ({} lines, comments aside)",
                    nfrs_saved.lines().count()
                )),
                Some((line, kern, ours)) => report.warnings.push(format!(
                    "{label}: nfrs save differs from iptables-legacy-save at line {line} (comment lines ignored)\n  iptables-legacy-save: {kern}\n  nfrs save:            {ours}"
                )),
            }
        }
        Err(why) => {
            if let Ok(m) = &in_memory {
                restore_fig.notes.push(format!(
                    "{label} restore: {:.1} ms of it without the store write (read, parse, validate, commit in memory)",
                    m.median() * 1e3
                ));
            }
            restore_fig
                .notes
                .push(store_split_note(label, &finishes, all_printed, stored_as));
            restore_fig.notes.push(format!(
                "{label}: anchor n/a: {why}; save equivalence not checked"
            ));
        }
    }
    report.figures.push(restore_fig);
    report.figures.push(save_fig);
    report.figures.extend(append_fig);
}

/// The note on how the store write splits: its finish after the commit (median), in how
/// many samples every table's rule lines were printed beside the restore (written to the
/// store file during it), the last store file's format and index ranges.
fn store_split_note(
    label: &str,
    finishes: &Samples,
    all_printed: usize,
    stored_as: Option<(u32, usize)>,
) -> String {
    let file = match stored_as {
        Some((3, ranges)) => format!("format 3, its index {ranges} byte ranges"),
        Some((f, _)) => format!("format {f}, every table formatted at the finish"),
        None => "not read".into(),
    };
    format!(
        "{label} restore: the store write's part after the commit {:.1} ms (median of {}: the tables formatted while a second thread writes them, index, fdatasync, rename, directory fsync); rule lines printed beside the parsing (RestoreOpts::print_store, off unless asked) in {all_printed} of {} samples; last store file {file}",
        finishes.median() * 1e3,
        finishes.secs.len(),
        finishes.secs.len()
    )
}

/// `nfrs iptables-save` on `store` as the CLI runs it without a daemon: the store's lock,
/// the table blocks copied from the store file where it can (`save_from_store`), else the
/// store loaded and printed; the output written to a pipe (widened as the CLI widens its
/// stdout) a second thread drains (and keeps when `keep`).
fn save_store_to_pipe(store: &nfrs_rules::store::Store, keep: bool) -> Result<String, String> {
    let (mut rx, mut tx) = std::io::pipe().map_err(|e| e.to_string())?;
    let reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = std::io::Read::read(&mut rx, &mut buf) {
            if keep {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        kept
    });
    let written = (|| {
        let _lock = store
            .lock(std::time::Duration::from_secs(10))
            .map_err(|e| e.msg)?;
        let p = nfrs_rules::tool::prepare("iptables-save", &[]).map_err(|o| o.stderr)?;
        nfrs_rules::tool::widen_output_pipe(std::os::fd::AsFd::as_fd(&tx));
        let out = match p.save_from_store(store, &mut tx) {
            Some(out) => out,
            None => {
                let mut rs = store.load().map_err(|e| e.msg)?;
                p.apply(&mut rs, "", &mut tx)
            }
        };
        match out.code {
            0 => Ok(()),
            _ => Err(out.stderr),
        }
    })();
    drop(tx);
    let kept = reader
        .join()
        .map_err(|_| "the pipe reader panicked".to_string())?;
    written?;
    String::from_utf8(kept).map_err(|e| e.to_string())
}

fn kube_proxy_ruleset(cfg: &Config, report: &mut Report) {
    let services = cfg.services.unwrap_or(if cfg.quick { 100 } else { 10_000 });
    let g = gen::kube_proxy(services);
    report.workloads.push(format!(
        "kube-proxy shape, {services} services: {} rules ({}), {} user chains, {:.1} MB",
        g.rules,
        g.per_table
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        g.chains,
        g.text.len() as f64 / 1e6
    ));
    let append = [
        "-t",
        "nat",
        "-A",
        "KUBE-SERVICES",
        "-d",
        "172.31.255.1/32",
        "-p",
        "tcp",
        "-m",
        "tcp",
        "--dport",
        "80",
        "-j",
        "KUBE-MARK-MASQ",
    ];
    ruleset_figures(cfg, report, "ruleset", "ruleset", &g, &append);
}

fn acl_ruleset(cfg: &Config, report: &mut Report) {
    let n = if cfg.quick { 500 } else { 10_000 };
    let g = gen::acl(n, 1);
    report.workloads.push(format!(
        "ClassBench-style ACL: {} rules in filter FORWARD (seed 1), {:.1} MB",
        g.rules,
        g.text.len() as f64 / 1e6
    ));
    let append = ["-A", "FORWARD", "-s", "198.18.0.1/32", "-j", "DROP"];
    ruleset_figures(cfg, report, "acl", "ACL", &g, &append);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_human_count() {
        assert_eq!(human_count(1_000_000), "1M");
        assert_eq!(human_count(2_500_000), "2.5M");
        assert_eq!(human_count(100_412), "100k");
        assert_eq!(human_count(99_600), "100k");
        assert_eq!(human_count(10_000), "10k");
        assert_eq!(human_count(1_234), "1.2k");
        assert_eq!(human_count(1_000), "1k");
        assert_eq!(human_count(950), "950");
    }

    #[test]
    fn test_first_difference_ignores_comments() {
        let k = "# Generated by iptables-save v1.8.9\n*nat\nA\nCOMMIT\n# Completed\n";
        assert_eq!(first_difference(k, "*nat\nA\nCOMMIT\n"), None);
        assert_eq!(
            first_difference(k, "*nat\nB\nCOMMIT\n"),
            Some((2, "A".into(), "B".into()))
        );
        assert_eq!(
            first_difference(k, "*nat\nA\n"),
            Some((3, "COMMIT".into(), "<end of output>".into()))
        );
    }

    #[test]
    fn test_reset_input_covers_tables() {
        let g = gen::kube_proxy(10);
        let r = reset_input(&g);
        assert_eq!(
            r,
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
        );
    }

    #[test]
    fn test_only_selects_groups() {
        let cfg = Config {
            only: Some("acl".into()),
            ..Config::default()
        };
        assert!(cfg.selected("acl"));
        assert!(!cfg.selected("ruleset"));
        assert!(Config::default().selected("ruleset"));
    }
}
