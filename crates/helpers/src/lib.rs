//! `helpers` (nfrs-helpers): the conntrack helpers of Linux 6.18 that nfrs runs — IRC DCC
//! (`nf_conntrack_irc` + `nf_nat_irc`) and FTP (`nf_conntrack_ftp` + `nf_nat_ftp`) — with the
//! expectation table they fill, the payload rewriting of their NAT side, and TCP sequence
//! adjustment (`nf_conntrack_seqadj`). Beyond the kernel: DCC RESUME/ACCEPT port rewriting
//! through NAT (see README.md). It owns no packet buffer and reads no clock: the engine passes
//! payloads, sequence numbers and the time (nanoseconds) in, and applies what comes back.
//!
//! # How the engine calls it (one [`Helpers`] per network namespace)
//! 1. **Assignment** — a connection whose raw-table rule ran `-j CT --helper ftp|irc`, when
//!    conntrack confirms it: [`Helpers::assign`]`(&master, kind)` ([`HelperKind::from_name`]
//!    turns the rule's name into a kind; modern kernels assign helpers only this way).
//! 2. **Every packet of a helper connection, both directions, at confirm time** (end of
//!    POSTROUTING / INPUT, after NAT rewrote the headers, before sequence adjustment):
//!    [`Helpers::help`]`(&master, dir, established, seq, payload, now, pick)` with the TCP
//!    payload and the packet's own (unadjusted) sequence number. It returns a [`HelpResult`]:
//!    `Drop` means drop the packet; `rewrite` (NAT mangling) means splice
//!    `payload[off..off+len]` with `text` and fix the IP length and checksums; `log` is a
//!    kernel message to emit. The sequence-adjustment record is already updated.
//! 3. **Sequence adjustment, every TCP packet of a connection with a record** (right after
//!    step 2, and for connections in the table's [`Helpers::seqadj`]): `seq =
//!    adj.adjust_seq(dir, seq)`, `ack = adj.adjust_ack(dir, ack)` when ACK is set, and
//!    `adj.adjust_sack(dir, options)`; [`seqadj::SeqAdj::seq_offset`] serves TCP window
//!    tracking.
//! 4. **New connection** (conntrack's `init_conntrack`, before the NAT table is consulted):
//!    [`Helpers::expect_new`]`(&tuple, zone, now)`; `Some(Expected)` makes the connection
//!    RELATED with `master` (status EXPECTED, the master's mark inherited); when
//!    [`Expected::nat`] is set the engine applies it as the connection's SNAT (address) and
//!    DNAT (address and port) bindings, as `nf_nat_follow_master` does, and the nat table is
//!    not traversed for it.
//!
//! Steps 2-4 allocate nothing per packet (rewrites are held inline); only creating an
//! expectation or a helper's state allocates.
//! 5. **Housekeeping**: [`Helpers::destroy`] when a master connection goes away,
//!    [`Helpers::expire`] from the timer ([`Helpers::next_deadline`]), and
//!    [`Helpers::expect_listing`] for `conntrack -L expect` / `/proc/net/nf_conntrack_expect`.
//!
//! Modules: [`expect`] (table, limits, listings), [`irc`] and [`ftp`] (parsers and NAT text),
//! [`seqadj`], [`mangle`] (the inline rewrite).

pub mod expect;
pub mod ftp;
pub mod irc;
pub mod mangle;
pub mod seqadj;

use core::fmt;
use std::collections::HashMap;

pub use expect::{
    ExpectError, ExpectFormat, ExpectNat, ExpectPolicy, ExpectTable, Expectation, FollowMaster,
};
pub use mangle::Rewrite;
pub use nfrs_conntrack::{ConnId, Dir, Nanos, Tuple};
pub use seqadj::SeqAdj;

/// A helper nfrs implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelperKind {
    /// `ftp`.
    Ftp,
    /// `irc`.
    Irc,
}

