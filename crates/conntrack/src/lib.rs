//! `conntrack`: connection tracking as Linux does it: tuples, the table, per-protocol state
//! machines (TCP with window tracking, UDP, ICMP, generic), timeouts on an injected clock, status
//! flags, and the /proc and conntrack-tools listings. Does not evaluate rules or rewrite packets.
