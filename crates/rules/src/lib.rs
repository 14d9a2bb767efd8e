//! `rules`: the iptables rule language. Owns the ruleset model (tables, chains, rules, counters),
//! the shared grammar behind the iptables command line and iptables-restore, validation as
//! iptables and the kernel do it, the iptables-save / -S / -L printers and the store.
//! Knows nothing of packets.

pub mod error;
pub mod ext;
pub mod hosts;
pub mod list;
pub mod model;
pub mod ops;
pub mod parse;
pub mod restore;
pub mod save;
pub mod services;
pub mod store;
pub mod store_text;
pub mod tool;

pub use error::{Errno, Error, ErrorKind, Result};
pub use model::*;
