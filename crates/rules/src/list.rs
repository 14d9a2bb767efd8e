//! `iptables -L` in iptables 1.8.9's exact layout, with `-n -v -x --line-numbers`.
//!
//! Name resolution without `-n` never stalls: addresses are looked up in `/etc/hosts` and then
//! `/etc/networks` (what gethostbyaddr/getnetbyaddr consult first on a default nsswitch), read
//! once per listing; no DNS query is made, so anything not found there prints numerically
//! (a deliberate bound: iptables itself may wait for DNS).
//! Ports and protocols come from the bundled services/protocols tables.

use crate::ext::util::mask_to_cidr;
use crate::model::{Rule, Table, Target};
use crate::save::ordered_chains;
use crate::services;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// The target column of `-L`: like the save name, but an extension may list under another.
fn target_name(t: &Target) -> &str {
    match t {
        Target::Ext(e) => e.list_name(),
        t => crate::save::target_name(t),
    }
}

/// -L format flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListFormat {
    pub numeric: bool,
    pub verbose: bool,
    pub exact: bool,
    pub line_numbers: bool,
}

/// Address-to-name lookups for non-numeric listings (bounded: local files only, cached).
#[derive(Debug, Default)]
pub struct Resolver {
    hosts: HashMap<Ipv4Addr, String>,
    networks: HashMap<Ipv4Addr, String>,
}

impl Resolver {
    /// Reads the hosts and networks files (see [`crate::hosts`]; missing files are fine).
    pub fn from_system() -> Resolver {
        let mut r = Resolver::default();
        if let Ok(text) = std::fs::read_to_string(crate::hosts::hosts_path()) {
            r.load_hosts(&text);
        }
        if let Ok(text) = std::fs::read_to_string(crate::hosts::networks_path()) {
            r.load_networks(&text);
        }
        r
    }

    /// Adds hosts-file lines (`addr name...`); the first name of the first line wins.
    pub fn load_hosts(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut it = line.split_whitespace();
            if let (Some(a), Some(n)) = (it.next(), it.next()) {
                if let Ok(addr) = a.parse::<Ipv4Addr>() {
                    self.hosts.entry(addr).or_insert_with(|| n.to_string());
                }
            }
        }
    }

    /// Adds networks-file lines (`name net`), where `net` may have fewer than four parts.
    pub fn load_networks(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut it = line.split_whitespace();
            if let (Some(n), Some(a)) = (it.next(), it.next()) {
                let mut parts: Vec<u8> = a.split('.').filter_map(|p| p.parse().ok()).collect();
                if parts.is_empty() || parts.len() > 4 {
                    continue;
                }
                parts.resize(4, 0);
                let addr = Ipv4Addr::new(parts[0], parts[1], parts[2], parts[3]);
                self.networks.entry(addr).or_insert_with(|| n.to_string());
            }
        }
    }

    /// xtables_ipaddr_to_anyname: host name, else network name, else numeric.
    pub fn name(&self, addr: Ipv4Addr) -> String {
        self.hosts
            .get(&addr)
            .or_else(|| self.networks.get(&addr))
            .cloned()
            .unwrap_or_else(|| addr.to_string())
    }
}

/// xtables_print_num: counters in columns, with K/M/G/T unless `-x`.
fn push_num(out: &mut String, n: u64, exact: bool, table: bool) {
    if exact {
        if table {
            out.push_str(&format!("{n:>8} "));
        } else {
            out.push_str(&format!("{n} "));
        }
        return;
    }
    if n <= 99999 {
        if table {
            out.push_str(&format!("{n:>5} "));
        } else {
            out.push_str(&format!("{n} "));
        }
        return;
    }
    let mut v = n;
    for suffix in ['K', 'M', 'G', 'T'] {
        v = v.wrapping_add(500) / 1000;
        if v <= 9999 || suffix == 'T' {
            if table {
                out.push_str(&format!("{v:>4}{suffix} "));
            } else {
                out.push_str(&format!("{v}{suffix} "));
            }
            return;
        }
    }
}

