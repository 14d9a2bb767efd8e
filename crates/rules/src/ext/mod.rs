//! The extension framework: every match (`-m name`) and target (`-j NAME`) is a plain data
//! struct in its own file implementing [`Extension`]. The [`Match`] and [`TargetExt`] enums list
//! them all, so the engine evaluates with a `match` (no dynamic dispatch on the packet path).
//! See `README.md` in this directory for how to add one.

use crate::error::{Error, Result};
use crate::model::{Hook, IpSpec, TableKind};

pub mod util;

/// Whether an option takes an argument (getopt's no/required/optional argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    None,
    Required,
    Optional,
    /// Two arguments (`--tcp-flags MASK COMP`): the parser receives them joined by one space.
    Two,
}

/// One option of an extension, as in its getopt table.
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    /// Long name without the leading `--`.
    pub name: &'static str,
    pub arg: Arg,
    /// May be preceded by `!`.
    pub invert: bool,
    /// May be given more than once.
    pub multi: bool,
}

impl Opt {
    /// An option with a required argument, not invertible, once.
    pub const fn req(name: &'static str) -> Opt {
        Opt {
            name,
            arg: Arg::Required,
            invert: false,
            multi: false,
        }
    }
    /// An option without argument, not invertible, once.
    pub const fn flag(name: &'static str) -> Opt {
        Opt {
            name,
            arg: Arg::None,
            invert: false,
            multi: false,
        }
    }
    /// The same option, invertible with `!`.
    pub const fn inv(mut self) -> Opt {
        self.invert = true;
        self
    }
    /// The same option, allowed more than once.
    pub const fn multi(mut self) -> Opt {
        self.multi = true;
        self
    }
    /// The same option taking two arguments (passed joined by a space).
    pub const fn two(mut self) -> Opt {
        self.arg = Arg::Two;
        self
    }
    /// The same option with an optional argument.
    pub const fn optional(mut self) -> Opt {
        self.arg = Arg::Optional;
        self
    }
}

/// What an option parser sees besides the option itself.
#[derive(Clone, Copy, Debug)]
pub struct OptCtx<'a> {
    /// The generic part of the rule as parsed so far (protocol for port names etc.).
    pub ip: &'a IpSpec,
    /// The option was preceded by `!`.
    pub invert: bool,
    /// Bit i set when option i of this extension was already seen (before this one).
    pub seen: u64,
    /// The table the rule goes to.
    pub table: TableKind,
}

/// What the kernel's checkentry sees when the table is committed.
#[derive(Clone, Copy, Debug)]
pub struct CheckCtx<'a> {
    pub table: TableKind,
    /// Bit per [`Hook`] from which the rule's chain is reachable (0 for an unreferenced user
    /// chain, which the kernel does not check against hooks).
    pub hooks: u8,
    pub ip: &'a IpSpec,
    /// The rule's matches (some targets check them, e.g. TCPMSS wants a SYN-only tcp match).
    pub matches: &'a [Match],
}

impl CheckCtx<'_> {
    /// True when every hook reaching the rule is in `allowed` (a set of hooks).
    pub fn hooks_within(&self, allowed: &[Hook]) -> bool {
        let mask: u8 = allowed.iter().fold(0, |m, h| m | h.bit());
        self.hooks & !mask == 0
    }
}

/// One iptables extension (a match or a target): its options, parsing, checks and printing.
/// Equality (`PartialEq`) is what `-D`/`-C` use, so keep only parsed data in the struct.
pub trait Extension: Sized + Clone + PartialEq + Eq + std::fmt::Debug {
    /// The name after `-m` / `-j`.
    const NAME: &'static str;
    /// The options in getopt order; the index is what [`Extension::parse`] receives.
    const OPTIONS: &'static [Opt];
    /// A fresh instance when `-m NAME`/`-j NAME` is seen (iptables' init). Stubs refuse here.
    fn new() -> Result<Self>;
    /// Parses option `opt` (index into `OPTIONS`) with its argument (`""` when none).
    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()>;
    /// Checks after the whole rule is parsed (iptables' x6_fcheck); `seen` has one bit per option.
    fn final_check(&mut self, _seen: u64, _ip: &IpSpec) -> Result<()> {
        Ok(())
    }
    /// The kernel's checkentry when the table is replaced (tables, hooks, protocol).
    fn check_entry(&self, _cx: &CheckCtx) -> Result<()> {
        Ok(())
    }
    /// Appends the options in iptables-save form, each preceded by a space (" --dport 80").
    fn save(&self, ip: &IpSpec, out: &mut String);
    /// Appends the `iptables -L` form (each item followed by a space, as iptables prints).
    fn print(&self, ip: &IpSpec, numeric: bool, out: &mut String);
    /// The nfrs store's form: like [`Extension::save`], but never losing information where
    /// iptables-save does (an inverted full port range, an ICMP code range, ...), so the
    /// store loads back exactly. Defaults to `save`.
    fn save_store(&self, ip: &IpSpec, out: &mut String) {
        self.save(ip, out)
    }
    /// The name printed after `-m`/`-j` in save output (an alias may save as another name).
    fn save_name(&self) -> &'static str {
        Self::NAME
    }
    /// The name `iptables -L` shows in the target column (defaults to [`Self::save_name`]).
    fn list_name(&self) -> &'static str {
        self.save_name()
    }
}