impl HelperKind {
    /// Name as `CT --helper`, `-m helper` and the listings use it.
    pub fn name(self) -> &'static str {
        match self {
            HelperKind::Ftp => "ftp",
            HelperKind::Irc => "irc",
        }
    }

    /// Kind for a helper name; `None` for helpers nfrs does not implement (the caller must
    /// refuse the rule naming them).
    pub fn from_name(name: &str) -> Option<HelperKind> {
        match name {
            "ftp" => Some(HelperKind::Ftp),
            "irc" => Some(HelperKind::Irc),
            _ => None,
        }
    }

    /// Default server port the kernel registers the helper on.
    pub fn default_port(self) -> u16 {
        match self {
            HelperKind::Ftp => ftp::FTP_PORT,
            HelperKind::Irc => irc::IRC_PORT,
        }
    }
}

/// Module parameters and sysctls the helpers depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperConfig {
    /// `nf_conntrack_irc max_dcc_channels` (default 8).
    pub irc_max_dcc_channels: u32,
    /// `nf_conntrack_irc dcc_timeout` in seconds (default 300).
    pub irc_dcc_timeout: u32,
    /// `nf_conntrack_ftp loose` (default off): accept a PORT/227 naming another address.
    pub ftp_loose: bool,
    /// nfrs extension: rewrite DCC RESUME/ACCEPT ports consistently with a translated SEND.
    pub irc_resume_nat: bool,
    /// `net.netfilter.nf_conntrack_expect_max` (4096 on the reference machine).
    pub expect_max: usize,
}

impl Default for HelperConfig {
    fn default() -> Self {
        HelperConfig {
            irc_max_dcc_channels: irc::MAX_DCC_CHANNELS,
            irc_dcc_timeout: irc::DCC_TIMEOUT,
            ftp_loose: false,
            irc_resume_nat: true,
            expect_max: 4096,
        }
    }
}

impl HelperConfig {
    /// The expectation policy of a helper.
    pub fn policy(&self, kind: HelperKind) -> ExpectPolicy {
        match kind {
            HelperKind::Ftp => ExpectPolicy {
                max_expected: ftp::MAX_EXPECTED,
                timeout_secs: ftp::TIMEOUT,
            },
            HelperKind::Irc => ExpectPolicy {
                max_expected: self.irc_max_dcc_channels,
                timeout_secs: self.irc_dcc_timeout,
            },
        }
    }
}

/// What the engine knows about the master connection when it calls a helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Master {
    /// Connection id in the conntrack table.
    pub id: ConnId,
    /// Original tuple.
    pub orig: Tuple,
    /// Reply tuple (after NAT).
    pub reply: Tuple,
    /// The connection is NATed (the kernel's `IPS_NAT_MASK`): the NAT side of the helper runs.
    pub nat: bool,
    /// Conntrack zone.
    pub zone: u16,
}

impl Master {
    fn tuple(&self, dir: Dir) -> &Tuple {
        match dir {
            Dir::Original => &self.orig,
            Dir::Reply => &self.reply,
        }
    }
}

/// The packet's fate after the helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it continue.
    Accept,
    /// Drop it (the kernel's helper returned NF_DROP).
    Drop,
}

/// A message the kernel would print for this packet.
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
    /// `nf_ct_HELPER: dropping packet: REASON` (nf_ct_helper_log; printed through the packet
    /// logger, when one is bound, followed by a space and the packet as LOG prints it with empty
    /// `IN= OUT=` and no `MAC=`, e.g. measured on 6.18: ``nf_ct_ftp: dropping packet: partial
    /// matching of `PORT' IN= OUT= SRC=192.0.2.1 DST=198.51.100.7 LEN=55 ...``).
    Dropping {
        /// Helper.
        helper: HelperKind,
        /// Reason.
        reason: DropReason,
    },
}

/// Why a helper dropped a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// `partial matching of `PATTERN'` (FTP).
    Partial(ftp::FtpKind),
    /// `all ports in use` (NAT side).
    AllPortsInUse,
    /// `cannot add expectation`.
    CannotAddExpectation,
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
            HelperLog::Dropping { helper, reason } => {
                write!(f, "nf_ct_{}: dropping packet: ", helper.name())?;
                match reason {
                    DropReason::Partial(k) => write!(f, "partial matching of `{}'", k.pattern()),
                    DropReason::AllPortsInUse => f.write_str("all ports in use"),
                    DropReason::CannotAddExpectation => f.write_str("cannot add expectation"),
                }
            }
        }
    }
}

