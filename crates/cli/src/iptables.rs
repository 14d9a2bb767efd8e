//! The iptables front ends: `iptables`, `iptables-save`, `iptables-restore`, `proc`. Each acts
//! on the store (`--store DIR`, `$NFRS_STORE`, or the default location; see nfrs_rules::store)
//! and prints exactly what iptables 1.8.9 (legacy) prints, messages and exit codes included
//! (the tools themselves: nfrs_rules::tool; here the store around them).

use nfrs_rules::restore;
use nfrs_rules::store::Store;
use nfrs_rules::tool::{self, ToolOutput};
use nfrs_rules::Ruleset;
use std::io::{Read, Write};

use crate::ctl::take_store;

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

/// Prints what a tool answered before running (a usage error, `--version`).
fn print_answer(out: &ToolOutput) -> i32 {
    let _ = std::io::stdout().lock().write_all(out.stdout.as_bytes());
    eprint!("{}", out.stderr);
    out.code
}

/// Runs store tool `tool` on the store: arguments read first (an error needs no store), the
/// restore input read (before the store is locked), then lock, load, the tool (its output
/// streamed to stdout), and the store written when the ruleset changed.
fn tool_on_store(tool: &str, args: &[String]) -> i32 {
    let (store_dir, args) = take_store(args);
    let mut p = match tool::prepare(tool, &args) {
        Ok(p) => p,
        Err(out) => return print_answer(&out),
    };
    eprint!("{}", std::mem::take(&mut p.warnings));
    if tool == "iptables-save" {
        // Copied from the store file where it holds iptables-save's text (no parsing).
        let store = Store::locate(store_dir.as_deref());
        let _lock = match lock(&store) {
            Ok(l) => l,
            Err(code) => return code,
        };
        let mut stdout = std::io::stdout().lock();
        tool::widen_output_pipe(std::os::fd::AsFd::as_fd(&stdout));
        if let Some(out) = p.save_from_store(&store, &mut stdout) {
            let _ = stdout.flush();
            eprint!("{}", out.stderr);
            return out.code;
        }
    }
    let restoring = tool == "iptables-restore";
    let input: restore::InputText = match (restoring, p.input_file()) {
        (false, _) => String::new().into(),
        // A big file goes into huge-page memory (fewer page faults).
        (true, Some(f)) => match restore::read_input_file(std::path::Path::new(f)) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("Can't open {f}: {e}");
                return 1;
            }
        },
        (true, None) => {
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
    // A restore that replaces the tables it commits reads only their chains (completed
    // below for tables it leaves as they were).
    let replaces = p.restore_replaces_tables();
    let loaded = if replaces {
        store.load_for_restore().map_err(|e| {
            eprintln!("nfrs: {e}");
            4
        })
    } else {
        load(&store).map(|rs| (rs, Vec::new()))
    };
    let (mut rs, heads) = match loaded {
        Ok(x) => x,
        Err(code) => return code,
    };
    // A restore's store file is begun first: the rule lines printed beside the parsing go
    // into it as they are printed (its temporary file is removed on any way out but the
    // rename below).
    let begun = if restoring {
        match store.begin_write() {
            Ok(w) => {
                p.print_store_to(w.sink());
                Some(w)
            }
            Err(e) => {
                eprintln!("nfrs: {e}");
                return 4;
            }
        }
    } else {
        None
    };
    let out = {
        let mut stdout = std::io::stdout().lock();
        p.apply(&mut rs, &input, &mut stdout)
    };
    eprint!("{}", out.stderr);
    let mut code = out.code;
    let committed = out
        .restored
        .as_ref()
        .map_or(&[][..], |b| b.committed_tables());
    if let Err(e) = store.complete_after_restore(&mut rs, &heads, committed) {
        // Nothing is written: the store keeps what it had.
        eprintln!("nfrs: {e}");
        return 4;
    }
    // A restore always writes: tables committed before a failure stay committed, and tables
    // named by `*table` exist from then on (even with --test), as with the kernel. Tables
    // restored from plain blocks of the input are stored as the input has them.
    let written = if let Some(w) = begun {
        let blocks = out.restored.unwrap_or_default();
        w.finish_after_restore(&rs, &blocks)
    } else if out.changed {
        store.save(&rs)
    } else {
        Ok(())
    };
    if let Err(e) = written {
        eprintln!("nfrs: {e}");
        code = 4;
    }
    // The process ends here: skip freeing a possibly huge ruleset piece by piece.
    std::mem::forget(rs);
    code
}

/// `iptables ARGS`.
pub fn iptables_main(args: &[String]) -> i32 {
    tool_on_store("iptables", args)
}

/// `iptables-save [-c] [-t table]`.
pub fn save_main(args: &[String]) -> i32 {
    tool_on_store("iptables-save", args)
}

/// `iptables-restore [-c] [-n] [-t] [-T table] [FILE]`.
pub fn restore_main(args: &[String]) -> i32 {
    tool_on_store("iptables-restore", args)
}

/// Input bytes as text, invalid UTF-8 replaced (U+FFFD); valid input (the usual case) is
/// taken as it is, without a copy.
fn into_text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
            let mut rs = match load(&store) {
                Ok(rs) => rs,
                Err(code) => return code,
            };
            print_answer(&tool::run("proc", &args, "", &mut rs))
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
