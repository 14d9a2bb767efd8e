//! The IRC helper (kernel `nf_conntrack_irc.c`, `nf_nat_irc.c`, Linux 6.x): DCC offers sent by
//! the client are parsed, the address checked, an expectation announced, and behind NAT the
//! address and port in the text rewritten. Plus, beyond the kernel, DCC RESUME/ACCEPT port
//! rewriting through NAT (see the crate README).

use nfrs_conntrack::Dir;

use crate::mangle::Rewrite;

/// Default IRC server port.
pub const IRC_PORT: u16 = 6667;
/// Kernel default `max_dcc_channels`.
pub const MAX_DCC_CHANNELS: u32 = 8;
/// Kernel default `dcc_timeout`, seconds.
pub const DCC_TIMEOUT: u32 = 300;
/// The kernel looks at no more than this many payload bytes.
pub const MAX_SEARCH_SIZE: usize = 4095;

/// DCC commands the kernel helper knows (RESUME and ACCEPT are not among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DccKind {
    /// `SEND`.
    Send,
    /// `CHAT`.
    Chat,
    /// `MOVE`.
    Move,
    /// `TSEND`.
    Tsend,
    /// `SCHAT`.
    Schat,
}

const PROTOS: [(&[u8], DccKind); 5] = [
    (b"SEND ", DccKind::Send),
    (b"CHAT ", DccKind::Chat),
    (b"MOVE ", DccKind::Move),
    (b"TSEND ", DccKind::Tsend),
    (b"SCHAT ", DccKind::Schat),
];

/// A DCC offer found in a client's packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DccOffer {
    /// Which command.
    pub kind: DccKind,
    /// The offered address (host order, the decimal number wrapped to 32 bits).
    pub ip: u32,
    /// The offered port (the decimal number wrapped to 16 bits).
    pub port: u16,
    /// Offset of the address text in the payload.
    pub off: usize,
    /// Length of "ADDRESS PORT" text (address through port).
    pub len: usize,
}

/// Parses the decimal number at `p[*j..]` as the kernel's `simple_strtoul` does (no sign, no
/// blanks, wrapping), advancing `*j` past the digits.
fn strtoul(p: &[u8], j: &mut usize) -> u32 {
    let mut v: u32 = 0;
    while let Some(c) = p.get(*j).filter(|c| c.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add((c - b'0') as u32);
        *j += 1;
    }
    v
}

/// Kernel rule (parse_dcc): skip the first word (file name or "chat"), require a newline
/// somewhere after it, then read "ADDRESS PORT".
fn parse_dcc(p: &[u8], start: usize) -> Option<(u32, u16, usize, usize)> {
    let end = p.len() as isize;
    let mut j = start;
    loop {
        let c = *p.get(j)?;
        j += 1;
        if c == b' ' {
            break;
        }
        if j as isize > end - 12 {
            return None;
        }
    }
    p[j..].iter().position(|&c| c == b'\n')?;
    let beg = j;
    let ip = strtoul(p, &mut j);
    while p.get(j) == Some(&b' ') {
        if j as isize >= end {
            return None;
        }
        j += 1;
    }
    let port = strtoul(p, &mut j) as u16;
    Some((ip, port, beg, j))
}

/// What the client-side parser found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrcFound {
    /// An offer that passed the address check.
    Offer(DccOffer),
    /// Offers refused by the address check; the last one refused and no valid one after it
    /// (the kernel logs `Forged DCC command from SRC: IP:PORT` for each).
    Forged {
        /// Refused address.
        ip: u32,
        /// Refused port.
        port: u16,
    },
}

