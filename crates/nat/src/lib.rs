//! `nat`: NAT as Linux does it: tuple selection for SNAT/DNAT/MASQUERADE/REDIRECT/NETMAP and the
//! rewriting of packets (and quoted ICMP headers) for both directions of a connection.
