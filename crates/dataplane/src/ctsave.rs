//! The conntrack snapshot: a connection table as text (`conntrack.state` in the store, written
//! atomically) and the table re-created from it. A graceful stop of `nfrs run` writes it and
//! the next start restores it; `nfrs replay --store` leaves a scenario's final table in it, and
//! with no daemon the listing commands (`conntrack -L`, `proc net/nf_conntrack`) read it.
//!
//! Every protocol's entries are kept — tuples (NAT included), status, mark, zone, protocol
//! state, helper, accounting counters, remaining timeout, the master of an expected
//! connection — and the pending expectations. Built over nfrs-conntrack's public API: each
//! entry is re-created by tracking a synthetic locally-sent packet of its original tuple
//! (OUTPUT skips checksum checks, as the kernel does for local packets), then given its saved
//! state and confirmed. An expected connection is re-created through a short-lived expectation
//! of its master, so the master link (and the master's `use=`) come back too. Accounting
//! counters cannot be set through the table's API: they come back beside the table
//! ([`Restored::acct`]). Helper sequence adjustment and stateful-match state are not kept.

use nfrs_conntrack::sctp::SctpTrack;
use nfrs_conntrack::tcp::TcpSide;
use nfrs_conntrack::{
    status, ConnId, ConnTable, CtConfig, Dir, Expectation, Hook, Nanos, Packet, ProtoState,
    TcpState, TcpTrack, Tuple, SEC,
};
use std::fmt::Write;

/// The snapshot's file name in the store.
pub const FILE: &str = "conntrack.state";
const MAGIC_V1: &str = "# nfrs conntrack snapshot v1";
const MAGIC: &str = "# nfrs conntrack snapshot v2";

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

/// Writes the snapshot of `ct` at `now` and returns it with its number of connections: one
/// `conn` line per confirmed, live entry (a master before the connections it expected), then
/// one `expect` line per pending expectation.
pub fn save(ct: &ConnTable, now: Nanos) -> (String, usize) {
    save_with(ct, now, None)
}