/// Result of [`Helpers::help`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelpResult {
    /// Accept or drop.
    pub verdict: Verdict,
    /// Payload rewrite to apply (NAT side).
    pub rewrite: Option<Rewrite>,
    /// Message to emit (the first one, when the kernel would print several).
    pub log: Option<HelperLog>,
}

impl HelpResult {
    const ACCEPT: HelpResult = HelpResult {
        verdict: Verdict::Accept,
        rewrite: None,
        log: None,
    };

    fn drop(helper: HelperKind, reason: DropReason) -> HelpResult {
        HelpResult {
            verdict: Verdict::Drop,
            rewrite: None,
            log: Some(HelperLog::Dropping { helper, reason }),
        }
    }
}

/// DCC SEND/CHAT ports a NATed IRC connection translated: (port the client offered, port
/// the peer was told), newest last.
const DCC_MAP: usize = 8;

/// Per-connection helper state (`struct nf_conn_help` plus the seqadj extension).
#[derive(Clone, Debug)]
struct ConnHelp {
    kind: HelperKind,
    orig: Tuple,
    seqadj: SeqAdj,
    ftp: ftp::FtpInfo,
    dcc: [(u16, u16); DCC_MAP],
    n_dcc: usize,
}

impl ConnHelp {
    fn remember_dcc(&mut self, offered: u16, told: u16) {
        if self.n_dcc == DCC_MAP {
            self.dcc.copy_within(1.., 0);
            self.n_dcc -= 1;
        }
        self.dcc[self.n_dcc] = (offered, told);
        self.n_dcc += 1;
    }
}

/// A new connection matched an expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The master connection (the new one is RELATED to it).
    pub master: ConnId,
    /// NAT bindings to give the new connection, when the master is NATed.
    pub nat: Option<FollowMaster>,
    /// The expectation that was used (and removed).
    pub expectation: Expectation,
}

/// All helper state of one network namespace.
#[derive(Debug)]
pub struct Helpers {
    /// Parameters.
    pub cfg: HelperConfig,
    /// Pending expectations.
    pub expects: ExpectTable,
    conns: HashMap<ConnId, ConnHelp>,
}

impl Default for Helpers {
    fn default() -> Self {
        Helpers::new(HelperConfig::default())
    }
}

impl Helpers {
    /// Empty state.
    pub fn new(cfg: HelperConfig) -> Helpers {
        Helpers {
            cfg,
            expects: ExpectTable::new(cfg.expect_max),
            conns: HashMap::new(),
        }
    }

    /// Attaches `kind` to a confirmed connection (`CT --helper`). Replaces earlier state of
    /// the same id.
    pub fn assign(&mut self, m: &Master, kind: HelperKind) {
        self.conns.insert(
            m.id,
            ConnHelp {
                kind,
                orig: m.orig,
                seqadj: SeqAdj::default(),
                ftp: ftp::FtpInfo::default(),
                dcc: [(0, 0); DCC_MAP],
                n_dcc: 0,
            },
        );
    }

    fn state(&self, id: ConnId, orig: &Tuple) -> Option<&ConnHelp> {
        self.conns.get(&id).filter(|c| c.orig == *orig)
    }

    /// The helper of a connection (`helper=` in `conntrack -L`, `-m helper`).
    pub fn helper(&self, id: ConnId, orig: &Tuple) -> Option<HelperKind> {
        self.state(id, orig).map(|c| c.kind)
    }

    /// The sequence adjustment of a connection, once a helper changed a payload length.
    pub fn seqadj(&self, id: ConnId, orig: &Tuple) -> Option<&SeqAdj> {
        self.state(id, orig)
            .map(|c| &c.seqadj)
            .filter(|a| a.active())
    }

