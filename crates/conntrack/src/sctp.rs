//! The SCTP tracker (Linux 6.x `nf_conntrack_proto_sctp.c`): chunk checks, the state table per
//! direction and chunk type, verification-tag rules (RFC 4960 8.5) and per-state timeouts.

use crate::config::{CtConfig, Nanos};
use crate::conn::{status, Conn, Dir, ProtoState};
use crate::reason::Reason;

/// SCTP connection states, numbered as the kernel numbers them.
pub const STATE_NAMES: [&str; 9] = [
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
];

/// Per-connection SCTP data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SctpTrack {
    /// State index into [`STATE_NAMES`].
    pub state: u8,
    /// Verification tag expected per direction (wire byte order kept as read, big endian).
    pub vtag: [u32; 2],
    /// An INIT was seen per direction (collision handling).
    pub init: [bool; 2],
    /// Heartbeat vtag check failed once.
    pub hb_failed: bool,
    /// Direction of that heartbeat.
    pub last_dir: u8,
}

const NO: u8 = 0;
const CL: u8 = 1;
const CW: u8 = 2;
const CE: u8 = 3;
const ES: u8 = 4;
const SS: u8 = 5;
const SR: u8 = 6;
const SA: u8 = 7;
const HS: u8 = 8;
const IV: u8 = 9;

/// Kernel table: `[direction][chunk class][state] -> state | IV`. Classes: INIT, INIT_ACK,
/// ABORT, SHUTDOWN, SHUTDOWN_ACK, ERROR, COOKIE_ECHO, COOKIE_ACK, SHUTDOWN_COMPLETE,
/// HEARTBEAT, HEARTBEAT_ACK. Columns: NONE CLOSED COOKIE_WAIT COOKIE_ECHOED ESTABLISHED
/// SHUTDOWN_SENT SHUTDOWN_RECD SHUTDOWN_ACK_SENT HEARTBEAT_SENT.
pub const STATE_TABLE: [[[u8; 9]; 11]; 2] = [
    [
        [CL, CL, CW, CE, ES, CL, CL, SA, CW],
        [CL, CL, CW, CE, ES, SS, SR, SA, CL],
        [CL, CL, CL, CL, CL, CL, CL, CL, CL],
        [CL, CL, CW, CE, SS, SS, SR, SA, CL],
        [SA, CL, CW, CE, ES, SA, SA, SA, SA],
        [CL, CL, CW, CE, ES, SS, SR, SA, CL],
        [CL, CL, CE, CE, ES, SS, SR, SA, CL],
        [CL, CL, CW, ES, ES, SS, SR, SA, CL],
        [CL, CL, CW, CE, ES, SS, SR, CL, CL],
        [HS, CL, CW, CE, ES, SS, SR, SA, HS],
        [CL, CL, CW, CE, ES, SS, SR, SA, HS],
    ],
    [
        [IV, CL, CW, CE, ES, SS, SR, SA, IV],
        [IV, CW, CW, CE, ES, SS, SR, SA, IV],
        [IV, CL, CL, CL, CL, CL, CL, CL, IV],
        [IV, CL, CW, CE, SR, SS, SR, SA, IV],
        [IV, CL, CW, CE, ES, SA, SA, SA, IV],
        [IV, CL, CW, CL, ES, SS, SR, SA, IV],
        [IV, CL, CE, CE, ES, SS, SR, SA, IV],
        [IV, CL, CW, ES, ES, SS, SR, SA, IV],
        [IV, CL, CW, CE, ES, SS, SR, CL, IV],
        [IV, CL, CW, CE, ES, SS, SR, SA, HS],
        [IV, CL, CW, CE, ES, SS, SR, SA, ES],
    ],
];

// Chunk types.
const DATA: u8 = 0;
const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const HEARTBEAT: u8 = 4;
const HEARTBEAT_ACK: u8 = 5;
const ABORT: u8 = 6;
const SHUTDOWN: u8 = 7;
const SHUTDOWN_ACK: u8 = 8;
const ERROR: u8 = 9;
const COOKIE_ECHO: u8 = 10;
const COOKIE_ACK: u8 = 11;
const SHUTDOWN_COMPLETE: u8 = 14;

fn class(chunk: u8) -> Option<usize> {
    Some(match chunk {
        INIT => 0,
        INIT_ACK => 1,
        ABORT => 2,
        SHUTDOWN => 3,
        SHUTDOWN_ACK => 4,
        ERROR => 5,
        COOKIE_ECHO => 6,
        COOKIE_ACK => 7,
        SHUTDOWN_COMPLETE => 8,
        HEARTBEAT => 9,
        HEARTBEAT_ACK => 10,
        _ => return None,
    })
}

