//! TCP sequence adjustment after a helper changed a payload's length (kernel
//! `nf_conntrack_seqadj.c`): one correction point per direction, with the offset that applies
//! up to it and the offset that applies after it.

use nfrs_conntrack::Dir;

/// Serial-number "a is after b" (the kernel's `after()`).
#[inline]
pub fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

/// Serial-number "a is before b" (the kernel's `before()`).
#[inline]
pub fn before(a: u32, b: u32) -> bool {
    after(b, a)
}

/// One direction's correction (`struct nf_ct_seqadj`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdjWay {
    /// Sequence number (sender's, before adjustment) of the packet whose length changed last.
    pub correction_pos: u32,
    /// Offset for sequence numbers up to and including `correction_pos`.
    pub offset_before: i32,
    /// Offset for sequence numbers after `correction_pos`.
    pub offset_after: i32,
}

/// Both directions of a connection (`struct nf_conn_seqadj`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdj {
    /// Indexed by [`Dir::index`].
    pub way: [SeqAdjWay; 2],
}

impl SeqAdj {
    /// True once any length change was recorded (the kernel's `IPS_SEQ_ADJUST` bit).
    pub fn active(&self) -> bool {
        self.way.iter().any(|w| *w != SeqAdjWay::default())
    }

    /// Records a payload length change of `off` bytes in the packet with sequence `seq`
    /// travelling in `dir`. Kernel rule (nf_ct_seqadj_set): the correction point only moves
    /// forward; a change at or before the current point is not recorded again.
    pub fn set(&mut self, dir: Dir, seq: u32, off: i32) {
        if off == 0 {
            return;
        }
        let w = &mut self.way[dir.index()];
        if w.offset_before == w.offset_after || before(w.correction_pos, seq) {
            w.correction_pos = seq;
            w.offset_before = w.offset_after;
            w.offset_after = w.offset_after.wrapping_add(off);
        }
    }

    /// Offset for a sequence number sent in `dir` (kernel `nf_ct_seq_offset`, used by the TCP
    /// window tracking).
    pub fn seq_offset(&self, dir: Dir, seq: u32) -> i32 {
        let w = &self.way[dir.index()];
        if after(seq, w.correction_pos) {
            w.offset_after
        } else {
            w.offset_before
        }
    }

    /// New sequence number of a packet sent in `dir` (kernel `nf_ct_seq_adjust`, first half).
    pub fn adjust_seq(&self, dir: Dir, seq: u32) -> u32 {
        seq.wrapping_add(self.seq_offset(dir, seq) as u32)
    }

    /// New acknowledgement number of a packet sent in `dir`: it acknowledges the other
    /// direction's data, so that direction's offset is taken back. Kernel rule: the point is
    /// compared after removing the offset that applied before it.
    pub fn adjust_ack(&self, dir: Dir, ack: u32) -> u32 {
        let o = &self.way[1 - dir.index()];
        ack.wrapping_sub(Self::back_offset(o, ack) as u32)
    }

    fn back_offset(o: &SeqAdjWay, v: u32) -> i32 {
        if after(v.wrapping_sub(o.offset_before as u32), o.correction_pos) {
            o.offset_after
        } else {
            o.offset_before
        }
    }

