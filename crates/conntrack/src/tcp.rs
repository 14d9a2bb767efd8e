//! The TCP tracker: the kernel's state table (per direction and flag class), window tracking
//! (`tcp_in_window`: td_end / td_maxend / td_maxwin / scale) and per-state timeouts, as in
//! Linux 6.x `nf_conntrack_proto_tcp.c`. Every rule is restated in our own words.

use crate::config::{CtConfig, Nanos, SEC, TCP_TIMEOUT_RETRANS, TCP_TIMEOUT_UNACK};
use crate::conn::{status, Conn, Dir, ProtoState};
use crate::reason::Reason;

/// TCP connection states, numbered as the kernel numbers them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(u8)]
pub enum TcpState {
    /// Nothing seen yet.
    #[default]
    None = 0,
    /// SYN seen.
    SynSent = 1,
    /// SYN/ACK seen.
    SynRecv = 2,
    /// Handshake completed.
    Established = 3,
    /// First FIN seen.
    FinWait = 4,
    /// FIN answered by ACK.
    CloseWait = 5,
    /// FIN seen both ways.
    LastAck = 6,
    /// Last ACK seen.
    TimeWait = 7,
    /// RST seen.
    Close = 8,
    /// SYN seen from the reply side (simultaneous open).
    SynSent2 = 9,
}

const ST: [TcpState; 10] = [
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

impl TcpState {
    /// The name the listings print.
    pub fn name(self) -> &'static str {
        [
            "NONE",
            "SYN_SENT",
            "SYN_RECV",
            "ESTABLISHED",
            "FIN_WAIT",
            "CLOSE_WAIT",
            "LAST_ACK",
            "TIME_WAIT",
            "CLOSE",
            "SYN_SENT2",
        ][self as usize]
    }

    fn from_u8(v: u8) -> TcpState {
        ST[v as usize % 10]
    }
}

/// Per-direction window data (`struct ip_ct_tcp_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSide {
    /// Highest sequence end seen from this side.
    pub td_end: u32,
    /// Highest right edge this side may send to (ack + window of the other side).
    pub td_maxend: u32,
    /// Largest window this side advertised.
    pub td_maxwin: u32,
    /// Highest ACK sent by this side.
    pub td_maxack: u32,
    /// Window scale this side announced.
    pub td_scale: u8,
    /// `flag::*` bits.
    pub flags: u8,
}

/// `TcpSide::flags` bits (kernel `IP_CT_TCP_FLAG_*`).
pub mod flag {
    /// Window scale option seen.
    pub const WINDOW_SCALE: u8 = 0x01;
    /// SACK permitted option seen.
    pub const SACK_PERM: u8 = 0x02;
    /// This side sent the first FIN.
    pub const CLOSE_INIT: u8 = 0x04;
    /// Window checks are liberal for this side (picked-up connection).
    pub const BE_LIBERAL: u8 = 0x08;
    /// Data sent and not yet acknowledged.
    pub const DATA_UNACKNOWLEDGED: u8 = 0x10;
    /// `td_maxack` holds a value.
    pub const MAXACK_SET: u8 = 0x20;
    /// (last_flags) an RFC 5961 challenge ACK may follow.
    pub const EXP_CHALLENGE_ACK: u8 = 0x40;
    /// (last_flags) simultaneous open in progress.
    pub const SIMULTANEOUS_OPEN: u8 = 0x80;
}

/// Per-connection TCP tracking data (`struct ip_ct_tcp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpTrack {
    /// Window data per direction.
    pub seen: [TcpSide; 2],
    /// Sequence of the last ignored/accepted packet.
    pub last_seq: u32,
    /// ACK of the last packet (retransmission detection, challenge ACK).
    pub last_ack: u32,
    /// Sequence end of the last packet.
    pub last_end: u32,
    /// Raw window of the last packet.
    pub last_win: u16,
    state: u8,
    /// Flag class of the last packet (`Index` as u8).
    pub last_index: u8,
    /// Direction of the last packet (0/1).
    pub last_dir: u8,
    /// Window scale of the last ignored SYN.
    pub last_wscale: u8,
    /// `flag::*` bits remembered from the last ignored SYN.
    pub last_flags: u8,
    /// Retransmission counter.
    pub retrans: u8,
}

impl TcpTrack {
    /// The connection state.
    pub fn state(&self) -> TcpState {
        TcpState::from_u8(self.state)
    }

    /// Sets the connection state.
    pub fn set_state(&mut self, s: TcpState) {
        self.state = s as u8;
    }
}

