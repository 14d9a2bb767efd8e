//! The conntrack snapshot a graceful stop writes to the store (`conntrack.state`, atomically)
//! and a start restores: TCP and UDP entries with their tuples (NAT included), status, mark,
//! protocol state and remaining timeout. Built over nfrs-conntrack's public API: each entry is
//! re-created by tracking a synthetic locally-sent packet of its original tuple (OUTPUT skips
//! checksum checks, as the kernel does for local packets), then given its saved state and
//! confirmed. Other protocols (ICMP, GRE, SCTP, generic), helpers, expectations and accounting
//! counters are not kept yet.

use nfrs_conntrack::tcp::TcpSide;
use nfrs_conntrack::{
    status, ConnTable, Hook, Nanos, Packet, ProtoState, TcpState, TcpTrack, Tuple,
};
use std::fmt::Write;

/// The snapshot's file name in the store.
pub const FILE: &str = "conntrack.state";
const MAGIC: &str = "# nfrs conntrack snapshot v1";

/// TCP states by their kernel numbers (as `TcpState as u8` writes them).
const TCP_STATES: [TcpState; 10] = [
    TcpState::None,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::Established,
    TcpState::FinWait,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::TimeWait,
    TcpState::Close,
    TcpState::SynSent2,
];

fn push_tuple(out: &mut String, t: &Tuple) {
    let _ = write!(out, " {} {} {} {}", t.src, t.dst, t.src_l4, t.dst_l4);
}

fn push_side(out: &mut String, s: &TcpSide) {
    let _ = write!(
        out,
        " {} {} {} {} {} {}",
        s.td_end, s.td_maxend, s.td_maxwin, s.td_maxack, s.td_scale, s.flags
    );
}

/// Writes the snapshot of `ct` at `now`: one line per confirmed, live TCP/UDP entry.
pub fn save(ct: &ConnTable, now: Nanos) -> (String, usize) {
    let mut out = String::from(MAGIC);
    out.push('\n');
    let mut n = 0;
    for (_, c) in ct.iter() {
        if c.status & status::CONFIRMED == 0 || c.status & status::DYING != 0 || c.is_expired(now) {
            continue;
        }
        let o = &c.tuple[0];
        let head = |out: &mut String, kind: &str| {
            let _ = write!(
                out,
                "{kind} {} {} {} {} {}",
                o.proto,
                c.zone,
                c.status,
                c.mark,
                c.timeout.saturating_sub(now)
            );
            push_tuple(out, &c.tuple[0]);
            push_tuple(out, &c.tuple[1]);
        };
        match &c.proto {
            ProtoState::Tcp(t) => {
                head(&mut out, "tcp");
                let _ = write!(
                    out,
                    " {} {} {} {} {} {} {} {} {} {}",
                    t.state() as u8,
                    t.last_seq,
                    t.last_ack,
                    t.last_end,
                    t.last_win,
                    t.last_index,
                    t.last_dir,
                    t.last_wscale,
                    t.last_flags,
                    t.retrans
                );
                push_side(&mut out, &t.seen[0]);
                push_side(&mut out, &t.seen[1]);
            }
            ProtoState::Udp { stream_ts } if o.proto == 17 => {
                head(&mut out, "udp");
                // The stream rule's start, relative; 0 once passed.
                let _ = write!(out, " {}", stream_ts.saturating_sub(now));
            }
            _ => continue,
        }
        out.push('\n');
        n += 1;
    }
    (out, n)
}

fn nums<T: std::str::FromStr>(it: &mut std::str::SplitWhitespace<'_>) -> Result<T, String> {
    it.next()
        .ok_or("line too short")?
        .parse()
        .map_err(|_| "bad number".to_string())
}

fn tuple(it: &mut std::str::SplitWhitespace<'_>, proto: u8) -> Result<Tuple, String> {
    Ok(Tuple {
        src: nums(it)?,
        dst: nums(it)?,
        src_l4: nums(it)?,
        dst_l4: nums(it)?,
        proto,
    })
}