/// Kernel sctp_new_state: other chunks (DATA, SACK...) keep the state.
fn next_state(dir: usize, cur: u8, chunk: u8) -> u8 {
    match class(chunk) {
        Some(c) => STATE_TABLE[dir][c][cur as usize],
        None => cur,
    }
}

/// CRC32c (Castagnoli), as SCTP carries it (little-endian on the wire).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The checksum an SCTP packet should carry in bytes 8..12 (computed with them zeroed).
pub fn checksum_bytes(l4: &[u8]) -> [u8; 4] {
    let mut sum = 0xffff_ffffu32;
    let mut feed = |b: u8| {
        sum ^= b as u32;
        for _ in 0..8 {
            sum = if sum & 1 != 0 {
                (sum >> 1) ^ 0x82f6_3b78
            } else {
                sum >> 1
            };
        }
    };
    for (i, &b) in l4.iter().enumerate() {
        feed(if (8..12).contains(&i) { 0 } else { b });
    }
    (!sum).to_le_bytes()
}

struct Chunk {
    offset: usize,
    ty: u8,
    flags: u8,
    len_raw: [u8; 2],
}

/// Kernel for_each_sctp_chunk: chunks from offset 12, each padded to 4 bytes; stops when the
/// 4-byte chunk header no longer fits.
fn chunks(l4: &[u8]) -> impl Iterator<Item = Chunk> + '_ {
    let mut off = 12usize;
    let mut done = false;
    core::iter::from_fn(move || {
        if done || off >= l4.len() || off + 4 > l4.len() {
            return None;
        }
        let c = Chunk {
            offset: off,
            ty: l4[off],
            flags: l4[off + 1],
            len_raw: [l4[off + 2], l4[off + 3]],
        };
        let len = u16::from_be_bytes(c.len_raw) as usize;
        if len == 0 {
            done = true;
        }
        off += (len + 3) & !3;
        Some(c)
    })
}

fn rd32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Kernel do_basic_checks: COOKIE_ACK/COOKIE_ECHO must be first, INIT/INIT_ACK/
/// SHUTDOWN_COMPLETE alone, no zero length; at least one chunk. Returns the chunk-type map.
fn basic_checks(l4: &[u8]) -> Result<[u64; 4], Option<Reason>> {
    let mut map = [0u64; 4];
    let mut flag = false;
    let mut count = 0u32;
    for c in chunks(l4) {
        if matches!(c.ty, INIT | INIT_ACK | SHUTDOWN_COMPLETE) {
            flag = true;
        }
        let zero = c.len_raw == [0, 0];
        if ((matches!(c.ty, COOKIE_ACK | COOKIE_ECHO) || flag) && count != 0) || zero {
            return Err(Some(Reason::SctpBasicChecks {
                count,
                ty: c.ty,
                // The kernel prints the length field without byte swapping.
                len: u16::from_le_bytes(c.len_raw),
                flag: flag as u8,
            }));
        }
        map[c.ty as usize / 64] |= 1 << (c.ty % 64);
        count += 1;
    }
    if count == 0 {
        return Err(None);
    }
    Ok(map)
}

fn has(map: &[u64; 4], ty: u8) -> bool {
    map[ty as usize / 64] & (1 << (ty % 64)) != 0
}

/// What the SCTP tracker decided.
pub(crate) struct SctpResult {
    pub ok: bool,
    pub log: Option<Reason>,
    /// Refresh (and count) — false for an INIT retransmission in CLOSED.
    pub refresh: bool,
}

/// Kernel sctp_error: header present and (in PREROUTING with checksum checks) the CRC32c right.
pub(crate) fn sctp_error(l4: &[u8], check_sum: bool) -> Option<Reason> {
    if l4.len() < 12 {
        return Some(Reason::SctpShort);
    }
    if check_sum && l4[8..12] != checksum_bytes(l4) {
        return Some(Reason::SctpBadCrc);
    }
    None
}

