//! `engine` (nfrs-engine): the packet path. Routes packets through the hooks in Linux order with
//! each table at its kernel priority, evaluates rules (flat compiled tables), drives conntrack
//! and NAT, and produces what the host emits, delivers and logs. Time comes from the caller; the
//! engine never reads the wall clock.
//!
//! # Public API
//! - [`pkt::PktCtx`]: the packet as rules see it (bytes, `nfrs_wire::desc::PacketDesc`, hook,
//!   devices, mark, [`pkt::CtSnap`], clock).
//! - [`matches::eval_match`] / [`matches::compile_match`]: one file per match extension
//!   (`src/matches/<name>.rs`, contract in `src/matches/README.md`); [`matches::EvalState`]
//!   holds stateful matches' state on the scenario clock.
//! - [`targets::run_target`] / [`targets::compile_target`]: one file per target extension.

pub mod classify;
pub mod defrag;
pub mod engine;
pub mod helpers;
pub mod host;
pub mod logfmt;
pub mod matches;
pub mod nat;
pub mod patch;
pub mod pkt;
pub mod replay;
pub mod shard;
pub mod table;
pub mod targets;
