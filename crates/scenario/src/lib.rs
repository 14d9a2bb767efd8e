//! `nfrs-scenario` owns the scenario file of SCENARIOS.md (description, rules, packets or a
//! capture, the host), the host model shared by replay and the live daemon ([`host::Host`]),
//! the canonical result text with its parser and comparison ([`result`]), and the masking of the
//! kernel's random choices that both producers of a result share ([`mask`]).
//!
//! It knows nothing of how packets are built or judged: packet lines are parsed by `nfrs-wire`.

pub mod capture;
pub mod corpus;
pub mod file;
pub mod host;
pub mod mask;
pub mod result;

pub use file::{load, parse, Input, PacketLine, Scenario, ScenarioError};
pub use host::{Cidr, Host, Interface, Listen, ListenProto, Neighbour, Route};
pub use result::{compare, compare_text, Event, Mismatch, PacketResult, RunResult};
