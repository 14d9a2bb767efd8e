//! Connection tracking helpers and their NAT side, as Linux runs them at confirm time (the end
//! of POSTROUTING and INPUT): the helper reads the payload, announces an expected connection,
//! and behind NAT rewrites the address in the payload; a length change is then carried by
//! sequence adjustment on every later packet of the connection (nf_conntrack_seqadj).
//!
//! IRC (nf_conntrack_irc + nf_nat_irc): `\1DCC SEND|CHAT|MOVE|TSEND|SCHAT <name> <ip> <port>`
//! in the client's direction. FTP (nf_conntrack_ftp + nf_nat_ftp): `PORT`/`EPRT` from the
//! client and `227`/`229` from the server, parsed only right after a newline.
//!
//! Division of labour: the payload parsers, the NAT texts, sequence adjustment and the FTP
//! newline memory are nfrs-helpers'; the expectations live in nfrs-conntrack's table
//! ([`ConnTable::expect_add_limited`]: per-master limit evicting the oldest), because the
//! table is what removes a master's expectations with it on every path (expiry, flush, kill,
//! the daemon's own timers); this module decides what to expect, clashes (drop) and the NAT
//! port search, and rewrites DCC RESUME/ACCEPT through NAT ([`DccPorts`], beyond the kernel).

use nfrs_conntrack::expect::Expectation;
use nfrs_conntrack::{status, ConnId, ConnTable, Dir, Nanos, Tuple};
use nfrs_helpers::ftp::FtpInfo;
use nfrs_helpers::irc::ResumeKind;
use nfrs_helpers::SeqAdj;
use nfrs_nat::RandomSource;
use std::collections::HashMap;

/// Helper ids (indexes of `nfrs_conntrack::expect::HELPER_NAMES`).
pub const FTP: u8 = 1;
/// IRC.
pub const IRC: u8 = 2;

/// Kernel default dcc_timeout: 300 s.
const DCC_TIMEOUT: u32 = 300;
/// Kernel rule: the FTP helper keeps one pending expectation per control connection.
const FTP_MAX_EXPECTED: usize = 1;
/// Kernel rule: the IRC helper keeps `max_dcc_channels` (8) pending offers per connection.
const IRC_MAX_EXPECTED: usize = 8;

/// Helpers' state beside the connection table: sequence adjustments per connection.
#[derive(Debug, Default)]
pub struct Helpers {
    /// Per connection (checked against its original tuple, as slots are reused), per
    /// direction.
    pub seqadj: HashMap<ConnId, (Tuple, SeqAdj)>,
    /// FTP helper memory per connection (checked against its original tuple).
    pub ftp: HashMap<ConnId, (Tuple, FtpInfo)>,
    /// DCC ports the IRC NAT side moved, per connection (checked against its original tuple).
    pub dcc: HashMap<ConnId, (Tuple, DccPorts)>,
}

/// Beyond the kernel (issue 6, FAQ 3.4): the DCC ports a NATed IRC connection had to move
/// because the offered one was taken, as (port the client offered, port the peer was told),
/// newest last, the last [`DccPorts::KEEP`] of them. DCC RESUME from the peer names the told
/// port and DCC ACCEPT from the client the offered one; each is translated so that a resumed
/// transfer reaches the right side. When no port moved, nothing is rewritten (as the kernel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DccPorts {
    map: [(u16, u16); DccPorts::KEEP],
    n: usize,
}

impl DccPorts {
    /// How many moves are remembered (as many as pending offers: `max_dcc_channels`).
    pub const KEEP: usize = IRC_MAX_EXPECTED;

    /// Remembers that the offered port `offered` was announced to the peer as `told`.
    pub fn remember(&mut self, offered: u16, told: u16) {
        if self.n == Self::KEEP {
            self.map.copy_within(1.., 0);
            self.n -= 1;
        }
        self.map[self.n] = (offered, told);
        self.n += 1;
    }