/// [`save`], with the counters kept beside a restored table (`saved`) taking precedence over
/// the table's own.
pub fn save_with(ct: &ConnTable, now: Nanos, saved: Option<&Restored>) -> (String, usize) {
    let live: Vec<ConnId> = ct
        .iter()
        .filter(|(_, c)| {
            c.status & status::CONFIRMED != 0 && c.status & status::DYING == 0 && !c.is_expired(now)
        })
        .map(|(id, _)| id)
        .collect();
    // Masters first: an entry is written once its master is (or when its master is gone).
    let mut order: Vec<ConnId> = Vec::with_capacity(live.len());
    let mut line_of: std::collections::HashMap<ConnId, usize> = Default::default();
    let mut left = live.clone();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|&id| {
            let ready = match ct.get(id).master() {
                Some(m) => line_of.contains_key(&m) || !live.contains(&m),
                None => true,
            };
            if ready {
                line_of.insert(id, order.len());
                order.push(id);
            }
            !ready
        });
        if left.len() == before {
            // A cycle cannot happen (a master predates its children); write the rest anyway.
            for id in left.drain(..) {
                line_of.insert(id, order.len());
                order.push(id);
            }
        }
    }
    let mut out = String::from(MAGIC);
    out.push('\n');
    for &id in &order {
        let c = ct.get(id);
        let _ = write!(
            out,
            "conn {} {} {} {} {}",
            c.tuple[0].proto,
            c.zone,
            c.status,
            c.mark,
            c.timeout.saturating_sub(now)
        );
        push_tuple(&mut out, &c.tuple[0]);
        push_tuple(&mut out, &c.tuple[1]);
        let _ = write!(out, " {}", ct.helper(id));
        match c.master().and_then(|m| line_of.get(&m)) {
            Some(l) => {
                let _ = write!(out, " {l}");
            }
            None => out.push_str(" -"),
        }
        match saved
            .and_then(|r| r.counters(id))
            .or_else(|| ct.counters(id))
        {
            Some(a) => {
                let _ = write!(out, " {},{},{},{}", a[0], a[1], a[2], a[3]);
            }
            None => out.push_str(" -"),
        }
        match &c.proto {
            ProtoState::Tcp(t) => {
                let _ = write!(
                    out,
                    " tcp {} {} {} {} {} {} {} {} {} {}",
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
            // The stream rule's start, relative; 0 once passed.
            ProtoState::Udp { stream_ts } => {
                let _ = write!(out, " udp {}", stream_ts.saturating_sub(now));
            }
            ProtoState::Gre {
                timeout,
                stream_timeout,
            } => {
                let _ = write!(out, " gre {timeout} {stream_timeout}");
            }
            ProtoState::Sctp(s) => {
                let _ = write!(
                    out,
                    " sctp {} {} {} {} {} {} {}",
                    s.state,
                    s.vtag[0],
                    s.vtag[1],
                    u8::from(s.init[0]),
                    u8::from(s.init[1]),
                    u8::from(s.hb_failed),
                    s.last_dir
                );
            }
            ProtoState::None => out.push_str(" none"),
        }
        out.push('\n');
    }
    for e in ct.expectations(now) {
        let Some(&m) = line_of.get(&e.master) else {
            continue;
        };
        let t = &e.tuple;
        let k = &e.mask;
        let _ = writeln!(
            out,
            "expect {} {} {} {} {} {} {} {} {} {} {} {m} {} {} {} {} {} {} {}",
            e.zone,
            t.proto,
            t.src,
            t.dst,
            t.src_l4,
            t.dst_l4,
            k.src,
            k.dst,
            k.src_l4,
            k.dst_l4,
            k.proto,
            e.helper,
            e.child_helper,
            e.class,
            e.flags,
            e.dir.index(),
            e.saved_proto,
            e.timeout.saturating_sub(now)
        );
    }
    (out, order.len())
}

/// What [`restore`] re-created.
#[derive(Debug, Default)]
pub struct Restored {
    /// Connections restored.
    pub n: usize,
    /// Expectations restored.
    pub expects: usize,
    /// Lines that could not be restored (clash, table full, corrupt), with their line number.
    pub errs: Vec<String>,
    /// The saved accounting counters of restored connections (orig packets, orig bytes, reply
    /// packets, reply bytes); the table's own counters restart.
    pub acct: Vec<(ConnId, [u64; 4])>,
}

impl Restored {
    /// The saved counters of `id`, if it had some.
    pub fn counters(&self, id: ConnId) -> Option<[u64; 4]> {
        self.acct.iter().find(|(i, _)| *i == id).map(|&(_, a)| a)
    }
}

type Fields<'a> = std::str::SplitWhitespace<'a>;

fn num<T: std::str::FromStr>(it: &mut Fields<'_>) -> Result<T, String> {
    let f = it.next().ok_or("line too short")?;
    f.parse().map_err(|_| format!("bad number `{f}`"))
}

fn tuple(it: &mut Fields<'_>, proto: u8) -> Result<Tuple, String> {
    Ok(Tuple {
        src: num(it)?,
        dst: num(it)?,
        src_l4: num(it)?,
        dst_l4: num(it)?,
        proto,
    })
}

fn side(it: &mut Fields<'_>) -> Result<TcpSide, String> {
    Ok(TcpSide {
        td_end: num(it)?,
        td_maxend: num(it)?,
        td_maxwin: num(it)?,
        td_maxack: num(it)?,
        td_scale: num(it)?,
        flags: num(it)?,
    })
}

fn flag(it: &mut Fields<'_>) -> Result<bool, String> {
    match num::<u8>(it)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err("bad flag".into()),
    }
}

/// Re-creates the snapshot's connections and expectations in `ct` at `now` (remaining
/// timeouts count from `now`). A line that cannot be restored is reported and skipped.
pub fn restore(ct: &mut ConnTable, text: &str, now: Nanos) -> Restored {
    let mut r = Restored::default();
    let mut lines = text.lines().enumerate();
    let v1 = match lines.next() {
        Some((_, l)) if l == MAGIC => false,
        Some((_, l)) if l == MAGIC_V1 => true,
        _ => {
            r.errs.push("not an nfrs conntrack snapshot".into());
            return r;
        }
    };
    // Slot of each `conn` line (None when it was not restored), for masters.
    let mut ids: Vec<Option<ConnId>> = Vec::new();
    let mut expects = Vec::new();
    for (i, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("expect ") {
            expects.push((i, rest));
            continue;
        }
        // A v1 line (`tcp|udp` + 13 fields + state) is a v2 line without helper, master and
        // counters.
        let v2;
        let body = if v1 {
            let mut f = line.split_whitespace();
            let kind = f.next().unwrap_or("");
            let head: Vec<&str> = f.by_ref().take(13).collect();
            let tail: Vec<&str> = f.collect();
            v2 = format!("{} 0 - - {kind} {}", head.join(" "), tail.join(" "));
            v2.as_str()
        } else if let Some(b) = line.strip_prefix("conn ") {
            b
        } else {
            r.errs.push(format!("line {}: unknown record", i + 1));
            ids.push(None);
            continue;
        };
        match restore_conn(ct, body, &ids, now) {
            Ok((id, acct)) => {
                r.n += 1;
                ids.push(Some(id));
                if let Some(a) = acct {
                    r.acct.push((id, a));
                }
            }
            Err(e) => {
                r.errs.push(format!("line {}: {e}", i + 1));
                ids.push(None);
            }
        }
    }
    // The stand-in expectations of expected connections that did not come back go now.
    ct.expect_expire(now + SEC);
    for (i, body) in expects {
        match restore_expect(ct, body, &ids, now) {
            Ok(()) => r.expects += 1,
            Err(e) => r.errs.push(format!("line {}: {e}", i + 1)),
        }
    }
    r
}

