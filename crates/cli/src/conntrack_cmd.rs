//! `nfrs conntrack [--store DIR] -L|-D|-F|-C [filters]`, `-L expect`: the connection table of
//! the `nfrs run` daemon on the store, printed as conntrack-tools 1.4.7 prints it; with no
//! daemon, the table the store keeps (left by `nfrs replay --store` or a stopped daemon), which
//! `-D`/`-F` then change.

use crate::ctl;
use nfrs_dataplane::cmds;
use nfrs_dataplane::proto::Request;
use nfrs_rules::store::Store;

/// Entry point.
pub fn main(args: &[String]) -> i32 {
    let (explicit, args) = ctl::take_store(args);
    let store = Store::locate(explicit.as_deref());
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
