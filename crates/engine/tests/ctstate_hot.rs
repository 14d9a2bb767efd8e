//! Rules whose one match tests only the conntrack state (`-m state --state`, `-m conntrack
//! --ctstate` alone, each with or without `!`) are decided by the walk from their hot record.
//! Random rulesets of such rules, mixed with conntrack matches that test more than the state
//! (run as matches) and plain rules, walked by packets with every ctinfo, with and without
//! an entry, with SNAT/DNAT status bits, give the same verdicts, endings, matched-rule paths
//! and counters as the plain walk (every match run from the cold rule).

#[path = "common/side.rs"]
mod side;
use nfrs_conntrack::{status, ConnId, CtInfo, Tuple};
use nfrs_engine::classify::ClassifyOpts;
use nfrs_engine::pkt::PktCtx;
use nfrs_wire::build::{build_ipv4, FrameCtx};
use nfrs_wire::line::PacketSpec;
use proptest::prelude::*;
use side::Side;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const STATES: [&str; 5] = ["INVALID", "ESTABLISHED", "RELATED", "NEW", "UNTRACKED"];
const CTSTATES: [&str; 7] = [
    "INVALID",
    "ESTABLISHED",
    "RELATED",
    "NEW",
    "UNTRACKED",
    "SNAT",
    "DNAT",
];

fn list(r: &mut Rng, names: &[&str]) -> String {
    let mut v: Vec<&str> = names.iter().copied().filter(|_| r.below(3) == 0).collect();
    if v.is_empty() {
        v.push(names[r.below(names.len() as u64) as usize]);
    }
    v.join(",")
}

fn rule(r: &mut Rng) -> String {
    let inv = if r.below(3) == 0 { "! " } else { "" };
    let m = match r.below(6) {
        0 | 1 => format!("-m state {inv}--state {}", list(r, &STATES)),
        2 | 3 => format!("-m conntrack {inv}--ctstate {}", list(r, &CTSTATES)),
        // More than the state: the match runs.
        4 => format!(
            "-m conntrack {inv}--ctstate {} --ctdir {}",
            list(r, &CTSTATES),
            if r.below(2) == 0 { "ORIGINAL" } else { "REPLY" }
        ),
        _ => format!(
            "-m conntrack {inv}--ctstatus {}",
            ["SEEN_REPLY", "ASSURED"][r.below(2) as usize]
        ),
    };
    let with_comment = if r.below(4) == 0 {
        " -m comment --comment x"
    } else {
        ""
    };
    let target = ["ACCEPT", "DROP", "RETURN", "u0"][r.below(4) as usize];
    let proto = if r.below(4) == 0 { " -p udp" } else { "" };
    format!("{proto}{with_comment} {m} -j {target}")
}

fn ruleset(r: &mut Rng) -> String {
    let mut s = String::from("*filter\n:INPUT ACCEPT [0:0]\n:u0 - [0:0]\n");
    for _ in 0..1 + r.below(8) {
        let mut line = format!("-A INPUT{}\n", rule(r));
        if line.ends_with("-j u0\n") && r.below(2) == 0 {
            line = line.replace("-j u0", "-j DROP");
        }
        s += &line;
    }
    for _ in 0..r.below(4) {
        let line = format!("-A u0{}\n", rule(r)).replace("-j u0", "-j ACCEPT");
        s += &line;
    }
    s += "COMMIT\n";
    s
}

