//! The packet as rule evaluation sees it: the IP bytes, the descriptor parsed once by
//! `nfrs_wire::desc::PacketDesc` (addresses, protocol, ports, flags, fragment), where it is
//! (hook, devices), its conntrack snapshot, its mark, the clock. Matches read a [`PktCtx`];
//! targets may change it (with `nfrs_wire::desc::mangle`, which keeps `d` in step, or by
//! rewriting bytes and calling [`PktCtx::reparse`]).

use nfrs_conntrack::{ConnId, CtInfo, Nanos, Tuple};
use nfrs_rules::{Hook, TableKind};
pub use nfrs_wire::desc::{L4Kind, PacketDesc};

/// An interface name as the kernel keeps it (IFNAMSIZ = 16 bytes with the NUL); copyable, so a
/// packet carries its devices without allocation. Empty = no device.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct IfName {
    bytes: [u8; 16],
    len: u8,
}

impl IfName {
    /// No device.
    pub const NONE: IfName = IfName {
        bytes: [0; 16],
        len: 0,
    };

    /// The name `s`, cut at 15 bytes as Linux would refuse longer ones.
    pub fn new(s: &str) -> IfName {
        let b = s.as_bytes();
        let n = b.len().min(15);
        let mut bytes = [0u8; 16];
        bytes[..n].copy_from_slice(&b[..n]);
        IfName {
            bytes,
            len: n as u8,
        }
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The name as text ("" for none).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// True when there is no device.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for IfName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Link-layer packet type (skb->pkt_type), as `-m pkttype` and routing see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PktType {
    /// To this host's MAC.
    #[default]
    Host,
    /// Link-layer broadcast.
    Broadcast,
    /// Link-layer multicast.
    Multicast,
    /// To another host's MAC (promiscuous).
    OtherHost,
    /// Sent by this host.
    Outgoing,
}

/// What a packet knows of its connection (copied out of the table at the conntrack hook, so
/// rule evaluation needs no table borrow). `info` is `Invalid` with no connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtSnap {
    /// ctinfo (`Invalid` when untracked by the tracker, `Untracked` after NOTRACK).
    pub info: CtInfo,
    /// The entry, when there is one.
    pub id: Option<ConnId>,
    /// Status bits (nfrs_conntrack::status).
    pub status: u16,
    /// Connection mark (targets may change it; the engine writes it back).
    pub mark: u32,
    /// Original and reply tuples.
    pub tuple: [Tuple; 2],
    /// Seconds left before the entry expires (`--ctexpire`).
    pub expires_secs: u32,
    /// Helper attached (`-m helper`): index into [`HELPER_NAMES`], 0 = none.
    pub helper: u8,
    /// Accounting counters (orig packets, orig bytes, reply packets, reply bytes) when the
    /// connection was created with accounting on (`-m connbytes`).
    pub acct: Option<[u64; 4]>,
    /// The connection's conntrack zone (`CT --zone`; 0 = the default zone).
    pub zone: u16,
}

/// Helper names by [`CtSnap::helper`] index (0 = none).
pub const HELPER_NAMES: &[&str] = &[
    "", "ftp", "irc", "tftp", "sip", "h323", "pptp", "amanda", "snmp",
];

impl Default for CtSnap {
    fn default() -> Self {
        CtSnap {
            info: CtInfo::Invalid,
            id: None,
            status: 0,
            mark: 0,
            tuple: [Tuple::default(); 2],
            expires_secs: 0,
            helper: 0,
            acct: None,
            zone: 0,
        }
    }
}

impl CtSnap {
    /// The `-m state` / `--ctstate` bit of this packet (XT_STATE_BIT values of nfrs-rules'
    /// `ext::state`: INVALID 1, ESTABLISHED 2, RELATED 4, NEW 8, UNTRACKED 16).
    pub fn state_bit(&self) -> u32 {
        use nfrs_rules::ext::state as s;
        match self.info {
            CtInfo::Invalid => s::INVALID,
            CtInfo::Untracked => s::UNTRACKED,
            CtInfo::New => s::NEW,
            CtInfo::Related | CtInfo::RelatedReply => s::RELATED,
            CtInfo::Established | CtInfo::EstablishedReply => s::ESTABLISHED,
        }
    }

