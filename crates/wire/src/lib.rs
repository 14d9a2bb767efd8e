//! `wire`: zero-copy views over the packet headers nfrs reads and writes (Ethernet, ARP, IPv4,
//! TCP, UDP, ICMP), checksums (full and RFC 1624 incremental), builders for packets the host emits,
//! and the packet line syntax of SCENARIOS.md. Allocates nothing on the packet path; may not depend
//! on any other nfrs crate.
