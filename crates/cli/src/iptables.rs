//! The iptables front ends: `iptables`, `iptables-save`, `iptables-restore`, `proc`. Each acts
//! on the store (`--store DIR`, `$NFRS_STORE`, or the default location; see nfrs_rules::store)
//! and prints exactly what iptables 1.8.9 (legacy) prints, messages and exit codes included.

use nfrs_rules::error::{Errno, ErrorKind};
use nfrs_rules::list::{self, ListFormat, Resolver};
use nfrs_rules::ops;
use nfrs_rules::parse::{self, Cmd};
use nfrs_rules::restore::{self, RestoreOpts};
use nfrs_rules::save;
use nfrs_rules::store::Store;
use nfrs_rules::{Error, Ruleset, TableKind};
use std::io::{Read, Write};

/// Removes `--store DIR` / `--store=DIR` (an nfrs option) from `args`.
fn take_store(args: &[String]) -> (Option<String>, Vec<String>) {
    let mut store = None;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--store" && i + 1 < args.len() {
            store = Some(args[i + 1].clone());
            i += 2;
            continue;
        }
        if let Some(v) = args[i].strip_prefix("--store=") {
            store = Some(v.to_string());
            i += 1;
            continue;
        }
        rest.push(args[i].clone());
        i += 1;
    }
    (store, rest)
}

/// Prints an error the way iptables does and returns its exit code.
fn report(prog: &str, e: &Error) -> i32 {
    let text = e.render(prog);
    eprint!("{text}");
    if e.msg.starts_with("can't initialize iptables table") {
        return 3;
    }
    e.exit_code()
}

/// How long a command waits for another one holding the store.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn lock(store: &Store) -> Result<nfrs_rules::store::StoreLock, i32> {
    let lock = store.lock(LOCK_WAIT).map_err(|e| {
        eprintln!("nfrs: {e}");
        4
    })?;
    // No daemon answered before the lock was taken; one that started meanwhile owns the
    // store now (it loaded it while holding this lock), so a change made here would be lost.
    if crate::ctl::daemon_running(&store.dir) {
        eprintln!("nfrs: nfrs run started on this store while the command waited; run it again");
        return Err(4);
    }
    Ok(lock)
}

fn load(store: &Store) -> Result<Ruleset, i32> {
    store.load().map_err(|e| {
        eprintln!("nfrs: {e}");
        4
    })
}

fn persist(store: &Store, rs: &Ruleset) -> i32 {
    match store.save(rs) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nfrs: {e}");
            4
        }
    }
}

/// `iptables ARGS`.
pub fn iptables_main(args: &[String]) -> i32 {
    let (store_dir, args) = take_store(args);
    let (parsed, warnings) = parse::parse_command_with(&args, false, None, false);
    for w in &warnings {
        eprintln!("{w}");
    }
    let cmd = match parsed {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::Other && e.msg == parse::VERSION => {
            println!("{}", parse::VERSION);
            return 0;
        }
        Err(e) => return report("iptables", &e),
    };
    let store = Store::locate(store_dir.as_deref());
    let _lock = match lock(&store) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut rs = match load(&store) {
        Ok(rs) => rs,
        Err(code) => return code,
    };
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
        ops::execute(&mut rs, &cmd)
    };
    let changed =
        touched || !matches!(cmd.cmd, Cmd::List | Cmd::ListRules | Cmd::Check) || cmd.zero_too;
    let code = match result {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            0
        }
        Err(e) => report("iptables", &e),
    };
    if changed {
        let c = persist(&store, &rs);
        if c != 0 && code == 0 {
            return c;
        }
    }
    code
}

/// The ctime(3)-style time iptables-save prints ("Wed Nov 25 21:44:15 2026"), in UTC.
fn ctime_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = nfrs_rules::save::civil_date(days);
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

/// `iptables-save [-c] [-t table]`.
pub fn save_main(args: &[String]) -> i32 {
    let (store_dir, args) = take_store(args);
    let mut counters = false;
    let mut only = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-c" | "--counters" => counters = true,
            "-t" | "--table" => {
                i += 1;
                let Some(name) = args.get(i) else {
                    eprintln!("iptables-save: option requires an argument -- 't'");
                    return 1;
                };
                match TableKind::from_name(name) {
                    Some(t) => only = Some(t),
                    None => {
                        eprintln!("iptables-save v1.8.9 (legacy): Cannot initialize: Table does not exist (do you need to insmod?)");
                        return 1;
                    }
                }
            }
            "-M" | "--modprobe" => i += 1,
            other => {
                if let Some(long) = other.strip_prefix("--") {
                    eprintln!("iptables-save: unrecognized option '--{long}'");
                } else if let Some(short) = other.strip_prefix('-') {
                    let c = short.chars().next().unwrap_or('-');
                    eprintln!("iptables-save: invalid option -- '{c}'");
                } else {
                    eprintln!("Unknown arguments found on commandline");
                    return 1;
                }
                eprintln!("Look at manual page `iptables-save.8' for more information.");
                return 1;
            }
        }
        i += 1;
    }
    let store = Store::locate(store_dir.as_deref());
    let _lock = match lock(&store) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut rs = match load(&store) {
        Ok(rs) => rs,
        Err(code) => return code,
    };
    if let Some(t) = only {
        if rs.table(t).is_none() {
            rs.table_mut(t);
            let c = persist(&store, &rs);
            if c != 0 {
                return c;
            }
        }
    }
    // Streamed in pieces (a big ruleset's text is never held whole); a closed stdout ends it.
    let mut out = std::io::stdout().lock();
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
            save::save_table_to(t, counters, &mut out)?;
            writeln!(out, "# Completed on {}", ctime_now())
        });
    // The process ends here: skip freeing a possibly huge ruleset piece by piece.
    std::mem::forget(rs);
    0
}

