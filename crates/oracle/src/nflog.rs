//! Seeing what the kernel delivered to the host itself: an nftables table in the DUT logs every
//! packet at the end of the INPUT hook (after iptables' filter and nat INPUT) to an NFLOG group;
//! this module reads that group over nfnetlink and returns the IP packets as delivered.
//!
//! The table lives in nftables, so `iptables-save` (legacy or nft) does not show it, and its
//! `log group` target writes nothing to the kernel log.

use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// The NFLOG group the observer uses inside the DUT (each namespace has its own groups).
pub const GROUP: u16 = 7;

/// The priority of the observer's input chain: after filter (0) and SNAT in INPUT (100).
pub const PRIORITY: i32 = 1000;

/// The nft script that installs the observer.
pub fn nft_script() -> String {
    format!(
        "table ip nfrs_oracle_local {{\n  chain input {{\n    type filter hook input priority {PRIORITY}; policy accept;\n    log group {GROUP} queue-threshold 1\n  }}\n}}\n"
    )
}

/// An nfnetlink_log subscription to [`GROUP`] copying whole packets.
pub struct NflogReader {
    fd: OwnedFd,
    buf: Vec<u8>,
}

fn nlmsg(ty: u16, flags: u16, family: u8, res_id: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    // nfgenmsg: family, version 0, resource id (the group) big-endian.
    m.push(family);
    m.push(0);
    m.extend_from_slice(&res_id.to_be_bytes());
    for (t, v) in attrs {
        let len = 4 + v.len();
        m.extend_from_slice(&(len as u16).to_ne_bytes());
        m.extend_from_slice(&t.to_ne_bytes());
        m.extend_from_slice(v);
        while m.len() & 3 != 0 {
            m.push(0);
        }
    }
    let total = m.len() as u32;
    m[0..4].copy_from_slice(&total.to_ne_bytes());
    m[4..6].copy_from_slice(&ty.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    m
}

impl NflogReader {
    /// Opens the subscription in the calling thread's namespace.
    pub fn open() -> io::Result<NflogReader> {
        let fd = sys::netlink_socket(libc::NETLINK_NETFILTER)?;
        let ty = ((libc::NFNL_SUBSYS_ULOG as u16) << 8) | libc::NFULNL_MSG_CONFIG as u16;
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        let bind = nlmsg(
            ty,
            flags,
            libc::AF_UNSPEC as u8,
            GROUP,
            &[(
                libc::NFULA_CFG_CMD as u16,
                vec![libc::NFULNL_CFG_CMD_BIND as u8],
            )],
        );
        let mut mode = 0xffffu32.to_be_bytes().to_vec();
        mode.push(libc::NFULNL_COPY_PACKET as u8);
        mode.push(0);
        let cfg = nlmsg(
            ty,
            flags,
            libc::AF_UNSPEC as u8,
            GROUP,
            &[
                (libc::NFULA_CFG_MODE as u16, mode),
                (libc::NFULA_CFG_QTHRESH as u16, 1u32.to_be_bytes().to_vec()),
            ],
        );
        let mut r = NflogReader {
            fd,
            buf: vec![0u8; 1 << 17],
        };
        for msg in [bind, cfg] {
            sys::send_to_kernel(&r.fd, &msg)?;
            r.wait_ack()?;
        }
        Ok(r)
    }

    fn wait_ack(&mut self) -> io::Result<()> {
        for _ in 0..100 {
            sys::poll_readable(self.fd.as_raw_fd(), std::time::Duration::from_millis(20))?;
            if let Some(n) = sys::recv_nb(self.fd.as_raw_fd(), &mut self.buf)? {
                let b = &self.buf[..n];
                if b.len() >= 20 && u16::from_ne_bytes([b[4], b[5]]) == libc::NLMSG_ERROR as u16 {
                    let err = i32::from_ne_bytes([b[16], b[17], b[18], b[19]]);
                    if err != 0 {
                        return Err(io::Error::from_raw_os_error(-err));
                    }
                    return Ok(());
                }
            }
        }
        Err(io::Error::other("no answer from nfnetlink_log"))
    }

    /// Every packet logged since the last call, as IP packets, in order.
    pub fn drain(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        while let Some(n) = sys::recv_nb(self.fd.as_raw_fd(), &mut self.buf)? {
            parse_messages(&self.buf[..n], &mut out);
        }
        Ok(out)
    }
}

/// Extracts the NFULA_PAYLOAD of every NFULNL_MSG_PACKET message in a netlink datagram.
fn parse_messages(mut b: &[u8], out: &mut Vec<Vec<u8>>) {
    let pkt_ty = ((libc::NFNL_SUBSYS_ULOG as u16) << 8) | libc::NFULNL_MSG_PACKET as u16;
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < 16 || len > b.len() {
            return;
        }
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        if ty == pkt_ty && len >= 20 {
            let mut a = &b[20..len];
            while a.len() >= 4 {
                let alen = u16::from_ne_bytes([a[0], a[1]]) as usize;
                let aty = u16::from_ne_bytes([a[2], a[3]]) & 0x3fff;
                if alen < 4 || alen > a.len() {
                    break;
                }
                if aty == libc::NFULA_PAYLOAD as u16 {
                    out.push(a[4..alen].to_vec());
                }
                let step = (alen + 3) & !3;
                a = &a[step.min(a.len())..];
            }
        }
        let step = (len + 3) & !3;
        b = &b[step.min(b.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_payload_attributes() {
        let pkt_ty = ((libc::NFNL_SUBSYS_ULOG as u16) << 8) | libc::NFULNL_MSG_PACKET as u16;
        let m1 = nlmsg(
            pkt_ty,
            0,
            2,
            GROUP,
            &[(1, vec![8, 0, 1, 0]), (9, vec![0x45, 1, 2])],
        );
        let m2 = nlmsg(pkt_ty, 0, 2, GROUP, &[(9, vec![0x45, 9, 9, 9, 9])]);
        let mut all = m1.clone();
        all.extend_from_slice(&m2);
        let mut out = Vec::new();
        parse_messages(&all, &mut out);
        assert_eq!(out, vec![vec![0x45, 1, 2], vec![0x45, 9, 9, 9, 9]]);
        // A truncated datagram yields what is complete and never panics.
        let mut out = Vec::new();
        parse_messages(&all[..all.len() - 3], &mut out);
        assert_eq!(out.len(), 1);
    }
}
