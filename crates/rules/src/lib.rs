//! `rules`: the iptables rule language. Owns the ruleset model (tables, chains, rules, counters),
//! the shared grammar behind the iptables command line and iptables-restore, validation as
//! iptables and the kernel do it, and the iptables-save / -S / -L printers. Knows nothing of packets.
