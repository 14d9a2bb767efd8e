//! The store tools as library calls: `iptables`, `iptables-save`, `iptables-restore` and
//! `proc net/ip_tables_names` applied to a ruleset in memory, printing exactly what iptables
//! 1.8.9 (legacy) prints, messages and exit codes included. The `nfrs` command line runs them
//! on the store (lock, load, apply, write); `nfrs run` on the ruleset in force.
//!
//! A tool runs in two steps: [`prepare`] reads its arguments (no ruleset needed, so argument
//! errors cost nothing), [`Prepared::apply`] acts on the ruleset. [`run`] does both.

use crate::error::{Errno, ErrorKind};
use crate::list::{self, ListFormat, Resolver};
use crate::ops;
use crate::parse::{self, Cmd, Command};
use crate::restore::{self, InputBlocks, RestoreOpts};
use crate::save;
use crate::{Error, Ruleset, TableKind};
use std::io::Write;

/// What a tool printed and whether it changed the ruleset.
#[derive(Debug, Default)]
pub struct ToolOutput {
    /// The exit code.
    pub code: i32,
    /// Standard output (empty when it went to a writer, [`Prepared::apply`]).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The ruleset may differ from before (a table instantiated counts): it must be stored
    /// (and, for a daemon, put in force).
    pub changed: bool,
    /// After `iptables-restore`: the input's table blocks the store may keep as they are
    /// ([`crate::store::Store::save_after_restore`] with the same input).
    pub restored: Option<InputBlocks>,
}

impl ToolOutput {
    fn fail(code: i32, stderr: String) -> ToolOutput {
        ToolOutput {
            code,
            stderr,
            ..Default::default()
        }
    }
}

/// A tool invocation whose arguments were read.
#[derive(Debug)]
pub struct Prepared {
    /// Warnings printed while reading the arguments (iptables prints them first).
    pub warnings: String,
    what: What,
}

#[derive(Debug)]
enum What {
    Iptables(Box<Command>),
    Save {
        counters: bool,
        only: Option<TableKind>,
    },
    Restore {
        opts: RestoreOpts,
        file: Option<String>,
    },
    TableNames,
}

/// Whether `tool` names a store tool [`prepare`] knows.
pub fn known(tool: &str) -> bool {
    matches!(
        tool,
        "iptables"
            | "iptables-legacy"
            | "iptables-save"
            | "iptables-legacy-save"
            | "iptables-restore"
            | "iptables-legacy-restore"
            | "proc"
    )
}

/// Reads `tool`'s arguments. `Err` is the tool's whole answer (a usage error, `--version`).
pub fn prepare(tool: &str, args: &[String]) -> Result<Prepared, ToolOutput> {
    let what = match tool {
        "iptables" | "iptables-legacy" => return prepare_iptables(args),
        "iptables-save" | "iptables-legacy-save" => prepare_save(args)?,
        "iptables-restore" | "iptables-legacy-restore" => prepare_restore(args)?,
        "proc" => prepare_proc(args)?,
        _ => {
            return Err(ToolOutput::fail(
                2,
                format!("nfrs: unknown tool `{tool}`\n"),
            ))
        }
    };
    Ok(Prepared {
        warnings: String::new(),
        what,
    })
}

/// [`prepare`] then [`Prepared::apply`], the output in [`ToolOutput::stdout`].
pub fn run(tool: &str, args: &[String], stdin: &str, rs: &mut Ruleset) -> ToolOutput {
    let p = match prepare(tool, args) {
        Ok(p) => p,
        Err(out) => return out,
    };
    let mut buf = Vec::new();
    let mut out = p.apply(rs, stdin, &mut buf);
    out.stdout = match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    out
}

impl Prepared {
    /// The file `iptables-restore` was given (`None`: it reads standard input).
    pub fn input_file(&self) -> Option<&str> {
        match &self.what {
            What::Restore { file, .. } => file.as_deref(),
            _ => None,
        }
    }

    /// Applies the tool to `rs`; `input` is `iptables-restore`'s input (ignored by the
    /// others). Standard output goes to `out` (a failed write ends the output, as a closed
    /// pipe does); the rest is in the answer.
    pub fn apply(self, rs: &mut Ruleset, input: &str, out: &mut dyn Write) -> ToolOutput {
        let mut answer = match self.what {
            What::Iptables(cmd) => apply_iptables(&cmd, rs, out),
            What::Save { counters, only } => apply_save(counters, only, rs, out),
            What::Restore { opts, .. } => apply_restore(&opts, rs, input, out),
            What::TableNames => {
                let mut text = String::new();
                for n in rs.table_names() {
                    text.push_str(n);
                    text.push('\n');
                }
                let _ = out.write_all(text.as_bytes());
                ToolOutput::default()
            }
        };
        answer.stderr.insert_str(0, &self.warnings);
        answer
    }
}