/// Kernel nf_conntrack_sctp_packet after sctp_error.
pub(crate) fn sctp_packet(
    conn: &mut Conn,
    dir: Dir,
    l4: &[u8],
    cfg: &CtConfig,
    now: Nanos,
) -> SctpResult {
    let bad = |log| SctpResult {
        ok: false,
        log,
        refresh: false,
    };
    let map = match basic_checks(l4) {
        Ok(m) => m,
        Err(r) => return bad(r),
    };
    let d = dir.index();
    let vtag = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
    let confirmed = conn.is_confirmed();
    if !confirmed {
        // Out-of-the-blue packets with these chunks are dropped (RFC 4960 8.4).
        if has(&map, ABORT) || has(&map, SHUTDOWN_COMPLETE) || has(&map, COOKIE_ACK) {
            return bad(None);
        }
        let mut t = SctpTrack::default();
        for c in chunks(l4) {
            let ns = next_state(0, NO, c.ty);
            if ns == NO || ns == IV {
                return bad(None);
            }
            match c.ty {
                INIT => {
                    if vtag != 0 {
                        return bad(None);
                    }
                    // The init tag (chunk header 4 bytes, then the tag).
                    let Some(tag) = rd32(l4, c.offset + 4) else {
                        return bad(None);
                    };
                    t.vtag[1] = tag;
                }
                HEARTBEAT => t.vtag[0] = vtag,
                SHUTDOWN_ACK => t.vtag[1] = vtag,
                _ => {}
            }
        }
        conn.proto = ProtoState::Sctp(t);
    }
    let ProtoState::Sctp(t) = &mut conn.proto else {
        return bad(None);
    };
    let exempt = [
        INIT,
        SHUTDOWN_COMPLETE,
        COOKIE_ECHO,
        ABORT,
        SHUTDOWN_ACK,
        HEARTBEAT,
        HEARTBEAT_ACK,
    ];
    if !exempt.iter().any(|&ty| has(&map, ty)) && vtag != t.vtag[d] {
        return bad(Some(Reason::SctpVtag {
            got: u32::from_le_bytes(vtag.to_be_bytes()),
            want: u32::from_le_bytes(t.vtag[d].to_be_bytes()),
            dir: d as u8,
        }));
    }
    let mut ignore = false;
    let mut new_state = NO;
    let mut became_established = false;
    for c in chunks(l4) {
        let tflag = c.flags & 1 != 0;
        match c.ty {
            INIT if vtag != 0 => return bad(None),
            ABORT | SHUTDOWN_COMPLETE => {
                let want = if tflag { t.vtag[1 - d] } else { t.vtag[d] };
                if vtag != want {
                    return bad(None);
                }
            }
            COOKIE_ECHO if vtag != t.vtag[d] => return bad(None),
            COOKIE_ACK => t.init = [false, false],
            HEARTBEAT | HEARTBEAT_ACK => {
                if t.vtag[d] == 0 {
                    t.vtag[d] = vtag;
                } else if vtag != t.vtag[d] {
                    if has(&map, DATA) || ignore {
                        return bad(None);
                    }
                    if c.ty == HEARTBEAT {
                        t.hb_failed = true;
                        t.last_dir = d as u8;
                        ignore = true;
                        continue;
                    }
                    if !t.hb_failed || t.last_dir as usize == d {
                        return bad(None);
                    }
                    t.hb_failed = false;
                    t.vtag[d] = vtag;
                    t.vtag[1 - d] = 0;
                } else if t.hb_failed {
                    t.hb_failed = false;
                }
            }
            _ => {}
        }
        let old = t.state;
        new_state = next_state(d, old, c.ty);
        if new_state == IV {
            return bad(Some(Reason::SctpInvalid {
                old_state: old,
                dir: d as u8,
                ty: c.ty,
            }));
        }
        if c.ty == INIT {
            let Some(tag) = rd32(l4, c.offset + 4) else {
                return bad(None);
            };
            if t.init[d] && t.init[1 - d] {
                t.init[1 - d] = false;
            }
            t.init[d] = true;
            t.vtag[1 - d] = tag;
            // An INIT retransmission in CLOSED does not extend the timeout.
            if new_state == CL && old == CL && confirmed {
                ignore = true;
            }
        } else if c.ty == INIT_ACK {
            let Some(tag) = rd32(l4, c.offset + 4) else {
                return bad(None);
            };
            let v = t.vtag[1 - d];
            if !t.init[1 - d] && v != 0 && v != tag {
                return bad(None);
            }
            if t.init[d] && t.init[1 - d] && v != tag {
                return bad(None);
            }
            t.vtag[1 - d] = tag;
        }
        t.state = new_state;
        if old != new_state && new_state == ES {
            became_established = true;
        }
    }
    if became_established {
        conn.status |= status::ASSURED;
    }
    if ignore {
        return SctpResult {
            ok: true,
            log: None,
            refresh: false,
        };
    }
    let secs = cfg.sctp_timeouts[new_state as usize % 9];
    conn.refresh(secs, now);
    SctpResult {
        ok: true,
        log: None,
        refresh: true,
    }
}