    /// Whether a connection entry is attached (not INVALID, not UNTRACKED).
    pub fn tracked(&self) -> bool {
        self.id.is_some() && !matches!(self.info, CtInfo::Invalid | CtInfo::Untracked)
    }
}

/// The owner of a locally generated packet's socket (`-m owner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOwner {
    /// File owner uid.
    pub uid: u32,
    /// File owner gid.
    pub gid: u32,
}

/// One packet on its way through the hooks.
#[derive(Clone, Debug)]
pub struct PktCtx {
    /// The IPv4 packet, header first (kept with its capacity between packets).
    pub buf: Vec<u8>,
    /// Parsed once from `buf` (l3_off 0); refresh with [`PktCtx::reparse`] after a rewrite.
    pub d: PacketDesc,
    /// The hook being traversed.
    pub hook: Hook,
    /// The table being traversed.
    pub table: TableKind,
    /// Input device (empty in OUTPUT/POSTROUTING of local packets).
    pub indev: IfName,
    /// Output device (empty in PREROUTING/INPUT).
    pub outdev: IfName,
    /// The Ethernet header as received (`-m mac`, LOG's `MAC=`), when it came from a wire.
    pub mac: Option<[u8; 14]>,
    /// Link-layer type.
    pub pkttype: PktType,
    /// Bridge port the frame came in on (`-m physdev`), empty when not bridged.
    pub physindev: IfName,
    /// Bridge port it leaves by.
    pub physoutdev: IfName,
    /// skb->mark.
    pub mark: u32,
    /// Connection snapshot.
    pub ct: CtSnap,
    /// The scenario clock, nanoseconds.
    pub now: Nanos,
    /// The local socket's owner (OUTPUT only; none in replay unless the scenario says).
    pub sock: Option<SockOwner>,
    /// Sent by the host stack itself (RST, ICMP answers): a kernel socket with no file.
    pub kernel_sock: bool,
    /// A reassembled packet: its pieces' (offset, length) in offset order, to leave again as
    /// the same fragments (empty otherwise).
    pub frag_spans: Vec<(usize, usize)>,
    /// skb->nf_trace (set by `-j TRACE`): every rule the packet meets is logged.
    pub nf_trace: bool,
    /// A `TEE` copy on its way out (the kernel's nf_skb_duplicated: TEE does nothing to it).
    pub tee_copy: bool,
}

impl PktCtx {
    /// A packet context for the IPv4 packet `buf` (whole datagram present), other fields at
    /// their defaults (PREROUTING, filter, no devices, no connection, mark 0, time 0).
    pub fn new(buf: Vec<u8>) -> Result<PktCtx, nfrs_wire::Error> {
        let d = PacketDesc::parse_ipv4(&buf, 0)?;
        Ok(PktCtx {
            buf,
            d,
            hook: Hook::PreRouting,
            table: TableKind::Filter,
            indev: IfName::NONE,
            outdev: IfName::NONE,
            mac: None,
            pkttype: PktType::Host,
            physindev: IfName::NONE,
            physoutdev: IfName::NONE,
            mark: 0,
            ct: CtSnap::default(),
            now: 0,
            sock: None,
            kernel_sock: false,
            frag_spans: Vec::new(),
            nf_trace: false,
            tee_copy: false,
        })
    }

    /// Moves the packet out, leaving an empty buffer behind (the other fields are copies).
    pub fn take(&mut self) -> PktCtx {
        PktCtx {
            buf: std::mem::take(&mut self.buf),
            frag_spans: std::mem::take(&mut self.frag_spans),
            ..*self
        }
    }

