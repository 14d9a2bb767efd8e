//! `nat` (nfrs-nat): NAT as Linux 6.x does it — tuple selection for SNAT, DNAT, MASQUERADE,
//! REDIRECT and NETMAP (address by the kernel's jhash of the flow, source port kept when
//! free, clashes resolved inside the range from an injectable random source) recorded in the
//! connection's reply tuple, and the rewriting of packets both ways, ICMP errors included with
//! the header they quote. Decisions need an unconfirmed connection from `nfrs-conntrack`;
//! INVALID and untracked packets have no connection and are never NATed.
//!
//! # Public API
//! - [`NatRange`] (+ [`flags`]), [`Manip`], [`RandomSource`] (and [`XorShift`]).
//! - [`setup_info`]`(table, id, &range, manip, rng, now) -> NatDecision` (`changed`, `random`):
//!   the kernel's `nf_nat_setup_info`; [`null_binding`] when no rule decided a manip;
//!   [`initialized`] to know whether a manip is decided.
//! - [`masquerade_range`], [`redirect_range`], [`netmap_range`]: the per-target ranges.
//! - [`pick_addr`]: the address the kernel's hash picks from a range.
//! - [`follow_master`]: NAT for a connection a helper expected (`Tracked::expected`).
//! - [`nat_packet`]`(bytes, conn, dir, manip)`: rewrite a packet at a NAT hook;
//!   [`translate_icmp_error`] for RELATED ICMP errors (quoted header too).
//! - [`hook::action`] / [`hook::finish`]: the kernel's order of work at a NAT hook (skip,
//!   ICMP error, run the nat table then null-bind, or apply).

pub mod hook;
pub mod jhash;
pub mod rewrite;
pub mod select;

pub use rewrite::{nat_packet, translate_icmp_error, NatDrop};
pub use select::{
    flags, follow_master, initialized, masquerade_range, netmap_range, null_binding, pick_addr,
    redirect_range, setup_info, Manip, NatDecision, NatRange, RandomSource, XorShift,
};
