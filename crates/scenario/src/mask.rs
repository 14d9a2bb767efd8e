//! Naming the kernel's random choices in a result, shared by both producers (kernel oracle,
//! replay) so they mask the same way.
//!
//! - A NAT source port (or ICMP id) the kernel picked at random (a clash, `--random`,
//!   `--random-fully`) becomes `rand1`, `rand2`, ... everywhere it appears, with a `# note:`
//!   naming the flow. Before masking, the producer proves the value lies in its allowed range.
//! - The IP id of a packet the host generated itself (ICMP errors, echo replies) prints as `*`.

use crate::result::{Event, RunResult};
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

/// A random value outside the range the kernel may pick from: the run is wrong, not maskable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskError(pub String);

impl fmt::Display for MaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MaskError {}

/// The ports the kernel picks a new source port from when the NAT rule gives no port range:
/// it keeps the port's class (below 512, 512..1023, 1024 and up).
pub fn default_nat_port_range(original: u16) -> RangeInclusive<u16> {
    if original < 512 {
        1..=511
    } else if original < 1024 {
        600..=1023
    } else {
        1024..=65535
    }
}

/// One masked random value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RandomValue {
    /// `rand1`, `rand2`, ...
    pub name: String,
    /// The address the value belongs to (the NAT address).
    pub addr: Ipv4Addr,
    /// The real value.
    pub value: u16,
    /// An ICMP echo identifier rather than a port.
    pub icmp_id: bool,
}

/// Hands out `randN` names and the notes that go with them.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    values: Vec<RandomValue>,
    notes: Vec<String>,
}

impl Masker {
    /// A masker with no names handed out.
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Names the random port (or ICMP id) `value` on NAT address `addr`, after checking it lies
    /// in one of `allowed`. `flow` describes the connection for the note (`udp 10.0.0.3:5000 ->
    /// 192.0.2.1`). The same (addr, value) asked twice gets the same name.
    pub fn random_port(
        &mut self,
        addr: Ipv4Addr,
        value: u16,
        allowed: &[RangeInclusive<u16>],
        flow: &str,
    ) -> Result<String, MaskError> {
        if let Some(v) = self
            .values
            .iter()
            .find(|v| v.addr == addr && v.value == value)
        {
            return Ok(v.name.clone());
        }
        if !allowed.iter().any(|r| r.contains(&value)) {
            return Err(MaskError(format!(
                "NAT picked port {value} for {flow}, outside every allowed range {allowed:?}"
            )));
        }
        let name = format!("rand{}", self.values.len() + 1);
        self.notes.push(format!(
            "NAT port {name}: chosen at random by the kernel for {flow} (source port clash or --random); its value is masked"
        ));
        self.values.push(RandomValue {
            name: name.clone(),
            addr,
            value,
            icmp_id: false,
        });
        Ok(name)
    }

    /// Names an ICMP echo identifier NAT picked at random on address `addr` (any value is
    /// allowed). Printed packets show it as the `id=` after `type=`/`code=` of an ICMP packet
    /// from or to `addr`.
    pub fn random_icmp_id(&mut self, addr: Ipv4Addr, value: u16, flow: &str) -> String {
        if let Some(v) = self
            .values
            .iter()
            .find(|v| v.addr == addr && v.value == value && v.icmp_id)
        {
            return v.name.clone();
        }
        let name = format!("rand{}", self.values.len() + 1);
        self.notes.push(format!(
            "NAT echo id {name}: chosen at random by the kernel for {flow} (id clash); its value is masked"
        ));
        self.values.push(RandomValue {
            name: name.clone(),
            addr,
            value,
            icmp_id: true,
        });
        name
    }

    /// The names handed out so far.
    pub fn values(&self) -> &[RandomValue] {
        &self.values
    }