/// A fresh table (no size limit) holding the snapshot `text`, as of `now`.
pub fn load_table(text: &str, now: Nanos) -> (ConnTable, Restored) {
    let cfg = CtConfig {
        max: 0,
        ..CtConfig::default()
    };
    let mut ct = ConnTable::new(cfg);
    let r = restore(&mut ct, text, now);
    (ct, r)
}

/// Parses the state fields of `kind` (the rest of a `conn` line).
fn proto_state(kind: &str, it: &mut Fields<'_>, now: Nanos) -> Result<ProtoState, String> {
    Ok(match kind {
        "tcp" => {
            let mut t = TcpTrack::default();
            let s: u8 = num(it)?;
            t.set_state(*TCP_STATES.get(usize::from(s)).ok_or("bad TCP state")?);
            t.last_seq = num(it)?;
            t.last_ack = num(it)?;
            t.last_end = num(it)?;
            t.last_win = num(it)?;
            t.last_index = num(it)?;
            t.last_dir = num(it)?;
            t.last_wscale = num(it)?;
            t.last_flags = num(it)?;
            t.retrans = num(it)?;
            t.seen = [side(it)?, side(it)?];
            ProtoState::Tcp(t)
        }
        "udp" => ProtoState::Udp {
            stream_ts: now.saturating_add(num(it)?),
        },
        "gre" => ProtoState::Gre {
            timeout: num(it)?,
            stream_timeout: num(it)?,
        },
        "sctp" => ProtoState::Sctp(SctpTrack {
            state: num(it)?,
            vtag: [num(it)?, num(it)?],
            init: [flag(it)?, flag(it)?],
            hb_failed: flag(it)?,
            last_dir: num(it)?,
        }),
        "none" => ProtoState::None,
        k => return Err(format!("unknown state kind `{k}`")),
    })
}