    /// Runs the connection's helper on one packet (see the crate docs, step 2). `established`
    /// is the kernel's ctinfo ESTABLISHED / ESTABLISHED_REPLY (helpers ignore NEW and RELATED
    /// packets); `seq` is the packet's TCP sequence number before adjustment; `pick(range)`
    /// draws a number below `range` when an expectation port must move (the kernel draws at
    /// random).
    #[allow(clippy::too_many_arguments)]
    pub fn help(
        &mut self,
        m: &Master,
        dir: Dir,
        established: bool,
        seq: u32,
        payload: &[u8],
        now: Nanos,
        pick: &mut dyn FnMut(u32) -> u32,
    ) -> HelpResult {
        let Some(st) = self.conns.get_mut(&m.id).filter(|c| c.orig == m.orig) else {
            return HelpResult::ACCEPT;
        };
        if !established || payload.is_empty() {
            return HelpResult::ACCEPT;
        }
        let cfg = self.cfg;
        match st.kind {
            HelperKind::Irc => {
                irc_help(&cfg, &mut self.expects, st, m, dir, seq, payload, now, pick)
            }
            HelperKind::Ftp => {
                ftp_help(&cfg, &mut self.expects, st, m, dir, seq, payload, now, pick)
            }
        }
    }

    /// A new connection with original tuple `t` in `zone`: the expectation it fulfils, if any
    /// (removed from the table unless PERMANENT).
    pub fn expect_new(&mut self, t: &Tuple, zone: u16, now: Nanos) -> Option<Expected> {
        let e = self.expects.take(t, zone, now)?;
        Some(Expected {
            master: e.master,
            nat: e.follow_master(),
            expectation: e,
        })
    }

    /// A connection left the table: its helper state and its pending expectations go.
    pub fn destroy(&mut self, id: ConnId) {
        self.conns.remove(&id);
        self.expects.remove_master(id);
    }

    /// Drops timed-out expectations.
    pub fn expire(&mut self, now: Nanos) {
        self.expects.expire(now);
    }

    /// Earliest expectation deadline.
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.expects.next_deadline()
    }

    /// `conntrack -L expect` or `/proc/net/nf_conntrack_expect` lines, sorted.
    pub fn expect_listing(&self, now: Nanos, format: ExpectFormat, timeout: bool) -> Vec<String> {
        self.expects.listing(now, format, timeout)
    }
}

#[allow(clippy::too_many_arguments)]
fn irc_help(
    cfg: &HelperConfig,
    expects: &mut ExpectTable,
    st: &mut ConnHelp,
    m: &Master,
    dir: Dir,
    seq: u32,
    payload: &[u8],
    now: Nanos,
    pick: &mut dyn FnMut(u32) -> u32,
) -> HelpResult {
    if dir == Dir::Reply {
        // The kernel looks only at the client's packets; nfrs also fixes RESUME here.
        return resume_nat(cfg, st, m, dir, seq, payload);
    }
    let mut first_forged = None;
    let offer = irc::find_offer(payload, m.orig.src, m.reply.dst, &mut |ip, port| {
        first_forged.get_or_insert(HelperLog::ForgedDcc {
            from: m.orig.src,
            ip,
            port,
        });
    });
    let Some(offer) = offer else {
        let mut r = resume_nat(cfg, st, m, dir, seq, payload);
        r.log = r.log.or(first_forged);
        return r;
    };
    let policy = cfg.policy(HelperKind::Irc);
    let mut exp = Expectation::tcp(
        m.id,
        m.orig,
        m.reply,
        HelperKind::Irc,
        None,
        m.reply.dst,
        offer.port,
    );
    exp.zone = m.zone;
    let mut r = HelpResult {
        log: first_forged,
        ..HelpResult::ACCEPT
    };
    if m.nat {
        // Kernel nf_nat_irc: the peer will connect to the address the server sees.
        exp.nat = Some(ExpectNat {
            dir: Dir::Reply,
            saved_port: offer.port,
        });
        let Some(port) = expects.find_port(exp, policy, offer.port, now, pick) else {
            return HelpResult::drop(HelperKind::Irc, DropReason::AllPortsInUse);
        };
        let rw = irc::nat_rewrite(&offer, m.reply.dst, port);
        st.seqadj.set(dir, seq, rw.delta());
        if offer.port != port {
            st.remember_dcc(offer.port, port);
        }
        r.rewrite = Some(rw);
    } else if expects.related(exp, policy, now).is_err() {
        return HelpResult::drop(HelperKind::Irc, DropReason::CannotAddExpectation);
    }
    r
}