/// Flag class of a segment, the second index of the state table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Index {
    /// SYN without ACK.
    Syn = 0,
    /// SYN with ACK.
    SynAck = 1,
    /// FIN (no SYN/RST).
    Fin = 2,
    /// ACK only.
    Ack = 3,
    /// RST (wins over everything).
    Rst = 4,
    /// None of these.
    None = 5,
}

/// TCP header flag bits.
pub mod tcpflag {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// Kernel rule (get_conntrack_index): RST first, then SYN (with/without ACK), FIN, ACK.
pub fn index_of(flags: u8) -> Index {
    use tcpflag::*;
    if flags & RST != 0 {
        Index::Rst
    } else if flags & SYN != 0 {
        if flags & ACK != 0 {
            Index::SynAck
        } else {
            Index::Syn
        }
    } else if flags & FIN != 0 {
        Index::Fin
    } else if flags & ACK != 0 {
        Index::Ack
    } else {
        Index::None
    }
}

/// Table value for "invalid" (the kernel's sIV = TCP_CONNTRACK_MAX).
pub const IV: u8 = 10;
/// Table value for "ignore" (sIG).
pub const IG: u8 = 11;

const SS: u8 = 1;
const SR: u8 = 2;
const ES: u8 = 3;
const FW: u8 = 4;
const CW: u8 = 5;
const LA: u8 = 6;
const TW: u8 = 7;
const CL: u8 = 8;
const S2: u8 = 9;

/// The kernel's state table: `[direction][flag class][old state] -> new state | IV | IG`.
/// Columns: NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE SYN_SENT2.
pub const STATE_TABLE: [[[u8; 10]; 6]; 2] = [
    [
        // original direction
        [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2], // syn
        [IV, IV, SR, IV, IV, IV, IV, IV, IV, SR], // syn+ack
        [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV], // fin
        [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV], // ack
        [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL], // rst
        [IV; 10],                                 // none
    ],
    [
        // reply direction
        [IV, S2, IV, IV, IV, IV, IV, SS, IV, S2], // syn
        [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR], // syn+ack
        [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV], // fin
        [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG], // ack
        [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL], // rst
        [IV; 10],                                 // none
    ],
];

/// A TCP segment's fields the tracker reads, parsed once.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Raw window.
    pub win: u16,
    /// Flag byte.
    pub flags: u8,
    /// Payload length (transport length minus header length).
    pub payload_len: u32,
    /// Option bytes (header bytes after the first 20).
    pub options: &'a [u8],
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> Segment<'a> {
    /// Parses a TCP header from the transport bytes; `None` when the header is shorter than
    /// 20 bytes or its data offset does not fit (the kernel's "truncated packet").
    pub fn parse(l4: &'a [u8]) -> Option<Segment<'a>> {
        if l4.len() < 20 {
            return None;
        }
        let doff = (l4[12] >> 4) as usize * 4;
        if doff < 20 || l4.len() < doff {
            return None;
        }
        Some(Segment {
            seq: be32(l4, 4),
            ack: be32(l4, 8),
            win: be16(l4, 14),
            flags: l4[13],
            payload_len: (l4.len() - doff) as u32,
            options: &l4[20..doff],
        })
    }

    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// Kernel rule (segment_seq_plus_len): end = seq + payload + SYN + FIN.
    pub fn end(&self) -> u32 {
        self.seq
            .wrapping_add(self.payload_len)
            .wrapping_add(self.has(tcpflag::SYN) as u32)
            .wrapping_add(self.has(tcpflag::FIN) as u32)
    }
}

/// Kernel rule (tcp_valid_flags): with PSH, ECE and CWR masked off, only SYN, SYN+URG,
/// SYN+ACK, RST, RST+ACK, FIN+ACK, FIN+ACK+URG, ACK, ACK+URG are valid.
pub fn flags_valid(flags: u8) -> bool {
    use tcpflag::*;
    let f = flags & !(ECE | CWR | PSH);
    matches!(
        f,
        x if x == SYN
            || x == SYN | URG
            || x == SYN | ACK
            || x == RST
            || x == RST | ACK
            || x == FIN | ACK
            || x == FIN | ACK | URG
            || x == ACK
            || x == ACK | URG
    )
}

fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// Kernel rule (tcp_options): record SACK-permitted and the window scale (capped at 14);
/// stop at EOL, a silly length or an option running past the header.
fn parse_options(opts: &[u8], side: &mut TcpSide) {
    if opts.is_empty() {
        return;
    }
    side.td_scale = 0;
    side.flags &= flag::BE_LIBERAL;
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        match kind {
            0 => return,
            1 => {
                i += 1;
                continue;
            }
            _ => {
                let left = opts.len() - i;
                if left < 2 {
                    return;
                }
                let size = opts[i + 1] as usize;
                if size < 2 || size > left {
                    return;
                }
                if kind == 4 && size == 2 {
                    side.flags |= flag::SACK_PERM;
                } else if kind == 3 && size == 3 {
                    side.td_scale = opts[i + 2].min(14);
                    side.flags |= flag::WINDOW_SCALE;
                }
                i += size;
            }
        }
    }
}

