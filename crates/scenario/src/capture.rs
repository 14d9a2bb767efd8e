//! Captures as scenario input (the `pcap` key): classic pcap and pcapng files read into frames,
//! each given its ingress device and made ready to enter the host.
//!
//! The ingress device of a frame is, in order: the pcapng interface name when it names an
//! `[[interface]]`; the first `[[pcap_ingress]]` entry (a project key: `src` CIDR, `dev`) whose
//! CIDR holds the frame's IPv4 source; `pcap_dev`. A frame that gets none is an error.
//! Frames are re-addressed at the Ethernet layer for the host (IP and above untouched): the
//! destination MAC of a unicast frame becomes the ingress interface's MAC, the source MAC the
//! sending neighbour's (SCENARIOS.md's defaults), so a capture taken elsewhere reaches the host.
//! Raw-IP (linktypes 101, 228) and Linux cooked (113) captures get an Ethernet header.

use crate::host::{Cidr, Host};
use std::net::Ipv4Addr;

/// One frame read from a capture, before it is given a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// Timestamp in nanoseconds (absolute, as recorded).
    pub ts_ns: u128,
    /// The pcapng interface name, if the file gives one.
    pub if_name: Option<String>,
    /// The link type of its interface.
    pub linktype: u16,
    /// The bytes captured.
    pub data: Vec<u8>,
}

/// A frame of a capture ready to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureFrame {
    /// Microseconds from the capture's first frame.
    pub time_us: u64,
    /// The ingress device (an `[[interface]]` name).
    pub dev: String,
    /// The Ethernet frame as it enters the host.
    pub frame: Vec<u8>,
}

impl CaptureFrame {
    /// The input line a result prints for this frame: time in seconds (6 decimals), device and
    /// the frame decoded in the packet syntax.
    pub fn input_text(&self) -> String {
        format!(
            "{}.{:06} {} {}",
            self.time_us / 1_000_000,
            self.time_us % 1_000_000,
            self.dev,
            nfrs_wire::print::frame_to_string(&self.frame)
        )
    }
}

/// An `[[pcap_ingress]]` entry: frames from `src` enter on `dev`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapIngress {
    /// Source addresses this entry covers.
    pub src: Cidr,
    /// The ingress device.
    pub dev: String,
}

fn rd16(b: &[u8], le: bool) -> u16 {
    let a = [b[0], b[1]];
    if le {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    }
}

fn rd32(b: &[u8], le: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    }
}

/// Reads a classic pcap or a pcapng file's frames.
pub fn read_capture(bytes: &[u8]) -> Result<Vec<RawFrame>, String> {
    if bytes.len() < 4 {
        return Err("not a capture: too short".into());
    }
    match &bytes[..4] {
        [0x0a, 0x0d, 0x0d, 0x0a] => read_pcapng(bytes),
        _ => read_pcap(bytes),
    }
}

fn read_pcap(b: &[u8]) -> Result<Vec<RawFrame>, String> {
    if b.len() < 24 {
        return Err("pcap: header truncated".into());
    }
    let (le, nanos) = match &b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Err("not a pcap or pcapng file (unknown magic)".into()),
    };
    let linktype = (rd32(&b[20..24], le) & 0xffff) as u16;
    let mut out = Vec::new();
    let mut at = 24;
    while at < b.len() {
        if b.len() - at < 16 {
            return Err(format!("pcap: record header truncated at byte {at}"));
        }
        let sec = u128::from(rd32(&b[at..], le));
        let frac = u128::from(rd32(&b[at + 4..], le));
        let caplen = rd32(&b[at + 8..], le) as usize;
        at += 16;
        if b.len() - at < caplen {
            return Err(format!("pcap: record truncated at byte {at}"));
        }
        out.push(RawFrame {
            ts_ns: sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 },
            if_name: None,
            linktype,
            data: b[at..at + caplen].to_vec(),
        });
        at += caplen;
    }
    Ok(out)
}

struct Iface {
    linktype: u16,
    name: Option<String>,
    /// Nanoseconds per timestamp unit, as a (numerator, denominator) pair.
    unit: (u128, u128),
}