/// A boxed extension is the extension: the few big ones are kept behind a pointer so that
/// every [`Match`] stays small (a rule's matches are one array of them).
impl<T: Extension> Extension for Box<T> {
    const NAME: &'static str = T::NAME;
    const OPTIONS: &'static [Opt] = T::OPTIONS;
    fn new() -> Result<Self> {
        T::new().map(Box::new)
    }
    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        (**self).parse(opt, arg, cx)
    }
    fn final_check(&mut self, seen: u64, ip: &IpSpec) -> Result<()> {
        (**self).final_check(seen, ip)
    }
    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        (**self).check_entry(cx)
    }
    fn save(&self, ip: &IpSpec, out: &mut String) {
        (**self).save(ip, out)
    }
    fn print(&self, ip: &IpSpec, numeric: bool, out: &mut String) {
        (**self).print(ip, numeric, out)
    }
    fn save_store(&self, ip: &IpSpec, out: &mut String) {
        (**self).save_store(ip, out)
    }
    fn save_name(&self) -> &'static str {
        (**self).save_name()
    }
    fn list_name(&self) -> &'static str {
        (**self).list_name()
    }
}

/// Generates the enum of extensions and its dispatch (one arm per variant).
macro_rules! extension_enum {
    ($(#[$doc:meta])* $enum:ident { $($variant:ident => $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum $enum {
            $($variant($ty),)*
        }

        impl $enum {
            /// Every name this enum knows.
            pub const NAMES: &'static [&'static str] = &[$(<$ty as Extension>::NAME,)*];

            /// `Some(instance or refusal)` when `name` is a known extension, `None` otherwise.
            pub fn new(name: &str) -> Option<Result<$enum>> {
                $(if name == <$ty as Extension>::NAME {
                    return Some(<$ty as Extension>::new().map($enum::$variant));
                })*
                None
            }
            /// The name after `-m`/`-j`.
            pub fn name(&self) -> &'static str {
                match self { $($enum::$variant(_) => <$ty as Extension>::NAME,)* }
            }
            /// The name printed in save output.
            pub fn save_name(&self) -> &'static str {
                match self { $($enum::$variant(x) => x.save_name(),)* }
            }
            /// The name `iptables -L` shows for it.
            pub fn list_name(&self) -> &'static str {
                match self { $($enum::$variant(x) => x.list_name(),)* }
            }
            /// The extension's option table.
            pub fn options(&self) -> &'static [Opt] {
                match self { $($enum::$variant(_) => <$ty as Extension>::OPTIONS,)* }
            }
            /// See [`Extension::parse`].
            pub fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
                match self { $($enum::$variant(x) => x.parse(opt, arg, cx),)* }
            }
            /// See [`Extension::final_check`].
            pub fn final_check(&mut self, seen: u64, ip: &IpSpec) -> Result<()> {
                match self { $($enum::$variant(x) => x.final_check(seen, ip),)* }
            }
            /// See [`Extension::check_entry`].
            pub fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
                match self { $($enum::$variant(x) => x.check_entry(cx),)* }
            }
            /// See [`Extension::save`].
            pub fn save(&self, ip: &IpSpec, out: &mut String) {
                match self { $($enum::$variant(x) => x.save(ip, out),)* }
            }
            /// See [`Extension::save_store`].
            pub fn save_store(&self, ip: &IpSpec, out: &mut String) {
                match self { $($enum::$variant(x) => x.save_store(ip, out),)* }
            }
            /// See [`Extension::print`].
            pub fn print(&self, ip: &IpSpec, numeric: bool, out: &mut String) {
                match self { $($enum::$variant(x) => x.print(ip, numeric, out),)* }
            }
        }
    };
}

// ---- matches -------------------------------------------------------------------------------
pub mod comment;
pub mod connbytes;
pub mod connlimit;
pub mod conntrack;
pub mod icmp;
pub mod mark;
pub mod multiport;
pub mod nfacct;
pub mod state;
pub mod tcp;
pub mod udp;
// owned by the rules-ext helper (stubs until filled in)
pub mod addrtype;
pub mod connmark;
pub mod dscp;
pub mod hashlimit;
pub mod helper;
pub mod iprange;
pub mod length;
pub mod limit;
pub mod mac;
pub mod owner;
pub mod physdev;
pub mod pkttype;
pub mod recent;
pub mod rpfilter;
pub mod statistic;
pub mod string;
pub mod tcpmss;
pub mod tos;
pub mod ttl;
pub mod u32;