/// Kernel rule (tcp_sack): the highest right edge of the first well-formed SACK option
/// replaces the ACK when it is further; a lone aligned timestamp option is skipped fast.
fn highest_sack(opts: &[u8], sack: &mut u32) {
    if opts.len() == 12 && opts[..4] == [1, 1, 8, 10] {
        return;
    }
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        match kind {
            0 => return,
            1 => {
                i += 1;
                continue;
            }
            _ => {
                let left = opts.len() - i;
                if left < 2 {
                    return;
                }
                let size = opts[i + 1] as usize;
                if size < 2 || size > left {
                    return;
                }
                if kind == 5 && size >= 10 && (size - 2).is_multiple_of(8) {
                    let mut b = i + 2;
                    while b + 8 <= i + size {
                        let right = be32(opts, b + 4);
                        if after(right, *sack) {
                            *sack = right;
                        }
                        b += 8;
                    }
                    return;
                }
                i += size;
            }
        }
    }
}

/// What the tracker decided (the kernel's NFCT_TCP_* and the hook verdict).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Accepted, state updated.
    Accept,
    /// Accepted as it is, but the connection is deleted (RST with no reply seen).
    AcceptKill,
    /// Not a valid part of the connection: the packet goes on without conntrack (INVALID).
    Invalid,
    /// A new connection attempt on a closed one: delete it and look up again.
    Repeat,
}

/// Tracker result: outcome and up to two log_invalid messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TcpResult {
    /// The outcome.
    pub outcome: Outcome,
    /// Message for `nf_conntrack_log_invalid` (also set for some accepted packets).
    pub log: Option<Reason>,
    /// A second message (timeout lowered after an invalid FIN/RST).
    pub log2: Option<Reason>,
    /// The packet is counted (kernel: it reached nf_ct_refresh_acct / nf_ct_kill_acct).
    pub acct: bool,
}

impl TcpResult {
    fn new(outcome: Outcome, log: Option<Reason>) -> Self {
        TcpResult {
            outcome,
            log,
            log2: None,
            acct: false,
        }
    }

    fn counted(mut self) -> Self {
        self.acct = true;
        self
    }
}

enum Window {
    Accept,
    Ignore,
    Invalid,
}

/// Kernel rule (tcp_init_sender): a SYN or SYN/ACK (re)starts the sender's window data; both
/// sides must announce window scaling for it to apply (checked when the reply side speaks).
fn init_sender(t: &mut TcpTrack, dir: usize, seg: &Segment, end: u32, win: u32) {
    let s = &mut t.seen[dir];
    s.td_end = end;
    s.td_maxend = end;
    s.td_maxwin = if win == 0 { 1 } else { win };
    parse_options(seg.options, s);
    if dir == 1 {
        let both =
            t.seen[0].flags & flag::WINDOW_SCALE != 0 && t.seen[1].flags & flag::WINDOW_SCALE != 0;
        if !both {
            t.seen[0].td_scale = 0;
            t.seen[1].td_scale = 0;
        }
    }
}

/// Kernel rule (nf_tcp_log_invalid): with be_liberal (sysctl or per-side flag) a failed check
/// accepts silently; otherwise the reason is logged and `res` returned.
fn judged(
    t: &TcpTrack,
    dir: usize,
    cfg: &CtConfig,
    res: Window,
    why: Reason,
    log: &mut Option<Reason>,
) -> Window {
    if cfg.tcp_be_liberal || t.seen[dir].flags & flag::BE_LIBERAL != 0 {
        return Window::Accept;
    }
    *log = Some(why);
    res
}

fn max_ack_window(s: &TcpSide) -> u32 {
    // MAXACKWINDOW: the sender's largest window, at least 66000.
    s.td_maxwin.max(66000)
}