/// An error printed the way iptables does, with its exit code.
fn report(prog: &str, e: &Error) -> ToolOutput {
    let code = if e.msg.starts_with("can't initialize iptables table") {
        3
    } else {
        e.exit_code()
    };
    ToolOutput::fail(code, e.render(prog))
}

fn prepare_iptables(args: &[String]) -> Result<Prepared, ToolOutput> {
    let (parsed, warnings) = parse::parse_command_with(args, false, None, false);
    let mut warn = String::new();
    for w in &warnings {
        warn.push_str(w);
        warn.push('\n');
    }
    let with_warnings = |mut o: ToolOutput| {
        o.stderr.insert_str(0, &warn);
        o
    };
    match parsed {
        Ok(c) => Ok(Prepared {
            warnings: warn.clone(),
            what: What::Iptables(Box::new(c)),
        }),
        Err(e) if e.kind == ErrorKind::Other && e.msg == parse::VERSION => {
            Err(with_warnings(ToolOutput {
                stdout: format!("{}\n", parse::VERSION),
                ..Default::default()
            }))
        }
        Err(e) => Err(with_warnings(report("iptables", &e))),
    }
}

fn apply_iptables(cmd: &Command, rs: &mut Ruleset, out: &mut dyn Write) -> ToolOutput {
    // Using a table instantiates it (as the kernel loads the table module), even if the
    // command then fails.
    let before = rs.table_names().len();
    rs.table_mut(cmd.table);
    let touched = rs.table_names().len() != before;
    let result = if cmd.cmd == Cmd::List {
        let table = rs.table_mut(cmd.table);
        if !cmd.chain.is_empty() && table.chain(&cmd.chain).is_none() {
            Err(Error::kernel(Errno::NoEnt))
        } else {
            let f = ListFormat {
                numeric: cmd.numeric,
                verbose: cmd.verbose,
                exact: cmd.exact,
                line_numbers: cmd.line_numbers,
            };
            let resolver = if cmd.numeric {
                Resolver::default()
            } else {
                Resolver::from_system()
            };
            let chain = (!cmd.chain.is_empty()).then_some(cmd.chain.as_str());
            if cmd.zero_too {
                Ok(list::list_and_zero(table, chain, cmd.rulenum, f, &resolver))
            } else {
                Ok(list::list(table, chain, cmd.rulenum, f, &resolver))
            }
        }
    } else {
        ops::execute(rs, cmd)
    };
    // Any command but a listing or a check may have changed the ruleset (iptables commits
    // the table even when nothing in it changed).
    let changed =
        touched || !matches!(cmd.cmd, Cmd::List | Cmd::ListRules | Cmd::Check) || cmd.zero_too;
    let mut answer = match result {
        Ok(text) => {
            let _ = out.write_all(text.as_bytes());
            ToolOutput::default()
        }
        Err(e) => report("iptables", &e),
    };
    answer.changed = changed;
    answer
}

fn prepare_save(args: &[String]) -> Result<What, ToolOutput> {
    let mut counters = false;
    let mut only = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-c" | "--counters" => counters = true,
            "-t" | "--table" => {
                i += 1;
                let Some(name) = args.get(i) else {
                    return Err(ToolOutput::fail(
                        1,
                        "iptables-save: option requires an argument -- 't'\n".into(),
                    ));
                };
                match TableKind::from_name(name) {
                    Some(t) => only = Some(t),
                    None => {
                        return Err(ToolOutput::fail(1, "iptables-save v1.8.9 (legacy): Cannot initialize: Table does not exist (do you need to insmod?)\n".into()));
                    }
                }
            }
            "-M" | "--modprobe" => i += 1,
            other => {
                let first = if let Some(long) = other.strip_prefix("--") {
                    format!("iptables-save: unrecognized option '--{long}'\n")
                } else if let Some(short) = other.strip_prefix('-') {
                    let c = short.chars().next().unwrap_or('-');
                    format!("iptables-save: invalid option -- '{c}'\n")
                } else {
                    return Err(ToolOutput::fail(
                        1,
                        "Unknown arguments found on commandline\n".into(),
                    ));
                };
                return Err(ToolOutput::fail(
                    1,
                    format!("{first}Look at manual page `iptables-save.8' for more information.\n"),
                ));
            }
        }
        i += 1;
    }
    Ok(What::Save { counters, only })
}

