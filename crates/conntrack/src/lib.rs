//! `conntrack` (nfrs-conntrack): connection tracking as Linux 6.x does it — tuples, the
//! connection table, the per-protocol trackers (TCP with window tracking, UDP, UDP-Lite, ICMP
//! with RELATED errors, SCTP, GRE, generic), expectations for helpers, timeouts on an injected
//! clock, status flags, counters, `nf_conntrack_max` with early drop, and the /proc and
//! conntrack-tools listings. It does not evaluate rules and
//! does not rewrite packets (that is `nfrs-nat`). Time is always passed in by the caller as
//! nanoseconds ([`Nanos`]); nothing here reads a clock.
//!
//! # Public API
//! - [`Tuple`] (`reply()`), [`Conn`] (both tuples, [`status`] bits, mark, zone, timeout,
//!   [`ProtoState`]), [`Dir`].
//! - [`ConnTable::new`]`(CtConfig)`, [`ConnTable::track`]`(&Packet, zone, Hook, now) -> Tracked`
//!   (the kernel's `nf_conntrack_in`: ctinfo, connection, unconfirmed flag, drop, log reasons),
//!   then [`ConnTable::confirm`] (packet survived to the end of POSTROUTING/INPUT) or
//!   [`ConnTable::discard`] (packet dropped).
//! - Batch hints (reads only, no state change): [`ConnTable::warm_bucket`],
//!   [`ConnTable::warm_entry`], [`ConnTable::warm_chain`] prefetch a packet's hash bucket,
//!   first entry and next chained entry ahead of its `track` (used by the engine's
//!   `receive_batch`).
//! - [`ConnTable::lookup`], [`ConnTable::get`]/[`ConnTable::get_mut`], [`ConnTable::kill`],
//!   [`ConnTable::expire`]`(now, callback)`, [`ConnTable::next_deadline`].
//! - For NAT: [`ConnTable::tuple_taken`], [`ConnTable::set_reply`],
//!   [`ConnTable::nat_bysource_add`], [`ConnTable::nat_bysource_find`].
//! - [`ConnTable::counters`] with `nf_conntrack_acct=1`; [`ConnTable::track_len`] passes the IP
//!   length for the byte counters.
//! - [`CtConfig`] with `set(name, value)` / `get(name)` under the Linux sysctl names;
//!   [`ConnTable::set_sysctl`].
//! - [`Reason`] / [`LogPrefix`]: the kernel's invalid-packet messages (`nf_ct_proto_6: ...`);
//!   [`TableFull`]: the rate-limited table-full message.
//! - [`listing::Style`], [`ConnTable::listing`], [`listing::write_line`]: /proc and
//!   `conntrack -L [-o extended]` lines, with or without the timeout column.
//! - Expectations for helpers: [`ConnTable::expect_add`]`(Expectation, secs, now)`; a new
//!   connection matching one is RELATED (`Tracked::expected`, [`Conn::master`]);
//!   [`ConnTable::expect_listing`] (`conntrack -L expect`, `/proc/net/nf_conntrack_expect`);
//!   [`ConnTable::set_helper`] / [`ConnTable::helper`] (`helper=` in `conntrack -L`).
//!   Helpers call [`ConnTable::expect_add_limited`], which enforces the helper's per-master
//!   limit and `nf_conntrack_expect_max` ([`expect::ExpectTableFull`]: the packet is dropped,
//!   the warning rate limited).
//! - [`ConnTable::stats`] → [`CtStats`]: the `conntrack -S` counters (`found`, `invalid`,
//!   `insert`, `insert_failed`, `drop`, `early_drop`, `error`, `expect_*`), with the
//!   conntrack-tools line printers.

pub mod config;
pub mod conn;
pub mod expect;
pub mod listing;
pub mod ratelimit;
pub mod reason;
pub mod sctp;
pub mod stats;
pub mod table;
pub mod tcp;
pub mod tuple;

#[cfg(test)]
mod testutil;

pub use config::{ConfigError, CtConfig, Nanos, SEC};
pub use conn::{status, Conn, Dir, ProtoState};
pub use expect::{helper_id, ExpectFormat, ExpectTableFull, Expectation, Expected, HELPER_NAMES};
pub use listing::{Format, Style};
pub use reason::{LogPrefix, Reason};
pub use stats::CtStats;
pub use table::{ConfirmError, ConnId, ConnTable, CtInfo, Hook, Packet, TableFull, Tracked};
pub use tcp::{TcpState, TcpTrack};
pub use tuple::{Addr, Tuple};
