//! `helpers` (nfrs-helpers): what the conntrack helpers of Linux 6.18 that nfrs runs — IRC DCC
//! (`nf_conntrack_irc` + `nf_nat_irc`) and FTP (`nf_conntrack_ftp` + `nf_nat_ftp`) — read in
//! and write into a TCP payload, and the TCP sequence adjustment a length change brings
//! (`nf_conntrack_seqadj`). Beyond the kernel: the DCC RESUME/ACCEPT port translation through
//! NAT ([`irc::DccPorts`], see README.md).
//!
//! It owns no packet, no connection and no clock, and keeps no expectations: the one
//! expectation table is nfrs-conntrack's (`ConnTable::expect_add_limited`, consumed by
//! `ConnTable::track`), and the engine (`nfrs-engine`, `src/helpers.rs`) drives the helpers at
//! confirm time: it runs the parsers here on the payload, decides the expectation, asks
//! nfrs-nat's port search, splices the [`Rewrite`] into the packet and keeps one [`SeqAdj`],
//! one [`ftp::FtpInfo`] and one [`irc::DccPorts`] per connection.
//!
//! Modules: [`irc`] and [`ftp`] (parsers, NAT texts, the FTP newline memory, the DCC port map),
//! [`mangle`] (the inline rewrite), [`seqadj`].

pub mod ftp;
pub mod irc;
pub mod mangle;
pub mod seqadj;

use core::fmt;

pub use mangle::Rewrite;
pub use nfrs_conntrack::Dir;
pub use seqadj::SeqAdj;

/// A message the kernel would print for a helper's packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperLog {
    /// `nf_conntrack_irc: Forged DCC command from SRC: IP:PORT` (rate-limited kernel warning).
    ForgedDcc {
        /// Master's original source.
        from: u32,
        /// Address in the offer.
        ip: u32,
        /// Port in the offer.
        port: u16,
    },
}

impl fmt::Display for HelperLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::net::Ipv4Addr as A;
        match *self {
            HelperLog::ForgedDcc { from, ip, port } => write!(
                f,
                "nf_conntrack_irc: Forged DCC command from {}: {}:{}",
                A::from(from),
                A::from(ip),
                port
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_dcc_line_as_recorded() {
        // tests/scenarios/helpers/irc-dcc-forged.kernel.txt
        let l = HelperLog::ForgedDcc {
            from: 0x0a00_0002,
            ip: 0x0a00_0003,
            port: 5000,
        };
        assert_eq!(
            l.to_string(),
            "nf_conntrack_irc: Forged DCC command from 10.0.0.2: 10.0.0.3:5000"
        );
    }
}
