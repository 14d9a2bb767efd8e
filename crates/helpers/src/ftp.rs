//! The FTP helper (kernel `nf_conntrack_ftp.c`, `nf_nat_ftp.c`, Linux 6.x): `PORT`/`EPRT` from
//! the client and `227`/`229` replies from the server, looked for only at the start of a
//! packet that begins right after a line the helper saw end; behind NAT the address and port
//! text is rewritten.

use nfrs_conntrack::Dir;

use crate::mangle::Rewrite;
use crate::seqadj::{after, before};

/// Default FTP control port.
pub const FTP_PORT: u16 = 21;
/// Kernel `ftp_exp_policy`: one pending expectation per control connection...
pub const MAX_EXPECTED: u32 = 1;
/// ...living five minutes.
pub const TIMEOUT: u32 = 5 * 60;

/// Which command or reply carried the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FtpKind {
    /// `PORT h1,h2,h3,h4,p1,p2` (client).
    Port,
    /// `EPRT |1|a.b.c.d|port|` (client).
    Eprt,
    /// `227 ... h1,h2,h3,h4,p1,p2` (server).
    Pasv,
    /// `229 ... (|||port|)` (server).
    Epsv,
}

impl FtpKind {
    /// The pattern the kernel searches for (its log names it).
    pub fn pattern(self) -> &'static str {
        match self {
            FtpKind::Port => "PORT",
            FtpKind::Eprt => "EPRT",
            FtpKind::Pasv => "227 ",
            FtpKind::Epsv => "229 ",
        }
    }
}

/// An address/port found in the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FtpCmd {
    /// Command kind.
    pub kind: FtpKind,
    /// Address (the sender's own address for EPSV, which names none).
    pub ip: u32,
    /// Port.
    pub port: u16,
    /// Offset of the numbers in the payload.
    pub off: usize,
    /// Length of the numbers' text.
    pub len: usize,
}

/// Result of looking at one payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FtpFound {
    /// Nothing to do.
    Nothing,
    /// The payload starts like a command but its numbers do not parse: the kernel drops the
    /// packet (`partial matching of 'PATTERN'`).
    Partial(FtpKind),
    /// A command.
    Cmd(FtpCmd),
}

fn try_number(d: &[u8], out: &mut [u32], sep: u8, term: Option<u8>) -> usize {
    out.iter_mut().for_each(|x| *x = 0);
    let n = out.len();
    let mut i = 0;
    for (len, &c) in d.iter().enumerate() {
        if i >= n {
            break;
        }
        if c.is_ascii_digit() {
            out[i] = out[i].wrapping_mul(10).wrapping_add((c - b'0') as u32);
        } else if c == sep {
            i += 1;
        } else {
            // Kernel rule: the numbers end at the terminator (any character when there is
            // none) once the last number is being read.
            let at_term = match term {
                None => true,
                Some(t) => t == c,
            };
            if at_term && i == n - 1 {
                return len;
            }
            return 0;
        }
    }
    0
}

fn rfc959(d: &[u8], term: Option<u8>) -> Option<(u32, u16, usize)> {
    let mut a = [0u32; 6];
    let len = try_number(d, &mut a, b',', term);
    if len == 0 {
        return None;
    }
    let ip = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3];
    let port = ((a[4] << 8) | a[5]) as u16;
    Some((ip, port, len))
}

fn get_port(d: &[u8], start: usize, delim: u8) -> Option<(u16, usize)> {
    let mut p: u16 = 0;
    for (i, &c) in d.iter().enumerate().skip(start) {
        if c == delim {
            if p == 0 {
                return None;
            }
            return Some((p, i + 1));
        } else if c.is_ascii_digit() {
            p = p.wrapping_mul(10).wrapping_add((c - b'0') as u16);
        } else {
            return None;
        }
    }
    None
}

fn bad_delim(c: u8) -> bool {
    c.is_ascii_digit() || !(33..=126).contains(&c)
}

fn eprt(d: &[u8]) -> Option<(u32, u16, usize)> {
    if d.len() <= 3 {
        return None;
    }
    let delim = d[0];
    // IPv4 connections only take "|1|" (nfrs tracks IPv4).
    if bad_delim(delim) || d[2] != delim || d[1] != b'1' {
        return None;
    }
    let mut a = [0u32; 4];
    let len = try_number(&d[3..], &mut a, b'.', Some(delim));
    if len == 0 {
        return None;
    }
    let ip = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3];
    let (port, end) = get_port(d, 3 + len + 1, delim)?;
    Some((ip, port, end))
}

