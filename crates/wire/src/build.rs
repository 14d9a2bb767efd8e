//! Building frame bytes from a parsed [`PacketSpec`] (test input and scenario packets), following
//! SCENARIOS.md's conventions where a line is silent. Allocates; not on the packet path (the
//! host's own packets are built without allocation by [`crate::emit`]).

use crate::ethernet::{self, MacAddr};
use crate::icmp;
use crate::ipv4::{self, FLAG_DF, FLAG_MF, FLAG_RF};
use crate::line::{Data, IpId, PacketSpec, Port};
use crate::tcp::kind;
use crate::udp;
use std::fmt;

/// What the caller knows that a packet line leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCtx {
    /// Source MAC unless the line says `smac=` (the sending neighbour's).
    pub src_mac: MacAddr,
    /// Destination MAC unless the line says `dmac=` (the ingress interface's).
    pub dst_mac: MacAddr,
    /// IP id unless the line says `id=`/`ipid=` (the packet line's 1-based index).
    pub ip_id: u16,
    /// Build masked values (`ipid=*`, port `rand1`) as 0 instead of refusing them.
    pub allow_masked: bool,
}

impl Default for FrameCtx {
    fn default() -> Self {
        FrameCtx {
            src_mac: MacAddr([2, 0, 0, 0, 1, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ip_id: 0,
            allow_masked: false,
        }
    }
}

/// Why a spec could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// A masked value (`*`, `rand1`) where a real one is needed.
    Masked(String),
    /// Long data printed as a digest (`payload^64=... sha1=...`) cannot be rebuilt.
    Digest,
    /// A field that does not fit the packet (with the reason).
    Invalid(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Masked(v) => write!(f, "masked value `{v}` cannot be sent"),
            BuildError::Digest => {
                f.write_str("data given as a digest (payload^64 ... sha1=) cannot be rebuilt")
            }
            BuildError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BuildError {}

fn invalid(m: impl Into<String>) -> BuildError {
    BuildError::Invalid(m.into())
}

/// Builds the Ethernet frame (header + IPv4 packet) for a spec.
pub fn build_frame(spec: &PacketSpec, ctx: &FrameCtx) -> Result<Vec<u8>, BuildError> {
    let ip = build_ipv4(spec, ctx)?;
    let mut f = vec![0u8; ethernet::HEADER_LEN + ip.len()];
    let mut fr = ethernet::Frame::new_unchecked(&mut f[..]);
    fr.set_dst_addr(spec.dmac.unwrap_or(ctx.dst_mac));
    fr.set_src_addr(spec.smac.unwrap_or(ctx.src_mac));
    fr.set_ethertype(ethernet::ethertype::IPV4);
    fr.payload_mut().copy_from_slice(&ip);
    Ok(f)
}

fn port(p: &Option<Port>, ctx: &FrameCtx) -> Result<u16, BuildError> {
    match p {
        None => Ok(0),
        Some(Port::Num(n)) => Ok(*n),
        Some(Port::Masked(_)) if ctx.allow_masked => Ok(0),
        Some(Port::Masked(m)) => Err(BuildError::Masked(m.clone())),
    }
}

fn data_bytes(d: &Data) -> Result<Vec<u8>, BuildError> {
    match d {
        Data::None => Ok(Vec::new()),
        Data::Zeros(n) => Ok(vec![0; *n]),
        Data::Bytes(b) => Ok(b.clone()),
        Data::Digest { .. } => Err(BuildError::Digest),
    }
}

/// Largest ICMP error quote: Linux's `icmp_send` keeps the whole error within 576 bytes
/// (outer IP header with its options + 8-byte ICMP header + quote).
pub fn icmp_quote_room(outer_opts_len: usize) -> usize {
    576 - ipv4::MIN_HEADER_LEN - outer_opts_len - icmp::HEADER_LEN
}

/// TCP options in Linux's layout (`tcp_options_write`): mss; sackok+ts or nop,nop,ts;
/// nop,nop,sackok without ts; nop,wscale; nop,nop,sack blocks; then any other kinds, padded
/// with EOL to a multiple of 4.
pub fn tcp_options(spec: &PacketSpec) -> Result<Vec<u8>, BuildError> {
    let mut o = Vec::with_capacity(40);
    if let Some(m) = spec.mss {
        o.extend_from_slice(&[kind::MSS, 4]);
        o.extend_from_slice(&m.to_be_bytes());
    }
    if let Some((v, e)) = spec.ts {
        if spec.sackok {
            o.extend_from_slice(&[kind::SACK_PERM, 2, kind::TIMESTAMP, 10]);
        } else {
            o.extend_from_slice(&[kind::NOP, kind::NOP, kind::TIMESTAMP, 10]);
        }
        o.extend_from_slice(&v.to_be_bytes());
        o.extend_from_slice(&e.to_be_bytes());
    } else if spec.sackok {
        o.extend_from_slice(&[kind::NOP, kind::NOP, kind::SACK_PERM, 2]);
    }
    if let Some(w) = spec.wscale {
        o.extend_from_slice(&[kind::NOP, kind::WSCALE, 3, w]);
    }
    if !spec.sack.is_empty() {
        o.extend_from_slice(&[
            kind::NOP,
            kind::NOP,
            kind::SACK,
            2 + 8 * spec.sack.len() as u8,
        ]);
        for (l, r) in &spec.sack {
            o.extend_from_slice(&l.to_be_bytes());
            o.extend_from_slice(&r.to_be_bytes());
        }
    }
    for (k, d) in &spec.other_opts {
        o.push(*k);
        o.push(2 + d.len() as u8);
        o.extend_from_slice(d);
    }
    o.extend_from_slice(&spec.bad_opts);
    while o.len() % 4 != 0 {
        o.push(kind::EOL);
    }
    if o.len() > 40 {
        return Err(invalid(format!(
            "TCP options need {} bytes, at most 40 fit",
            o.len()
        )));
    }
    Ok(o)
}

/// Builds the IPv4 packet for a spec (inner packets of ICMP errors default to IP id 0 and are
/// quoted as Linux quotes them, see [`icmp_quote_room`]).
pub fn build_ipv4(spec: &PacketSpec, ctx: &FrameCtx) -> Result<Vec<u8>, BuildError> {
    if spec.raw_ip {
        return match &spec.raw_l4 {
            Some(r) => Ok(r.clone()),
            None => data_bytes(&spec.data),
        };
    }
    if let (Some(m), false) = (spec.masked.first(), ctx.allow_masked) {
        return Err(BuildError::Masked(m.to_string()));
    }
    let src = spec.src.ok_or_else(|| invalid("no source address"))?;
    let dst = spec.dst.ok_or_else(|| invalid("no destination address"))?;
    let l4 = build_l4(spec, ctx, src, dst)?;
    let hl = ipv4::MIN_HEADER_LEN + spec.ipopts.len();
    let total = hl + l4.len();
    if total > 0xffff {
        return Err(invalid(format!(
            "packet of {total} bytes exceeds the IPv4 limit of 65535"
        )));
    }
    let mut b = vec![0u8; total];
    let mut p = ipv4::Packet::new_unchecked(&mut b[..]);
    p.set_version_and_header_len(hl);
    p.set_tos(spec.tos.unwrap_or(0));
    p.set_total_len(spec.iplen.unwrap_or(total as u16));
    let id = match &spec.ip_id {
        None => ctx.ip_id,
        Some(IpId::Num(n)) => *n,
        Some(IpId::Masked(_)) if ctx.allow_masked => 0,
        Some(IpId::Masked(m)) => return Err(BuildError::Masked(m.clone())),
    };
    p.set_ident(id);
    let mut ff = spec.frag / 8;
    if spec.rf {
        ff |= FLAG_RF;
    }
    if spec.df {
        ff |= FLAG_DF;
    }
    if spec.mf {
        ff |= FLAG_MF;
    }
    p.set_flags_frag(ff);
    p.set_ttl(spec.ttl.unwrap_or(64));
    p.set_protocol(spec.proto);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    p.options_mut().copy_from_slice(&spec.ipopts);
    p.fill_checksum();
    if spec.badsum_ip {
        let c = p.checksum();
        p.set_checksum(c ^ 1);
    }
    b[hl..].copy_from_slice(&l4);
    Ok(b)
}

fn build_l4(
    spec: &PacketSpec,
    ctx: &FrameCtx,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
) -> Result<Vec<u8>, BuildError> {
    if let Some(raw) = &spec.raw_l4 {
        return Ok(raw.clone());
    }
    if spec.frag > 0 {
        return data_bytes(&spec.data);
    }
    match spec.proto {
        6 => build_tcp(spec, ctx, src, dst),
        17 => build_udp(spec, ctx, src, dst),
        1 => build_icmp(spec, ctx),
        _ => data_bytes(&spec.data),
    }
}

fn build_tcp(
    spec: &PacketSpec,
    ctx: &FrameCtx,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
) -> Result<Vec<u8>, BuildError> {
    let opts = tcp_options(spec)?;
    let data = data_bytes(&spec.data)?;
    let hl = 20 + opts.len();
    let mut b = vec![0u8; hl + data.len()];
    let mut t = crate::tcp::Packet::new_unchecked(&mut b[..]);
    t.set_src_port(port(&spec.src_port, ctx)?);
    t.set_dst_port(port(&spec.dst_port, ctx)?);
    t.set_seq_number(spec.seq.unwrap_or(0));
    t.set_ack_number(spec.ack.unwrap_or(0));
    t.set_header_len(hl, spec.tcp_res.unwrap_or(0));
    t.set_flags(spec.tcp_flags.unwrap_or(0));
    t.set_window_len(spec.win.unwrap_or(0));
    t.set_urgent_at(spec.urg.unwrap_or(0));
    t.options_mut().copy_from_slice(&opts);
    t.payload_mut().copy_from_slice(&data);
    t.fill_checksum(src, dst);
    if spec.badsum_l4 {
        let c = t.checksum();
        t.set_checksum(c ^ 1);
    }
    Ok(b)
}

fn build_udp(
    spec: &PacketSpec,
    ctx: &FrameCtx,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
) -> Result<Vec<u8>, BuildError> {
    let data = data_bytes(&spec.data)?;
    let len = udp::HEADER_LEN + data.len();
    if spec.nocsum && spec.badsum_l4 {
        return Err(invalid("`nocsum` and `badsum` contradict each other"));
    }
    let mut b = vec![0u8; len];
    let mut u = udp::Packet::new_unchecked(&mut b[..]);
    u.set_src_port(port(&spec.src_port, ctx)?);
    u.set_dst_port(port(&spec.dst_port, ctx)?);
    // The length field follows the IP total length, also for a cut quote (`iplen=`).
    let announced = match spec.iplen {
        Some(t) => usize::from(t).saturating_sub(ipv4::MIN_HEADER_LEN + spec.ipopts.len()),
        None => len,
    };
    u.set_len(spec.ulen.unwrap_or(announced.min(0xffff) as u16));
    u.payload_mut().copy_from_slice(&data);
    if !spec.nocsum {
        u.fill_checksum(src, dst);
        if spec.badsum_l4 {
            let c = u.checksum();
            u.set_checksum(c ^ 1);
        }
    }
    Ok(b)
}

fn build_icmp(spec: &PacketSpec, ctx: &FrameCtx) -> Result<Vec<u8>, BuildError> {
    let t = spec.icmp_type.unwrap_or(icmp::msg_type::ECHO_REQUEST);
    let c = spec.icmp_code.unwrap_or(0);
    let echo = icmp::is_echo_like(t);
    if !echo && (spec.icmp_id.is_some() || spec.icmp_seq.is_some()) {
        return Err(invalid(format!(
            "`id=`/`seq=` apply to echo-like ICMP types, not type {t}"
        )));
    }
    if spec.mtu.is_some() && !(t == 3 && c == 4) {
        return Err(invalid("`mtu=` applies to ICMP type 3 code 4"));
    }
    if spec.gw.is_some() && t != 5 {
        return Err(invalid("`gw=` applies to ICMP type 5"));
    }
    if spec.ptr.is_some() && t != 12 {
        return Err(invalid("`ptr=` applies to ICMP type 12"));
    }
    if spec.inner.is_some() && !icmp::is_error(t) {
        return Err(invalid(format!(
            "`inner=` applies to ICMP error types (3 4 5 11 12), not type {t}"
        )));
    }
    let rest = if let Some(r) = spec.rest {
        if spec.icmp_id.is_some()
            || spec.icmp_seq.is_some()
            || spec.mtu.is_some()
            || spec.gw.is_some()
            || spec.ptr.is_some()
        {
            return Err(invalid(
                "`rest=` replaces id/seq/mtu/gw/ptr; give one or the other",
            ));
        }
        r
    } else if echo {
        (u32::from(spec.icmp_id.unwrap_or(0)) << 16) | u32::from(spec.icmp_seq.unwrap_or(0))
    } else if let Some(m) = spec.mtu {
        u32::from(m)
    } else if let Some(g) = spec.gw {
        u32::from(g)
    } else if let Some(p) = spec.ptr {
        u32::from(p) << 24
    } else {
        0
    };
    let data = match &spec.inner {
        Some(inner) => {
            let ictx = FrameCtx { ip_id: 0, ..*ctx };
            let mut q = build_ipv4(inner, &ictx)?;
            q.truncate(icmp_quote_room(spec.ipopts.len()));
            q
        }
        None => data_bytes(&spec.data)?,
    };
    let mut b = vec![0u8; icmp::HEADER_LEN + data.len()];
    let mut p = icmp::Packet::new_unchecked(&mut b[..]);
    p.set_msg_type(t);
    p.set_msg_code(c);
    p.set_rest_of_header(rest);
    p.data_mut().copy_from_slice(&data);
    p.fill_checksum();
    if spec.badsum_l4 {
        let c = p.checksum();
        p.set_checksum(c ^ 1);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(line: &str, id: u16) -> Vec<u8> {
        let spec = PacketSpec::parse(line).unwrap();
        build_ipv4(
            &spec,
            &FrameCtx {
                ip_id: id,
                ..FrameCtx::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn syn_linux_layout() {
        let b = ip("tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=S seq=100 win=64240 mss=1460 sackok ts=1/0 wscale=7", 1);
        assert_eq!(b.len(), 60);
        assert_eq!(
            &b[..20],
            &[0x45, 0, 0, 60, 0, 1, 0, 0, 64, 6, b[10], b[11], 10, 0, 0, 2, 203, 0, 113, 9]
        );
        assert_eq!(
            &b[20..],
            &[
                0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 100, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, b[36],
                b[37], 0, 0, 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7
            ][..]
        );
        let p = ipv4::Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(crate::tcp::Packet::new_checked(p.payload())
            .unwrap()
            .verify_checksum(p.src_addr(), p.dst_addr()));
    }

    #[test]
    fn option_layouts() {
        let b = ip("tcp 1.1.1.1:1 > 2.2.2.2:2 flags=A ts=2/5", 0);
        assert_eq!(&b[40..52], &[1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 5]);
        let b = ip(
            "tcp 1.1.1.1:1 > 2.2.2.2:2 flags=S mss=1400 sackok wscale=2",
            0,
        );
        assert_eq!(&b[40..52], &[2, 4, 0x05, 0x78, 1, 1, 4, 2, 1, 3, 3, 2]);
        let b = ip("tcp 1.1.1.1:1 > 2.2.2.2:2 flags=A ts=1/2 sack=10-20", 0);
        assert_eq!(&b[52..64], &[1, 1, 5, 10, 0, 0, 0, 10, 0, 0, 0, 20]);
    }

    #[test]
    fn defaults_and_flags() {
        let b = ip("udp 10.0.0.2:41001 > 10.0.0.1:69 len=10", 2);
        assert_eq!(b.len(), 38);
        assert_eq!(u16::from_be_bytes([b[4], b[5]]), 2);
        assert_eq!(b[8], 64);
        assert_eq!(&b[24..26], &[0, 18]);
        let b = ip(
            "udp 10.0.0.2:1 > 10.0.0.1:2 nocsum df mf tos=0x10 ttl=1 id=9",
            2,
        );
        assert_eq!(&b[26..28], &[0, 0]);
        assert_eq!(u16::from_be_bytes([b[6], b[7]]), FLAG_DF | FLAG_MF);
        assert_eq!((b[1], b[8], b[5]), (0x10, 1, 9));
        let b = ip("17 10.0.0.2 > 10.0.0.1 frag=1480 len=8", 1);
        assert_eq!(u16::from_be_bytes([b[6], b[7]]), 185);
        assert_eq!(b.len(), 28);
    }

    #[test]
    fn badsum_spoils() {
        let b = ip("udp 1.1.1.1:1 > 2.2.2.2:2 badsum len=3", 1);
        let p = ipv4::Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(!udp::Packet::new_checked(p.payload())
            .unwrap()
            .verify_checksum(p.src_addr(), p.dst_addr()));
        let b = ip("tcp 1.1.1.1:1 > 2.2.2.2:2 badsum=ip", 1);
        let p = ipv4::Packet::new_checked(&b[..]).unwrap();
        assert!(!p.verify_checksum());
        assert!(crate::tcp::Packet::new_checked(p.payload())
            .unwrap()
            .verify_checksum(p.src_addr(), p.dst_addr()));
    }

    #[test]
    fn icmp_error_quotes_like_linux() {
        let b = ip(
            r#"icmp 10.0.0.1 > 10.0.0.2 type=3 code=3 inner="udp 10.0.0.2:41001 > 10.0.0.1:69 ttl=64 tos=0x00 id=2 len=10""#,
            7,
        );
        assert_eq!(b.len(), 20 + 8 + 38);
        assert_eq!(&b[20..24], &[3, 3, b[22], b[23]]);
        let q = ipv4::Packet::new_checked(&b[28..]).unwrap();
        assert_eq!(q.ident(), 2);
        let b = ip(
            r#"icmp 10.0.0.1 > 10.0.0.2 type=11 inner="tcp 10.0.0.2:1 > 10.0.0.9:2 len=1000""#,
            7,
        );
        assert_eq!(b.len(), 576);
        let q = ipv4::Packet::new_unchecked(&b[28..]);
        assert_eq!(q.total_len(), 1040);
        assert_eq!(q.ident(), 0);
        assert!(icmp::Packet::new_checked(&b[20..])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn refusals() {
        let ctx = FrameCtx::default();
        for line in [
            "icmp 1.1.1.1 > 2.2.2.2 type=3 code=3 id=4",
            "icmp 1.1.1.1 > 2.2.2.2 type=8 mtu=1400",
            "icmp 1.1.1.1 > 2.2.2.2 type=8 inner=\"udp 1.1.1.1:1 > 2.2.2.2:2\"",
            "udp 1.1.1.1:rand1 > 2.2.2.2:2",
            "udp 1.1.1.1:1 > 2.2.2.2:2 nocsum badsum",
            "udp 1.1.1.1:1 > 2.2.2.2:2 len=300 payload^64=\"a\" sha1=0123456789ab",
            "tcp 1.1.1.1:1 > 2.2.2.2:2 opt30=00112233445566778899aabbccddeeff001122 opt31=00112233445566778899aabbccddeeff001122",
        ] {
            let spec = PacketSpec::parse(line).unwrap();
            assert!(build_ipv4(&spec, &ctx).is_err(), "{line}");
        }
        let spec = PacketSpec::parse("icmp 1.1.1.1 > 2.2.2.2 ipid=*").unwrap();
        assert!(build_ipv4(
            &spec,
            &FrameCtx {
                allow_masked: true,
                ..ctx
            }
        )
        .is_ok());
    }

    #[test]
    fn frame_macs() {
        let spec = PacketSpec::parse("udp 1.1.1.1:1 > 2.2.2.2:2 smac=02:00:00:00:09:09").unwrap();
        let f = build_frame(&spec, &FrameCtx::default()).unwrap();
        assert_eq!(&f[..14], &[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 9, 9, 8, 0]);
    }
}