/// Kernel `help()` of nf_conntrack_irc for a client→server payload: the packet must start
/// (after blanks) with `PRIVMSG ` (any case) when longer than 10 bytes, the message after the
/// first ` :` must begin with `\1DCC `, and only the first acceptable offer is used. `client`
/// is the master's original source, `nat_addr` its reply destination (the address the server
/// sees); an offer naming neither, or port 0, is forged. `on_forged` is called for each forged
/// offer (ip, port).
pub fn find_offer(
    payload: &[u8],
    client: u32,
    nat_addr: u32,
    on_forged: &mut dyn FnMut(u32, u16),
) -> Option<DccOffer> {
    let p = &payload[..payload.len().min(MAX_SEARCH_SIZE)];
    let lim = p.len() as isize;
    let mut i = 0usize;
    while (i as isize) < lim - 10 && matches!(p[i], b' ' | b'\r' | b'\n') {
        i += 1;
    }
    if (i as isize) < lim - 10 {
        if !p[i..i + 8].eq_ignore_ascii_case(b"PRIVMSG ") {
            return None;
        }
        i += 8;
    }
    while (i as isize) < lim - 26 {
        if &p[i..i + 2] != b" :" {
            i += 1;
            continue;
        }
        i += 2;
        if &p[i..i + 5] != b"\x01DCC " {
            return None;
        }
        i += 5;
        for (name, kind) in PROTOS {
            if !p[i..].starts_with(name) {
                continue;
            }
            // Kernel quirk kept: a failed parse moves on to the next command name from the
            // position after this one.
            i += name.len();
            let Some((ip, port, off, end)) = parse_dcc(p, i) else {
                continue;
            };
            if (ip != client && ip != nat_addr) || port == 0 {
                on_forged(ip, port);
                continue;
            }
            return Some(DccOffer {
                kind,
                ip,
                port,
                off,
                len: end - off,
            });
        }
    }
    None
}

/// Kernel `nf_nat_irc`: the text replacing "ADDRESS PORT": the address the server sees the
/// client as (decimal, host order) and the expectation's port.
pub fn nat_rewrite(offer: &DccOffer, new_addr: u32, new_port: u16) -> Rewrite {
    Rewrite::format(offer.off, offer.len, format_args!("{new_addr} {new_port}"))
        .expect("two numbers fit")
}

/// DCC RESUME or ACCEPT (not handled by the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeKind {
    /// `DCC RESUME file port position`: the receiver asks the sender to resume.
    Resume,
    /// `DCC ACCEPT file port position`: the sender agrees.
    Accept,
}

/// A RESUME/ACCEPT message found in a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeMsg {
    /// Which message.
    pub kind: ResumeKind,
    /// The port named in it.
    pub port: u16,
    /// Offset of the port text in the payload.
    pub off: usize,
    /// Length of the port text.
    pub len: usize,
}

/// Finds the first `\1DCC RESUME ` / `\1DCC ACCEPT ` message in a payload (either direction,
/// with or without a `:prefix`) and its port: the second-to-last word before the closing
/// `\1` (file names may contain blanks). nfrs only; the kernel ignores these.
pub fn find_resume(payload: &[u8]) -> Option<ResumeMsg> {
    let p = &payload[..payload.len().min(MAX_SEARCH_SIZE)];
    let mut from = 0;
    while let Some(k) = find(&p[from..], b"\x01DCC ") {
        let s = from + k + 5;
        from = s;
        let kind = if p[s..].starts_with(b"RESUME ") {
            ResumeKind::Resume
        } else if p[s..].starts_with(b"ACCEPT ") {
            ResumeKind::Accept
        } else {
            continue;
        };
        let args = s + 7;
        let Some(close) = p[args..]
            .iter()
            .position(|&c| c == 1 || c == b'\r' || c == b'\n')
        else {
            continue;
        };
        let body = &p[args..args + close];
        // position = last word, port = the word before it
        let body = trim_end(body);
        let Some(sp) = body.iter().rposition(|&c| c == b' ') else {
            continue;
        };
        let head = trim_end(&body[..sp]);
        let pstart = head.iter().rposition(|&c| c == b' ').map_or(0, |x| x + 1);
        let word = &head[pstart..];
        if pstart == 0 || word.is_empty() || word.len() > 5 || !word.iter().all(u8::is_ascii_digit)
        {
            continue;
        }
        let mut j = 0;
        let v = strtoul(word, &mut j);
        if v == 0 || v > 65535 {
            continue;
        }
        return Some(ResumeMsg {
            kind,
            port: v as u16,
            off: args + pstart,
            len: word.len(),
        });
    }
    None
}

