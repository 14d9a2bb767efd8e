//! `scenario`: the scenario file of SCENARIOS.md (host, rules, packets), the host model shared by
//! replay and the live daemon, and the canonical result text with its comparison (masked randomness).
