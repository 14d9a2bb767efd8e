//! `bench` (nfrs-bench): `nfrs bench`, where nfrs' performance claims are measured. Owns the
//! workload generators ([`gen`]: kube-proxy-shaped rulesets, ClassBench-style ACLs), the
//! measurement harness ([`measure`]), the kernel anchor run in a throwaway network namespace
//! ([`kernel`]), the figures ([`figures`]: ruleset restore/save; [`flows`]: the connection
//! table; [`gateway`]: the packet path through nfrs-engine), the machine description
//! ([`machine`]), instruction counts under callgrind ([`instr`]) and the table / `--json`
//! output ([`report`]). Every figure is printed side by side with its anchor
//! (the kernel or the real tool) measured in the same run, or says why the anchor is n/a.
//! It owns no netfilter logic: it only drives the other crates' public APIs.

pub mod cli;
pub mod figures;
pub mod flows;
pub mod gateway;
pub mod gen;
pub mod instr;
pub mod kernel;
pub mod lab;
pub mod machine;
pub mod measure;
pub mod report;
pub mod shard;

pub use cli::{main, run as run_cli};
pub use figures::{Config, GROUPS};
pub use report::{Figure, Report};