/// Beyond the kernel (issue 6, FAQ 3.4): the DCC ports the NAT side of one IRC connection had
/// to move because the offered port was already expected on the gateway address for another
/// connection, as (port the client offered, port the peer was told), newest last, the last
/// [`DccPorts::KEEP`] of them. The peer's DCC RESUME names the told port and the client's DCC
/// ACCEPT the offered one; [`DccPorts::resume_rewrite`] translates each so that a resumed
/// transfer meets. With no moved port nothing is rewritten, as in the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DccPorts {
    map: [(u16, u16); DccPorts::KEEP],
    n: usize,
}

impl DccPorts {
    /// How many moves are remembered (as many as pending offers: `max_dcc_channels`).
    pub const KEEP: usize = MAX_DCC_CHANNELS as usize;

    /// Remembers that the offered port `offered` was announced to the peer as `told` (nothing
    /// when they are equal).
    pub fn remember(&mut self, offered: u16, told: u16) {
        if offered == told {
            return;
        }
        if self.n == Self::KEEP {
            self.map.copy_within(1.., 0);
            self.n -= 1;
        }
        self.map[self.n] = (offered, told);
        self.n += 1;
    }

    /// True when no port was moved.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The port a RESUME (from the peer: reply direction) or an ACCEPT (from the client:
    /// original direction) naming `port` must carry instead; `None`: leave it.
    pub fn translate(&self, dir: Dir, kind: ResumeKind, port: u16) -> Option<u16> {
        let mut newest_first = self.map[..self.n].iter().rev();
        match (dir, kind) {
            (Dir::Reply, ResumeKind::Resume) => newest_first
                .find(|&&(_, told)| told == port)
                .map(|&(offered, _)| offered),
            (Dir::Original, ResumeKind::Accept) => newest_first
                .find(|&&(offered, _)| offered == port)
                .map(|&(_, told)| told),
            _ => None,
        }
    }

