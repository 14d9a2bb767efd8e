//! NAT requests from the nat table's targets. The binding itself (tuple selection, rewriting)
//! is `nfrs-nat`'s; the engine decides it on a connection's first packet at each NAT hook and
//! applies it to every later packet both ways.

pub use nfrs_nat::{flags as range_flags, NatRange};

/// Which NAT target asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// SNAT: source from the range.
    Snat,
    /// DNAT: destination from the range.
    Dnat,
    /// MASQUERADE: source = the output device's address; the range gives ports and flags.
    Masquerade,
    /// REDIRECT: destination = the input device's primary address (127.0.0.1 in OUTPUT).
    Redirect,
}

/// A binding a nat-table target asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatRequest {
    /// The target.
    pub kind: NatKind,
    /// Its range.
    pub range: NatRange,
}