fn push_addr(
    out: &mut String,
    addr: Ipv4Addr,
    mask: Ipv4Addr,
    inv: bool,
    f: ListFormat,
    r: &Resolver,
) {
    out.push(if inv { '!' } else { ' ' });
    let text = if mask.is_unspecified() && !f.numeric {
        "anywhere".to_string()
    } else {
        let a = if f.numeric {
            addr.to_string()
        } else {
            r.name(addr)
        };
        let m = match mask_to_cidr(mask) {
            Some(32) => String::new(),
            Some(b) => format!("/{b}"),
            None => format!("/{mask}"),
        };
        format!("{a}{m}")
    };
    out.push_str(&format!("{text:<19} "));
}

/// One rule line of -L (without newline).
pub fn rule_line(rule: &Rule, num: usize, f: ListFormat, r: &Resolver) -> String {
    let mut out = String::new();
    if f.line_numbers {
        out.push_str(&format!("{num:<4} "));
    }
    if f.verbose {
        push_num(&mut out, rule.counters.packets, f.exact, true);
        push_num(&mut out, rule.counters.bytes, f.exact, true);
    }
    out.push_str(&format!("{:<9} ", target_name(&rule.target)));
    let ip = &rule.ip;
    out.push(if ip.inv_proto { '!' } else { ' ' });
    match services::proto_to_name(ip.proto, f.numeric) {
        // 1.8.9 prints the number for every protocol with -n (its lookup table is skipped).
        Some(n) if !f.numeric => out.push_str(&format!("{n:<4} ")),
        _ => out.push_str(&format!("{:<4} ", ip.proto)),
    }
    out.push(if ip.inv_fragment { '!' } else { '-' });
    out.push(if ip.fragment { 'f' } else { '-' });
    out.push(' ');
    if f.verbose {
        let iface = |i: &crate::model::Iface| {
            let mut s = String::new();
            if i.invert {
                s.push('!');
            }
            if !i.name.is_empty() {
                s.push_str(&i.name);
            } else if f.numeric {
                s.push('*');
            } else {
                s.push_str("any");
            }
            s
        };
        out.push_str(&format!(" {:<6} ", iface(&ip.in_iface)));
        out.push_str(&format!("{:<6} ", iface(&ip.out_iface)));
    }
    push_addr(&mut out, ip.src, ip.src_mask, ip.inv_src, f, r);
    push_addr(&mut out, ip.dst, ip.dst_mask, ip.inv_dst, f, r);
    if matches!(rule.target, Target::Goto(_)) {
        out.push_str("[goto] ");
    }
    for m in &rule.matches {
        m.print(ip, f.numeric, &mut out);
    }
    if let Target::Ext(t) = &rule.target {
        t.print(ip, f.numeric, &mut out);
    }
    out
}

/// The one-line form iptables prints for `-v -A` and friends (print_firewall_line: no table
/// layout, numeric addresses, protocol by name).
pub fn rule_line_notable(rule: &Rule) -> String {
    let ip = &rule.ip;
    let mut out = format!("{} ", target_name(&rule.target));
    out.push(if ip.inv_proto { '!' } else { ' ' });
    match services::proto_to_name(ip.proto, true) {
        Some(n) => out.push_str(&format!("{n} ")),
        None => out.push_str(&format!("{} ", ip.proto)),
    }
    out.push_str("opt ");
    out.push(if ip.inv_fragment { '!' } else { '-' });
    out.push(if ip.fragment { 'f' } else { '-' });
    out.push(' ');
    let iface = |i: &crate::model::Iface| {
        let mut s = String::new();
        if i.invert {
            s.push('!');
        }
        if i.name.is_empty() {
            s.push('*');
        } else {
            s.push_str(&i.name);
        }
        s
    };
    out.push_str(&format!("in {} ", iface(&ip.in_iface)));
    out.push_str(&format!("out {} ", iface(&ip.out_iface)));
    let addr = |a: Ipv4Addr, m: Ipv4Addr| {
        let suffix = match mask_to_cidr(m) {
            Some(32) => String::new(),
            Some(b) => format!("/{b}"),
            None => format!("/{m}"),
        };
        format!("{a}{suffix}")
    };
    out.push(if ip.inv_src { '!' } else { ' ' });
    out.push_str(&format!("{} ", addr(ip.src, ip.src_mask)));
    out.push(if ip.inv_dst { '!' } else { ' ' });
    out.push_str(&format!("-> {}", addr(ip.dst, ip.dst_mask)));
    out.push_str("  ");
    if matches!(rule.target, Target::Goto(_)) {
        out.push_str("[goto] ");
    }
    for m in &rule.matches {
        m.print(ip, true, &mut out);
    }
    if let Target::Ext(t) = &rule.target {
        t.print(ip, true, &mut out);
    }
    out
}

