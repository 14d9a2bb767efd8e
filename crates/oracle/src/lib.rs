//! `oracle`: runs a scenario in the real Linux kernel (network namespaces, veth wires, raw
//! AF_PACKET injection and capture) and reports what it did in the canonical result text.