    /// The rewrite of the first DCC RESUME/ACCEPT in `payload` (a packet of the connection
    /// going `dir`) whose port was moved; `None` when there is nothing to change.
    pub fn resume_rewrite(&self, dir: Dir, payload: &[u8]) -> Option<Rewrite> {
        if self.is_empty() {
            return None;
        }
        let msg = find_resume(payload)?;
        let port = self.translate(dir, msg.kind, msg.port)?;
        Rewrite::format(msg.off, msg.len, format_args!("{port}"))
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b.iter().rposition(|&c| c != b' ').map_or(0, |x| x + 1);
    &b[..n]
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: u32 = 0x0a00_0002; // 10.0.0.2 = 167772162
    const GW: u32 = 0xc000_0201; // 192.0.2.1 = 3221225985

    fn offer(p: &[u8]) -> (Option<DccOffer>, Vec<(u32, u16)>) {
        let mut forged = Vec::new();
        let o = find_offer(p, CLIENT, GW, &mut |ip, port| forged.push((ip, port)));
        (o, forged)
    }

    fn nat(p: &[u8]) -> Vec<u8> {
        let o = offer(p).0.expect("offer");
        let mut v = p.to_vec();
        nat_rewrite(&o, GW, o.port).apply(&mut v);
        v
    }

    // Expected outputs below are the kernel's, from tests/scenarios/helpers/*.kernel.txt.
    #[test]
    fn recorded_send_and_chat_rewrites() {
        assert_eq!(
            nat(b"PRIVMSG bob :\x01DCC SEND file.txt 167772162 5000 100\x01\r\n"),
            b"PRIVMSG bob :\x01DCC SEND file.txt 3221225985 5000 100\x01\r\n"
        );
        assert_eq!(
            nat(b"PRIVMSG bob :\x01DCC CHAT chat 167772162 6000\x01\r\n"),
            b"PRIVMSG bob :\x01DCC CHAT chat 3221225985 6000\x01\r\n"
        );
        let (o, _) = offer(b"PRIVMSG bob :\x01DCC SEND file.txt 167772162 5000 100\x01\r\n");
        let o = o.unwrap();
        assert_eq!(
            (o.kind, o.ip, o.port, o.off, o.len),
            (DccKind::Send, CLIENT, 5000, 32, 14)
        );
    }

    #[test]
    fn recorded_forged_and_refused() {
        // 10.0.0.3 is not the client: forged, logged with the kernel's numbers.
        let (o, f) = offer(b"PRIVMSG bob :\x01DCC SEND a.txt 167772163 5000 100\x01\r\n");
        assert_eq!((o, f), (None, vec![(0x0a00_0003, 5000)]));
        // Port 0 is refused too.
        let (o, f) = offer(b"PRIVMSG bob :\x01DCC SEND b.txt 167772162 0 100\x01\r\n");
        assert_eq!((o, f), (None, vec![(CLIENT, 0)]));
        // Not a PRIVMSG: not looked at.
        let (o, f) = offer(b"NOTICE bob :\x01DCC SEND c.txt 167772162 5002 100\x01\r\n");
        assert_eq!((o, f.len()), (None, 0));
        // The message after " :" must start with the DCC.
        let (o, _) = offer(b"PRIVMSG bob :hi \x01DCC SEND d.txt 167772162 5003 100\x01\r\n");
        assert_eq!(o, None);
        // The NATed address is accepted and rewritten to the same text.
        let p = b"PRIVMSG bob :\x01DCC SEND e.txt 3221225985 5004 100\x01\r\n";
        assert_eq!(nat(p), p.to_vec());
        // Lower-case privmsg; only the first DCC of the packet counts.
        let p = b"privmsg bob :\x01DCC CHAT chat 167772162 5005\x01\r\nPRIVMSG bob :\x01DCC SEND f.txt 167772162 5006 100\x01\r\n";
        let (o, _) = offer(p);
        assert_eq!(o.unwrap().port, 5005);
        assert_eq!(
            nat(p),
            b"privmsg bob :\x01DCC CHAT chat 3221225985 5005\x01\r\nPRIVMSG bob :\x01DCC SEND f.txt 167772162 5006 100\x01\r\n"
        );
    }

    #[test]
    fn recorded_resume_untouched_by_kernel_parser() {
        let (o, f) = offer(b"PRIVMSG bob :\x01DCC RESUME file.txt 5000 4096\x01\r\n");
        assert_eq!((o, f.len()), (None, 0));
    }

    #[test]
    fn wrapping_numbers_blanks_and_short_input() {
        // 4294967298 wraps to 2; port 70000 wraps to 4464.
        let seen = find_offer(
            b"PRIVMSG x :\x01DCC SEND f 4294967298 70000 1\x01\n",
            2,
            GW,
            &mut |_, _| {},
        )
        .map(|o| (o.ip, o.port));
        assert_eq!(seen, Some((2, 4464)));
        // Leading blanks are skipped, several blanks between address and port accepted.
        let (o, _) = offer(b"\r\n  PRIVMSG bob :\x01DCC SEND f 167772162   5000 1\x01\n");
        assert_eq!(o.unwrap().port, 5000);
        // No newline: not parsed.
        let (o, _) = offer(b"PRIVMSG bob :\x01DCC SEND f 167772162 5000 1\x01");
        assert_eq!(o, None);
        for n in 0..40 {
            let p = &b"PRIVMSG bob :\x01DCC SEND f 167772162 5000 1\x01\n"[..n];
            let _ = offer(p);
        }
        assert_eq!(offer(b"").0, None);
    }

    #[test]
    fn only_the_first_4095_bytes_are_searched() {
        let dcc = b"\x01DCC SEND f 167772162 5000 1\x01\n";
        let mut p = b"PRIVMSG bob :".to_vec();
        p.resize(MAX_SEARCH_SIZE - dcc.len() - 1, b'x');
        p.extend_from_slice(b" :");
        p.extend_from_slice(dcc);
        // The message after the first " :" is text, not a DCC: nothing.
        assert_eq!(offer(&p).0, None);
        // The DCC right after the first " :", its newline at byte 4095 or beyond: not parsed.
        let mut q = b"PRIVMSG bob :".to_vec();
        q.extend_from_slice(&dcc[..dcc.len() - 1]);
        let pad = MAX_SEARCH_SIZE - q.len();
        // a long file name
        q.splice(24..24, std::iter::repeat_n(b'y', pad));
        q.push(b'\n');
        assert_eq!(q.len(), MAX_SEARCH_SIZE + 1);
        assert_eq!(offer(&q).0, None);
        q.remove(24);
        assert_eq!(offer(&q).0.map(|o| o.port), Some(5000));
    }

    #[test]
    fn dcc_ports_translate_resume_and_accept() {
        let mut d = DccPorts::default();
        // An unmoved port is not remembered: RESUME/ACCEPT pass as in the kernel.
        d.remember(5000, 5000);
        assert!(d.is_empty());
        let resume = b":bob!u@h PRIVMSG al :\x01DCC RESUME g.txt 65435 4096\x01\r\n";
        assert_eq!(d.resume_rewrite(Dir::Reply, resume), None);
        d.remember(5000, 65435);
        // The peer's RESUME names the told port: the client must read its own.
        let rw = d.resume_rewrite(Dir::Reply, resume).unwrap();
        let mut v = resume.to_vec();
        rw.apply(&mut v);
        assert_eq!(
            v,
            b":bob!u@h PRIVMSG al :\x01DCC RESUME g.txt 5000 4096\x01\r\n"
        );
        assert_eq!(rw.delta(), -1);
        // The client's ACCEPT names its own port: the peer must read the told one.
        let accept = b"PRIVMSG bob :\x01DCC ACCEPT g.txt 5000 4096\x01\r\n";
        let rw = d.resume_rewrite(Dir::Original, accept).unwrap();
        let mut v = accept.to_vec();
        rw.apply(&mut v);
        assert_eq!(v, b"PRIVMSG bob :\x01DCC ACCEPT g.txt 65435 4096\x01\r\n");
        // Wrong direction for the message, or a port never moved: untouched.
        assert_eq!(d.resume_rewrite(Dir::Original, resume), None);
        assert_eq!(d.resume_rewrite(Dir::Reply, accept), None);
        assert_eq!(d.translate(Dir::Reply, ResumeKind::Resume, 5001), None);
        // The newest move of a port wins; only the last KEEP moves are remembered.
        d.remember(5000, 7000);
        assert_eq!(
            d.translate(Dir::Original, ResumeKind::Accept, 5000),
            Some(7000)
        );
        assert_eq!(
            d.translate(Dir::Reply, ResumeKind::Resume, 65435),
            Some(5000)
        );
        for p in 0..DccPorts::KEEP as u16 {
            d.remember(6000 + p, 8000 + p);
        }
        assert_eq!(d.translate(Dir::Reply, ResumeKind::Resume, 7000), None);
        assert_eq!(
            d.translate(Dir::Reply, ResumeKind::Resume, 8000),
            Some(6000)
        );
    }

    #[test]
    fn resume_and_accept_ports() {
        let p = b"PRIVMSG al :\x01DCC ACCEPT file.txt 5000 4096\x01\r\n";
        let m = find_resume(p).unwrap();
        assert_eq!(
            (m.kind, m.port, &p[m.off..m.off + m.len]),
            (ResumeKind::Accept, 5000, &b"5000"[..])
        );
        let p = b":bob!u@h PRIVMSG al :\x01DCC RESUME \"my file.txt\" 61234 4096\x01\r\n";
        let m = find_resume(p).unwrap();
        assert_eq!((m.kind, m.port), (ResumeKind::Resume, 61234));
        assert_eq!(
            find_resume(b"PRIVMSG al :\x01DCC RESUME f x 1\x01\r\n"),
            None
        );
        assert_eq!(
            find_resume(b"PRIVMSG al :\x01DCC RESUME 5000\x01\r\n"),
            None
        );
        assert_eq!(
            find_resume(b"PRIVMSG al :\x01DCC SEND f 1 2 3\x01\r\n"),
            None
        );
    }
}