/// Kernel `tcp_in_window`: bounds I–IV of the window tracking, then the window data updates.
fn in_window(
    t: &mut TcpTrack,
    dir: usize,
    index: Index,
    seg: &Segment,
    cfg: &CtConfig,
    log: &mut Option<Reason>,
) -> Window {
    let rd = 1 - dir;
    let mut seq = seg.seq;
    let mut ack = seg.ack;
    let mut sack = seg.ack;
    let win_raw = seg.win;
    let win = win_raw as u32;
    let mut end = seg.end();
    let syn = seg.has(tcpflag::SYN);
    let state = t.state();

    if t.seen[rd].flags & flag::SACK_PERM != 0 {
        highest_sack(seg.options, &mut sack);
    }

    if t.seen[dir].td_maxwin == 0 {
        // First packet seen from this side.
        if syn {
            init_sender(t, dir, seg, end, win);
            if !seg.has(tcpflag::ACK) {
                // Simultaneous open: the reply side's SYN.
                return Window::Accept;
            }
        } else {
            // Picked up mid-stream: take what the packet shows.
            let s = &mut t.seen[dir];
            s.td_end = end;
            let swin = win << s.td_scale;
            s.td_maxwin = if swin == 0 { 1 } else { swin };
            s.td_maxend = end.wrapping_add(s.td_maxwin);
            let r = &mut t.seen[rd];
            if r.td_maxwin == 0 {
                // Nothing seen the other way: make bounds III and IV pass until it speaks.
                r.td_end = sack;
                r.td_maxend = sack;
            } else if sack == r.td_end.wrapping_add(1) {
                // An answer to a keepalive.
                r.td_end = r.td_end.wrapping_add(1);
            }
        }
    } else if syn
        && after(end, t.seen[dir].td_end)
        && (state == TcpState::SynSent || state == TcpState::SynRecv)
    {
        // A SYN (or SYN/ACK) with a newer sequence re-initialises this side (RFC 793 reinit).
        init_sender(t, dir, seg, end, win);
        if dir == 1 && !seg.has(tcpflag::ACK) {
            return Window::Accept;
        }
    }

    if !seg.has(tcpflag::ACK) {
        // No ACK: act as if it acknowledged everything seen.
        ack = t.seen[rd].td_end;
        sack = ack;
    } else if seg.flags & (tcpflag::ACK | tcpflag::RST) == tcpflag::ACK | tcpflag::RST && ack == 0 {
        // Stacks that send RST+ACK with ack 0.
        ack = t.seen[rd].td_end;
        sack = ack;
    }

    if seg.has(tcpflag::RST) && seq == 0 && state == TcpState::SynSent {
        // RST answering a SYN.
        seq = t.seen[dir].td_end;
        end = seq;
    }

    let (s, r) = (t.seen[dir], t.seen[rd]);
    // Bound I: the segment starts at most at the sender's maximum end.
    if !before(seq, s.td_maxend.wrapping_add(1)) {
        let overshot = end.wrapping_sub(s.td_maxend).wrapping_add(1);
        let ack_ok = after(
            sack,
            r.td_end.wrapping_sub(max_ack_window(&s)).wrapping_sub(1),
        );
        let in_recv_win =
            r.td_maxwin != 0 && after(end, s.td_end.wrapping_sub(r.td_maxwin).wrapping_sub(1));
        if in_recv_win
            && ack_ok
            && overshot <= r.td_maxwin
            && before(sack, r.td_end.wrapping_add(1))
        {
            // A sender overshooting the receive window a little: remember the data so its ACK
            // passes later, but ignore this packet.
            t.seen[dir].td_end = end;
            t.seen[dir].flags |= flag::DATA_UNACKNOWLEDGED;
            return judged(
                t,
                dir,
                cfg,
                Window::Ignore,
                Reason::TcpBytesMore(overshot),
                log,
            );
        }
        return judged(
            t,
            dir,
            cfg,
            Window::Invalid,
            Reason::TcpSeqOver(s.td_maxend.wrapping_add(1)),
            log,
        );
    }
    // Bound III: nothing acknowledged that the receiver has not sent.
    if !before(sack, r.td_end.wrapping_add(1)) {
        return judged(
            t,
            dir,
            cfg,
            Window::Invalid,
            Reason::TcpAckOver(r.td_end.wrapping_add(1)),
            log,
        );
    }
    // Bound II: the segment ends inside what the receiver may still accept.
    let in_recv_win =
        r.td_maxwin == 0 || after(end, s.td_end.wrapping_sub(r.td_maxwin).wrapping_sub(1));
    if !in_recv_win {
        let lb = s.td_end.wrapping_sub(r.td_maxwin).wrapping_sub(1);
        return judged(t, dir, cfg, Window::Ignore, Reason::TcpSeqUnder(lb), log);
    }
    // Bound IV: the ACK is not older than a maximal ACK window.
    let lb = r.td_end.wrapping_sub(max_ack_window(&s)).wrapping_sub(1);
    if !after(sack, lb) {
        return judged(t, dir, cfg, Window::Ignore, Reason::TcpAckUnder(lb), log);
    }

    accept_update(t, dir, index, seg, seq, ack, sack, end);
    Window::Accept
}

