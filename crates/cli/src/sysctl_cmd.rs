//! `nfrs sysctl [--store DIR] [-n] [-q] [-w] NAME[=VALUE]...`: the live settings of the
//! `nfrs run` daemon (conntrack's `net.netfilter.*` and the host's `net.ipv4.ip_forward`, ...),
//! printed as procps `sysctl` prints them; written values are kept in the store.

use nfrs_dataplane::proto::Request;

/// Entry point.
pub fn main(args: &[String]) -> i32 {
    crate::ctl::daemon_only("sysctl", args, |args| Request::Sysctl { args })
}