fn header(refs: &HashMap<&str, usize>, chain: &crate::model::Chain, f: ListFormat) -> String {
    let mut out = format!("Chain {}", chain.name);
    if chain.is_builtin() {
        out.push_str(&format!(" (policy {}", chain.policy.name()));
        if f.verbose {
            out.push(' ');
            push_num(&mut out, chain.counters.packets, f.exact, false);
            out.push_str("packets, ");
            push_num(&mut out, chain.counters.bytes, f.exact, false);
            out.push_str("bytes");
        }
        out.push_str(")\n");
    } else {
        let n = refs.get(chain.name.as_str()).copied().unwrap_or(0);
        out.push_str(&format!(" ({n} references)\n"));
    }
    if f.line_numbers {
        out.push_str(&format!("{:<4} ", "num"));
    }
    if f.verbose {
        if f.exact {
            out.push_str(&format!("{:>8} {:>10} ", "pkts", "bytes"));
        } else {
            out.push_str(&format!("{:>5} {:>5} ", "pkts", "bytes"));
        }
    }
    out.push_str(&format!("{:<9} ", "target"));
    out.push_str(" prot opt");
    if f.verbose {
        out.push_str(&format!(" {:<6} {:<6} ", "in", "out"));
    }
    out.push_str(&format!(" {:<19} ", "source"));
    out.push_str(&format!(" {:<19} ", "destination"));
    out.push('\n');
    out
}

/// The whole `iptables -L [CHAIN [NUM]]` output for `table`.
pub fn list(
    table: &Table,
    chain: Option<&str>,
    rulenum: u32,
    f: ListFormat,
    r: &Resolver,
) -> String {
    let mut out = String::new();
    let refs = table.all_references();
    let mut first = true;
    for c in ordered_chains(table) {
        if chain.is_some_and(|n| n != c.name) {
            continue;
        }
        // `-L CHAIN NUM` prints the one rule line alone.
        if rulenum == 0 {
            if !first {
                out.push('\n');
            }
            first = false;
            out.push_str(&header(&refs, c, f));
        }
        for (i, rule) in c.rules.iter().enumerate() {
            if rulenum != 0 && rulenum as usize != i + 1 {
                continue;
            }
            out.push_str(&rule_line(rule, i + 1, f, r));
            out.push('\n');
        }
    }
    out
}

/// `iptables -L ... -Z`: the listing, then the counters of the listed chain(s) zeroed; with
/// `-v` iptables says so after the listing ("Zeroing chain `X'").
pub fn list_and_zero(
    table: &mut Table,
    chain: Option<&str>,
    rulenum: u32,
    f: ListFormat,
    r: &Resolver,
) -> String {
    let mut out = list(table, chain, rulenum, f, r);
    if f.verbose {
        for c in ordered_chains(table) {
            if chain.is_none_or(|n| n == c.name) {
                out.push_str(&format!("Zeroing chain `{}'\n", c.name));
            }
        }
    }
    crate::ops::zero_all(table, chain);
    out
}