fn read_pcapng(b: &[u8]) -> Result<Vec<RawFrame>, String> {
    let mut out = Vec::new();
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut le = true;
    let mut at = 0;
    while at < b.len() {
        if b.len() - at < 12 {
            return Err(format!("pcapng: block truncated at byte {at}"));
        }
        if b[at..at + 4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            // Section header: its byte-order magic decides the endianness of the section.
            le = match &b[at + 8..at + 12] {
                [0x4d, 0x3c, 0x2b, 0x1a] => true,
                [0x1a, 0x2b, 0x3c, 0x4d] => false,
                _ => return Err("pcapng: bad byte-order magic".into()),
            };
            ifaces.clear();
        }
        let ty = rd32(&b[at..], le);
        let len = rd32(&b[at + 4..], le) as usize;
        if len < 12 || len & 3 != 0 || b.len() - at < len {
            return Err(format!("pcapng: bad block length {len} at byte {at}"));
        }
        let body = &b[at + 8..at + len - 4];
        match ty {
            1 => {
                if body.len() < 8 {
                    return Err("pcapng: interface block truncated".into());
                }
                let mut iface = Iface {
                    linktype: rd16(body, le),
                    name: None,
                    unit: (1000, 1),
                };
                let mut o = &body[8..];
                while o.len() >= 4 {
                    let code = rd16(o, le);
                    let olen = rd16(&o[2..], le) as usize;
                    if code == 0 || o.len() < 4 + olen {
                        break;
                    }
                    let v = &o[4..4 + olen];
                    match code {
                        2 => iface.name = Some(String::from_utf8_lossy(v).into_owned()),
                        9 if !v.is_empty() => {
                            let r = v[0];
                            iface.unit = if r & 0x80 == 0 {
                                let p = 10u128.pow(u32::from(r & 0x7f).min(30));
                                (1_000_000_000, p)
                            } else {
                                (1_000_000_000, 1u128 << u32::from(r & 0x7f).min(100))
                            };
                        }
                        _ => {}
                    }
                    let step = 4 + ((olen + 3) & !3);
                    o = &o[step.min(o.len())..];
                }
                ifaces.push(iface);
            }
            6 => {
                if body.len() < 20 {
                    return Err("pcapng: packet block truncated".into());
                }
                let id = rd32(body, le) as usize;
                let ts =
                    (u128::from(rd32(&body[4..], le)) << 32) | u128::from(rd32(&body[8..], le));
                let caplen = rd32(&body[12..], le) as usize;
                if body.len() < 20 + caplen {
                    return Err("pcapng: packet data truncated".into());
                }
                let iface = ifaces
                    .get(id)
                    .ok_or_else(|| format!("pcapng: packet on unknown interface {id}"))?;
                out.push(RawFrame {
                    ts_ns: ts * iface.unit.0 / iface.unit.1,
                    if_name: iface.name.clone(),
                    linktype: iface.linktype,
                    data: body[20..20 + caplen].to_vec(),
                });
            }
            3 => {
                if body.len() < 4 {
                    return Err("pcapng: simple packet block truncated".into());
                }
                let iface = ifaces
                    .first()
                    .ok_or("pcapng: simple packet before any interface")?;
                let orig = rd32(body, le) as usize;
                let data = &body[4..];
                out.push(RawFrame {
                    ts_ns: out.last().map_or(0, |f: &RawFrame| f.ts_ns),
                    if_name: iface.name.clone(),
                    linktype: iface.linktype,
                    data: data[..orig.min(data.len())].to_vec(),
                });
            }
            _ => {}
        }
        at += len;
    }
    Ok(out)
}

/// The Ethernet frame of a captured frame of link type `linktype` (None if the link type is not
/// one nfrs reads).
fn to_ethernet(linktype: u16, data: &[u8]) -> Option<Vec<u8>> {
    let wrap = |ethertype: [u8; 2], payload: &[u8]| {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype);
        f.extend_from_slice(payload);
        f
    };
    match linktype {
        1 => Some(data.to_vec()),
        101 | 228 => {
            let et = match data.first().map(|b| b >> 4) {
                Some(6) => [0x86, 0xdd],
                _ => [0x08, 0x00],
            };
            Some(wrap(et, data))
        }
        113 if data.len() >= 16 => Some(wrap([data[14], data[15]], &data[16..])),
        _ => None,
    }
}

