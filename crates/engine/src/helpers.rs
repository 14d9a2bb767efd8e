//! Connection tracking helpers and their NAT side, as Linux runs them at confirm time (the end
//! of POSTROUTING and INPUT): the helper reads the payload, announces an expected connection,
//! and behind NAT rewrites the address in the payload; a length change is then carried by
//! sequence adjustment on every later packet of the connection (nf_conntrack_seqadj).
//!
//! IRC (nf_conntrack_irc + nf_nat_irc): `\1DCC SEND|CHAT|MOVE|TSEND|SCHAT <name> <ip> <port>`
//! in the client's direction. FTP (nf_conntrack_ftp + nf_nat_ftp): `PORT`/`EPRT` from the
//! client and `227`/`229` from the server, parsed only right after a newline.
//!
//! Division of labour (one implementation of each part): the payload parsers, the NAT texts,
//! sequence adjustment, the FTP newline memory and the DCC RESUME/ACCEPT port map (beyond the
//! kernel) are nfrs-helpers'; the expectations live only in nfrs-conntrack's table
//! ([`ConnTable::expect_add_limited`]: per-master limit evicting the oldest; `track` consumes
//! them and makes the new connection RELATED), because the table is what removes a master's
//! expectations with it on every path (expiry, flush, kill, the daemon's own timers); this
//! module decides what to expect, clashes (drop) and the NAT port search, splices the rewrites
//! into the packet and keeps the per-connection state.

use nfrs_conntrack::expect::{ExpectTableFull, Expectation};
use nfrs_conntrack::{status, ConnId, ConnTable, Dir, Nanos, Tuple};
use nfrs_helpers::ftp::{self, FtpInfo};
use nfrs_helpers::irc::{self, DccPorts};
use nfrs_helpers::{Rewrite, SeqAdj};
use nfrs_nat::RandomSource;
use std::collections::HashMap;

/// Helper ids (indexes of `nfrs_conntrack::expect::HELPER_NAMES`).
pub const FTP: u8 = 1;
/// IRC.
pub const IRC: u8 = 2;

/// Kernel rule: the FTP helper keeps one pending expectation per control connection.
const FTP_MAX_EXPECTED: usize = ftp::MAX_EXPECTED as usize;
/// Kernel rule: the IRC helper keeps `max_dcc_channels` (8) pending offers per connection.
const IRC_MAX_EXPECTED: usize = irc::MAX_DCC_CHANNELS as usize;

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