/// nfrs extension: DCC RESUME from the peer names the port the peer was told; the client knows
/// the port it offered. ACCEPT from the client names the offered port; the peer knows the one
/// it was told. Each is translated when a SEND of this connection was given a different port.
fn resume_nat(
    cfg: &HelperConfig,
    st: &mut ConnHelp,
    m: &Master,
    dir: Dir,
    seq: u32,
    payload: &[u8],
) -> HelpResult {
    if !cfg.irc_resume_nat || !m.nat || st.n_dcc == 0 {
        return HelpResult::ACCEPT;
    }
    let Some(msg) = irc::find_resume(payload) else {
        return HelpResult::ACCEPT;
    };
    let map = &st.dcc[..st.n_dcc];
    let new_port = match (dir, msg.kind) {
        (Dir::Reply, irc::ResumeKind::Resume) => map
            .iter()
            .rev()
            .find(|&&(_, told)| told == msg.port)
            .map(|&(offered, _)| offered),
        (Dir::Original, irc::ResumeKind::Accept) => map
            .iter()
            .rev()
            .find(|&&(offered, _)| offered == msg.port)
            .map(|&(_, told)| told),
        _ => None,
    };
    let Some(p) = new_port else {
        return HelpResult::ACCEPT;
    };
    let rw = Rewrite::format(msg.off, msg.len, format_args!("{p}")).expect("port fits");
    st.seqadj.set(dir, seq, rw.delta());
    HelpResult {
        rewrite: Some(rw),
        ..HelpResult::ACCEPT
    }
}

#[allow(clippy::too_many_arguments)]
fn ftp_help(
    cfg: &HelperConfig,
    expects: &mut ExpectTable,
    st: &mut ConnHelp,
    m: &Master,
    dir: Dir,
    seq: u32,
    payload: &[u8],
    now: Nanos,
    pick: &mut dyn FnMut(u32) -> u32,
) -> HelpResult {
    let ends_nl = payload.last() == Some(&b'\n');
    // In the sender's own sequence space (before any adjustment), as the kernel keeps it.
    let nl_seq = seq.wrapping_add(payload.len() as u32);
    let mut r = HelpResult::ACCEPT;
    // Kernel rule: only a packet starting right after a newline the helper saw is parsed.
    if st.ftp.after_newline(dir, seq) {
        let own = m.tuple(dir).src;
        match ftp::find_command(payload, dir, own) {
            ftp::FtpFound::Nothing => {}
            ftp::FtpFound::Partial(k) => {
                return HelpResult::drop(HelperKind::Ftp, DropReason::Partial(k));
            }
            ftp::FtpFound::Cmd(c) => {
                let other = m.tuple(dir.flip());
                let mut daddr = other.dst;
                let mut go = true;
                if c.ip != own {
                    // Kernel rule: an address other than the sender's is ignored unless
                    // `loose` is set, then expected as given.
                    go = cfg.ftp_loose;
                    daddr = c.ip;
                }
                if go {
                    let policy = cfg.policy(HelperKind::Ftp);
                    let mut exp = Expectation::tcp(
                        m.id,
                        m.orig,
                        m.reply,
                        HelperKind::Ftp,
                        Some(other.src),
                        daddr,
                        c.port,
                    );
                    exp.zone = m.zone;
                    if m.nat {
                        exp.nat = Some(ExpectNat {
                            dir: dir.flip(),
                            saved_port: c.port,
                        });
                        match expects.find_port(exp, policy, c.port, now, pick) {
                            Some(port) => {
                                let rw = ftp::nat_rewrite(&c, other.dst, port);
                                st.seqadj.set(dir, seq, rw.delta());
                                r.rewrite = Some(rw);
                            }
                            None => {
                                r = HelpResult::drop(HelperKind::Ftp, DropReason::AllPortsInUse)
                            }
                        }
                    } else if expects.related(exp, policy, now).is_err() {
                        r = HelpResult::drop(HelperKind::Ftp, DropReason::CannotAddExpectation);
                    }
                }
            }
        }
    }
    // Kernel rule: the newline is remembered after a match or a failed expectation alike
    // (only a partial match skips it).
    if ends_nl {
        st.ftp.record_newline(dir, nl_seq);
    }
    r
}
