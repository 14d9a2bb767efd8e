//! The conntrack sysctls under their Linux names, with the kernel's defaults (6.18, measured on
//! this machine from /proc/sys/net/netfilter).

use core::fmt;

/// Nanoseconds, the unit of every time value handed to this crate.
pub type Nanos = u64;

/// One second in [`Nanos`].
pub const SEC: Nanos = 1_000_000_000;

/// Conntrack settings (`net.netfilter.nf_conntrack_*`). Timeouts are kept in seconds, as the
/// sysctls show them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtConfig {
    /// `nf_conntrack_max`: most entries (unconfirmed ones count too); 0 means no limit.
    pub max: u32,
    /// `nf_conntrack_buckets`: hash buckets; early drop looks at 8 of them.
    pub buckets: u32,
    /// `nf_conntrack_expect_max`: most pending expectations; a helper's announcement beyond
    /// it is refused (the kernel sizes it once, at load, as 4 per expectation hash bucket,
    /// one bucket per 256 conntrack buckets: 4096 for 262144).
    pub expect_max: u32,
    /// `nf_conntrack_checksum`: verify L4 checksums in PREROUTING.
    pub checksum: bool,
    /// `nf_conntrack_acct`: count packets and bytes of connections created while on.
    pub acct: bool,
    /// `nf_conntrack_log_invalid`: protocol number whose invalid packets are logged (255 = all).
    pub log_invalid: u8,
    /// `nf_conntrack_tcp_loose`: pick up connections from the middle.
    pub tcp_loose: bool,
    /// `nf_conntrack_tcp_be_liberal`: accept out-of-window segments.
    pub tcp_be_liberal: bool,
    /// `nf_conntrack_tcp_ignore_invalid_rst`: do not mark out-of-window RSTs invalid.
    pub tcp_ignore_invalid_rst: bool,
    /// `nf_conntrack_tcp_max_retrans`: retransmissions before the max_retrans timeout applies.
    pub tcp_max_retrans: u8,
    /// TCP timeouts in seconds, indexed by [`crate::tcp::TcpState`] (and the two extra slots
    /// `RETRANS`, `UNACK` at indexes 10 and 11, as the kernel lays them out).
    pub tcp_timeouts: [u32; 12],
    /// `nf_conntrack_udp_timeout` (unreplied).
    pub udp_timeout: u32,
    /// `nf_conntrack_udp_timeout_stream` (replied for more than 2 s).
    pub udp_timeout_stream: u32,
    /// `nf_conntrack_icmp_timeout`.
    pub icmp_timeout: u32,
    /// `nf_conntrack_generic_timeout`.
    pub generic_timeout: u32,
    /// SCTP timeouts in seconds by state (NONE uses CLOSED's), `nf_conntrack_sctp_timeout_*`.
    pub sctp_timeouts: [u32; 9],
    /// `nf_conntrack_gre_timeout` (unreplied).
    pub gre_timeout: u32,
    /// `nf_conntrack_gre_timeout_stream` (replied).
    pub gre_timeout_stream: u32,
}

/// Index of the retransmission timeout in [`CtConfig::tcp_timeouts`].
pub const TCP_TIMEOUT_RETRANS: usize = 10;
/// Index of the unacknowledged-data timeout in [`CtConfig::tcp_timeouts`].
pub const TCP_TIMEOUT_UNACK: usize = 11;

impl Default for CtConfig {
    fn default() -> Self {
        CtConfig {
            max: 262144,
            buckets: 262144,
            expect_max: 4096,
            checksum: true,
            acct: false,
            log_invalid: 0,
            tcp_loose: true,
            tcp_be_liberal: false,
            tcp_ignore_invalid_rst: false,
            tcp_max_retrans: 3,
            // NONE, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT,
            // CLOSE, SYN_SENT2, RETRANS, UNACK
            tcp_timeouts: [0, 120, 60, 432000, 120, 60, 30, 120, 10, 120, 300, 300],
            udp_timeout: 30,
            udp_timeout_stream: 120,
            icmp_timeout: 30,
            generic_timeout: 600,
            sctp_timeouts: [10, 10, 3, 3, 210, 3, 3, 3, 30],
            gre_timeout: 30,
            gre_timeout_stream: 180,
        }
    }
}