    /// The port a RESUME (from the peer, reply direction) or ACCEPT (from the client,
    /// original direction) naming `port` must carry instead; `None`: leave it.
    pub fn translate(&self, dir: Dir, kind: ResumeKind, port: u16) -> Option<u16> {
        let map = self.map[..self.n].iter().rev();
        match (dir, kind) {
            (Dir::Reply, ResumeKind::Resume) => map
                .clone()
                .find(|&&(_, told)| told == port)
                .map(|&(offered, _)| offered),
            (Dir::Original, ResumeKind::Accept) => map
                .clone()
                .find(|&&(offered, _)| offered == port)
                .map(|&(_, told)| told),
            _ => None,
        }
    }
}

impl Helpers {
    /// Records a length change `off` at sequence `seq` in direction `dir` of `id`
    /// ([`SeqAdj::set`]).
    pub fn seqadj_set(&mut self, id: ConnId, orig: Tuple, dir: Dir, seq: u32, off: i32) {
        if off == 0 {
            return;
        }
        let e = self.seqadj.entry(id).or_insert((orig, SeqAdj::default()));
        if e.0 != orig {
            *e = (orig, SeqAdj::default());
        }
        e.1.set(dir, seq, off);
    }

    fn adj(&self, id: ConnId, orig: &Tuple) -> Option<&SeqAdj> {
        self.seqadj.get(&id).filter(|e| e.0 == *orig).map(|e| &e.1)
    }

    /// Kernel rule (nf_ct_seq_adjust): the new (seq, ack) of a packet of `id` going `dir`.
    pub fn adjust(
        &self,
        id: ConnId,
        orig: &Tuple,
        dir: Dir,
        seq: u32,
        ack: Option<u32>,
    ) -> Option<(u32, Option<u32>)> {
        let a = self.adj(id, orig)?;
        Some((a.adjust_seq(dir, seq), ack.map(|k| a.adjust_ack(dir, k))))
    }

    /// Kernel rule (nf_ct_sack_adjust): a SACK edge of a packet going `dir`, moved into the
    /// other direction's adjusted sequence space like the acknowledgment.
    pub fn adjust_sack_edge(&self, id: ConnId, orig: &Tuple, dir: Dir, edge: u32) -> u32 {
        self.adj(id, orig).map_or(edge, |a| a.adjust_ack(dir, edge))
    }

    /// Kernel rule (tcp_in_window's receiver offset): the acknowledgment a packet going `dir`
    /// carries, in the other direction's unadjusted sequence space.
    pub fn ack_for_tracking(&self, id: ConnId, orig: &Tuple, dir: Dir, ack: u32) -> u32 {
        self.adj(id, orig).map_or(ack, |a| {
            ack.wrapping_sub(a.seq_offset(dir.flip(), ack.wrapping_sub(1)) as u32)
        })
    }

    /// Forgets a connection.
    pub fn forget(&mut self, id: ConnId) {
        self.seqadj.remove(&id);
        self.ftp.remove(&id);
        self.dcc.remove(&id);
    }
}

/// Rewrites `buf`'s TCP payload bytes `[beg, end)` (payload offsets) with `text`, fixing the
/// IP total length and both checksums (nf_nat_mangle_tcp_packet). Returns the length change.
pub fn mangle_tcp_payload(buf: &mut Vec<u8>, beg: usize, end: usize, text: &[u8]) -> Option<i32> {
    let ihl = usize::from(buf.first()? & 0x0f) * 4;
    let doff = usize::from(buf.get(ihl + 12)? >> 4) * 4;
    let at = ihl + doff;
    if at + end > buf.len() || beg > end {
        return None;
    }
    buf.splice(at + beg..at + end, text.iter().copied());
    let tot = buf.len() as u16;
    buf[2..4].copy_from_slice(&tot.to_be_bytes());
    buf[10] = 0;
    buf[11] = 0;
    let c = nfrs_wire::checksum::checksum(&buf[..ihl]);
    buf[10..12].copy_from_slice(&c.to_be_bytes());
    let src = std::net::Ipv4Addr::from(u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]));
    let dst = std::net::Ipv4Addr::from(u32::from_be_bytes([buf[16], buf[17], buf[18], buf[19]]));
    buf[ihl + 16] = 0;
    buf[ihl + 17] = 0;
    let c = nfrs_wire::checksum::transport_checksum(src, dst, 6, &buf[ihl..]);
    buf[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
    Some(text.len() as i32 - (end - beg) as i32)
}