fn ipv4_src(frame: &[u8]) -> Option<Ipv4Addr> {
    if frame.len() >= 34 && frame[12..14] == [0x08, 0x00] {
        Some(Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]))
    } else {
        None
    }
}

/// Gives each captured frame its ingress device and Ethernet addresses for `host` (see the
/// module comment).
pub fn frames_for_host(
    raw: &[RawFrame],
    host: &Host,
    ingress: &[PcapIngress],
    pcap_dev: Option<&str>,
) -> Result<Vec<CaptureFrame>, String> {
    let t0 = raw.iter().map(|f| f.ts_ns).min().unwrap_or(0);
    let mut out = Vec::with_capacity(raw.len());
    for (i, f) in raw.iter().enumerate() {
        let mut frame = to_ethernet(f.linktype, &f.data)
            .ok_or_else(|| format!("frame {}: link type {} is not supported", i + 1, f.linktype))?;
        if frame.len() < 14 {
            return Err(format!("frame {}: shorter than an Ethernet header", i + 1));
        }
        let src = ipv4_src(&frame);
        let dev = f
            .if_name
            .as_deref()
            .filter(|n| host.interface(n).is_some())
            .map(str::to_string)
            .or_else(|| {
                src.and_then(|s| {
                    ingress
                        .iter()
                        .find(|g| g.src.contains(s))
                        .map(|g| g.dev.clone())
                })
            })
            .or_else(|| pcap_dev.map(str::to_string))
            .ok_or_else(|| {
                format!(
                    "frame {}: no ingress device (name the pcapng interface after an [[interface]], add a [[pcap_ingress]] entry or set pcap_dev)",
                    i + 1
                )
            })?;
        let ifc = host
            .interface(&dev)
            .ok_or_else(|| format!("frame {}: unknown device {dev}", i + 1))?;
        // Unicast frames are addressed to the ingress interface; group addresses are kept.
        if frame[0] & 1 == 0 {
            frame[..6].copy_from_slice(&ifc.mac);
        }
        let smac = match src {
            Some(s) => host.neighbour_mac(&dev, s),
            None => host
                .interface_index(&dev)
                .map(crate::host::default_neighbour_mac),
        };
        if let Some(m) = smac {
            frame[6..12].copy_from_slice(&m);
        }
        out.push(CaptureFrame {
            time_us: ((f.ts_ns - t0) / 1000) as u64,
            dev,
            frame,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Interface;

    fn pcap(le: bool, linktype: u32, frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let w16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut b = Vec::new();
        b.extend_from_slice(&w32(0xa1b2c3d4));
        b.extend_from_slice(&w16(2));
        b.extend_from_slice(&w16(4));
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&w32(65535));
        b.extend_from_slice(&w32(linktype));
        for (s, us, d) in frames {
            b.extend_from_slice(&w32(*s));
            b.extend_from_slice(&w32(*us));
            b.extend_from_slice(&w32(d.len() as u32));
            b.extend_from_slice(&w32(d.len() as u32));
            b.extend_from_slice(d);
        }
        b
    }

    fn ipv4(src: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 20, 0, 1, 0, 0, 64, 17, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&[10, 0, 0, 1]);
        p
    }

    fn host() -> Host {
        Host {
            interfaces: vec![
                Interface {
                    name: "lan0".into(),
                    addresses: vec![Cidr::parse("10.0.0.1/24").unwrap()],
                    mac: [2, 0, 0, 0, 0, 1],
                    mtu: 1500,
                },
                Interface {
                    name: "wan0".into(),
                    addresses: vec![Cidr::parse("192.0.2.1/24").unwrap()],
                    mac: [2, 0, 0, 0, 0, 2],
                    mtu: 1500,
                },
            ],
            ..Host::default()
        }
    }

    #[test]
    fn classic_pcap_both_byte_orders_and_raw_ip() {
        let p1 = ipv4([10, 0, 0, 2]);
        let p2 = ipv4([198, 51, 100, 7]);
        for le in [true, false] {
            let b = pcap(le, 101, &[(100, 5, &p1), (101, 250_005, &p2)]);
            let raw = read_capture(&b).unwrap();
            assert_eq!(raw.len(), 2);
            assert_eq!(raw[1].ts_ns - raw[0].ts_ns, 1_250_000_000);
            let ing = [PcapIngress {
                src: Cidr::parse("198.51.100.0/24").unwrap(),
                dev: "wan0".into(),
            }];
            let f = frames_for_host(&raw, &host(), &ing, Some("lan0")).unwrap();
            assert_eq!(f[0].dev, "lan0");
            assert_eq!(f[1].dev, "wan0");
            assert_eq!(f[1].time_us, 1_250_000);
            assert_eq!(f[0].frame[..12], [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 1]);
            assert_eq!(f[1].frame[..12], [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 1, 2]);
            assert!(f[1].input_text().starts_with("1.250000 wan0 "));
        }
    }

    #[test]
    fn pcapng_interface_names_and_resolution() {
        let le = |v: u32| v.to_le_bytes();
        let mut b = Vec::new();
        // SHB
        b.extend_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        b.extend_from_slice(&le(28));
        b.extend_from_slice(&[0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0]);
        b.extend_from_slice(&[0xff; 8]);
        b.extend_from_slice(&le(28));
        // IDB: linktype 1, name "wan0", tsresol 9 (ns)
        let mut idb_body = vec![1, 0, 0, 0, 0, 0, 0, 0];
        idb_body.extend_from_slice(&[2, 0, 4, 0, b'w', b'a', b'n', b'0']);
        idb_body.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]);
        idb_body.extend_from_slice(&[0, 0, 0, 0]);
        let idb_len = 12 + idb_body.len() as u32;
        b.extend_from_slice(&le(1));
        b.extend_from_slice(&le(idb_len));
        b.extend_from_slice(&idb_body);
        b.extend_from_slice(&le(idb_len));
        // EPB with an Ethernet frame carrying IPv4
        let mut frame = vec![0xff; 6];
        frame.extend_from_slice(&[0xaa; 6]);
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ipv4([198, 51, 100, 7]));
        while frame.len() & 3 != 0 {
            frame.push(0);
        }
        let mut epb = le(0).to_vec();
        epb.extend_from_slice(&le(0));
        epb.extend_from_slice(&le(1_500_000_000));
        epb.extend_from_slice(&le(34));
        epb.extend_from_slice(&le(34));
        epb.extend_from_slice(&frame);
        let epb_len = 12 + epb.len() as u32;
        b.extend_from_slice(&le(6));
        b.extend_from_slice(&le(epb_len));
        b.extend_from_slice(&epb);
        b.extend_from_slice(&le(epb_len));
        let raw = read_capture(&b).unwrap();
        assert_eq!(raw.len(), 1);
        assert_eq!(raw[0].if_name.as_deref(), Some("wan0"));
        assert_eq!(raw[0].ts_ns, 1_500_000_000);
        let f = frames_for_host(&raw, &host(), &[], None).unwrap();
        assert_eq!(f[0].dev, "wan0");
        // Broadcast destination kept, source rewritten.
        assert_eq!(f[0].frame[..6], [0xff; 6]);
        assert_eq!(f[0].frame[6..12], [2, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_capture(b"").is_err());
        assert!(read_capture(b"nope, not a capture").is_err());
        let b = pcap(true, 1, &[(1, 1, &[1, 2, 3])]);
        assert!(read_capture(&b[..b.len() - 1]).is_err());
        let raw = read_capture(&b).unwrap();
        assert!(frames_for_host(&raw, &host(), &[], Some("lan0")).is_err());
        assert!(frames_for_host(&raw, &host(), &[], None).is_err());
        let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a, 200, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a];
        ng.extend_from_slice(&[0; 8]);
        assert!(read_capture(&ng).is_err());
    }
}