    /// Re-reads what a NAT binding's rewrite (`nfrs_nat::nat_packet`) can change: for a whole
    /// TCP or UDP header the addresses and ports (nothing else of the descriptor moves), else
    /// the whole descriptor ([`PktCtx::reparse`]).
    pub fn refresh_after_nat(&mut self) {
        let l4 = usize::from(self.d.l4_off);
        let whole = matches!(self.d.l4, L4Kind::Tcp | L4Kind::Udp) && self.d.l3_off == 0;
        let ip: Option<&[u8; 20]> = self.buf.get(..20).and_then(|b| b.try_into().ok());
        let ports: Option<&[u8; 4]> = self.buf.get(l4..l4 + 4).and_then(|b| b.try_into().ok());
        match (ip, ports) {
            (Some(h), Some(t)) if whole => {
                self.d.src = std::net::Ipv4Addr::new(h[12], h[13], h[14], h[15]);
                self.d.dst = std::net::Ipv4Addr::new(h[16], h[17], h[18], h[19]);
                self.d.sport = u16::from_be_bytes([t[0], t[1]]);
                self.d.dport = u16::from_be_bytes([t[2], t[3]]);
            }
            _ => self.reparse(),
        }
    }

    /// Re-reads the descriptor after the bytes changed (keeps the old one if the packet no
    /// longer parses, which a target must never cause).
    pub fn reparse(&mut self) {
        if let Ok(d) = PacketDesc::parse_ipv4(&self.buf, 0) {
            self.d = d;
        }
    }

    /// True when the transport header was read in full (TCP, UDP or ICMP, first fragment).
    pub fn l4_ok(&self) -> bool {
        matches!(self.d.l4, L4Kind::Tcp | L4Kind::Udp | L4Kind::Icmp)
    }

    /// Fragment offset in bytes (0 for a first fragment or a whole packet).
    pub fn frag_off(&self) -> u16 {
        self.d.frag_offset()
    }

    /// Source address, host order.
    pub fn src(&self) -> u32 {
        u32::from(self.d.src)
    }

    /// Destination address, host order.
    pub fn dst(&self) -> u32 {
        u32::from(self.d.dst)
    }

    /// The IP payload (transport header and data), within the total length.
    pub fn l4(&self) -> &[u8] {
        let end = (self.d.total_len as usize).min(self.buf.len());
        self.buf.get(self.d.l4_off as usize..end).unwrap_or(&[])
    }

    /// The IP options bytes.
    pub fn ip_options(&self) -> &[u8] {
        self.buf.get(20..self.d.ihl as usize).unwrap_or(&[])
    }

    /// The transport payload (after the TCP/UDP/ICMP header).
    pub fn l4_payload(&self) -> &[u8] {
        let end = self.d.l3_end().min(self.buf.len());
        self.buf.get(self.d.payload_off()..end).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfrs_wire::build::{build_ipv4, FrameCtx};
    use nfrs_wire::line::PacketSpec;

    fn pkt(line: &str) -> PktCtx {
        let b = build_ipv4(&PacketSpec::parse(line).unwrap(), &FrameCtx::default()).unwrap();
        PktCtx::new(b).unwrap()
    }

    /// After a binding's rewrite (addresses, ports, checksums), the cheap refresh reads what a
    /// full parse reads, for every kind of packet.
    #[test]
    fn refresh_after_nat_equals_a_full_parse() {
        for line in [
            "tcp 10.0.0.2:1234 > 203.0.113.9:443 flags=A seq=5 ack=7 win=100",
            "tcp 10.0.0.2:1234 > 203.0.113.9:443 flags=SA seq=5 ack=7 win=100 mss=1460",
            "udp 10.0.0.2:5353 > 203.0.113.9:53",
            "icmp 10.0.0.2 > 203.0.113.9 type=8 code=0 id=7 seq=1",
            "udp 10.0.0.2 > 203.0.113.9 id=777 frag=24 len=8",
        ] {
            let mut p = pkt(line);
            // What nat_packet may change: both addresses, both ports (or the ICMP id).
            let l4 = p.d.l4_off as usize;
            p.buf[12..20].copy_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
            match p.d.l4 {
                L4Kind::Tcp | L4Kind::Udp => {
                    p.buf[l4..l4 + 4].copy_from_slice(&[0xab, 0xcd, 0x12, 0x34]);
                }
                L4Kind::Icmp => p.buf[l4 + 4..l4 + 6].copy_from_slice(&[0x56, 0x78]),
                _ => {}
            }
            let mut want = p.clone();
            want.reparse();
            p.refresh_after_nat();
            assert_eq!(p.d, want.d, "{line}");
        }
    }
}