fn side(it: &mut std::str::SplitWhitespace<'_>) -> Result<TcpSide, String> {
    Ok(TcpSide {
        td_end: nums(it)?,
        td_maxend: nums(it)?,
        td_maxwin: nums(it)?,
        td_maxack: nums(it)?,
        td_scale: nums(it)?,
        flags: nums(it)?,
    })
}

/// Re-creates the snapshot's entries in `ct` at `now`. Returns how many were restored; a line
/// that cannot be restored (clash, table full, corrupt) is reported in the error list and
/// skipped.
pub fn restore(ct: &mut ConnTable, text: &str, now: Nanos) -> (usize, Vec<String>) {
    let mut errs = Vec::new();
    let mut n = 0;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, l)) if l == MAGIC => {}
        _ => return (0, vec!["not an nfrs conntrack snapshot".into()]),
    }
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        match restore_line(ct, line, now) {
            Ok(()) => n += 1,
            Err(e) => errs.push(format!("line {}: {e}", i + 1)),
        }
    }
    (n, errs)
}

fn restore_line(ct: &mut ConnTable, line: &str, now: Nanos) -> Result<(), String> {
    let mut it = line.split_whitespace();
    let kind = it.next().ok_or("empty")?;
    let proto: u8 = nums(&mut it)?;
    let zone: u16 = nums(&mut it)?;
    let st: u16 = nums(&mut it)?;
    let mark: u32 = nums(&mut it)?;
    let remaining: Nanos = nums(&mut it)?;
    let orig = tuple(&mut it, proto)?;
    let reply = tuple(&mut it, proto)?;
    let state = match (kind, proto) {
        ("tcp", 6) => {
            let mut t = TcpTrack::default();
            let s: u8 = nums(&mut it)?;
            t.set_state(*TCP_STATES.get(usize::from(s)).ok_or("bad TCP state")?);
            t.last_seq = nums(&mut it)?;
            t.last_ack = nums(&mut it)?;
            t.last_end = nums(&mut it)?;
            t.last_win = nums(&mut it)?;
            t.last_index = nums(&mut it)?;
            t.last_dir = nums(&mut it)?;
            t.last_wscale = nums(&mut it)?;
            t.last_flags = nums(&mut it)?;
            t.retrans = nums(&mut it)?;
            t.seen = [side(&mut it)?, side(&mut it)?];
            ProtoState::Tcp(t)
        }
        ("udp", 17) => ProtoState::Udp {
            stream_ts: now.saturating_add(nums(&mut it)?),
        },
        _ => return Err(format!("unsupported entry `{kind} {proto}`")),
    };
    if it.next().is_some() {
        return Err("trailing fields".into());
    }
    // A synthetic first packet of the original tuple: a bare SYN, or an empty UDP datagram.
    let mut l4 = [0u8; 20];
    l4[0..2].copy_from_slice(&orig.src_l4.to_be_bytes());
    l4[2..4].copy_from_slice(&orig.dst_l4.to_be_bytes());
    let l4: &[u8] = if proto == 6 {
        l4[12] = 5 << 4;
        l4[13] = 0x02;
        l4[14..16].copy_from_slice(&1024u16.to_be_bytes());
        &l4[..]
    } else {
        l4[4..6].copy_from_slice(&8u16.to_be_bytes());
        &l4[..8]
    };
    let pkt = Packet {
        src: orig.src,
        dst: orig.dst,
        proto,
        later_fragment: false,
        l4,
    };
    let tr = ct.track(&pkt, zone, Hook::LocalOut, now);
    let id = match tr.conn {
        Some(id) if tr.unconfirmed => id,
        Some(_) => return Err("an entry with this tuple exists already".into()),
        None if tr.drop => return Err("table full".into()),
        None => return Err("the tracker refused the entry".into()),
    };
    {
        let c = ct.get_mut(id);
        c.proto = state;
        c.mark = mark;
        c.status = st & !(status::CONFIRMED | status::DYING);
        c.timeout = remaining;
    }
    if reply != ct.get(id).tuple[1] {
        ct.set_reply(id, reply);
    }
    ct.confirm(id, now)
        .map_err(|e| format!("cannot confirm: {e:?}"))?;
    if st & status::SRC_NAT_DONE != 0 {
        ct.nat_bysource_add(id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfrs_conntrack::{CtConfig, Format, Style, SEC};

    fn tcp(src: u32, dst: u32, sp: u16, dp: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
        let mut l4 = vec![0u8; 20];
        l4[0..2].copy_from_slice(&sp.to_be_bytes());
        l4[2..4].copy_from_slice(&dp.to_be_bytes());
        l4[4..8].copy_from_slice(&seq.to_be_bytes());
        l4[8..12].copy_from_slice(&ack.to_be_bytes());
        l4[12] = 5 << 4;
        l4[13] = flags;
        l4[14..16].copy_from_slice(&64000u16.to_be_bytes());
        let c = nfrs_conntrack::table::l4_checksum(src, dst, 6, &l4);
        l4[16..18].copy_from_slice(&c.to_be_bytes());
        l4
    }

    fn feed(ct: &mut ConnTable, src: u32, dst: u32, l4: &[u8], now: Nanos) {
        let p = Packet {
            src,
            dst,
            proto: 6,
            later_fragment: false,
            l4,
        };
        let t = ct.track(&p, 0, Hook::PreRouting, now);
        if t.unconfirmed {
            ct.confirm(t.conn.unwrap(), now).unwrap();
        }
    }

    #[test]
    fn established_tcp_survives_a_restart() {
        let (a, b) = (0x0a00_0102, 0xc633_640a);
        let mut ct = ConnTable::new(CtConfig::default());
        let t0 = 5 * SEC;
        feed(&mut ct, a, b, &tcp(a, b, 40000, 80, 0x02, 100, 0), t0);
        feed(
            &mut ct,
            b,
            a,
            &tcp(b, a, 80, 40000, 0x12, 900, 101),
            t0 + 1000,
        );
        feed(
            &mut ct,
            a,
            b,
            &tcp(a, b, 40000, 80, 0x10, 101, 901),
            t0 + 2000,
        );
        let style = Style {
            format: Format::Conntrack,
            timeout: false,
        };
        let before = ct.listing(t0 + 3000, style);
        assert!(before[0].contains("ESTABLISHED"), "{before:?}");
        let (text, n) = save(&ct, t0 + 3000);
        assert_eq!(n, 1);
        // A new daemon: its clock starts again near zero.
        let mut fresh = ConnTable::new(CtConfig::default());
        let (m, errs) = restore(&mut fresh, &text, 1000);
        assert_eq!((m, errs.len()), (1, 0), "{errs:?}");
        assert_eq!(fresh.listing(1000, style), before);
        let with_timeout = Style {
            format: Format::Conntrack,
            timeout: true,
        };
        assert!(fresh.listing(1000, with_timeout)[0].starts_with("tcp      6 431999 ESTABLISHED"));
        // The restored entry keeps tracking: the next data segment is ESTABLISHED traffic.
        feed(
            &mut fresh,
            a,
            b,
            &tcp(a, b, 40000, 80, 0x18, 101, 901),
            2000,
        );
        assert!(fresh.listing(2000, style)[0].contains("ESTABLISHED"));
        // Restoring twice clashes and says so; a corrupt file is refused.
        let (m2, errs2) = restore(&mut fresh, &text, 3000);
        assert_eq!(m2, 0);
        assert!(errs2[0].contains("exists already"), "{errs2:?}");
        assert_eq!(restore(&mut fresh, "junk\n", 0).0, 0);
        let bad = format!("{MAGIC}\ntcp 6 0 8 0 5\n");
        assert!(restore(&mut fresh, &bad, 0).1[0].contains("line 2"));
    }
}
