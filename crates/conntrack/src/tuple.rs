//! Tuples: the key a connection is found by, one per direction.

use core::fmt;

/// IP protocol numbers the trackers know by name.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// GRE (keys as the layer-4 part).
    pub const GRE: u8 = 47;
    /// UDP-Lite.
    pub const UDPLITE: u8 = 136;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// One direction of a connection: addresses (host order), protocol and the layer-4 part.
///
/// For TCP and UDP `src_l4`/`dst_l4` are the ports. For ICMP `src_l4` is the echo identifier and
/// `dst_l4` packs `type << 8 | code`, as the kernel keeps type and code on the destination side.
/// Other protocols keep both at zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Tuple {
    /// Source address, host byte order.
    pub src: u32,
    /// Destination address, host byte order.
    pub dst: u32,
    /// Source port, or ICMP identifier.
    pub src_l4: u16,
    /// Destination port, or ICMP `type << 8 | code`.
    pub dst_l4: u16,
    /// IP protocol number.
    pub proto: u8,
}

/// Kernel rule (nf_conntrack_proto_icmp.c, invmap): only query/answer ICMP types have a reverse.
pub fn icmp_reverse_type(ty: u8) -> Option<u8> {
    match ty {
        8 => Some(0),
        0 => Some(8),
        13 => Some(14),
        14 => Some(13),
        15 => Some(16),
        16 => Some(15),
        17 => Some(18),
        18 => Some(17),
        _ => None,
    }
}

impl Tuple {
    /// A TCP/UDP (or other port-carrying protocol) tuple.
    pub const fn ports(proto: u8, src: u32, sport: u16, dst: u32, dport: u16) -> Tuple {
        Tuple {
            src,
            dst,
            src_l4: sport,
            dst_l4: dport,
            proto,
        }
    }

    /// An ICMP tuple (query/answer types).
    pub const fn icmp(src: u32, dst: u32, ty: u8, code: u8, id: u16) -> Tuple {
        Tuple {
            src,
            dst,
            src_l4: id,
            dst_l4: (ty as u16) << 8 | code as u16,
            proto: proto::ICMP,
        }
    }

    /// A tuple for a protocol without ports (generic tracker).
    pub const fn generic(proto: u8, src: u32, dst: u32) -> Tuple {
        Tuple {
            src,
            dst,
            src_l4: 0,
            dst_l4: 0,
            proto,
        }
    }

    /// ICMP type (only meaningful when `proto == 1`).
    pub fn icmp_type(&self) -> u8 {
        (self.dst_l4 >> 8) as u8
    }

    /// ICMP code (only meaningful when `proto == 1`).
    pub fn icmp_code(&self) -> u8 {
        self.dst_l4 as u8
    }

    /// Whether the protocol carries ports in the tuple (and so NAT can change them).
    pub fn has_ports(&self) -> bool {
        // GRE keys are not ports.
        matches!(
            self.proto,
            proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP
        )
    }

    /// The tuple of the opposite direction; `None` for ICMP types that have no answer type
    /// (the kernel then does not track the packet at all).
    pub fn reply(&self) -> Option<Tuple> {
        if self.proto == proto::ICMP {
            let rt = icmp_reverse_type(self.icmp_type())?;
            return Some(Tuple::icmp(
                self.dst,
                self.src,
                rt,
                self.icmp_code(),
                self.src_l4,
            ));
        }
        Some(Tuple {
            src: self.dst,
            dst: self.src,
            src_l4: self.dst_l4,
            dst_l4: self.src_l4,
            proto: self.proto,
        })
    }
}

/// Writes an address in dotted quad form.
pub(crate) fn fmt_addr(f: &mut dyn fmt::Write, a: u32) -> fmt::Result {
    write!(
        f,
        "{}.{}.{}.{}",
        a >> 24,
        (a >> 16) & 0xff,
        (a >> 8) & 0xff,
        a & 0xff
    )
}

/// Displays an address given in host byte order.
pub struct Addr(pub u32);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_addr(f, self.0)
    }
}

impl fmt::Display for Tuple {
    /// The listing form: `src=A dst=B sport=P dport=Q` (no trailing space).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "src={} dst={}", Addr(self.src), Addr(self.dst))?;
        if self.proto == proto::ICMP {
            write!(
                f,
                " type={} code={} id={}",
                self.icmp_type(),
                self.icmp_code(),
                self.src_l4
            )
        } else if self.proto == proto::GRE {
            write!(f, " srckey={:#x} dstkey={:#x}", self.src_l4, self.dst_l4)
        } else if self.has_ports() {
            write!(f, " sport={} dport={}", self.src_l4, self.dst_l4)
        } else {
            Ok(())
        }
    }
}

/// Parses `a.b.c.d` into a host-order address.
pub fn parse_addr(s: &str) -> Option<u32> {
    s.parse::<core::net::Ipv4Addr>().ok().map(u32::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_swaps_ports_and_addresses() {
        let t = Tuple::ports(6, 0x0a000002, 40000, 0xcb007109, 443);
        let r = t.reply().unwrap();
        assert_eq!(r, Tuple::ports(6, 0xcb007109, 443, 0x0a000002, 40000));
        assert_eq!(r.reply().unwrap(), t);
    }

    #[test]
    fn icmp_reply_maps_echo_types_and_keeps_id() {
        let t = Tuple::icmp(1, 2, 8, 0, 77);
        let r = t.reply().unwrap();
        assert_eq!(
            (r.icmp_type(), r.icmp_code(), r.src_l4, r.src, r.dst),
            (0, 0, 77, 2, 1)
        );
        assert!(Tuple::icmp(1, 2, 3, 3, 0).reply().is_none());
        assert!(Tuple::icmp(1, 2, 9, 0, 0).reply().is_none());
    }

    #[test]
    fn display_matches_listing_fields() {
        let t = Tuple::icmp(
            parse_addr("10.0.1.2").unwrap(),
            parse_addr("10.0.2.2").unwrap(),
            8,
            0,
            4660,
        );
        assert_eq!(
            t.to_string(),
            "src=10.0.1.2 dst=10.0.2.2 type=8 code=0 id=4660"
        );
        let g = Tuple::generic(253, 1, 2);
        assert_eq!(g.to_string(), "src=0.0.0.1 dst=0.0.0.2");
    }
}
