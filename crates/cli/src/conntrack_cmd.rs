//! `nfrs conntrack [--store DIR] -L|-D|-F|-C [filters]`, `-L expect`: the connection table of
//! the `nfrs run` daemon on the store, printed as conntrack-tools 1.4.7 prints it; with no
//! daemon, the table the store keeps (left by `nfrs replay --store` or a stopped daemon), which
//! `-D`/`-F` then change. `-E [-e NEW,UPDATE,DESTROY] [-o extended]` streams the daemon's
//! events. `-S [expect]` prints the table's statistics as one `cpu=0` line (a stored table
//! has none kept: zeros).

use crate::ctl;
use nfrs_dataplane::cmds;
use nfrs_dataplane::proto::Request;
use nfrs_rules::store::Store;

/// Entry point.
pub fn main(args: &[String]) -> i32 {
    let (explicit, args) = ctl::take_store(args);
    let store = Store::locate(explicit.as_deref());
    if args.iter().any(|a| a == "-E" || a == "--event") {
        return events(&store, args);
    }
    if let Some(r) = ctl::try_daemon(&store.dir, Request::Conntrack { args: args.clone() }) {
        return ctl::print(&r);
    }
    let changes = args
        .iter()
        .any(|a| matches!(a.as_str(), "-D" | "--delete" | "-F" | "--flush"));
    let _lock = if changes {
        match store.lock(std::time::Duration::from_secs(10)) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("nfrs: {e}");
                return 4;
            }
        }
    } else {
        None
    };
    let (mut ct, saved) = match crate::storect::load(&store) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("nfrs: {e}");
            return 4;
        }
    };
    let r = cmds::conntrack_table(&mut ct, &args, 0, Some(&saved));
    if changes && r.code == 0 {
        if let Err(e) = crate::storect::save(&store, &ct, &saved) {
            eprintln!("nfrs: {e}");
            return 4;
        }
    }
    ctl::print(&r)
}

/// `conntrack -E`: the daemon's events until it stops or SIGINT/SIGTERM, then the summary line
/// conntrack-tools prints.
fn events(store: &Store, args: Vec<String>) -> i32 {
    use std::io::Write;
    let mut shown = 0u64;
    let mut refused = None;
    let mut first = true;
    let r = nfrs_dataplane::control::stream(&store.dir, &Request::Events { args }, &mut |m| {
        if std::mem::take(&mut first) && m.code != 0 {
            refused = Some(m.code);
        }
        if !m.stdout.is_empty() {
            shown += m.stdout.lines().count() as u64;
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(m.stdout.as_bytes());
            let _ = o.flush();
        }
        let _ = std::io::stderr().write_all(m.stderr.as_bytes());
    });
    match r {
        None => {
            eprintln!(
                "conntrack v1.4.7 (conntrack-tools): -E needs a running nfrs run daemon on {}",
                store.dir.display()
            );
            1
        }
        Some(Err(e)) => {
            eprintln!("nfrs: control socket: {e}");
            4
        }
        Some(Ok(())) => match refused {
            Some(code) => code,
            None => {
                eprintln!(
                    "conntrack v1.4.7 (conntrack-tools): {shown} flow events have been shown."
                );
                0
            }
        },
    }
}
