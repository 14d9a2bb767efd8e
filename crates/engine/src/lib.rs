//! `engine`: the packet path. Routes packets through the hooks in Linux order with each table at
//! its kernel priority, evaluates rules, drives conntrack and NAT, and produces what the host emits,
//! delivers and logs. Time comes from the caller; the engine never reads the wall clock.