/// The end of `tcp_in_window` for a segment inside bounds I–IV: the sender's and the
/// receiver's window data move, and pure ACKs are counted as retransmissions or noted.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn accept_update(
    t: &mut TcpTrack,
    dir: usize,
    index: Index,
    seg: &Segment,
    seq: u32,
    ack: u32,
    sack: u32,
    end: u32,
) {
    let rd = 1 - dir;
    let win_raw = seg.win;
    let mut win = win_raw as u32;
    // Window scaling applies to everything but SYNs (RFC 1323).
    if !seg.has(tcpflag::SYN) {
        win <<= t.seen[dir].td_scale;
    }
    // Sender updates.
    let swin = win.wrapping_add(sack.wrapping_sub(ack));
    let snd = &mut t.seen[dir];
    if snd.td_maxwin < swin {
        snd.td_maxwin = swin;
    }
    if after(end, snd.td_end) {
        snd.td_end = end;
        snd.flags |= flag::DATA_UNACKNOWLEDGED;
    }
    if seg.has(tcpflag::ACK) {
        if snd.flags & flag::MAXACK_SET == 0 {
            snd.td_maxack = ack;
            snd.flags |= flag::MAXACK_SET;
        } else if after(ack, snd.td_maxack) {
            snd.td_maxack = ack;
        }
    }
    let snd_maxend = snd.td_maxend;
    // Receiver updates.
    let rcv = &mut t.seen[rd];
    if rcv.td_maxwin != 0 && after(end, snd_maxend) {
        rcv.td_maxwin = rcv.td_maxwin.wrapping_add(end.wrapping_sub(snd_maxend));
    }
    if after(sack.wrapping_add(win), rcv.td_maxend.wrapping_sub(1)) {
        rcv.td_maxend = sack.wrapping_add(win);
        if win == 0 {
            rcv.td_maxend = rcv.td_maxend.wrapping_add(1);
        }
    }
    if ack == rcv.td_end {
        rcv.flags &= !flag::DATA_UNACKNOWLEDGED;
    }
    // Retransmission counting on pure ACK-class packets.
    if index == Index::Ack {
        if t.last_dir as usize == dir
            && t.last_seq == seq
            && t.last_ack == ack
            && t.last_end == end
            && t.last_win == win_raw
        {
            t.retrans = t.retrans.wrapping_add(1);
        } else {
            t.last_dir = dir as u8;
            t.last_seq = seq;
            t.last_ack = ack;
            t.last_end = end;
            t.last_win = win_raw;
            t.retrans = 0;
        }
    }
}

/// Kernel rule (tcp_new): only a SYN starts tracking from scratch; with tcp_loose any valid
/// non-SYN packet picks the connection up mid-stream, with liberal window checks.
/// `Err(reason)` means the packet cannot create a connection.
pub(crate) fn tcp_new(
    conn: &mut Conn,
    seg: &Segment,
    cfg: &CtConfig,
) -> Result<(), Option<Reason>> {
    let index = index_of(seg.flags);
    let ns = STATE_TABLE[0][index as usize][0];
    if ns >= IV {
        return Err(Some(Reason::TcpInvalidNew));
    }
    let mut t = TcpTrack::default();
    let end = seg.end();
    let win = (seg.win as u32).max(1);
    if ns == SS {
        t.seen[0].td_end = end;
        t.seen[0].td_maxwin = win;
        t.seen[0].td_maxend = end;
        parse_options(seg.options, &mut t.seen[0]);
    } else if !cfg.tcp_loose {
        return Err(None);
    } else {
        t.seen[0].td_end = end;
        t.seen[0].td_maxwin = win;
        t.seen[0].td_maxend = end.wrapping_add(win);
        t.seen[0].flags = flag::SACK_PERM | flag::BE_LIBERAL;
        t.seen[1].flags = flag::SACK_PERM | flag::BE_LIBERAL;
    }
    t.last_index = Index::None as u8;
    conn.proto = ProtoState::Tcp(t);
    Ok(())
}

/// Kernel rule (tcp_can_early_drop): closing states may be evicted even when assured.
pub fn closing(state: TcpState) -> bool {
    matches!(
        state,
        TcpState::FinWait
            | TcpState::LastAck
            | TcpState::TimeWait
            | TcpState::Close
            | TcpState::CloseWait
    )
}