fn packet(r: &mut Rng) -> PktCtx {
    let line = if r.below(2) == 0 {
        "tcp 10.0.0.2:1000 > 10.0.0.1:22 flags=A seq=1 ack=1 win=512"
    } else {
        "udp 10.0.0.2:1000 > 10.0.0.1:53"
    };
    let spec = PacketSpec::parse(line).expect("packet line");
    let buf = build_ipv4(&spec, &FrameCtx::default()).expect("build");
    let mut p = PktCtx::new(buf).expect("parses");
    let infos = [
        CtInfo::Invalid,
        CtInfo::Untracked,
        CtInfo::New,
        CtInfo::Related,
        CtInfo::RelatedReply,
        CtInfo::Established,
        CtInfo::EstablishedReply,
    ];
    p.ct.info = infos[r.below(infos.len() as u64) as usize];
    if r.below(5) != 0 {
        p.ct.id = Some(ConnId(r.below(4) as u32));
    }
    let bits = [
        status::SRC_NAT,
        status::DST_NAT,
        status::SEEN_REPLY,
        status::ASSURED,
    ];
    for b in bits {
        if r.below(2) == 0 {
            p.ct.status |= b;
        }
    }
    p.ct.tuple = [
        Tuple::ports(6, 0x0a00_0002, 1000, 0x0a00_0001, 22),
        Tuple::ports(6, 0x0a00_0001, 22, 0x0a00_0002, 1000),
    ];
    p
}

/// The compiled walk (hot-record state tests) or the plain one.
fn opts(enabled: bool) -> ClassifyOpts {
    ClassifyOpts {
        enabled,
        min_rules: 1,
    }
}

fn check(seed: u64, packets: usize) {
    let mut r = Rng(seed);
    let text = ruleset(&mut r);
    let mut fast = Side::new(&text, opts(true));
    let mut slow = Side::new(&text, opts(false));
    for k in 0..packets {
        let p = packet(&mut r);
        let what = format!("{:?} id {:?} status {:#x}", p.ct.info, p.ct.id, p.ct.status);
        let a = fast.walk(p.clone());
        let b = slow.walk(p);
        assert_eq!(a, b, "packet {k} ({what}) differs; ruleset:\n{text}");
    }
    assert_eq!(
        fast.counters(),
        slow.counters(),
        "counters differ; ruleset:\n{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn state_rules_from_the_hot_record_equal_the_plain_walk(seed in any::<u64>()) {
        check(seed, 40);
    }
}

/// The hand-picked cases the gateway meets: ESTABLISHED,RELATED accepts an established
/// packet, NEW does not, an untracked packet meets only UNTRACKED, `!` turns each around, and
/// SNAT matches a connection with the SRC_NAT status bit only.
#[test]
fn gateway_cases() {
    let text = "*filter\n:INPUT DROP [0:0]\n\
        -A INPUT -m conntrack --ctstate SNAT -j ACCEPT\n\
        -A INPUT -m state ! --state NEW,INVALID,UNTRACKED -j ACCEPT\n\
        -A INPUT -m conntrack --ctstate UNTRACKED -j ACCEPT\nCOMMIT\n";
    let mut fast = Side::new(text, opts(true));
    let spec = PacketSpec::parse("udp 10.0.0.2:1000 > 10.0.0.1:53").unwrap();
    let base = PktCtx::new(build_ipv4(&spec, &FrameCtx::default()).unwrap()).unwrap();
    let ending_rule = |side: &mut Side, info: CtInfo, id: bool, st: u16| {
        let mut p = base.clone();
        p.ct.info = info;
        p.ct.id = id.then_some(ConnId(0));
        p.ct.status = st;
        let (accept, _, ending, _, _) = side.walk(p);
        (accept, ending)
    };
    let at = |what: &str| format!("filter/INPUT {what}");
    assert_eq!(
        ending_rule(&mut fast, CtInfo::Established, true, 0),
        (true, at("rule 2"))
    );
    assert_eq!(
        ending_rule(&mut fast, CtInfo::RelatedReply, true, 0),
        (true, at("rule 2"))
    );
    assert_eq!(
        ending_rule(&mut fast, CtInfo::New, true, 0),
        (false, at("policy"))
    );
    assert_eq!(
        ending_rule(&mut fast, CtInfo::New, true, status::SRC_NAT),
        (true, at("rule 1"))
    );
    // SNAT counts only with an entry attached.
    assert_eq!(
        ending_rule(&mut fast, CtInfo::Invalid, false, status::SRC_NAT),
        (false, at("policy"))
    );
    assert_eq!(
        ending_rule(&mut fast, CtInfo::Untracked, false, 0),
        (true, at("rule 3"))
    );
}