/// What the IRC helper did to a packet.
#[derive(Debug, Default)]
pub struct HelpOutcome {
    /// The payload was rewritten (length change for sequence adjustment).
    pub mangled: Option<i32>,
    /// Kernel messages (forged DCC offers).
    pub logs: Vec<String>,
    /// The helper drops the packet (its expectation clashes with another master's, or no
    /// port is free behind NAT).
    pub drop: bool,
}

/// The IRC helper on a packet of `id` going `dir` (ESTABLISHED): in the client's direction
/// announces the DCC connection; behind NAT rewrites its address to the NAT address and moves
/// the port to a free one. Beyond the kernel, behind NAT, DCC RESUME/ACCEPT naming a moved
/// port are translated in both directions ([`DccPorts`]).
pub fn irc_help(
    ct: &mut ConnTable,
    helpers: &mut Helpers,
    id: ConnId,
    dir: Dir,
    buf: &mut Vec<u8>,
    now: Nanos,
    rng: &mut dyn RandomSource,
) -> HelpOutcome {
    let mut out = HelpOutcome::default();
    let ihl = usize::from(buf[0] & 0x0f) * 4;
    let Some(&off) = buf.get(ihl + 12) else {
        return out;
    };
    let at = ihl + usize::from(off >> 4) * 4;
    let tot = usize::from(u16::from_be_bytes([buf[2], buf[3]])).min(buf.len());
    if at >= tot {
        return out;
    }
    let c = *ct.get(id);
    if dir == Dir::Reply {
        // The kernel looks only at the client's packets.
        out.mangled = resume_nat(helpers, &c, id, dir, buf, at, tot);
        return out;
    }
    let data = &buf[at..tot];
    let t = c.tuple[dir.index()];
    let nat_addr = c.tuple[dir.flip().index()].dst;
    // The 6.18 parser (nfrs-helpers): a PRIVMSG whose message starts with `\1DCC `; offers
    // naming neither of the client's addresses (or port 0) are forged and logged.
    let mut forged = Vec::new();
    let offer = nfrs_helpers::irc::find_offer(data, t.src, nat_addr, &mut |ip, port| {
        forged.push((ip, port));
    });
    for (ip, port) in forged {
        out.logs.push(
            nfrs_helpers::HelperLog::ForgedDcc {
                from: t.src,
                ip,
                port,
            }
            .to_string(),
        );
    }
    let Some(o) = offer else {
        out.mangled = resume_nat(helpers, &c, id, dir, buf, at, tot);
        return out;
    };
    let other = c.tuple[dir.flip().index()];
    let mut e = Expectation {
        tuple: Tuple::ports(6, 0, 0, other.dst, o.port),
        mask: Tuple {
            src: 0,
            dst: u32::MAX,
            src_l4: 0,
            dst_l4: u16::MAX,
            proto: u8::MAX,
        },
        master: id,
        helper: IRC,
        child_helper: 0,
        class: 0,
        flags: 0,
        dir: Dir::Original,
        saved_proto: 0,
        timeout: 0,
        zone: c.zone,
    };
    if c.status & status::NAT_MASK == 0 {
        // Kernel rule: "cannot add expectation" (another master's) drops the packet.
        if clashes(ct, &e, now) {
            out.drop = true;
        } else {
            ct.expect_add_limited(e, DCC_TIMEOUT, now, IRC_MAX_EXPECTED);
        }
        return out;
    }
    // nf_nat_irc: the address the server sees, a free expectation port from the DCC one up.
    let newaddr = c.tuple[Dir::Reply.index()].dst;
    e.saved_proto = o.port;
    e.dir = Dir::Reply;
    let Some(port) = find_port(ct, &mut e, o.port, now, rng) else {
        // "all ports in use".
        out.drop = true;
        return out;
    };
    ct.expect_add_limited(e, DCC_TIMEOUT, now, IRC_MAX_EXPECTED);
    if port != o.port {
        let orig = c.tuple[0];
        let d = helpers.dcc.entry(id).or_insert((orig, DccPorts::default()));
        if d.0 != orig {
            *d = (orig, DccPorts::default());
        }
        d.1.remember(o.port, port);
    }
    let text = format!("{newaddr} {port}");
    out.mangled = mangle_tcp_payload(buf, o.off, o.off + o.len, text.as_bytes());
    out
}