/// Kernel rule (nf_tcp_handle_invalid): an out-of-window FIN/RST answering the other side's
/// FIN/RST shortens an assured connection's long timeout to the unacknowledged timeout.
fn handle_invalid(
    conn: &mut Conn,
    dir: usize,
    index: Index,
    cfg: &CtConfig,
    now: Nanos,
) -> Option<Reason> {
    if !conn.has(status::ASSURED) || conn.has(status::FIXED_TIMEOUT) {
        return None;
    }
    if !matches!(index, Index::Rst | Index::Fin) {
        return None;
    }
    let timeout_left = conn.timeout.saturating_sub(now);
    let ProtoState::Tcp(t) = &mut conn.proto else {
        return None;
    };
    let last_fin_rst = t.last_index == Index::Fin as u8 || t.last_index == Index::Rst as u8;
    if t.last_dir as usize != dir && last_fin_rst {
        if timeout_left < 120 * SEC {
            return None;
        }
        let unack = cfg.tcp_timeouts[TCP_TIMEOUT_UNACK];
        if timeout_left > unack as Nanos * SEC {
            let last_index = t.last_index;
            conn.timeout = now + unack as Nanos * SEC;
            return Some(Reason::TcpLowerTimeout {
                index: index as u8,
                dir: dir as u8,
                last_index,
                jiffies: unack.saturating_mul(crate::reason::HZ),
            });
        }
    } else {
        t.last_index = index as u8;
        t.last_dir = dir as u8;
    }
    None
}

/// Kernel `nf_conntrack_tcp_packet` after the header checks: state table, ignore/invalid
/// special cases, window tracking, timeout choice and the ASSURED rule.
pub(crate) fn tcp_packet(
    conn: &mut Conn,
    dir: Dir,
    seg: &Segment,
    cfg: &CtConfig,
    now: Nanos,
) -> TcpResult {
    match established_ack(conn, dir.index(), seg, cfg, now) {
        Some(r) => r,
        None => tcp_packet_full(conn, dir, seg, cfg, now),
    }
}

/// The common case of [`tcp_packet`] decided without the state table: an ESTABLISHED
/// connection, a segment whose only state flag is ACK (the table keeps ESTABLISHED both ways,
/// no special case applies) from a side already seen, inside bounds I–IV of the window
/// tracking. Then the window data move and the timeout is chosen exactly as the full path
/// does it (the same `accept_update` and `finish`); anything else, nothing changed yet,
/// goes the full way (`None`).
#[inline]
fn established_ack(
    conn: &mut Conn,
    d: usize,
    seg: &Segment,
    cfg: &CtConfig,
    now: Nanos,
) -> Option<TcpResult> {
    use tcpflag::*;
    let ProtoState::Tcp(t) = &mut conn.proto else {
        return None;
    };
    if t.state != ES || seg.flags & (SYN | FIN | RST | ACK) != ACK || t.seen[d].td_maxwin == 0 {
        return None;
    }
    let rd = 1 - d;
    let (seq, ack) = (seg.seq, seg.ack);
    let mut sack = ack;
    if t.seen[rd].flags & flag::SACK_PERM != 0 {
        highest_sack(seg.options, &mut sack);
    }
    let end = seg.end();
    let (s, r) = (&t.seen[d], &t.seen[rd]);
    let inside = before(seq, s.td_maxend.wrapping_add(1))
        && before(sack, r.td_end.wrapping_add(1))
        && (r.td_maxwin == 0 || after(end, s.td_end.wrapping_sub(r.td_maxwin).wrapping_sub(1)))
        && after(
            sack,
            r.td_end.wrapping_sub(max_ack_window(s)).wrapping_sub(1),
        );
    if !inside {
        return None;
    }
    accept_update(t, d, Index::Ack, seg, seq, ack, sack, end);
    Some(finish(
        conn,
        d,
        Index::Ack,
        TcpState::Established,
        ES,
        seg,
        cfg,
        now,
        None,
    ))
}