/// Why a sysctl was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// No such conntrack sysctl in Linux.
    Unknown(String),
    /// The sysctl exists but cannot be written (`nf_conntrack_count`).
    ReadOnly(String),
    /// Linux has it, nfrs does not model what it changes.
    Unsupported(String),
    /// The value is not accepted by the kernel for that sysctl.
    BadValue {
        /// The sysctl name as given.
        name: String,
        /// The refused value.
        value: String,
        /// What the kernel accepts.
        expected: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unknown(n) => write!(f, "unknown conntrack sysctl `{n}`"),
            ConfigError::ReadOnly(n) => write!(f, "sysctl `{n}` is read-only"),
            ConfigError::Unsupported(n) => {
                write!(
                    f,
                    "sysctl `{n}` exists in Linux but is not supported by nfrs"
                )
            }
            ConfigError::BadValue {
                name,
                value,
                expected,
            } => {
                write!(
                    f,
                    "invalid value `{value}` for sysctl `{name}`: expected {expected}"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Names of the TCP timeout sysctls, in [`CtConfig::tcp_timeouts`] order (index 0 has none).
const TCP_TIMEOUT_NAMES: [(&str, usize); 11] = [
    ("nf_conntrack_tcp_timeout_syn_sent", 1),
    ("nf_conntrack_tcp_timeout_syn_recv", 2),
    ("nf_conntrack_tcp_timeout_established", 3),
    ("nf_conntrack_tcp_timeout_fin_wait", 4),
    ("nf_conntrack_tcp_timeout_close_wait", 5),
    ("nf_conntrack_tcp_timeout_last_ack", 6),
    ("nf_conntrack_tcp_timeout_time_wait", 7),
    ("nf_conntrack_tcp_timeout_close", 8),
    // SYN_SENT2 has no sysctl of its own: it follows syn_sent (index 9 set together with 1).
    ("nf_conntrack_tcp_timeout_max_retrans", TCP_TIMEOUT_RETRANS),
    ("nf_conntrack_tcp_timeout_unacknowledged", TCP_TIMEOUT_UNACK),
    ("", 0),
];

/// SCTP timeout sysctl suffixes, in state order from CLOSED.
const SCTP_TIMEOUT_NAMES: [&str; 8] = [
    "closed",
    "cookie_wait",
    "cookie_echoed",
    "established",
    "shutdown_sent",
    "shutdown_recd",
    "shutdown_ack_sent",
    "heartbeat_sent",
];

/// Sysctls Linux has under net.netfilter that nfrs does not model.
const UNSUPPORTED: &[&str] = &[
    "nf_conntrack_timestamp",
    "nf_conntrack_events",
    "nf_conntrack_helper",
    "nf_conntrack_frag6_high_thresh",
    "nf_conntrack_frag6_low_thresh",
    "nf_conntrack_frag6_timeout",
    "nf_conntrack_icmpv6_timeout",
    "nf_hooks_lwtunnel",
];

fn strip(name: &str) -> &str {
    let n = name.trim();
    let n = n.strip_prefix("/proc/sys/").unwrap_or(n);
    let n = n
        .strip_prefix("net.netfilter.")
        .or_else(|| n.strip_prefix("net/netfilter/"))
        .unwrap_or(n);
    n
}

impl CtConfig {
    /// Whether `name` is a conntrack sysctl this struct owns (with or without `net.netfilter.`).
    pub fn owns(name: &str) -> bool {
        let n = strip(name);
        n.starts_with("nf_conntrack_") || n == "nf_hooks_lwtunnel"
    }

    /// Sets a sysctl by its Linux name (`net.netfilter.nf_conntrack_tcp_loose` or the bare
    /// `nf_conntrack_tcp_loose`). Values are checked the way the kernel's handlers check them.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let n = strip(name);
        let bad = |expected: &'static str| ConfigError::BadValue {
            name: name.to_string(),
            value: value.to_string(),
            expected,
        };
        let int = || value.trim().parse::<i64>();
        let boolean = || match int() {
            Ok(0) => Ok(false),
            Ok(1) => Ok(true),
            _ => Err(bad("0 or 1")),
        };
        let secs = || match int() {
            // proc_dointvec_jiffies: an int of seconds; negative values are refused.
            Ok(v) if (0..=i32::MAX as i64 / 1000).contains(&v) => Ok(v as u32),
            _ => Err(bad("a number of seconds")),
        };
        match n {
            "nf_conntrack_count" => return Err(ConfigError::ReadOnly(name.to_string())),
            "nf_conntrack_max" => match int() {
                Ok(v) if (0..=i32::MAX as i64).contains(&v) => self.max = v as u32,
                _ => return Err(bad("a non-negative integer")),
            },
            "nf_conntrack_buckets" => match int() {
                Ok(v) if (1..=(1 << 30)).contains(&v) => self.buckets = v as u32,
                _ => return Err(bad("a positive integer")),
            },
            "nf_conntrack_expect_max" => match int() {
                // proc_dointvec into an unsigned limit: 0 refuses every expectation.
                Ok(v) if (0..=i32::MAX as i64).contains(&v) => self.expect_max = v as u32,
                _ => return Err(bad("a non-negative integer")),
            },
            "nf_conntrack_checksum" => self.checksum = boolean()?,
            "nf_conntrack_log_invalid" => match int() {
                Ok(v) if (0..=255).contains(&v) => self.log_invalid = v as u8,
                _ => return Err(bad("a protocol number 0..255")),
            },
            "nf_conntrack_tcp_loose" => self.tcp_loose = boolean()?,
            "nf_conntrack_tcp_be_liberal" => self.tcp_be_liberal = boolean()?,
            "nf_conntrack_tcp_ignore_invalid_rst" => self.tcp_ignore_invalid_rst = boolean()?,
            "nf_conntrack_tcp_max_retrans" => match int() {
                Ok(v) if (0..=255).contains(&v) => self.tcp_max_retrans = v as u8,
                _ => return Err(bad("an integer 0..255")),
            },
            "nf_conntrack_udp_timeout" => self.udp_timeout = secs()?,
            "nf_conntrack_udp_timeout_stream" => self.udp_timeout_stream = secs()?,
            "nf_conntrack_icmp_timeout" => self.icmp_timeout = secs()?,
            "nf_conntrack_generic_timeout" => self.generic_timeout = secs()?,
            "nf_conntrack_gre_timeout" => self.gre_timeout = secs()?,
            "nf_conntrack_gre_timeout_stream" => self.gre_timeout_stream = secs()?,
            "nf_conntrack_acct" => self.acct = boolean()?,
            "nf_conntrack_timestamp" | "nf_conntrack_helper" => {
                // Off is what nfrs models; turning them on would change listings silently.
                match int() {
                    Ok(0) => {}
                    _ => return Err(ConfigError::Unsupported(name.to_string())),
                }
            }
            other if other.starts_with("nf_conntrack_sctp_timeout_") => {
                let Some(i) = SCTP_TIMEOUT_NAMES
                    .iter()
                    .position(|n| Some(*n) == other.strip_prefix("nf_conntrack_sctp_timeout_"))
                else {
                    return Err(ConfigError::Unknown(name.to_string()));
                };
                let v = secs()?;
                self.sctp_timeouts[i + 1] = v;
                if i == 0 {
                    // NONE follows CLOSED.
                    self.sctp_timeouts[0] = v;
                }
            }
            other => {
                if let Some(&(_, idx)) = TCP_TIMEOUT_NAMES
                    .iter()
                    .find(|(n, _)| !n.is_empty() && *n == other)
                {
                    let v = secs()?;
                    self.tcp_timeouts[idx] = v;
                    if idx == 1 {
                        // The kernel's syn_sent handler also sets SYN_SENT2.
                        self.tcp_timeouts[9] = v;
                    }
                } else if UNSUPPORTED.contains(&other) {
                    return Err(ConfigError::Unsupported(name.to_string()));
                } else {
                    return Err(ConfigError::Unknown(name.to_string()));
                }
            }
        }
        Ok(())
    }

    /// Reads a sysctl by its Linux name, as `sysctl -n` would print it.
    pub fn get(&self, name: &str) -> Option<String> {
        let n = strip(name);
        let b = |v: bool| (v as u8).to_string();
        Some(match n {
            "nf_conntrack_max" => self.max.to_string(),
            "nf_conntrack_buckets" => self.buckets.to_string(),
            "nf_conntrack_expect_max" => self.expect_max.to_string(),
            "nf_conntrack_checksum" => b(self.checksum),
            "nf_conntrack_acct" => b(self.acct),
            "nf_conntrack_log_invalid" => self.log_invalid.to_string(),
            "nf_conntrack_tcp_loose" => b(self.tcp_loose),
            "nf_conntrack_tcp_be_liberal" => b(self.tcp_be_liberal),
            "nf_conntrack_tcp_ignore_invalid_rst" => b(self.tcp_ignore_invalid_rst),
            "nf_conntrack_tcp_max_retrans" => self.tcp_max_retrans.to_string(),
            "nf_conntrack_udp_timeout" => self.udp_timeout.to_string(),
            "nf_conntrack_udp_timeout_stream" => self.udp_timeout_stream.to_string(),
            "nf_conntrack_icmp_timeout" => self.icmp_timeout.to_string(),
            "nf_conntrack_generic_timeout" => self.generic_timeout.to_string(),
            "nf_conntrack_gre_timeout" => self.gre_timeout.to_string(),
            "nf_conntrack_gre_timeout_stream" => self.gre_timeout_stream.to_string(),
            other if other.starts_with("nf_conntrack_sctp_timeout_") => {
                let suffix = other.strip_prefix("nf_conntrack_sctp_timeout_");
                let i = SCTP_TIMEOUT_NAMES.iter().position(|n| Some(*n) == suffix)?;
                self.sctp_timeouts[i + 1].to_string()
            }
            other => {
                let &(_, idx) = TCP_TIMEOUT_NAMES
                    .iter()
                    .find(|(n, _)| !n.is_empty() && *n == other)?;
                self.tcp_timeouts[idx].to_string()
            }
        })
    }

    /// Whether invalid-packet reasons of protocol `proto` are to be logged
    /// (kernel: the sysctl names one protocol, or 255 for all).
    pub fn logs_invalid(&self, proto: u8) -> bool {
        self.log_invalid != 0 && (self.log_invalid == proto || self.log_invalid == 255)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defaults as `/proc/sys/net/netfilter/*` showed them on Linux 6.18 (recorded 2026-11-25).
    const KERNEL_DEFAULTS: &str =
        "nf_conntrack_acct=0 nf_conntrack_checksum=1 nf_conntrack_generic_timeout=600 \
        nf_conntrack_icmp_timeout=30 nf_conntrack_sctp_timeout_closed=10 \
        nf_conntrack_sctp_timeout_cookie_echoed=3 nf_conntrack_sctp_timeout_cookie_wait=3 \
        nf_conntrack_sctp_timeout_established=210 nf_conntrack_sctp_timeout_heartbeat_sent=30 \
        nf_conntrack_sctp_timeout_shutdown_ack_sent=3 nf_conntrack_sctp_timeout_shutdown_recd=3 \
        nf_conntrack_sctp_timeout_shutdown_sent=3 nf_conntrack_gre_timeout=30 \
        nf_conntrack_gre_timeout_stream=180 nf_conntrack_log_invalid=0 nf_conntrack_max=262144 \
        nf_conntrack_buckets=262144 nf_conntrack_expect_max=4096 nf_conntrack_tcp_be_liberal=0 \
        nf_conntrack_tcp_ignore_invalid_rst=0 nf_conntrack_tcp_loose=1 \
        nf_conntrack_tcp_max_retrans=3 nf_conntrack_tcp_timeout_close=10 \
        nf_conntrack_tcp_timeout_close_wait=60 nf_conntrack_tcp_timeout_established=432000 \
        nf_conntrack_tcp_timeout_fin_wait=120 nf_conntrack_tcp_timeout_last_ack=30 \
        nf_conntrack_tcp_timeout_max_retrans=300 nf_conntrack_tcp_timeout_syn_recv=60 \
        nf_conntrack_tcp_timeout_syn_sent=120 nf_conntrack_tcp_timeout_time_wait=120 \
        nf_conntrack_tcp_timeout_unacknowledged=300 nf_conntrack_udp_timeout=30 \
        nf_conntrack_udp_timeout_stream=120";

    #[test]
    fn defaults_match_the_kernel() {
        let c = CtConfig::default();
        for kv in KERNEL_DEFAULTS.split_whitespace() {
            let (k, v) = kv.split_once('=').unwrap();
            assert_eq!(
                c.get(&format!("net.netfilter.{k}")).as_deref(),
                Some(v),
                "{k}"
            );
        }
    }

    #[test]
    fn set_accepts_linux_names_and_refuses_others() {
        let mut c = CtConfig::default();
        c.set("net.netfilter.nf_conntrack_tcp_loose", "0").unwrap();
        assert!(!c.tcp_loose);
        c.set("nf_conntrack_tcp_timeout_syn_sent", "5").unwrap();
        assert_eq!((c.tcp_timeouts[1], c.tcp_timeouts[9]), (5, 5));
        assert_eq!(
            c.set("net.netfilter.nf_conntrack_count", "1"),
            Err(ConfigError::ReadOnly(
                "net.netfilter.nf_conntrack_count".into()
            ))
        );
        assert!(matches!(
            c.set("net.netfilter.nf_conntrack_bogus", "1"),
            Err(ConfigError::Unknown(_))
        ));
        assert!(matches!(
            c.set("net.netfilter.nf_conntrack_frag6_timeout", "1"),
            Err(ConfigError::Unsupported(_))
        ));
        c.set("net.netfilter.nf_conntrack_sctp_timeout_established", "77")
            .unwrap();
        assert_eq!(c.sctp_timeouts[4], 77);
        assert!(matches!(
            c.set("nf_conntrack_tcp_loose", "2"),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            c.set("nf_conntrack_udp_timeout", "-1"),
            Err(ConfigError::BadValue { .. })
        ));
        let e = c.set("nf_conntrack_timestamp", "1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sysctl `nf_conntrack_timestamp` exists in Linux but is not supported by nfrs"
        );
        c.set("nf_conntrack_acct", "1").unwrap();
        assert!(c.acct);
        c.set("net.netfilter.nf_conntrack_expect_max", "3").unwrap();
        assert_eq!(c.get("nf_conntrack_expect_max").as_deref(), Some("3"));
        assert!(matches!(
            c.set("nf_conntrack_expect_max", "-1"),
            Err(ConfigError::BadValue { .. })
        ));
    }

    #[test]
    fn log_invalid_names_one_protocol_or_all() {
        let mut c = CtConfig::default();
        assert!(!c.logs_invalid(6));
        c.log_invalid = 6;
        assert!(c.logs_invalid(6) && !c.logs_invalid(17));
        c.log_invalid = 255;
        assert!(c.logs_invalid(1) && c.logs_invalid(17));
    }
}