fn epsv(d: &[u8]) -> Option<(u16, usize)> {
    if d.len() <= 3 {
        return None;
    }
    let delim = d[0];
    if bad_delim(delim) || d[1] != delim || d[2] != delim {
        return None;
    }
    get_port(d, 3, delim)
}

/// Kernel `find_pattern` for one pattern: `None` = no match, `Some(None)` = partial.
fn find_pattern(p: &[u8], kind: FtpKind, own: u32) -> Option<Option<FtpCmd>> {
    let pat = kind.pattern().as_bytes();
    if p.len() <= pat.len() {
        return if p.eq_ignore_ascii_case(&pat[..p.len()]) {
            Some(None)
        } else {
            None
        };
    }
    if !p[..pat.len()].eq_ignore_ascii_case(pat) {
        return None;
    }
    let skip = match kind {
        FtpKind::Port | FtpKind::Eprt => Some(b' '),
        FtpKind::Epsv => Some(b'('),
        FtpKind::Pasv => None,
    };
    let mut i = pat.len();
    if let Some(s) = skip {
        while p[i] != s {
            if i == p.len() - 1 {
                return Some(None);
            }
            i += 1;
        }
        i += 1;
    }
    let d = &p[i..];
    let r = match kind {
        FtpKind::Port => rfc959(d, Some(b'\r')).map(|(ip, port, n)| (ip, port, 0, n)),
        // RFC 1123: scan for the first digit; the numbers end at any other character.
        FtpKind::Pasv => d
            .iter()
            .position(u8::is_ascii_digit)
            .and_then(|k| rfc959(&d[k..], None).map(|(ip, port, n)| (ip, port, k, n))),
        FtpKind::Eprt => eprt(d).map(|(ip, port, n)| (ip, port, 0, n)),
        FtpKind::Epsv => epsv(d).map(|(port, n)| (own, port, 0, n)),
    };
    Some(r.map(|(ip, port, k, n)| FtpCmd {
        kind,
        ip,
        port,
        off: i + k,
        len: n,
    }))
}

/// Looks for a command at the start of `payload` sent in `dir` (client commands in the
/// original direction, server replies in the reply direction); `own` is the sender's address
/// (what EPSV means).
pub fn find_command(payload: &[u8], dir: Dir, own: u32) -> FtpFound {
    let kinds = match dir {
        Dir::Original => [FtpKind::Port, FtpKind::Eprt],
        Dir::Reply => [FtpKind::Pasv, FtpKind::Epsv],
    };
    for k in kinds {
        match find_pattern(payload, k, own) {
            None => continue,
            Some(None) => return FtpFound::Partial(k),
            Some(Some(c)) => return FtpFound::Cmd(c),
        }
    }
    FtpFound::Nothing
}

/// Kernel `nf_nat_ftp_fmt_cmd`: the replacement text for `cmd` with the new address and port.
pub fn nat_rewrite(cmd: &FtpCmd, addr: u32, port: u16) -> Rewrite {
    let [a, b, c, d] = addr.to_be_bytes();
    let args = match cmd.kind {
        FtpKind::Port | FtpKind::Pasv => Rewrite::format(
            cmd.off,
            cmd.len,
            format_args!("{a},{b},{c},{d},{},{}", port >> 8, port & 0xff),
        ),
        FtpKind::Eprt => {
            Rewrite::format(cmd.off, cmd.len, format_args!("|1|{a}.{b}.{c}.{d}|{port}|"))
        }
        FtpKind::Epsv => Rewrite::format(cmd.off, cmd.len, format_args!("|||{port}|")),
    };
    args.expect("FTP text fits")
}

/// Sequence numbers just after a newline, two per direction (`struct nf_ct_ftp_master`): a
/// packet is parsed only when it starts at one of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FtpInfo {
    seq_aft_nl: [[u32; 2]; 2],
    num: [u8; 2],
}

impl FtpInfo {
    /// Kernel `find_nl_seq`.
    pub fn after_newline(&self, dir: Dir, seq: u32) -> bool {
        let d = dir.index();
        self.seq_aft_nl[d][..self.num[d] as usize].contains(&seq)
    }

