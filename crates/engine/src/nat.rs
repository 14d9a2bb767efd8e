//! NAT requests from the nat table's targets and the engine's side of NAT: the binding is
//! decided on a connection's first packet and applied to every later packet both ways.

/// Range flags (`NF_NAT_RANGE_*`).
pub mod range_flags {
    /// Addresses are given.
    pub const MAP_IPS: u32 = 1;
    /// Ports are given.
    pub const PROTO_SPECIFIED: u32 = 2;
    /// `--random`.
    pub const PROTO_RANDOM: u32 = 4;
    /// `--persistent`.
    pub const PERSISTENT: u32 = 8;
    /// `--random-fully`.
    pub const PROTO_RANDOM_FULLY: u32 = 16;
}

/// A NAT range (`struct nf_nat_range2`), addresses host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NatRange {
    /// `range_flags` bits.
    pub flags: u32,
    /// Lowest address.
    pub min_addr: u32,
    /// Highest address.
    pub max_addr: u32,
    /// Lowest port (or ICMP id).
    pub min_port: u16,
    /// Highest port.
    pub max_port: u16,
}

/// Which NAT target asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// SNAT: source from the range.
    Snat,
    /// DNAT: destination from the range.
    Dnat,
    /// MASQUERADE: source = the output device's address; range gives ports only.
    Masquerade,
    /// REDIRECT: destination = the input device's first address (127.0.0.1 in OUTPUT).
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
