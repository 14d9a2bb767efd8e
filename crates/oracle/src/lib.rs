//! `nfrs-oracle` owns `kernel-run`: a scenario run in the real Linux kernel, in throwaway network
//! namespaces (the device under test plus one wire namespace per interface, veth between them),
//! with frames injected and captured by AF_PACKET, LOG lines read from /dev/kmsg, local delivery
//! observed through an NFLOG group at the end of INPUT, and the final conntrack table and
//! `iptables-save -c` read with the real tools. It reports in the canonical result text of
//! `nfrs-scenario`, masking the kernel's random choices with the helpers both producers share.
//!
//! It needs root. It never sleeps to wait for the kernel (see [`run::run`] for the barrier).
//!
//! # What each result line means, as the oracle observes it
//! (what replay has to reproduce)
//! - `out DEV ...`: a frame received on the wire end of interface DEV after the packet was
//!   injected and before the barrier's answer; frames of the barrier itself (MACs
//!   `02:fe:00:00:*`) are never shown. Order: interfaces in file order, then arrival order.
//! - `local ...`: the IP packet as it left the INPUT hook (after filter INPUT and nat INPUT, at
//!   priority 1000), i.e. delivered to the host, reassembled and de-NATed; whether a socket then
//!   takes it is not shown.
//! - `log ...`: kernel log records of facility kern holding `IN=`/`OUT=` (LOG, TRACE, conntrack's
//!   `log_invalid`) or starting with `nf_conntrack`/`nf_ct_`, in the order printed.
//! - `(queued for reassembly)`: nothing left or was delivered and the namespace's `ReasmReqds`
//!   grew without `ReasmOKs`/`ReasmFails` growing; else `(dropped)` when nothing left or was
//!   delivered (log lines may precede it).
//! - `late out|local ...`: frames or deliveries that arrived between the previous barrier and
//!   this packet's injection (timers). Late log lines are not collected (the kernel log is shared
//!   with other runs outside the per-packet lock).
//! - Masks: the IP id of a frame the host generated (not the input's protocol + IP id [+ ICMP
//!   type]) prints `*` unless it is 0; its SYN-ACK's `seq` and timestamp value print `*`; a source
//!   NAT port or ICMP id that differs from the original prints `randN` after a range check; the
//!   namespace inode of "table full" messages prints `*`.
//! - Host setup: every address of a connected subnet of /22 to /30 (and every address the
//!   scenario mentions elsewhere) has a permanent neighbour entry, so the host never ARPs; veth
//!   offloads are off (also on `lo`); `net.bridge.bridge-nf-call-iptables` keeps the kernel's
//!   default (1) unless the scenario sets it.

pub mod cli;
pub mod lab;
pub mod nflog;
pub mod run;
pub mod signals;
pub mod sys;

pub use run::{run, Backend, Options};