    /// Kernel `update_nl_seq`: remember `seq` (the sequence after a packet that ended in a
    /// newline); with two remembered, it replaces the older one if it is newer.
    pub fn record_newline(&mut self, dir: Dir, seq: u32) {
        let d = dir.index();
        let n = self.num[d] as usize;
        if self.seq_aft_nl[d][..n].contains(&seq) {
            return;
        }
        if n < 2 {
            self.seq_aft_nl[d][n] = seq;
            self.num[d] += 1;
        } else {
            let s = &mut self.seq_aft_nl[d];
            let oldest = if before(s[0], s[1]) { 0 } else { 1 };
            if after(seq, s[oldest]) {
                s[oldest] = seq;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(p: &[u8], dir: Dir) -> FtpCmd {
        match find_command(p, dir, 0x0a00_0005) {
            FtpFound::Cmd(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn nat(p: &[u8], dir: Dir, addr: u32) -> Vec<u8> {
        let c = cmd(p, dir);
        let mut v = p.to_vec();
        nat_rewrite(&c, addr, c.port).apply(&mut v);
        v
    }

    const GW: u32 = 0xc000_0201;

    // Expected rewrites are the kernel's (tests/scenarios/helpers/ftp-*.kernel.txt).
    #[test]
    fn recorded_rewrites() {
        assert_eq!(
            nat(b"PORT 10,0,0,2,19,137\r\n", Dir::Original, GW),
            b"PORT 192,0,2,1,19,137\r\n"
        );
        assert_eq!(
            nat(b"EPRT |1|10.0.0.2|5003|\r\n", Dir::Original, GW),
            b"EPRT |1|192.0.2.1|5003|\r\n"
        );
        assert_eq!(
            nat(
                b"227 Entering Passive Mode (10,0,0,5,39,16).\r\n",
                Dir::Reply,
                GW
            ),
            b"227 Entering Passive Mode (192,0,2,1,39,16).\r\n"
        );
        let p = b"229 Entering Extended Passive Mode (|||10000|)\r\n";
        assert_eq!(nat(p, Dir::Reply, GW), p.to_vec());
        let c = cmd(p, Dir::Reply);
        assert_eq!((c.kind, c.ip, c.port), (FtpKind::Epsv, 0x0a00_0005, 10000));
        let c = cmd(b"PORT 10,0,0,2,19,138\r\n", Dir::Original);
        assert_eq!((c.ip, c.port, c.off, c.len), (0x0a00_0002, 5002, 5, 15));
    }

    #[test]
    fn partial_and_nothing() {
        assert_eq!(
            find_command(b"PO", Dir::Original, 0),
            FtpFound::Partial(FtpKind::Port)
        );
        assert_eq!(
            find_command(b"PORT\r\n", Dir::Original, 0),
            FtpFound::Partial(FtpKind::Port)
        );
        assert_eq!(
            find_command(b"PORT 10,0,0,2\r\n", Dir::Original, 0),
            FtpFound::Partial(FtpKind::Port)
        );
        assert_eq!(
            find_command(b"eprt |2|::1|5000|\r\n", Dir::Original, 0),
            FtpFound::Partial(FtpKind::Eprt)
        );
        assert_eq!(
            find_command(b"USER anonymous\r\n", Dir::Original, 0),
            FtpFound::Nothing
        );
        assert_eq!(
            find_command(b"PORT 1,2,3,4,5,6\r\n", Dir::Reply, 0),
            FtpFound::Nothing
        );
        assert_eq!(
            find_command(b"220 ready\r\n", Dir::Reply, 0),
            FtpFound::Nothing
        );
        assert_eq!(
            find_command(b"229 x (|||0|)\r\n", Dir::Reply, 0),
            FtpFound::Partial(FtpKind::Epsv)
        );
        // lower case and RFC 1123 replies without parentheses
        let c = cmd(b"port 1,2,3,4,0,21\r\n", Dir::Original);
        assert_eq!((c.ip, c.port), (0x0102_0304, 21));
        let c = cmd(b"227 =1,2,3,4,0,21\r\n", Dir::Reply);
        assert_eq!((c.off, c.len), (5, 12));
        for n in 0..24 {
            let _ = find_command(&b"EPRT |1|10.0.0.2|5003|\r\n"[..n], Dir::Original, 0);
            let _ = find_command(&b"229 Entering (|||10000|)\r\n"[..n], Dir::Reply, 0);
        }
    }

    #[test]
    fn newline_memory() {
        let mut f = FtpInfo::default();
        assert!(!f.after_newline(Dir::Original, 1001));
        f.record_newline(Dir::Original, 1023);
        f.record_newline(Dir::Original, 1045);
        assert!(f.after_newline(Dir::Original, 1023) && f.after_newline(Dir::Original, 1045));
        assert!(!f.after_newline(Dir::Reply, 1023));
        f.record_newline(Dir::Original, 1067);
        assert!(!f.after_newline(Dir::Original, 1023));
        assert!(f.after_newline(Dir::Original, 1067));
        // an older one does not replace
        f.record_newline(Dir::Original, 1000);
        assert!(!f.after_newline(Dir::Original, 1000));
    }
}