/// [`tcp_packet`] the whole way: the state table and everything after it.
pub(crate) fn tcp_packet_full(
    conn: &mut Conn,
    dir: Dir,
    seg: &Segment,
    cfg: &CtConfig,
    now: Nanos,
) -> TcpResult {
    let d = dir.index();
    let index = index_of(seg.flags);
    let ProtoState::Tcp(t) = &mut conn.proto else {
        return TcpResult::new(Outcome::Invalid, None);
    };
    let mut old_state = t.state();
    let mut new = STATE_TABLE[d][index as usize][old_state as usize];
    let mut log = None;
    let seen_reply = conn.status & status::SEEN_REPLY != 0;
    let assured = conn.status & status::ASSURED != 0;
    let mut skip_window = false;

    'sw: {
        if new == SS {
            if (old_state as u8) < TW {
                break 'sw;
            }
            // A SYN on a connection in TIME_WAIT or CLOSE: reopen when it was really closed
            // (someone sent FIN) or this side reset it last.
            let closed = (t.seen[d].flags | t.seen[1 - d].flags) & flag::CLOSE_INIT != 0
                || (t.last_dir as usize == d && t.last_index == Index::Rst as u8);
            if closed {
                return TcpResult::new(Outcome::Repeat, None);
            }
            new = IG;
        }
        if new == IG {
            // A SYN/ACK answering a SYN we ignored earlier: client and server are in sync, we
            // are not; resynchronise from what we noted about that SYN.
            if index == Index::SynAck
                && t.last_index == Index::Syn as u8
                && t.last_dir as usize != d
                && seg.ack == t.last_end
            {
                let ld = t.last_dir as usize;
                new = SR;
                t.seen[ld].td_end = t.last_end;
                t.seen[ld].td_maxend = t.last_end;
                t.seen[ld].td_maxwin = if t.last_win == 0 {
                    1
                } else {
                    t.last_win as u32
                };
                t.seen[ld].td_scale = t.last_wscale;
                t.last_flags &= !flag::EXP_CHALLENGE_ACK;
                t.seen[ld].flags = t.last_flags;
                let keep = t.seen[d].flags & flag::BE_LIBERAL;
                t.seen[d] = TcpSide {
                    flags: keep,
                    ..TcpSide::default()
                };
                // The resync is treated as SYN_SENT -> SYN_RECV, window checks included.
                old_state = TcpState::SynSent;
                break 'sw;
            }
            t.last_index = index as u8;
            t.last_dir = d as u8;
            t.last_seq = seg.seq;
            t.last_end = seg.end();
            t.last_win = seg.win;
            if index == Index::Syn && d == 0 {
                // A SYN in the original direction: note its options, we may need them.
                let mut probe = TcpSide::default();
                t.last_flags = 0;
                t.last_wscale = 0;
                parse_options(seg.options, &mut probe);
                if probe.flags & flag::WINDOW_SCALE != 0 {
                    t.last_flags |= flag::WINDOW_SCALE;
                    t.last_wscale = probe.td_scale;
                }
                if probe.flags & flag::SACK_PERM != 0 {
                    t.last_flags |= flag::SACK_PERM;
                }
                if old_state == TcpState::LastAck {
                    t.last_flags |= flag::EXP_CHALLENGE_ACK;
                }
            }
            if old_state == TcpState::SynSent && index == Index::Ack && d == 1 {
                // Possibly a challenge ACK answering the SYN.
                t.last_ack = seg.ack;
            }
            return TcpResult::new(
                Outcome::Accept,
                Some(Reason::TcpIgnored {
                    index: index as u8,
                    dir: d as u8,
                    state: old_state,
                }),
            );
        }
        if new == IV {
            return TcpResult::new(
                Outcome::Invalid,
                Some(Reason::TcpInvalidState {
                    index: index as u8,
                    dir: d as u8,
                    state: old_state,
                }),
            );
        }
        match new {
            // An RFC 5961 challenge ACK answering a SYN in LAST_ACK does not ack our FIN.
            TW if old_state == TcpState::LastAck
                && index == Index::Ack
                && t.last_dir as usize != d
                && t.last_index == Index::Syn as u8
                && t.last_flags & flag::EXP_CHALLENGE_ACK != 0 =>
            {
                t.last_flags &= !flag::EXP_CHALLENGE_ACK;
                return TcpResult::new(Outcome::Accept, Some(Reason::TcpChallengeAckIgnored));
            }
            S2 => {
                // The table cannot express simultaneous open; remember it.
                t.last_flags |= flag::SIMULTANEOUS_OPEN;
            }
            SR if d == 1 && index == Index::Ack && t.last_flags & flag::SIMULTANEOUS_OPEN != 0 => {
                new = ES;
            }
            CL => {
                if index != Index::Rst {
                    break 'sw;
                }
                if closing(old_state) {
                    // The tuple may already be reused: skip all checks.
                    skip_window = true;
                    break 'sw;
                }
                let rd = 1 - d;
                if t.seen[rd].flags & flag::MAXACK_SET != 0 && t.last_index != Index::Syn as u8 {
                    let established = old_state == TcpState::Established && assured;
                    let rseq = seg.seq;
                    if rseq == 0 && !established {
                        // Likely the answer to a SYN let through earlier.
                    } else if before(rseq, t.seen[rd].td_maxack) && !cfg.tcp_ignore_invalid_rst {
                        return TcpResult::new(Outcome::Invalid, Some(Reason::TcpInvalidRst));
                    } else if !established || rseq == t.seen[rd].td_maxack {
                        // Exact or not yet established: a real reset.
                    } else if t.last_index == Index::Ack as u8
                        && t.last_dir as usize == d
                        && rseq == t.last_end
                    {
                        // RST right after this side's data: part of a train.
                    } else {
                        // Not exactly at the edge: keep the state, a challenge ACK may follow.
                        new = old_state as u8;
                    }
                }
                let rst_to_ignored = ((seen_reply && t.last_index == Index::Syn as u8)
                    || (!assured && t.last_index == Index::Ack as u8))
                    && seg.ack == t.last_end;
                if rst_to_ignored {
                    // RST answering a SYN or ACK we let through while out of sync.
                    skip_window = true;
                    break 'sw;
                }
                if old_state == TcpState::SynSent
                    && t.last_index == Index::Ack as u8
                    && t.last_dir == 1
                    && seg.seq == t.last_ack
                {
                    // RST answering a challenge ACK we let through.
                    skip_window = true;
                }
            }
            _ => {}
        }
    }

    if !skip_window {
        match in_window(t, d, index, seg, cfg, &mut log) {
            Window::Accept => {}
            Window::Ignore => return TcpResult::new(Outcome::Accept, log),
            Window::Invalid => {
                let log2 = handle_invalid(conn, d, index, cfg, now);
                return TcpResult {
                    outcome: Outcome::Invalid,
                    log,
                    log2,
                    acct: false,
                };
            }
        }
    }
    finish(conn, d, index, old_state, new, seg, cfg, now, log)
}

