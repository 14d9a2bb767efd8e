//! `nfrs conntrack [--store DIR] -L|-D|-F|-C [filters]`: the live connection table of the
//! `nfrs run` daemon on the store, printed as conntrack-tools 1.4.7 prints it.

use nfrs_dataplane::proto::Request;

/// Entry point.
pub fn main(args: &[String]) -> i32 {
    crate::ctl::daemon_only("conntrack", args, |args| Request::Conntrack { args })
}