    /// Adjusts the SACK blocks in the TCP options `opts` (the bytes after the 20-byte header)
    /// of a packet sent in `dir`, in place; returns whether anything changed. Kernel rule
    /// (nf_ct_sack_adjust): walk the options, stop at a malformed length, and treat both edges
    /// of each block like an acknowledgement number.
    pub fn adjust_sack(&self, dir: Dir, opts: &mut [u8]) -> bool {
        let o = &self.way[1 - dir.index()];
        let mut changed = false;
        let mut i = 0;
        while i < opts.len() {
            match opts[i] {
                0 => break,
                1 => i += 1,
                kind => {
                    if i + 1 >= opts.len() {
                        break;
                    }
                    let len = opts[i + 1] as usize;
                    if len < 2 || i + len > opts.len() {
                        break;
                    }
                    if kind == 5 && len >= 10 && (len - 2) & 7 == 0 {
                        let mut j = i + 2;
                        while j + 8 <= i + len {
                            for k in [j, j + 4] {
                                let v = u32::from_be_bytes([
                                    opts[k],
                                    opts[k + 1],
                                    opts[k + 2],
                                    opts[k + 3],
                                ]);
                                let n = v.wrapping_sub(Self::back_offset(o, v) as u32);
                                if n != v {
                                    opts[k..k + 4].copy_from_slice(&n.to_be_bytes());
                                    changed = true;
                                }
                            }
                            j += 8;
                        }
                    }
                    i += len;
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values from tests/scenarios/helpers/ftp-active-masq.kernel.txt (recorded from Linux
    // 6.18): PORT at 1023 grew by one, PORT at 1045 grew by one, EPRT at 1067 grew by one.
    fn ftp_active() -> SeqAdj {
        let mut a = SeqAdj::default();
        a.set(Dir::Original, 1023, 1);
        a.set(Dir::Original, 1045, 1);
        a.set(Dir::Original, 1067, 1);
        a
    }

    #[test]
    fn recorded_ftp_active_seq_and_ack() {
        let mut a = SeqAdj::default();
        a.set(Dir::Original, 1023, 1);
        // The packet that grew keeps its own sequence number.
        assert_eq!(a.adjust_seq(Dir::Original, 1023), 1023);
        assert_eq!(a.adjust_ack(Dir::Reply, 1046), 1045);
        a.set(Dir::Original, 1045, 1);
        assert_eq!(a.adjust_seq(Dir::Original, 1045), 1046);
        assert_eq!(a.adjust_ack(Dir::Reply, 1069), 1067);
        a.set(Dir::Original, 1067, 1);
        assert_eq!(a.adjust_seq(Dir::Original, 1067), 1069);
        assert_eq!(a.adjust_ack(Dir::Reply, 1094), 1091);
        // Only one correction point is kept: an old ACK gets the "before" offset (2), the
        // kernel printed ack=1044 for ack=1046.
        assert_eq!(a.adjust_ack(Dir::Reply, 1046), 1044);
        assert_eq!(a, ftp_active());
    }

    #[test]
    fn recorded_sack_blocks() {
        // sack=1069-1094 went out as sack=1067-1091.
        let a = ftp_active();
        let mut opts = [1u8, 1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        opts[4..8].copy_from_slice(&1069u32.to_be_bytes());
        opts[8..12].copy_from_slice(&1094u32.to_be_bytes());
        assert!(a.adjust_sack(Dir::Reply, &mut opts));
        assert_eq!(&opts[4..8], &1067u32.to_be_bytes());
        assert_eq!(&opts[8..12], &1091u32.to_be_bytes());
        // The sender's own direction has no offset: nothing changes.
        assert!(!a.adjust_sack(Dir::Original, &mut opts));
    }

    #[test]
    fn recorded_irc_nine_rewrites() {
        // irc-max-dcc: nine DCC SENDs each one byte longer; seq 1409 went out as 1417 and the
        // server's ack=1469 came back as 1460.
        let mut a = SeqAdj::default();
        for (i, seq) in [1001u32, 1052, 1103, 1154, 1205, 1256, 1307, 1358, 1409]
            .into_iter()
            .enumerate()
        {
            assert_eq!(a.adjust_seq(Dir::Original, seq), seq + i as u32);
            a.set(Dir::Original, seq, 1);
        }
        assert_eq!(a.adjust_ack(Dir::Reply, 1469), 1460);
    }

    #[test]
    fn stale_point_not_moved_and_wraparound() {
        let mut a = SeqAdj::default();
        a.set(Dir::Reply, 5060, 1);
        // A retransmission of the same packet does not add the offset again.
        a.set(Dir::Reply, 5060, 1);
        assert_eq!(a.way[1].offset_after, 1);
        assert_eq!(a.adjust_seq(Dir::Reply, 5105), 5106);
        assert_eq!(a.adjust_ack(Dir::Original, 5106), 5105);
        let mut w = SeqAdj::default();
        w.set(Dir::Original, u32::MAX - 2, -3);
        assert_eq!(w.adjust_seq(Dir::Original, 5), 2);
        assert!(w.active());
        assert!(!SeqAdj::default().active());
    }

    #[test]
    fn malformed_options_stop_the_walk() {
        let a = ftp_active();
        let mut opts = [5u8, 1, 0, 0];
        assert!(!a.adjust_sack(Dir::Reply, &mut opts));
        let mut opts = [5u8, 40, 0, 0];
        assert!(!a.adjust_sack(Dir::Reply, &mut opts));
        let mut opts = [8u8];
        assert!(!a.adjust_sack(Dir::Reply, &mut opts));
    }
}