/// The ctime(3)-style time iptables-save prints ("Wed Nov 25 21:44:15 2026"), in UTC.
fn ctime_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = save::civil_date(days);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd} {mon} {d:>2} {:02}:{:02}:{:02} {y}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn apply_save(
    counters: bool,
    only: Option<TableKind>,
    rs: &mut Ruleset,
    out: &mut dyn Write,
) -> ToolOutput {
    // `-t TABLE` loads that table's module: it exists from then on.
    let mut changed = false;
    if let Some(t) = only {
        if rs.table(t).is_none() {
            rs.table_mut(t);
            changed = true;
        }
    }
    // Written in pieces (a big ruleset's text is never held whole); a failed write ends it.
    let _ = rs
        .tables
        .iter()
        .filter(|t| only.is_none_or(|k| k == t.kind))
        .try_for_each(|t| {
            writeln!(
                out,
                "# Generated by iptables-save v1.8.9 on {}",
                ctime_now()
            )?;
            save::save_table_to(t, counters, out)?;
            writeln!(out, "# Completed on {}", ctime_now())
        });
    ToolOutput {
        changed,
        ..Default::default()
    }
}

fn prepare_restore(args: &[String]) -> Result<What, ToolOutput> {
    let mut opts = RestoreOpts::default();
    let mut file = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-c" | "--counters" => opts.counters = true,
            "-n" | "--noflush" => opts.noflush = true,
            "-t" | "--test" => opts.test = true,
            "-v" | "--verbose" => opts.verbose = true,
            "-w" | "--wait" | "-W" | "--wait-interval" => {
                if args.get(i + 1).is_some_and(|v| v.parse::<u64>().is_ok()) {
                    i += 1;
                }
            }
            "-T" | "--table" => {
                i += 1;
                match args.get(i) {
                    Some(t) => opts.only_table = Some(t.clone()),
                    None => {
                        return Err(ToolOutput::fail(
                            1,
                            "iptables-restore: option requires an argument -- 'T'\n".into(),
                        ));
                    }
                }
            }
            "-M" | "--modprobe" => i += 1,
            _ if a.starts_with('-') && a.len() > 1 => {
                let first = match a.strip_prefix("--") {
                    Some(long) => format!("iptables-restore: unrecognized option '--{long}'\n"),
                    None => format!(
                        "iptables-restore: invalid option -- '{}'\n",
                        a[1..].chars().next().unwrap_or('-')
                    ),
                };
                return Err(ToolOutput::fail(
                    1,
                    format!("{first}Try `iptables-restore -h' for more information.\n"),
                ));
            }
            _ => {
                if file.is_some() {
                    return Err(ToolOutput::fail(
                        1,
                        "Unknown arguments found on commandline\n".into(),
                    ));
                }
                file = Some(a.to_string());
            }
        }
        i += 1;
    }
    Ok(What::Restore { opts, file })
}

fn apply_restore(
    opts: &RestoreOpts,
    rs: &mut Ruleset,
    input: &str,
    out: &mut dyn Write,
) -> ToolOutput {
    let before = rs.table_names().len();
    let mut stdout = String::new();
    let mut blocks = InputBlocks::default();
    let result = restore::restore_noting_blocks(rs, input, opts, &mut stdout, &mut blocks);
    let _ = out.write_all(stdout.as_bytes());
    // Tables committed before a failure stay committed, and tables named by `*table` exist
    // from then on (even with --test), as with the kernel.
    let changed = !opts.test || rs.table_names().len() != before;
    let (code, stderr) = match result {
        Ok(()) => (0, String::new()),
        Err(e) => (e.exit_code, e.message),
    };
    ToolOutput {
        code,
        stdout: String::new(),
        stderr,
        changed,
        restored: Some(blocks),
    }
}