/// The transport bytes of a first packet that makes the tracker create an entry with
/// original tuple `t`: a bare SYN, an empty datagram, an ICMP query, a GRE header, an SCTP
/// INIT, or nothing for the generic tracker.
fn synthetic_l4(t: &Tuple, buf: &mut [u8; 32]) -> Result<usize, String> {
    buf.fill(0);
    let ports = |buf: &mut [u8; 32]| {
        buf[0..2].copy_from_slice(&t.src_l4.to_be_bytes());
        buf[2..4].copy_from_slice(&t.dst_l4.to_be_bytes());
    };
    Ok(match t.proto {
        6 => {
            ports(buf);
            buf[12] = 5 << 4;
            buf[13] = 0x02;
            buf[14..16].copy_from_slice(&1024u16.to_be_bytes());
            20
        }
        17 => {
            ports(buf);
            buf[4..6].copy_from_slice(&8u16.to_be_bytes());
            8
        }
        136 => {
            // UDP-Lite: coverage 0 (all), a checksum present (not verified on OUTPUT).
            ports(buf);
            buf[6..8].copy_from_slice(&0xffffu16.to_be_bytes());
            8
        }
        1 => {
            let ty = (t.dst_l4 >> 8) as u8;
            if !matches!(ty, 8 | 13 | 15 | 17) {
                return Err(format!("ICMP type {ty} cannot start a connection"));
            }
            buf[0] = ty;
            buf[1] = t.dst_l4 as u8;
            buf[4..6].copy_from_slice(&t.src_l4.to_be_bytes());
            8
        }
        47 if t.dst_l4 != 0 => {
            // GRE version 1 (PPTP) with a key: the call id is the destination key.
            buf[0] = 0x20;
            buf[1] = 0x01;
            buf[2..4].copy_from_slice(&0x880bu16.to_be_bytes());
            buf[6..8].copy_from_slice(&t.dst_l4.to_be_bytes());
            8
        }
        47 => {
            buf[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
            4
        }
        132 => {
            // Common header with verification tag 0, then one INIT chunk.
            ports(buf);
            buf[12] = 1;
            buf[14..16].copy_from_slice(&20u16.to_be_bytes());
            buf[16..20].copy_from_slice(&1u32.to_be_bytes());
            buf[20..24].copy_from_slice(&65535u32.to_be_bytes());
            buf[24..26].copy_from_slice(&1u16.to_be_bytes());
            buf[26..28].copy_from_slice(&1u16.to_be_bytes());
            buf[28..32].copy_from_slice(&1u32.to_be_bytes());
            32
        }
        _ => 0,
    })
}

fn all_ones() -> Tuple {
    Tuple {
        src: u32::MAX,
        dst: u32::MAX,
        src_l4: u16::MAX,
        dst_l4: u16::MAX,
        proto: u8::MAX,
    }
}

type ConnOut = (ConnId, Option<[u64; 4]>);

fn restore_conn(
    ct: &mut ConnTable,
    body: &str,
    ids: &[Option<ConnId>],
    now: Nanos,
) -> Result<ConnOut, String> {
    let mut it = body.split_whitespace();
    let proto: u8 = num(&mut it)?;
    let zone: u16 = num(&mut it)?;
    let st: u16 = num(&mut it)?;
    let mark: u32 = num(&mut it)?;
    let remaining: Nanos = num(&mut it)?;
    let orig = tuple(&mut it, proto)?;
    let reply = tuple(&mut it, proto)?;
    let helper: u8 = num(&mut it)?;
    let master = match it.next().ok_or("line too short")? {
        "-" => None,
        m => {
            let l: usize = m.parse().map_err(|_| format!("bad master `{m}`"))?;
            Some(
                ids.get(l)
                    .copied()
                    .flatten()
                    .ok_or("its master was not restored")?,
            )
        }
    };
    let acct = match it.next().ok_or("line too short")? {
        "-" => None,
        a => {
            let v: Vec<u64> = a
                .split(',')
                .map(|x| x.parse().map_err(|_| format!("bad counters `{a}`")))
                .collect::<Result<_, _>>()?;
            Some(<[u64; 4]>::try_from(v).map_err(|_| format!("bad counters `{a}`"))?)
        }
    };
    let kind = it.next().ok_or("line too short")?;
    let state = proto_state(kind, &mut it, now)?;
    if it.next().is_some() {
        return Err("trailing fields".into());
    }
    if let Some(m) = master {
        // A stand-in expectation exactly for this tuple: tracking the synthetic packet then
        // links the new entry to its master, as the real expectation did.
        let e = Expectation {
            tuple: orig,
            mask: all_ones(),
            master: m,
            helper: 0,
            child_helper: helper,
            class: 0,
            flags: 0,
            dir: Dir::Original,
            saved_proto: 0,
            timeout: 0,
            zone,
        };
        ct.expect_add(e, 1, now);
    }
    let mut buf = [0u8; 32];
    let n = synthetic_l4(&orig, &mut buf)?;
    let pkt = Packet {
        src: orig.src,
        dst: orig.dst,
        proto,
        later_fragment: false,
        l4: &buf[..n],
    };
    let tr = ct.track(&pkt, zone, Hook::LocalOut, now);
    let id = match tr.conn {
        Some(id) if tr.unconfirmed => id,
        Some(_) => return Err("an entry with this tuple exists already".into()),
        None if tr.drop => return Err("table full".into()),
        None => return Err("the tracker refused the entry".into()),
    };
    if ct.get(id).tuple[0] != orig {
        ct.discard(id);
        return Err("the original tuple cannot be re-created".into());
    }
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
    ct.set_helper(id, helper);
    if st & status::SRC_NAT_DONE != 0 {
        ct.nat_bysource_add(id);
    }
    Ok((id, acct))
}

fn restore_expect(
    ct: &mut ConnTable,
    body: &str,
    ids: &[Option<ConnId>],
    now: Nanos,
) -> Result<(), String> {
    let mut it = body.split_whitespace();
    let zone: u16 = num(&mut it)?;
    let proto: u8 = num(&mut it)?;
    let t = tuple(&mut it, proto)?;
    let mask = Tuple {
        src: num(&mut it)?,
        dst: num(&mut it)?,
        src_l4: num(&mut it)?,
        dst_l4: num(&mut it)?,
        proto: num(&mut it)?,
    };
    let m: usize = num(&mut it)?;
    let master = ids
        .get(m)
        .copied()
        .flatten()
        .ok_or("its master was not restored")?;
    let e = Expectation {
        tuple: t,
        mask,
        master,
        helper: num(&mut it)?,
        child_helper: num(&mut it)?,
        class: num(&mut it)?,
        flags: num(&mut it)?,
        dir: match num::<u8>(&mut it)? {
            0 => Dir::Original,
            1 => Dir::Reply,
            _ => return Err("bad direction".into()),
        },
        saved_proto: num(&mut it)?,
        timeout: 0,
        zone,
    };
    let remaining: Nanos = num(&mut it)?;
    if it.next().is_some() {
        return Err("trailing fields".into());
    }
    // Whole seconds (what the listings print); the fraction is lost.
    let secs = u32::try_from(remaining / SEC).map_err(|_| "bad timeout")?;
    ct.expect_add(e, secs, now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfrs_conntrack::{ExpectFormat, Format, Style};

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
        let r = restore(&mut fresh, &text, 1000);
        assert_eq!((r.n, r.errs.len()), (1, 0), "{:?}", r.errs);
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
        let r2 = restore(&mut fresh, &text, 3000);
        assert_eq!(r2.n, 0);
        assert!(r2.errs[0].contains("exists already"), "{:?}", r2.errs);
        assert_eq!(restore(&mut fresh, "junk\n", 0).n, 0);
        let bad = format!("{MAGIC}\nconn 6 0 8 0 5\n");
        assert!(restore(&mut fresh, &bad, 0).errs[0].contains("line 2"));
        // A v1 snapshot (written by an older nfrs run) still restores.
        let v1 = text
            .replace(MAGIC, MAGIC_V1)
            .replace("conn 6 ", "tcp 6 ")
            .replace(" 0 - - tcp ", " ");
        let mut older = ConnTable::new(CtConfig::default());
        let r3 = restore(&mut older, &v1, 1000);
        assert_eq!((r3.n, r3.errs.len()), (1, 0), "{:?} {v1}", r3.errs);
        assert_eq!(older.listing(1000, style), before);
    }

    fn track_any(ct: &mut ConnTable, src: u32, dst: u32, proto: u8, l4: &[u8], now: Nanos) {
        let p = Packet {
            src,
            dst,
            proto,
            later_fragment: false,
            l4,
        };
        let t = ct.track(&p, 0, Hook::LocalOut, now);
        assert!(t.conn.is_some(), "proto {proto} refused");
        if t.unconfirmed {
            ct.confirm(t.conn.unwrap(), now).unwrap();
        }
    }

    fn all_styles(ct: &ConnTable, now: Nanos) -> Vec<String> {
        let mut v = Vec::new();
        for format in [Format::Proc, Format::Conntrack, Format::ConntrackExtended] {
            v.extend(ct.listing(
                now,
                Style {
                    format,
                    timeout: true,
                },
            ));
        }
        v
    }

    #[test]
    fn every_protocol_expectations_and_counters_survive() {
        let (a, b) = (0x0a00_0002u32, 0xc633_6407u32);
        let cfg = CtConfig {
            acct: true,
            ..CtConfig::default()
        };
        let mut ct = ConnTable::new(cfg);
        let t0 = 3 * SEC;
        // ICMP echo, answered.
        let echo = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1];
        track_any(&mut ct, a, b, 1, &echo, t0);
        let answer = [0u8, 0, 0, 0, 0x12, 0x34, 0, 1];
        track_any(&mut ct, b, a, 1, &answer, t0 + 1000);
        // UDP-Lite, GRE v0, GRE v1 with a key, SCTP INIT, a generic protocol.
        let mut ul = [0u8; 8];
        ul[0..2].copy_from_slice(&7000u16.to_be_bytes());
        ul[2..4].copy_from_slice(&7001u16.to_be_bytes());
        ul[6] = 1;
        track_any(&mut ct, a, b, 136, &ul, t0);
        track_any(&mut ct, a, b, 47, &[0, 0, 8, 0], t0);
        track_any(
            &mut ct,
            a,
            b + 1,
            47,
            &[0x20, 1, 0x88, 0x0b, 0, 0, 0, 9],
            t0,
        );
        let mut init = [0u8; 32];
        let t = Tuple::ports(132, a, 5000, b, 5001);
        let n = synthetic_l4(&t, &mut init).unwrap();
        track_any(&mut ct, a, b, 132, &init[..n], t0);
        track_any(&mut ct, a, b, 89, &[0u8; 12], t0);
        // An FTP-like master with a helper, an expectation, and one expected connection.
        let c0 = tcp(a, b, 40000, 21, 0x02, 100, 0);
        feed(&mut ct, a, b, &c0, t0);
        let master = ct
            .iter()
            .find(|(_, c)| c.tuple[0].dst_l4 == 21)
            .map(|(id, _)| id)
            .unwrap();
        ct.set_helper(master, 1);
        ct.get_mut(master).mark = 7;
        let offer = |port: u16| Expectation {
            tuple: Tuple::ports(6, b, 0, a, port),
            mask: Tuple {
                src: u32::MAX,
                dst: u32::MAX,
                src_l4: 0,
                dst_l4: u16::MAX,
                proto: u8::MAX,
            },
            master,
            helper: 1,
            child_helper: 0,
            class: 0,
            flags: 0,
            dir: Dir::Original,
            saved_proto: 0,
            timeout: 0,
            zone: 0,
        };
        ct.expect_add(offer(5000), 300, t0);
        ct.expect_add(offer(5001), 300, t0);
        feed(&mut ct, b, a, &tcp(b, a, 20, 5001, 0x02, 7, 0), t0 + 5000);
        let now = t0 + 2 * SEC + 5;
        let before = all_styles(&ct, now);
        assert!(
            before.iter().any(|l| l.contains("helper=ftp")),
            "{before:?}"
        );
        assert!(before
            .iter()
            .any(|l| l.contains("dport=21 ") && l.contains("use=2")));
        assert!(before.iter().any(|l| l.contains("packets=")));
        let exp_before = ct.expect_listing(now, ExpectFormat::Conntrack, true);
        assert_eq!(exp_before.len(), 1);
        let (text, n) = save(&ct, now);
        assert_eq!(n, 8, "{text}");
        // Another clock: the restored table is listed at its own `now`.
        let later = 77 * SEC;
        let (fresh, r) = load_table(&text, later);
        assert_eq!((r.n, r.expects, r.errs.len()), (8, 1, 0), "{:?}", r.errs);
        // Counters come back beside the table; with them the listings are identical.
        let mut after = Vec::new();
        for format in [Format::Proc, Format::Conntrack, Format::ConntrackExtended] {
            let style = Style {
                format,
                timeout: true,
            };
            let mut v: Vec<String> = fresh
                .iter()
                .map(|(id, c)| {
                    let refs =
                        1 + fresh.iter().filter(|(_, k)| k.master() == Some(id)).count() as u32;
                    let mut s = String::new();
                    let _ = nfrs_conntrack::listing::write_line_refs(
                        &mut s,
                        c,
                        fresh.helper(id),
                        r.counters(id),
                        refs,
                        later,
                        style,
                    );
                    s
                })
                .collect();
            v.sort();
            after.extend(v);
        }
        assert_eq!(after, before);
        assert_eq!(
            fresh.expect_listing(later, ExpectFormat::Conntrack, true),
            exp_before
        );
        // Saving the restored table again gives the same snapshot (counters aside).
        let (again, _) = save(&fresh, later);
        // Counters (field 16) restart in the table; expectations keep whole seconds.
        let strip = |t: &str| -> Vec<String> {
            t.lines()
                .map(|l| {
                    let f: Vec<String> = l.split(' ').map(str::to_string).collect();
                    let last = f.len() - 1;
                    f.iter()
                        .enumerate()
                        .map(|(i, x)| match (l.starts_with("conn"), i) {
                            (true, 16) => "-".to_string(),
                            (false, i) if i == last && l.starts_with("expect") => {
                                (x.parse::<u64>().unwrap() / SEC).to_string()
                            }
                            _ => x.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        };
        assert_eq!(strip(&again), strip(&text));
    }
}
