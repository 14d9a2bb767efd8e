//! `-j REJECT [--reject-with TYPE]`.

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{Hook, IpSpec, TableKind};

/// The reply REJECT sends (enum ipt_reject_with, kernel numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectWith {
    NetUnreachable,
    HostUnreachable,
    ProtoUnreachable,
    PortUnreachable,
    EchoReply,
    NetProhibited,
    HostProhibited,
    TcpReset,
    AdminProhibited,
}

/// (full name, short alias, value) in iptables' table order.
const TYPES: &[(&str, &str, RejectWith)] = &[
    (
        "icmp-net-unreachable",
        "net-unreach",
        RejectWith::NetUnreachable,
    ),
    (
        "icmp-host-unreachable",
        "host-unreach",
        RejectWith::HostUnreachable,
    ),
    (
        "icmp-proto-unreachable",
        "proto-unreach",
        RejectWith::ProtoUnreachable,
    ),
    (
        "icmp-port-unreachable",
        "port-unreach",
        RejectWith::PortUnreachable,
    ),
    (
        "icmp-net-prohibited",
        "net-prohib",
        RejectWith::NetProhibited,
    ),
    (
        "icmp-host-prohibited",
        "host-prohib",
        RejectWith::HostProhibited,
    ),
    ("tcp-reset", "tcp-rst", RejectWith::TcpReset),
    (
        "icmp-admin-prohibited",
        "admin-prohib",
        RejectWith::AdminProhibited,
    ),
];

/// struct ipt_reject_info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub with: RejectWith,
}

impl Reject {
    fn name(&self) -> &'static str {
        TYPES
            .iter()
            .find(|t| t.2 == self.with)
            .map(|t| t.0)
            .unwrap_or("echo-reply")
    }
}

impl Extension for Reject {
    const NAME: &'static str = "REJECT";
    const OPTIONS: &'static [Opt] = &[Opt::req("reject-with")];

    fn new() -> Result<Self> {
        Ok(Reject {
            with: RejectWith::PortUnreachable,
        })
    }

    fn parse(&mut self, _opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        let t = TYPES
            .iter()
            .find(|(full, short, _)| {
                arg.eq_ignore_ascii_case(full) || arg.eq_ignore_ascii_case(short)
            })
            .ok_or_else(|| Error::param(format!("unknown reject type \"{arg}\"")))?;
        self.with = t.2;
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // ipt_REJECT: filter table only (measured on 6.18: mangle and raw refuse it), INPUT,
        // FORWARD, OUTPUT; tcp-reset needs `-p tcp` (not inverted).
        if cx.table != TableKind::Filter
            || !cx.hooks_within(&[Hook::Input, Hook::Forward, Hook::Output])
        {
            return Err(Error::kernel(Errno::Inval));
        }
        if self.with == RejectWith::TcpReset && (cx.ip.proto != 6 || cx.ip.inv_proto) {
            return Err(Error::kernel(Errno::Inval));
        }
        if self.with == RejectWith::EchoReply {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(" --reject-with ");
        out.push_str(self.name());
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" reject-with ");
        out.push_str(self.name());
    }
}