    /// The `# note:` texts for the names handed out, in order.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Replaces every `ADDR:VALUE` of a named value in a printed packet (also inside `inner=`).
    pub fn mask_packet(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if v.icmp_id {
                out = mask_echo_id(&out, v);
                continue;
            }
            let from = format!("{}:{}", v.addr, v.value);
            let to = format!("{}:{}", v.addr, v.name);
            out = replace_token_prefix(&out, &from, &to);
        }
        out
    }

    /// Replaces named values in a `conntrack -L` line: in the reply tuple whose `dst=` is the NAT
    /// address, `dport=VALUE` (or `id=VALUE` for ICMP) becomes the name; so does the original
    /// tuple's `sport`/`id` when the original source is the NAT address.
    pub fn mask_conntrack(&self, line: &str) -> String {
        let mut out = line.to_string();
        for v in &self.values {
            out = mask_tuple_field(&out, v);
        }
        out
    }

    /// Replaces named values in a LOG line: `SRC=ADDR ... SPT=VALUE` and `DST=ADDR ... DPT=VALUE`.
    pub fn mask_log(&self, line: &str) -> String {
        let toks: Vec<&str> = line.split(' ').collect();
        let mut out: Vec<String> = toks.iter().map(|s| s.to_string()).collect();
        for v in &self.values {
            let src = toks.iter().any(|t| *t == format!("SRC={}", v.addr));
            let dst = toks.iter().any(|t| *t == format!("DST={}", v.addr));
            for t in out.iter_mut() {
                if src && *t == format!("SPT={}", v.value) {
                    *t = format!("SPT={}", v.name);
                }
                if dst && *t == format!("DPT={}", v.value) {
                    *t = format!("DPT={}", v.name);
                }
            }
        }
        out.join(" ")
    }
}

/// In an ICMP packet from or to `v.addr`, the echo `id=` (the one after `type=`) becomes the name.
fn mask_echo_id(text: &str, v: &RandomValue) -> String {
    let toks: Vec<&str> = text.split(' ').collect();
    if toks.first() != Some(&"icmp") || toks.len() < 4 {
        return text.to_string();
    }
    let a = v.addr.to_string();
    if toks[1] != a && toks[3] != a {
        return text.to_string();
    }
    let mut out: Vec<String> = toks.iter().map(|t| t.to_string()).collect();
    let mut seen_type = false;
    for t in out.iter_mut() {
        if t.starts_with("inner=") {
            break;
        }
        if t.starts_with("type=") {
            seen_type = true;
        } else if seen_type && *t == format!("id={}", v.value) {
            *t = format!("id={}", v.name);
            break;
        }
    }
    out.join(" ")
}

/// Replaces `from` where it is a whole token or a token's head followed by a non-digit.
fn replace_token_prefix(s: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(from) {
        let before_ok = i == 0 || matches!(rest.as_bytes()[i - 1], b' ' | b'"');
        let after = rest.as_bytes().get(i + from.len());
        let after_ok = after.is_none_or_not_digit();
        out.push_str(&rest[..i]);
        if before_ok && after_ok {
            out.push_str(to);
        } else {
            out.push_str(from);
        }
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

trait NotDigit {
    fn is_none_or_not_digit(&self) -> bool;
}

impl NotDigit for Option<&u8> {
    fn is_none_or_not_digit(&self) -> bool {
        match self {
            None => true,
            Some(c) => !c.is_ascii_digit(),
        }
    }
}

fn mask_tuple_field(line: &str, v: &RandomValue) -> String {
    // A conntrack line holds two tuples, each starting at `src=`.
    let toks: Vec<&str> = line.split(' ').collect();
    let mut out: Vec<String> = toks.iter().map(|s| s.to_string()).collect();
    let starts: Vec<usize> = toks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.starts_with("src="))
        .map(|(i, _)| i)
        .collect();
    for (n, &st) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(toks.len());
        let tuple = &toks[st..end];
        let is_src = tuple.iter().any(|t| *t == format!("src={}", v.addr));
        let is_dst = tuple.iter().any(|t| *t == format!("dst={}", v.addr));
        for (k, t) in tuple.iter().enumerate() {
            let hit = (is_dst && *t == format!("dport={}", v.value))
                || (is_src && *t == format!("sport={}", v.value))
                || ((is_src || is_dst) && *t == format!("id={}", v.value));
            if hit {
                let key = t.split('=').next().unwrap_or("");
                out[st + k] = format!("{key}={}", v.name);
            }
        }
    }
    out.join(" ")
}