/// Input bytes as text, invalid UTF-8 replaced (U+FFFD); valid input (the usual case) is
/// taken as it is, without a copy.
fn into_text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `iptables-restore [-c] [-n] [-t] [-T table] [FILE]`.
pub fn restore_main(args: &[String]) -> i32 {
    let (store_dir, args) = take_store(args);
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
                        eprintln!("iptables-restore: option requires an argument -- 'T'");
                        return 1;
                    }
                }
            }
            "-M" | "--modprobe" => i += 1,
            _ if a.starts_with('-') && a.len() > 1 => {
                match a.strip_prefix("--") {
                    Some(long) => eprintln!("iptables-restore: unrecognized option '--{long}'"),
                    None => eprintln!(
                        "iptables-restore: invalid option -- '{}'",
                        a[1..].chars().next().unwrap_or('-')
                    ),
                }
                eprintln!("Try `iptables-restore -h' for more information.");
                return 1;
            }
            _ => {
                if file.is_some() {
                    eprintln!("Unknown arguments found on commandline");
                    return 1;
                }
                file = Some(a.to_string());
            }
        }
        i += 1;
    }
    let input: restore::InputText = match &file {
        // A big file goes into huge-page memory (fewer page faults).
        Some(f) => match restore::read_input_file(std::path::Path::new(f)) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("Can't open {f}: {e}");
                return 1;
            }
        },
        None => {
            let mut b = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut b) {
                eprintln!("iptables-restore: {e}");
                return 1;
            }
            into_text(b).into()
        }
    };
    let store = Store::locate(store_dir.as_deref());
    let _lock = match lock(&store) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut rs = match load(&store) {
        Ok(rs) => rs,
        Err(code) => return code,
    };
    let mut stdout = String::new();
    let mut blocks = restore::InputBlocks::default();
    let result = restore::restore_noting_blocks(&mut rs, &input, &opts, &mut stdout, &mut blocks);
    let _ = std::io::stdout().lock().write_all(stdout.as_bytes());
    // Tables committed before a failure stay committed, and tables named by `*table` exist
    // from then on (even with --test), as with the kernel. Tables restored from plain
    // blocks of the input are stored as the input has them (no formatting).
    if let Err(e) = store.save_after_restore(&rs, &input, &blocks) {
        eprintln!("nfrs: {e}");
        return 4;
    }
    // The process ends here: skip freeing a possibly huge ruleset piece by piece.
    std::mem::forget(rs);
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprint!("{}", e.message);
            e.exit_code
        }
    }
}

/// `proc net/ip_tables_names`.
pub fn proc_main(args: &[String]) -> i32 {
    let (store_dir, args) = take_store(args);
    let path = args
        .first()
        .map(|s| s.trim_start_matches("/proc/").to_string());
    match path.as_deref() {
        Some("net/ip_tables_names") => {
            let store = Store::locate(store_dir.as_deref());
            let rs = match load(&store) {
                Ok(rs) => rs,
                Err(code) => return code,
            };
            let mut out = String::new();
            for n in rs.table_names() {
                out.push_str(n);
                out.push('\n');
            }
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            0
        }
        Some(f @ ("net/nf_conntrack" | "net/nf_conntrack_expect")) => {
            // No daemon: the table the store keeps.
            let store = Store::locate(store_dir.as_deref());
            let (ct, saved) = match crate::storect::load(&store) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("nfrs: {e}");
                    return 4;
                }
            };
            let text = if f.ends_with("expect") {
                nfrs_dataplane::cmds::proc_expect(&ct, 0)
            } else {
                nfrs_dataplane::cmds::proc_conntrack(&ct, 0, Some(&saved))
            };
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            0
        }
        Some(p) => {
            eprintln!("nfrs proc: {p}: not provided (known: net/ip_tables_names, net/nf_conntrack, net/nf_conntrack_expect)");
            1
        }
        None => {
            eprintln!(
                "usage: nfrs proc net/ip_tables_names|net/nf_conntrack|net/nf_conntrack_expect"
            );
            2
        }
    }
}
