//! `nfrs-oracle` owns `kernel-run`: a scenario run in the real Linux kernel, in throwaway network
//! namespaces (the device under test plus one wire namespace per interface, veth between them),
//! with frames injected and captured by AF_PACKET, LOG lines read from /dev/kmsg, local delivery
//! observed through an NFLOG group at the end of INPUT, and the final conntrack table and
//! `iptables-save -c` read with the real tools. It reports in the canonical result text of
//! `nfrs-scenario`, masking the kernel's random choices with the helpers both producers share.
//!
//! It needs root. It never sleeps to wait for the kernel (see [`run`] for the barrier).

pub mod cli;
pub mod lab;
pub mod nflog;
pub mod run;
pub mod signals;
pub mod sys;

pub use run::{run, Backend, Options};