/// The in-window tail of tcp_packet: state change, timeout choice, ASSURED.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn finish(
    conn: &mut Conn,
    d: usize,
    index: Index,
    old_state: TcpState,
    new: u8,
    seg: &Segment,
    cfg: &CtConfig,
    now: Nanos,
    log: Option<Reason>,
) -> TcpResult {
    let ProtoState::Tcp(t) = &mut conn.proto else {
        return TcpResult::new(Outcome::Invalid, log);
    };
    let new_state = TcpState::from_u8(new);
    t.last_index = index as u8;
    t.last_dir = d as u8;
    t.set_state(new_state);
    if old_state != new_state && new_state == TcpState::FinWait {
        t.seen[d].flags |= flag::CLOSE_INIT;
    }
    let to = &cfg.tcp_timeouts;
    let state_to = to[new_state as usize];
    let unack_any = (t.seen[0].flags | t.seen[1].flags) & flag::DATA_UNACKNOWLEDGED != 0;
    let mut timeout = if t.retrans >= cfg.tcp_max_retrans && state_to > to[TCP_TIMEOUT_RETRANS] {
        to[TCP_TIMEOUT_RETRANS]
    } else if index == Index::Rst {
        to[TcpState::Close as usize]
    } else if unack_any && state_to > to[TCP_TIMEOUT_UNACK] {
        to[TCP_TIMEOUT_UNACK]
    } else if t.last_win == 0 && state_to > to[TCP_TIMEOUT_RETRANS] {
        to[TCP_TIMEOUT_RETRANS]
    } else {
        state_to
    };

    if conn.status & status::SEEN_REPLY == 0 {
        if seg.has(tcpflag::RST) {
            // Only a RST came back: no connection worth keeping.
            return TcpResult::new(Outcome::AcceptKill, log).counted();
        }
        if index == Index::Syn && old_state == TcpState::SynSent {
            // A retransmitted SYN does not extend the timeout.
            return TcpResult::new(Outcome::Accept, log);
        }
        if new_state == TcpState::Established && timeout > to[TCP_TIMEOUT_UNACK] {
            // Picked up mid-stream and never answered: no five-day timeout.
            timeout = to[TCP_TIMEOUT_UNACK];
        }
    } else if conn.status & status::ASSURED == 0
        && (old_state == TcpState::SynRecv || old_state == TcpState::Established)
        && new_state == TcpState::Established
    {
        // A valid ACK after SYN_RECV (or an answered pick-up) makes the connection assured.
        conn.status |= status::ASSURED;
    }
    conn.refresh(timeout, now);
    TcpResult::new(Outcome::Accept, log).counted()
}

#[cfg(test)]
mod tests;
