//! `dataplane`: live packet I/O for `nfrs run` (AF_PACKET, AF_XDP). Not yet built.