/// The IP id of a packet the host generated itself is random: print it as `*` (the first
/// `id=`/`ipid=` field of a printed packet, which is the IP header's).
pub fn mask_ip_id(packet: &str) -> String {
    let mut done = false;
    packet
        .split(' ')
        .map(|t| {
            if !done {
                for key in ["id=", "ipid="] {
                    if let Some(v) = t.strip_prefix(key) {
                        if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
                            done = true;
                            return format!("{key}*");
                        }
                    }
                }
            }
            t.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same for a LOG line: its first `ID=` field (the IP id) prints as `*`.
pub fn mask_log_ip_id(line: &str) -> String {
    let mut done = false;
    line.split(' ')
        .map(|t| {
            if !done {
                if let Some(v) = t.strip_prefix("ID=") {
                    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
                        done = true;
                        return "ID=*".to_string();
                    }
                }
            }
            t.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---- naming the kernel's random NAT choices in a whole result (shared by replay and kernel-run)

/// The port ranges written in NAT rules (`--to-source a:p-q`, `--to-ports p-q`,
/// `--to-destination a:p`): a random port may also come from one of these.
fn rule_port_ranges(rules: &str) -> Vec<RangeInclusive<u16>> {
    let mut out = Vec::new();
    let toks: Vec<&str> = rules.split_whitespace().collect();
    for w in toks.windows(2) {
        let spec = match w[0] {
            "--to-source" | "--to-destination" | "--to" => {
                w[1].rsplit_once(':').map(|(_, p)| p).unwrap_or("")
            }
            "--to-ports" => w[1],
            _ => continue,
        };
        let (a, b) = spec.split_once('-').unwrap_or((spec, spec));
        if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
            out.push(a.min(b)..=a.max(b));
        }
    }
    out
}

/// One parsed conntrack tuple pair.
struct CtEntry {
    proto: String,
    orig: Tuple,
    reply: Tuple,
}

#[derive(Default)]
struct Tuple {
    src: Option<Ipv4Addr>,
    dst: Option<Ipv4Addr>,
    sport: Option<u16>,
    dport: Option<u16>,
    id: Option<u16>,
}

fn parse_ct(line: &str) -> Option<CtEntry> {
    let toks: Vec<&str> = line.split_whitespace().collect();
    let proto = toks.get(2)?.to_string();
    let mut tuples: Vec<Tuple> = Vec::new();
    for t in &toks {
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        if k == "src" {
            if tuples.len() == 2 {
                break;
            }
            tuples.push(Tuple::default());
        }
        let Some(cur) = tuples.last_mut() else {
            continue;
        };
        match k {
            "src" => cur.src = v.parse().ok(),
            "dst" => cur.dst = v.parse().ok(),
            "sport" => cur.sport = v.parse().ok(),
            "dport" => cur.dport = v.parse().ok(),
            "id" => cur.id = v.parse().ok(),
            _ => {}
        }
    }
    let reply = tuples.pop()?;
    let orig = tuples.pop()?;
    Some(CtEntry { proto, orig, reply })
}

/// Finds the NAT source ports (ICMP ids) the kernel picked at random and names them: a port a
/// source NAT changed is always drawn at random (a clash, `--random`, `--random-fully`).
pub fn mask_random_choices(r: &mut RunResult, rules: &str) -> Result<(), String> {
    let ranges = rule_port_ranges(rules);
    let mut cands: Vec<(Ipv4Addr, u16, Vec<RangeInclusive<u16>>, String)> = Vec::new();
    let mut icmp_cands: Vec<(Ipv4Addr, u16, String)> = Vec::new();
    for line in &r.conntrack {
        let Some(e) = parse_ct(line) else { continue };
        let Some(nat_addr) = e.reply.dst else {
            continue;
        };
        let Some(osrc) = e.orig.src else { continue };
        if e.proto == "icmp" {
            if let (Some(a), Some(b)) = (e.orig.id, e.reply.id) {
                if a != b {
                    icmp_cands.push((nat_addr, b, format!("icmp {osrc} id {a} -> {nat_addr}")));
                }
            }
            continue;
        }
        if let (Some(sp), Some(dp)) = (e.orig.sport, e.reply.dport) {
            // A rule range of a single port leaves the kernel no choice: not random.
            let forced = ranges
                .iter()
                .any(|r| r.start() == r.end() && *r.start() == dp);
            if sp != dp && !forced {
                let mut allowed = vec![default_nat_port_range(sp)];
                allowed.extend(ranges.iter().cloned());
                cands.push((
                    nat_addr,
                    dp,
                    allowed,
                    format!("{} {osrc}:{sp} -> {nat_addr}", e.proto),
                ));
            }
        }
    }
    if cands.is_empty() && icmp_cands.is_empty() {
        return Ok(());
    }
    // Name them in order of first appearance in the packets' events, then the rest.
    let mut order: Vec<usize> = Vec::new();
    for p in &r.packets {
        for ev in &p.events {
            let text = ev.to_string();
            for (k, (a, v, _, _)) in cands.iter().enumerate() {
                if !order.contains(&k)
                    && (text.contains(&format!("{a}:{v} "))
                        || text.contains(&format!("{a}:{v}\""))
                        || text.ends_with(&format!("{a}:{v}")))
                {
                    order.push(k);
                }
            }
        }
    }
    for k in 0..cands.len() {
        if !order.contains(&k) {
            order.push(k);
        }
    }
    let mut m = Masker::new();
    for k in order {
        let (a, v, allowed, flow) = &cands[k];
        m.random_port(*a, *v, allowed, flow)
            .map_err(|e| e.to_string())?;
    }
    for (a, v, flow) in &icmp_cands {
        m.random_icmp_id(*a, *v, flow);
    }
    for p in &mut r.packets {
        for ev in &mut p.events {
            mask_event(ev, &m);
        }
    }
    for l in &mut r.conntrack {
        *l = m.mask_conntrack(l);
    }
    r.conntrack.sort();
    r.notes.extend(m.notes().iter().cloned());
    Ok(())
}

fn mask_event(ev: &mut Event, m: &Masker) {
    match ev {
        Event::Out { packet, .. } => *packet = m.mask_packet(packet),
        Event::Local(p) => *p = m.mask_packet(p),
        Event::Log(l) => *l = m.mask_log(l),
        Event::Late(inner) => mask_event(inner, m),
        Event::Dropped | Event::Queued => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ranges_are_found() {
        let r = rule_port_ranges("-A POSTROUTING -j SNAT --to-source 1.2.3.4:1000-2000\n-A X -j MASQUERADE --to-ports 3000\n");
        assert_eq!(r, vec![1000..=2000, 3000..=3000]);
    }

    #[test]
    fn conntrack_lines_parse_into_tuples() {
        let e = parse_ct("ipv4     2 udp      17 src=10.0.0.3 dst=203.0.113.9 sport=5000 dport=5000 [UNREPLIED] src=203.0.113.9 dst=192.0.2.1 sport=5000 dport=41234 mark=0 use=1").unwrap();
        assert_eq!(e.proto, "udp");
        assert_eq!(e.orig.sport, Some(5000));
        assert_eq!(e.reply.dport, Some(41234));
        assert_eq!(e.reply.dst, Some(Ipv4Addr::new(192, 0, 2, 1)));
    }

    #[test]
    fn random_nat_ports_are_named_checked_and_masked_everywhere() {
        let text = "# d
0.00 lan0 udp 10.0.0.2:5000 > 203.0.113.9:5000 len=8
  out wan0 udp 192.0.2.1:5000 > 203.0.113.9:5000 ttl=63 tos=0x00 id=1 len=8
0.01 lan0 udp 10.0.0.3:5000 > 203.0.113.9:5000 len=8
  out wan0 udp 192.0.2.1:41234 > 203.0.113.9:5000 ttl=63 tos=0x00 id=2 len=8
== conntrack
ipv4     2 udp      17 src=10.0.0.2 dst=203.0.113.9 sport=5000 dport=5000 [UNREPLIED] src=203.0.113.9 dst=192.0.2.1 sport=5000 dport=5000 mark=0 use=1
ipv4     2 udp      17 src=10.0.0.3 dst=203.0.113.9 sport=5000 dport=5000 [UNREPLIED] src=203.0.113.9 dst=192.0.2.1 sport=5000 dport=41234 mark=0 use=1
== expect
== iptables-save -c
";
        let mut r = RunResult::parse(text).unwrap();
        mask_random_choices(
            &mut r,
            "*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n",
        )
        .unwrap();
        let out = r.to_text();
        assert!(
            out.contains("out wan0 udp 192.0.2.1:rand1 > 203.0.113.9:5000"),
            "{out}"
        );
        assert!(out.contains("sport=5000 dport=rand1 mark=0"), "{out}");
        assert!(!out.contains("41234"), "{out}");
        assert_eq!(r.notes.len(), 1);
        // A port outside the range the kernel may draw from is an error, not a mask.
        let mut bad = RunResult::parse(&text.replace("41234", "80")).unwrap();
        assert!(mask_random_choices(&mut bad, "").is_err());
        // A single-port NAT range leaves the kernel no choice: nothing is masked.
        let mut forced = RunResult::parse(&text.replace("41234", "7000")).unwrap();
        mask_random_choices(&mut forced, "-j SNAT --to-source 192.0.2.1:7000").unwrap();
        assert!(forced.notes.is_empty());
    }

    #[test]
    fn default_ranges_keep_the_port_class() {
        assert_eq!(default_nat_port_range(80), 1..=511);
        assert_eq!(default_nat_port_range(600), 600..=1023);
        assert_eq!(default_nat_port_range(5000), 1024..=65535);
    }

    #[test]
    fn random_port_checks_range_and_names_consistently() {
        let mut m = Masker::new();
        let a = Ipv4Addr::new(192, 0, 2, 1);
        assert!(m.random_port(a, 80, &[1024..=65535], "udp x").is_err());
        let n = m
            .random_port(a, 40000, &[1024..=65535], "udp 10.0.0.3:5000 -> 192.0.2.1")
            .unwrap();
        assert_eq!(n, "rand1");
        assert_eq!(
            m.random_port(a, 40000, &[1024..=65535], "again").unwrap(),
            "rand1"
        );
        assert_eq!(
            m.random_port(a, 40001, &[1024..=65535], "other").unwrap(),
            "rand2"
        );
        assert_eq!(
            m.notes()[0],
            "NAT port rand1: chosen at random by the kernel for udp 10.0.0.3:5000 -> 192.0.2.1 (source port clash or --random); its value is masked"
        );
        assert_eq!(
            m.mask_packet(
                "udp 192.0.2.1:40000 > 203.0.113.9:40000 ttl=63 inner=\"udp 192.0.2.1:400001 > x\""
            ),
            "udp 192.0.2.1:rand1 > 203.0.113.9:40000 ttl=63 inner=\"udp 192.0.2.1:400001 > x\""
        );
        assert_eq!(
            m.mask_conntrack("ipv4     2 udp      17 src=10.0.0.3 dst=203.0.113.9 sport=40000 dport=40000 [UNREPLIED] src=203.0.113.9 dst=192.0.2.1 sport=40000 dport=40000 mark=0 use=1"),
            "ipv4     2 udp      17 src=10.0.0.3 dst=203.0.113.9 sport=40000 dport=40000 [UNREPLIED] src=203.0.113.9 dst=192.0.2.1 sport=40000 dport=rand1 mark=0 use=1"
        );
        assert_eq!(
            m.mask_log("X SRC=192.0.2.1 DST=1.2.3.4 ID=3 SPT=40000 DPT=40000 "),
            "X SRC=192.0.2.1 DST=1.2.3.4 ID=3 SPT=rand1 DPT=40000 "
        );
    }

    #[test]
    fn icmp_echo_ids_are_masked_in_packets_and_conntrack() {
        let mut m = Masker::new();
        let a = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(
            m.random_icmp_id(a, 4242, "icmp 10.0.0.3 id 100 -> 192.0.2.1"),
            "rand1"
        );
        assert_eq!(
            m.mask_packet("icmp 192.0.2.1 > 198.51.100.7 ttl=63 tos=0x00 ipid=4242 type=8 code=0 id=4242 seq=1"),
            "icmp 192.0.2.1 > 198.51.100.7 ttl=63 tos=0x00 ipid=4242 type=8 code=0 id=rand1 seq=1"
        );
        // Other hosts' packets keep their ids.
        let other =
            "icmp 10.0.0.9 > 198.51.100.7 ttl=63 tos=0x00 ipid=1 type=8 code=0 id=4242 seq=1";
        assert_eq!(m.mask_packet(other), other);
        assert_eq!(
            m.mask_conntrack("ipv4     2 icmp     1 src=10.0.0.3 dst=198.51.100.7 type=8 code=0 id=100 src=198.51.100.7 dst=192.0.2.1 type=0 code=0 id=4242 mark=0 use=1"),
            "ipv4     2 icmp     1 src=10.0.0.3 dst=198.51.100.7 type=8 code=0 id=100 src=198.51.100.7 dst=192.0.2.1 type=0 code=0 id=rand1 mark=0 use=1"
        );
        assert!(m.notes()[0].contains("echo id rand1"));
    }

    #[test]
    fn ip_id_masking_takes_the_ip_header_field() {
        assert_eq!(
            mask_ip_id(
                "icmp 10.0.0.1 > 10.0.0.2 ttl=64 tos=0x00 ipid=4711 type=0 code=0 id=5 seq=9"
            ),
            "icmp 10.0.0.1 > 10.0.0.2 ttl=64 tos=0x00 ipid=* type=0 code=0 id=5 seq=9"
        );
        assert_eq!(
            mask_ip_id("tcp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=77 flags=R"),
            "tcp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=* flags=R"
        );
        assert_eq!(
            mask_log_ip_id("OUT IN= OUT=lan0 SRC=a DST=b LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=61237 PROTO=ICMP TYPE=0 CODE=0 ID=1 SEQ=1 "),
            "OUT IN= OUT=lan0 SRC=a DST=b LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=* PROTO=ICMP TYPE=0 CODE=0 ID=1 SEQ=1 "
        );
    }
}