/// Kernel rule (nf_ct_expect_related): another master already expects the same tuple (the
/// same master announcing it again replaces its own instead).
fn clashes(ct: &ConnTable, e: &Expectation, now: Nanos) -> bool {
    ct.expectations(now)
        .any(|x| x.master != e.master && x.tuple == e.tuple && x.mask == e.mask && x.zone == e.zone)
}

/// Kernel rule (nf_nat_exp_find_port): the expectation `e` of a NATed master goes on the
/// announced `port` when no other master expects that tuple, else on up to 128 ports drawn at
/// random in `port..=65535`; the port it got (`e` is set to it), `None` when all were taken.
fn find_port(
    ct: &ConnTable,
    e: &mut Expectation,
    port: u16,
    now: Nanos,
    rng: &mut dyn RandomSource,
) -> Option<u16> {
    let range = u32::from(u16::MAX - port);
    let mut attempts_left = range.min(128);
    let mut p = port;
    loop {
        e.tuple.dst_l4 = p;
        if !clashes(ct, e, now) {
            return Some(p);
        }
        if attempts_left == 0 {
            return None;
        }
        attempts_left -= 1;
        p = port + (u32::from(rng.random_u16()) % range) as u16;
    }
}

/// Translates the port of a DCC RESUME/ACCEPT in the TCP payload `buf[at..tot]` of a NATed
/// IRC connection whose DCC port was moved; returns the length change.
fn resume_nat(
    helpers: &Helpers,
    c: &nfrs_conntrack::Conn,
    id: ConnId,
    dir: Dir,
    buf: &mut Vec<u8>,
    at: usize,
    tot: usize,
) -> Option<i32> {
    if c.status & status::NAT_MASK == 0 {
        return None;
    }
    let d = helpers.dcc.get(&id).filter(|d| d.0 == c.tuple[0])?;
    let msg = nfrs_helpers::irc::find_resume(&buf[at..tot])?;
    let port = d.1.translate(dir, msg.kind, msg.port)?;
    let text = port.to_string();
    mangle_tcp_payload(buf, msg.off, msg.off + msg.len, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqadj_moves_forward() {
        let mut h = Helpers::default();
        let id = ConnId(1);
        let t = Tuple::ports(6, 1, 2, 3, 4);
        h.seqadj_set(id, t, Dir::Original, 1001, 1);
        assert_eq!(
            h.adjust(id, &t, Dir::Original, 1001, None),
            Some((1001, None))
        );
        assert_eq!(
            h.adjust(id, &t, Dir::Original, 1054, None),
            Some((1055, None))
        );
        assert_eq!(
            h.adjust(id, &t, Dir::Reply, 5001, Some(1055)),
            Some((5001, Some(1054)))
        );
        assert_eq!(h.ack_for_tracking(id, &t, Dir::Reply, 1055), 1054);
        let other = Tuple::ports(6, 9, 9, 9, 9);
        assert_eq!(h.adjust(id, &other, Dir::Original, 1054, None), None);
    }
}

/// The FTP helper drops the packet (a command cut short, or all ports in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FtpDrop;

/// What the parser found.
enum Found {
    No,
    Yes {
        ip: u32,
        port: u16,
        off: usize,
        len: usize,
    },
}

/// The FTP helper (nf_conntrack_ftp + nf_nat_ftp) for PORT (client) and 227 (PASV reply):
/// only data that starts right after a newline seen in the same direction is parsed; the
/// announced address must be the sender's; behind NAT the text is rewritten to the address the
/// other side sees. Returns the payload length change, `Err(FtpDrop)` when the kernel drops
/// (a partial command, no free port).
pub fn ftp_help(
    ct: &mut ConnTable,
    info: &mut FtpInfo,
    id: ConnId,
    dir: Dir,
    buf: &mut Vec<u8>,
    now: Nanos,
    rng: &mut dyn RandomSource,
) -> Result<Option<i32>, FtpDrop> {
    let ihl = usize::from(buf[0] & 0x0f) * 4;
    let Some(&off) = buf.get(ihl + 12) else {
        return Ok(None);
    };
    let at = ihl + usize::from(off >> 4) * 4;
    let tot = usize::from(u16::from_be_bytes([buf[2], buf[3]])).min(buf.len());
    if at >= tot {
        return Ok(None);
    }
    let seq0 = u32::from_be_bytes([buf[ihl + 4], buf[ihl + 5], buf[ihl + 6], buf[ihl + 7]]);
    let data = &buf[at..tot];
    let ends_in_nl = data.last() == Some(&b'\n');
    let seq = seq0.wrapping_add(data.len() as u32);
    let mut res = Ok(None);
    if info.after_newline(dir, seq0) {
        // The parsers (nfrs-helpers): PORT/EPRT from the client, 227/229 from the server;
        // EPSV names no address (the sender's own is meant).
        let own = ct.get(id).tuple[dir.index()].src;
        let cmd = match nfrs_helpers::ftp::find_command(data, dir, own) {
            nfrs_helpers::ftp::FtpFound::Nothing => None,
            nfrs_helpers::ftp::FtpFound::Partial(_) => return Err(FtpDrop),
            nfrs_helpers::ftp::FtpFound::Cmd(c) => Some(c),
        };
        let found = match cmd {
            None => Found::No,
            Some(c) => Found::Yes {
                ip: c.ip,
                port: c.port,
                off: c.off,
                len: c.len,
            },
        };
        match found {
            Found::No => {}
            Found::Yes { ip, port, off, len } => {
                let c = *ct.get(id);
                let t = c.tuple[dir.index()];
                let o = c.tuple[dir.flip().index()];
                // Kernel rule (nf_conntrack_ftp, module parameter loose=0 by default): an
                // address other than the sender's is neither expected nor rewritten.
                if ip != t.src {
                    if ends_in_nl {
                        info.record_newline(dir, seq);
                    }
                    return Ok(None);
                }
                let daddr = o.dst;
                let mut e = Expectation {
                    tuple: Tuple::ports(6, o.src, 0, daddr, port),
                    mask: Tuple {
                        src: u32::MAX,
                        dst: u32::MAX,
                        src_l4: 0,
                        dst_l4: u16::MAX,
                        proto: u8::MAX,
                    },
                    master: id,
                    helper: FTP,
                    child_helper: 0,
                    class: 0,
                    flags: 0,
                    dir: Dir::Original,
                    saved_proto: 0,
                    timeout: 0,
                    zone: c.zone,
                };
                if c.status & status::NAT_MASK == 0 {
                    // Kernel rule: "cannot add expectation" (another master's) drops the
                    // segment; the newline is still remembered below.
                    if clashes(ct, &e, now) {
                        res = Err(FtpDrop);
                    } else {
                        ct.expect_add_limited(e, 300, now, FTP_MAX_EXPECTED);
                    }
                } else {
                    let newaddr = o.dst;
                    e.saved_proto = port;
                    e.dir = dir.flip();
                    match (find_port(ct, &mut e, port, now, rng), cmd) {
                        (Some(p), Some(cmd)) => {
                            ct.expect_add_limited(e, 300, now, FTP_MAX_EXPECTED);
                            let rw = nfrs_helpers::ftp::nat_rewrite(&cmd, newaddr, p);
                            let text = rw.text().to_vec();
                            res = Ok(mangle_tcp_payload(buf, off, off + len, &text));
                        }
                        // "all ports in use".
                        _ => res = Err(FtpDrop),
                    }
                }
            }
        }
    }
    if ends_in_nl {
        info.record_newline(dir, seq);
    }
    res
}