fn prepare_proc(args: &[String]) -> Result<What, ToolOutput> {
    let path = args
        .first()
        .map(|s| s.trim_start_matches("/proc/").to_string());
    match path.as_deref() {
        Some("net/ip_tables_names") => Ok(What::TableNames),
        // The connection tracking files are a daemon's (or the store's conntrack file's):
        // their callers answer them before coming here.
        Some(p) => Err(ToolOutput::fail(1, format!("nfrs proc: {p}: not provided (known: net/ip_tables_names, net/nf_conntrack, net/nf_conntrack_expect)\n"))),
        None => Err(ToolOutput::fail(
            2,
            "usage: nfrs proc net/ip_tables_names|net/nf_conntrack|net/nf_conntrack_expect\n"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn append_changes_listing_does_not() {
        let mut rs = Ruleset::default();
        let o = run(
            "iptables",
            &v(&["-A", "INPUT", "-s", "10.0.0.1", "-j", "DROP"]),
            "",
            &mut rs,
        );
        assert_eq!((o.code, o.changed), (0, true), "{}", o.stderr);
        let o = run("iptables", &v(&["-S", "INPUT"]), "", &mut rs);
        assert_eq!(o.code, 0);
        assert!(!o.changed);
        assert_eq!(
            o.stdout,
            "-P INPUT ACCEPT\n-A INPUT -s 10.0.0.1/32 -j DROP\n"
        );
        // Listing a table not used yet instantiates it.
        let o = run("iptables", &v(&["-t", "nat", "-S"]), "", &mut rs);
        assert!(o.changed);
        let o = run("proc", &v(&["net/ip_tables_names"]), "", &mut rs);
        assert_eq!(o.stdout, "nat\nfilter\n");
    }

    #[test]
    fn errors_need_no_ruleset_and_change_nothing() {
        let e = prepare("iptables", &v(&["-A"])).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(!e.changed);
        let e = prepare("iptables-save", &v(&["-x"])).unwrap_err();
        assert_eq!(
            e.stderr,
            "iptables-save: invalid option -- 'x'\nLook at manual page `iptables-save.8' for more information.\n"
        );
        let e = prepare("iptables", &v(&["--version"])).unwrap_err();
        assert_eq!(
            (e.code, e.stdout.as_str()),
            (0, "iptables v1.8.9 (legacy)\n")
        );
        assert_eq!(prepare("nope", &[]).unwrap_err().code, 2);
        let p = prepare("iptables-restore", &v(&["-n", "x.rules"])).unwrap();
        assert_eq!(p.input_file(), Some("x.rules"));
    }

    #[test]
    fn stored_restore_keeps_the_policy_of_a_builtin_chain_it_does_not_declare() {
        // Measured with iptables-legacy 1.8.9: after `-P FORWARD DROP`, restoring a filter
        // block that declares only INPUT leaves `:FORWARD DROP [0:0]`.
        let dir = std::env::temp_dir().join(format!("nfrs-tool-policy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = crate::store::Store::at(&dir);
        let mut rs = Ruleset::default();
        let o = run("iptables", &v(&["-P", "FORWARD", "DROP"]), "", &mut rs);
        assert_eq!(o.code, 0);
        let input = "*filter\n:INPUT ACCEPT [5:100]\n[1:2] -A INPUT -j ACCEPT\nCOMMIT\n";
        let o = run("iptables-restore", &v(&["-c"]), input, &mut rs);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let blocks = o.restored.unwrap();
        store.save_after_restore(&rs, input, &blocks).unwrap();
        let back = store.load().unwrap();
        let saved = |rs: &mut Ruleset| run("iptables-save", &v(&["-c"]), "", rs).stdout;
        let want = saved(&mut rs);
        assert!(want.contains("\n:FORWARD DROP [0:0]\n"), "{want}");
        let strip = |s: String| {
            s.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(saved(&mut back.clone())), strip(want));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn restore_then_save_and_test_mode() {
        let mut rs = Ruleset::default();
        let input = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n";
        let o = run("iptables-restore", &[], input, &mut rs);
        assert_eq!((o.code, o.changed), (0, true), "{}", o.stderr);
        assert!(o.restored.is_some());
        let o = run("iptables-save", &[], "", &mut rs);
        assert!(o.stdout.contains("\n:INPUT DROP [0:0]\n"), "{}", o.stdout);
        assert!(
            o.stdout.contains("\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n"),
            "{}",
            o.stdout
        );
        assert!(!o.changed);
        // --test on a known table changes nothing; a bad line fails with its number.
        let o = run("iptables-restore", &v(&["-t"]), input, &mut rs);
        assert!(!o.changed);
        let o = run(
            "iptables-restore",
            &[],
            "*filter\n-A NOPE -j DROP\nCOMMIT\n",
            &mut rs,
        );
        assert_ne!(o.code, 0);
        assert!(o.stderr.contains("line 2"), "{}", o.stderr);
        // -t TABLE of a table not used yet instantiates it.
        let o = run("iptables-save", &v(&["-t", "raw"]), "", &mut rs);
        assert!(o.changed && o.stdout.contains("*raw\n"));
    }
}
