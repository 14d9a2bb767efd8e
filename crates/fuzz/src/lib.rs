//! nfrs-fuzz owns fuzzing on stable Rust: a small coverage-less, structure-aware mutational
//! fuzzer (byte flips, splices, dictionary tokens, truncations), its targets (the restore
//! parser, the iptables argv grammar, the scenario parser, the packet path of a NAT gateway,
//! the packet line syntax, the control-socket protocol of `nfrs run`), the corpus kept in the repo and the crash files it writes.
//! It holds no netfilter logic: a target only drives other crates' public APIs.

pub mod control;
pub mod driver;
pub mod mutate;
pub mod seeds;
pub mod targets;

pub use driver::{run, Finding, FindingKind, Report, RunOpts};
pub use targets::Target;

/// FNV-1a, 64 bits: names crash files and outcome signatures (stable across runs).
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// This crate's directory (corpus/ and crashes/ live here).
pub fn crate_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