/// Applies a helper's payload rewrite to the packet in `buf`: the TCP payload bytes
/// `[rw.off, rw.off + rw.len)` become `rw.text()`, with the IP total length and both checksums
/// fixed (nf_nat_mangle_tcp_packet). Returns the length change.
pub fn mangle_tcp_payload(buf: &mut Vec<u8>, rw: &Rewrite) -> Option<i32> {
    let (beg, end, text) = (rw.off, rw.off + rw.len, rw.text());
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
    /// The helper drops the packet (its expectation clashes with another master's, no
    /// port is free behind NAT, or the expectation table is full).
    pub drop: bool,
    /// The expectation table was full (`nf_conntrack_expect_max`): the warning to print.
    pub full: Option<ExpectTableFull>,
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
    let offer = irc::find_offer(data, t.src, nat_addr, &mut |ip, port| {
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
    // Kernel rule (nf_conntrack_irc): the peer may come from anywhere.
    let mut e = tcp_expectation(id, IRC, None, other.dst, o.port, c.zone);
    if c.status & status::NAT_MASK == 0 {
        // Kernel rule: "cannot add expectation" (another master's) drops the packet.
        if clashes(ct, &e, now) {
            out.drop = true;
        } else if let Err(full) = ct.expect_add_limited(e, irc::DCC_TIMEOUT, now, IRC_MAX_EXPECTED)
        {
            out.drop = true;
            out.full = Some(full);
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
    if let Err(full) = ct.expect_add_limited(e, irc::DCC_TIMEOUT, now, IRC_MAX_EXPECTED) {
        // nf_nat_exp_find_port stops at any refusal but a clash: "all ports in use".
        out.drop = true;
        out.full = Some(full);
        return out;
    }
    if port != o.port {
        let orig = c.tuple[0];
        let d = helpers.dcc.entry(id).or_insert((orig, DccPorts::default()));
        if d.0 != orig {
            *d = (orig, DccPorts::default());
        }
        d.1.remember(o.port, port);
    }
    out.mangled = mangle_tcp_payload(buf, &irc::nat_rewrite(&o, newaddr, port));
    out
}

/// An expectation of `master` (helper id `helper`) for a TCP connection to `dst`:`port` from
/// `src` (`None`: any address), any source port.
fn tcp_expectation(
    master: ConnId,
    helper: u8,
    src: Option<u32>,
    dst: u32,
    port: u16,
    zone: u16,
) -> Expectation {
    Expectation {
        tuple: Tuple::ports(6, src.unwrap_or(0), 0, dst, port),
        mask: Tuple {
            src: if src.is_some() { u32::MAX } else { 0 },
            dst: u32::MAX,
            src_l4: 0,
            dst_l4: u16::MAX,
            proto: u8::MAX,
        },
        master,
        helper,
        child_helper: 0,
        class: 0,
        flags: 0,
        dir: Dir::Original,
        saved_proto: 0,
        timeout: 0,
        zone,
    }
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
    let rw = d.1.resume_rewrite(dir, &buf[at..tot])?;
    mangle_tcp_payload(buf, &rw)
}

/// The FTP helper drops the packet (a command cut short, all ports in use, or the
/// expectation table full: then `full` holds its warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FtpDrop {
    /// The expectation table was full (`nf_conntrack_expect_max`).
    pub full: Option<ExpectTableFull>,
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
        match ftp::find_command(data, dir, own) {
            ftp::FtpFound::Nothing => {}
            ftp::FtpFound::Partial(_) => return Err(FtpDrop::default()),
            ftp::FtpFound::Cmd(cmd) => {
                let (ip, port) = (cmd.ip, cmd.port);
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
                // Kernel rule (nf_conntrack_ftp): the data connection comes from the other
                // side's address.
                let mut e = tcp_expectation(id, FTP, Some(o.src), daddr, port, c.zone);
                if c.status & status::NAT_MASK == 0 {
                    // Kernel rule: "cannot add expectation" (another master's) drops the
                    // segment; the newline is still remembered below.
                    if clashes(ct, &e, now) {
                        res = Err(FtpDrop::default());
                    } else if let Err(full) =
                        ct.expect_add_limited(e, ftp::TIMEOUT, now, FTP_MAX_EXPECTED)
                    {
                        res = Err(FtpDrop { full: Some(full) });
                    }
                } else {
                    let newaddr = o.dst;
                    e.saved_proto = port;
                    e.dir = dir.flip();
                    match find_port(ct, &mut e, port, now, rng) {
                        Some(p) => {
                            match ct.expect_add_limited(e, ftp::TIMEOUT, now, FTP_MAX_EXPECTED) {
                                Ok(()) => {
                                    let rw = ftp::nat_rewrite(&cmd, newaddr, p);
                                    res = Ok(mangle_tcp_payload(buf, &rw));
                                }
                                // Any refusal but a clash ends the port search: dropped.
                                Err(full) => res = Err(FtpDrop { full: Some(full) }),
                            }
                        }
                        // "all ports in use".
                        None => res = Err(FtpDrop::default()),
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

#[cfg(test)]
mod tests {
    //! The helper path as the engine runs it (nfrs-helpers' parsers, nfrs-conntrack's
    //! expectations, nfrs-nat's follow_master), driven through scenario replay. Kernel-visible
    //! behaviour is checked against the kernel by tests/scenarios/helpers (goldens); these tests
    //! cover what those cannot show: nfrs's RESUME/ACCEPT extension end to end, expectation
    //! lifetime and listings at chosen times, and the cases the kernel ignores or drops.
    use super::*;
    use nfrs_conntrack::expect::ExpectFormat;
    use nfrs_conntrack::SEC;

    const HOST: &str = r#"
[sysctl]
"net.ipv4.ip_forward" = 1

[[interface]]
name = "lan0"
address = "10.0.0.1/24"

[[interface]]
name = "wan0"
address = "192.0.2.1/24"

[[route]]
to = "default"
via = "192.0.2.254"
dev = "wan0"
"#;

    const IRC_MASQ: &str = "*raw\n-A PREROUTING -p tcp --dport 6667 -j CT --helper irc\nCOMMIT\n*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n-A FORWARD -m conntrack --ctstate RELATED -j LOG --log-prefix \"related \"\nCOMMIT\n";

    /// Replays `packets` under `rules` on [`HOST`]: the result text, the engine, the clock.
    fn replay(rules: &str, packets: &str) -> (String, crate::engine::Engine, u64) {
        let q = "'''";
        let text = format!(
            "description = \"helpers test\"\nrules = {q}\n{rules}{q}\npackets = {q}\n{packets}{q}\n{HOST}"
        );
        let sc = nfrs_scenario::parse(&text, std::path::Path::new("helpers-test.toml")).unwrap();
        let (r, eng, now) = crate::replay::run_engine(&sc, false, &mut |_, _| {}).unwrap();
        (r.result.to_text(), eng, now)
    }

    /// The result lines of the input packet whose line starts with `at` (its time).
    fn after_input<'a>(text: &'a str, at: &str) -> Vec<&'a str> {
        let mut lines = text.lines().skip_while(|l| !l.starts_with(at));
        let mut out: Vec<&str> = lines.next().into_iter().collect();
        out.extend(lines.take_while(|l| l.starts_with("  ")));
        out
    }

    /// Payload length of a packet-line payload text (`\x01`, `\r`, `\n` are one byte each).
    fn len(t: &str) -> u32 {
        t.replace(r"\x01", "_")
            .replace(r"\r", "_")
            .replace(r"\n", "_")
            .len() as u32
    }

    fn handshake(t: &str, client: &str, sport: u16, cseq: u32, sseq: u32) -> String {
        format!(
            "{t}0 lan0 tcp {client}:{sport} > 198.51.100.7:6667 flags=S seq={cseq} win=64240\n\
             {t}1 wan0 tcp 198.51.100.7:6667 > 192.0.2.1:{sport} flags=SA seq={sseq} ack={} win=64240\n\
             {t}2 lan0 tcp {client}:{sport} > 198.51.100.7:6667 flags=A seq={} ack={} win=502\n",
            cseq + 1,
            cseq + 1,
            sseq + 1
        )
    }

    fn from_client(t: &str, client: &str, sport: u16, seq: u32, ack: u32, text: &str) -> String {
        format!(
            "{t} lan0 tcp {client}:{sport} > 198.51.100.7:6667 flags=PA seq={seq} ack={ack} win=502 payload=\"{text}\"\n"
        )
    }

    /// 10.0.0.2 connects to the IRC server and offers `DCC SEND f ... 5000` at 0.03 s.
    fn one_offer() -> String {
        let send = r"PRIVMSG bob :\x01DCC SEND f 167772162 5000 1\x01\r\n";
        let hs = handshake("0.0", "10.0.0.2", 40000, 1000, 5000);
        hs + &from_client("0.03", "10.0.0.2", 40000, 1001, 5001, send)
    }

    /// Kernel rule (`__nf_ct_expect_check`): with `nf_conntrack_expect_max` pending
    /// expectations the next announcement is refused, the helper drops its packet and the
    /// kernel warns (rate limited).
    #[test]
    fn full_expectation_table_drops_the_offer_and_warns() {
        let host = HOST.replace(
            "\"net.ipv4.ip_forward\" = 1",
            "\"net.ipv4.ip_forward\" = 1\n\"net.netfilter.nf_conntrack_expect_max\" = 1",
        );
        let q = "'''";
        let send_b = r"PRIVMSG bob :\x01DCC SEND g 167772163 6000 1\x01\r\n";
        let packets = one_offer()
            + &handshake("0.1", "10.0.0.3", 40001, 2000, 6000)
            + &from_client("0.13", "10.0.0.3", 40001, 2001, 6001, send_b);
        let text = format!(
            "description = \"helpers test\"\nexclusive = true\nrules = {q}\n{IRC_MASQ}{q}\npackets = {q}\n{packets}{q}\n{host}"
        );
        let sc = nfrs_scenario::parse(&text, std::path::Path::new("helpers-test.toml")).unwrap();
        let (r, eng, now) = crate::replay::run_engine(&sc, false, &mut |_, _| {}).unwrap();
        let text = r.result.to_text();
        let first = after_input(&text, "0.03");
        assert!(first.iter().any(|l| l.starts_with("  out wan0 ")), "{text}");
        let second = after_input(&text, "0.13");
        assert!(!second.iter().any(|l| l.starts_with("  out ")), "{text}");
        assert!(
            second
                .iter()
                .any(|l| l.ends_with("nf_conntrack: expectation table full")),
            "{text}"
        );
        let ct = eng.ct.as_ref().unwrap();
        assert_eq!(ct.expectations(now).count(), 1);
        assert_eq!(ct.stats().expect_create, 1);
    }

    /// Beyond the kernel, end to end: a moved DCC SEND port, the peer's RESUME and the
    /// client's ACCEPT translated, the sequence numbers carried across the three length
    /// changes, and the resumed connection RELATED and sent on to the right client and port.
    #[test]
    fn resumed_transfer_reaches_the_client_that_offered_it() {
        let send_a = r"PRIVMSG bob :\x01DCC SEND f.txt 167772162 5000 100\x01\r\n";
        let send_b = r"PRIVMSG bob :\x01DCC SEND g.txt 167772163 5000 100\x01\r\n";
        let accept = r"PRIVMSG bob :\x01DCC ACCEPT g.txt 5000 4096\x01\r\n";
        let resume =
            |told: u16| format!(r":bob!u@h PRIVMSG al :\x01DCC RESUME g.txt {told} 4096\x01\r\n");
        // Client B's own sequence numbers: SEND at 2001, ACCEPT after it, then a bare ACK.
        let (b_accept, b_next) = (2001 + len(send_b), 2001 + len(send_b) + len(accept));
        let packets = |told: u16| {
            let r = resume(told);
            format!(
                "{}{}{}{}\
                 0.14 wan0 tcp 198.51.100.7:6667 > 192.0.2.1:40001 flags=PA seq=6001 ack={} win=509 payload=\"{r}\"\n\
                 {}\
                 0.16 lan0 tcp 10.0.0.3:40001 > 198.51.100.7:6667 flags=A seq={b_next} ack={} win=502\n\
                 0.20 wan0 tcp 198.51.100.50:45000 > 192.0.2.1:{told} flags=S seq=1 win=64240\n\
                 0.21 wan0 tcp 198.51.100.50:45001 > 192.0.2.1:5000 flags=S seq=1 win=64240\n",
                handshake("0.0", "10.0.0.2", 40000, 1000, 5000),
                from_client("0.03", "10.0.0.2", 40000, 1001, 5001, send_a),
                handshake("0.1", "10.0.0.3", 40001, 2000, 6000),
                from_client("0.13", "10.0.0.3", 40001, 2001, 6001, send_b),
                // the server acknowledges the SEND it saw, 2 bytes longer
                b_accept + 2,
                // the client got the RESUME one byte shorter
                from_client("0.15", "10.0.0.3", 40001, b_accept, 6001 + len(&r) - 1, accept),
                6001 + len(&r) - 1,
            )
        };
        // The told port is drawn at random (as the kernel's nf_nat_exp_find_port draws it);
        // replay is deterministic, so learn it on a first run.
        let (first, _, _) = replay(IRC_MASQ, &packets(1));
        let out_b = after_input(&first, "0.13")[1];
        let told: u16 = out_b
            .split("3221225985 ")
            .nth(1)
            .and_then(|w| w.split(' ').next())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("{first}"));
        assert_ne!(told, 5000, "{first}");
        let (text, _, _) = replay(IRC_MASQ, &packets(told));
        let out = |at| after_input(&text, at);
        assert!(
            out("0.03")[1].contains(r"DCC SEND f.txt 3221225985 5000 100"),
            "{text}"
        );
        // RESUME: the told port becomes the offered one; its ack is mapped back by the SEND's +2.
        let r = out("0.14");
        assert!(r[1].starts_with("  out lan0 "), "{text}");
        assert!(r[1].contains(r"DCC RESUME g.txt 5000 4096"), "{text}");
        assert!(r[1].contains(&format!(" ack={b_accept} ")), "{text}");
        // ACCEPT: the offered port becomes the told one, at the sequence moved by the SEND's +2.
        let a = out("0.15");
        assert!(
            a[1].contains(&format!(r"DCC ACCEPT g.txt {told} 4096")),
            "{text}"
        );
        assert!(a[1].contains(&format!(" seq={} ", b_accept + 2)), "{text}");
        // After SEND (+2) and ACCEPT (+1) the client's sequence runs 3 ahead; its ack of the
        // RESUME (1 shorter on the way in) is moved 1 forward.
        let k = out("0.16");
        let want = format!(" seq={} ack={} ", b_next + 3, 6001 + len(&resume(told)));
        assert!(k[1].contains(&want), "{want} {text}");
        // The resumed connection: RELATED, to the client that offered, on the port it offered
        // (its source mapped to the address the master talks to: nf_nat_follow_master).
        let syn = out("0.20");
        assert!(
            syn[1].starts_with("  out lan0 tcp 198.51.100.7:45000 > 10.0.0.3:5000 "),
            "{text}"
        );
        assert!(
            syn.iter().any(|l| l.starts_with("  log related ")),
            "{text}"
        );
        // The unmoved offer still reaches the first client.
        let syn = out("0.21");
        assert!(
            syn[1].starts_with("  out lan0 tcp 198.51.100.7:45001 > 10.0.0.2:5000 "),
            "{text}"
        );
    }

    /// dcc_timeout is 300 s; the listing counts down; an expectation is used once; the master
    /// going away takes its expectations along.
    #[test]
    fn dcc_expectation_lifetime_and_listings() {
        let offer = one_offer();
        let (_, mut eng, _) = replay(IRC_MASQ, &offer);
        let ct = eng.ct.as_mut().unwrap();
        // As /proc/net/nf_conntrack_expect printed it on 6.18 (KERNEL-ORACLE-NOTES.md, there
        // with dst=10.0.2.1: the MASQUERADE address is the one expected).
        let line = "l3proto = 2 proto=6 src=0.0.0.0 dst=192.0.2.1 sport=0 dport=5000 irc";
        let at = |s: f64| (s * SEC as f64) as u64;
        assert_eq!(
            ct.expect_listing(at(0.5), ExpectFormat::Proc, false),
            [line]
        );
        assert_eq!(
            ct.expect_listing(at(0.53), ExpectFormat::Proc, true),
            [format!("299 {line}")]
        );
        assert_eq!(
            ct.expect_listing(at(300.02), ExpectFormat::Proc, false)
                .len(),
            1
        );
        assert!(ct
            .expect_listing(at(300.03), ExpectFormat::Conntrack, true)
            .is_empty());
        // The master goes (`conntrack -D`, freed at the next table walk): its expectation
        // with it.
        let master = ct
            .iter()
            .find(|(_, c)| c.tuple[0].dst_l4 == 6667)
            .unwrap()
            .0;
        ct.kill(master);
        ct.expire(at(1.0), &mut |_, _| {});
        assert!(ct
            .expect_listing(at(1.0), ExpectFormat::Proc, false)
            .is_empty());

        // Used once, just before the deadline; the second SYN to the port is not RELATED.
        let packets = format!(
            "{offer}300.02 wan0 tcp 198.51.100.7:45000 > 192.0.2.1:5000 flags=S seq=1 win=64240\n\
             300.025 wan0 tcp 198.51.100.7:45001 > 192.0.2.1:5000 flags=S seq=1 win=64240\n"
        );
        let (text, _, _) = replay(IRC_MASQ, &packets);
        let first = after_input(&text, "300.02 ");
        assert!(
            first[1].starts_with("  out lan0 tcp 198.51.100.7:45000 > 10.0.0.2:5000 "),
            "{text}"
        );
        assert!(
            first.iter().any(|l| l.starts_with("  log related ")),
            "{text}"
        );
        let second = after_input(&text, "300.025");
        assert!(
            !second
                .iter()
                .any(|l| l.starts_with("  log related ") || l.contains("> 10.0.0.2:5000")),
            "{text}"
        );
        // At the deadline itself it is gone.
        let packets = format!(
            "{offer}300.03 wan0 tcp 198.51.100.7:45000 > 192.0.2.1:5000 flags=S seq=1 win=64240\n"
        );
        let (text, _, _) = replay(IRC_MASQ, &packets);
        assert!(
            !after_input(&text, "300.03")
                .iter()
                .any(|l| l.contains("10.0.0.2:5000")),
            "{text}"
        );
    }

    /// What the kernel's helper does not look at: connections without `CT --helper`, and DCC
    /// offers the server sends to the client.
    #[test]
    fn unhelped_and_server_sent_offers_are_left_alone() {
        let packets = one_offer();
        let no_helper =
            IRC_MASQ.replace("-A PREROUTING -p tcp --dport 6667 -j CT --helper irc\n", "");
        let (text, mut eng, now) = replay(&no_helper, &packets);
        assert!(
            after_input(&text, "0.03")[1].contains("167772162 5000"),
            "{text}"
        );
        assert!(eng.expect_listing(now).is_empty());
        let from_server = r":bob!u@h PRIVMSG al :\x01DCC SEND f 3325256717 5000 1\x01\r\n";
        let packets = format!(
            "{}0.03 wan0 tcp 198.51.100.7:6667 > 192.0.2.1:40000 flags=PA seq=5001 ack=1001 win=509 payload=\"{from_server}\"\n",
            handshake("0.0", "10.0.0.2", 40000, 1000, 5000),
        );
        let (text, mut eng, now) = replay(IRC_MASQ, &packets);
        assert!(
            after_input(&text, "0.03")[1].contains("3325256717 5000"),
            "{text}"
        );
        assert!(eng.expect_listing(now).is_empty());
    }

    /// Behind NAT, an offer whose port is expected for another master and that has no port
    /// above it left is dropped ("all ports in use").
    #[test]
    fn all_ports_in_use_drops_the_offer() {
        let packets = format!(
            "{}{}{}{}",
            handshake("0.0", "10.0.0.2", 40000, 1000, 5000),
            from_client(
                "0.03",
                "10.0.0.2",
                40000,
                1001,
                5001,
                r"PRIVMSG bob :\x01DCC SEND f 167772162 65535 1\x01\r\n"
            ),
            handshake("0.1", "10.0.0.3", 40001, 2000, 6000),
            from_client(
                "0.13",
                "10.0.0.3",
                40001,
                2001,
                6001,
                r"PRIVMSG bob :\x01DCC SEND f 167772163 65535 1\x01\r\n"
            ),
        );
        let (text, mut eng, now) = replay(IRC_MASQ, &packets);
        assert!(
            after_input(&text, "0.03")[1].contains("3221225985 65535"),
            "{text}"
        );
        assert_eq!(after_input(&text, "0.13")[1], "  (dropped)", "{text}");
        assert_eq!(eng.expect_listing(now).len(), 1);
    }

    /// Measured on Linux 6.18 in a throwaway netns over loopback (`-t raw -A OUTPUT -p tcp
    /// --dport 6667 -j CT --helper irc`, the same for ftp on 21): an IRC client sent
    /// `PRIVMSG bob :\1DCC SEND f 2130706433 5000 1\1`, an FTP client `USER a` then
    /// `PORT 127,0,0,1,19,137`; 1.5 s later /proc/net/nf_conntrack_expect and `conntrack -L
    /// expect` printed the lines below, there with 127.0.0.1 for every address. Here the same
    /// exchange is routed (no NAT) from 10.0.0.2 to 198.51.100.7, so those addresses stand
    /// in for it; everything else is as measured.
    #[test]
    fn listings_with_timeout_as_measured() {
        let rules = "*raw\n-A PREROUTING -p tcp --dport 6667 -j CT --helper irc\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n";
        let ftp_hs = |t: &str| {
            format!(
                "{t}0 lan0 tcp 10.0.0.2:60876 > 198.51.100.7:21 flags=S seq=1000 win=64240\n\
                 {t}1 wan0 tcp 198.51.100.7:21 > 10.0.0.2:60876 flags=SA seq=7000 ack=1001 win=64240\n\
                 {t}2 lan0 tcp 10.0.0.2:60876 > 198.51.100.7:21 flags=A seq=1001 ack=7001 win=502\n"
            )
        };
        let packets = format!(
            "{}{}{}\
             0.13 wan0 tcp 198.51.100.7:21 > 10.0.0.2:60876 flags=PA seq=7001 ack=1001 win=509 payload=\"220 ready\\r\\n\"\n\
             0.14 lan0 tcp 10.0.0.2:60876 > 198.51.100.7:21 flags=PA seq=1001 ack=7012 win=502 payload=\"USER a\\r\\n\"\n\
             0.15 wan0 tcp 198.51.100.7:21 > 10.0.0.2:60876 flags=PA seq=7012 ack=1009 win=509 payload=\"331 ok\\r\\n\"\n\
             0.16 lan0 tcp 10.0.0.2:60876 > 198.51.100.7:21 flags=PA seq=1009 ack=7020 win=502 payload=\"PORT 10,0,0,2,19,137\\r\\n\"\n",
            handshake("0.0", "10.0.0.2", 45808, 1000, 5000).replace("192.0.2.1", "10.0.0.2"),
            from_client(
                "0.03",
                "10.0.0.2",
                45808,
                1001,
                5001,
                r"PRIVMSG bob :\x01DCC SEND f 167772162 5000 1\x01\r\n"
            ),
            ftp_hs("0.1"),
        );
        let (text, mut eng, _) = replay(rules, &packets);
        let ct = eng.ct.as_mut().unwrap();
        let now = 30_000_000 + 3 * SEC / 2;
        assert_eq!(
            ct.expect_listing(now, ExpectFormat::Proc, true),
            [
                "298 l3proto = 2 proto=6 src=0.0.0.0 dst=10.0.0.2 sport=0 dport=5000 irc",
                "298 l3proto = 2 proto=6 src=198.51.100.7 dst=10.0.0.2 sport=0 dport=5001 ftp",
            ],
            "{text}"
        );
        assert_eq!(
            ct.expect_listing(now, ExpectFormat::Conntrack, true),
            [
                "298 proto=6 src=0.0.0.0 dst=10.0.0.2 sport=0 dport=5000 mask-src=0.0.0.0 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.0.0.2 master-dst=198.51.100.7 sport=45808 dport=6667 class=0 helper=irc",
                "298 proto=6 src=198.51.100.7 dst=10.0.0.2 sport=0 dport=5001 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.0.0.2 master-dst=198.51.100.7 sport=60876 dport=21 class=0 helper=ftp",
            ]
        );
    }

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