// ---- targets -------------------------------------------------------------------------------
pub mod dnat;
pub mod log;
pub mod mark_target;
pub mod masquerade;
pub mod reject;
pub mod snat;
// owned by the rules-ext helper (stubs until filled in)
pub mod checksum;
pub mod connmark_target;
pub mod ct;
pub mod dscp_target;
pub mod ecn_target;
pub mod netmap;
pub mod notrack;
pub mod redirect;
pub mod tcpmss_target;
pub mod tee;
pub mod tos_target;
pub mod trace;
pub mod ttl_target;

extension_enum! {
    /// Every match extension (`-m NAME`).
    Match {
        Tcp => tcp::Tcp,
        Udp => udp::Udp,
        Icmp => icmp::Icmp,
        Multiport => multiport::Multiport,
        State => state::State,
        Conntrack => Box<conntrack::Conntrack>,
        Mark => mark::Mark,
        Comment => comment::Comment,
        Limit => limit::Limit,
        Hashlimit => Box<hashlimit::Hashlimit>,
        Recent => recent::Recent,
        Iprange => iprange::Iprange,
        Addrtype => addrtype::Addrtype,
        Length => length::Length,
        Ttl => ttl::Ttl,
        Tos => tos::Tos,
        Dscp => dscp::Dscp,
        Mac => mac::Mac,
        Pkttype => pkttype::Pkttype,
        String => Box<string::StringMatch>,
        Statistic => statistic::Statistic,
        Owner => owner::Owner,
        Physdev => Box<physdev::Physdev>,
        Helper => helper::Helper,
        Rpfilter => rpfilter::Rpfilter,
        Connbytes => connbytes::Connbytes,
        Connlimit => connlimit::Connlimit,
        U32 => u32::U32,
        Tcpmss => tcpmss::Tcpmss,
        Connmark => connmark::Connmark,
        Nfacct => nfacct::Nfacct,
    }
}

extension_enum! {
    /// Every target extension (`-j NAME`) besides the standard verdicts and chain jumps.
    TargetExt {
        Log => Box<log::Log>,
        Reject => reject::Reject,
        Mark => mark_target::MarkTarget,
        Dnat => dnat::Dnat,
        Snat => snat::Snat,
        Masquerade => masquerade::Masquerade,
        Connmark => connmark_target::ConnmarkTarget,
        Redirect => redirect::Redirect,
        Netmap => netmap::Netmap,
        Ct => Box<ct::Ct>,
        Notrack => notrack::Notrack,
        Tcpmss => tcpmss_target::TcpmssTarget,
        Ttl => ttl_target::TtlTarget,
        Tos => tos_target::TosTarget,
        Dscp => dscp_target::DscpTarget,
        Ecn => ecn_target::EcnTarget,
        Checksum => checksum::Checksum,
        Trace => trace::Trace,
        Tee => Box<tee::Tee>,
    }
}

/// Matches iptables knows but nfrs does not (refused as "not yet supported", not as unknown),
/// so a ruleset using them fails clearly.
pub const KNOWN_UNSUPPORTED_MATCHES: &[&str] = &[
    "ah",
    "bpf",
    "cgroup",
    "cluster",
    "connlabel",
    "cpu",
    "dccp",
    "devgroup",
    "ecn",
    "esp",
    "ipcomp",
    "ipvs",
    "nfacct",
    "osf",
    "policy",
    "quota",
    "rateest",
    "realm",
    "sctp",
    "set",
    "socket",
    "time",
    "udplite",
    "unclean",
];

/// Targets iptables knows but nfrs does not.
pub const KNOWN_UNSUPPORTED_TARGETS: &[&str] = &[
    "AUDIT",
    "CLASSIFY",
    "CLUSTERIP",
    "CONNSECMARK",
    "HMARK",
    "IDLETIMER",
    "LED",
    "NFLOG",
    "NFQUEUE",
    "QUEUE",
    "RATEEST",
    "SECMARK",
    "SET",
    "SYNPROXY",
    "TCPOPTSTRIP",
    "TPROXY",
    "ULOG",
];

/// A "not yet supported" refusal for match `name` (used by stub files).
pub fn unsupported_match(name: &str) -> Error {
    Error::unsupported(&format!("match `{name}'"))
}

/// A "not yet supported" refusal for target `name` (used by stub files).
pub fn unsupported_target(name: &str) -> Error {
    Error::unsupported(&format!("target `{name}'"))
}
