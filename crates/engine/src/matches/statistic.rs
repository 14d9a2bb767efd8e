//! `-m statistic` (xt_statistic): `--mode nth` counts packets per rule and matches every
//! `--every`th one, starting after `--packet`; `--mode random` draws a number from the
//! engine's random source ([`Rng`], in `EvalState::rng`) where the kernel calls
//! `get_random_u32()`. The source is a seeded generator, never the OS or the clock, so a replay
//! with the same seed draws the same numbers (the embedder picks the seed:
//! `Engine::set_random_seed`).

use super::{CompileCtx, CompileError, EvalState, MatchEnv, StateSlot};
use crate::pkt::PktCtx;
use nfrs_rules::ext::statistic::{Mode, Statistic};

/// Per-rule state of `--mode nth`: the counter shared by every CPU (`master->count`).
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Current count; the packet that brings it back to 0 matches.
    pub count: u32,
}

/// The random source of rule matches: splitmix64 over a 64-bit state. Deterministic for a
/// given seed; one draw is a few arithmetic operations, no allocation, no system call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// The seed an engine starts with (replay uses it unless told otherwise).
    pub const DEFAULT_SEED: u64 = 0x6e66_7273_5eed_0001;

    /// A source that yields the sequence belonging to `seed` (every seed, 0 included, is fine).
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits (splitmix64: a Weyl step, then a mixing function).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 32 random bits (the high half of a 64-bit draw).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

impl Default for Rng {
    fn default() -> Rng {
        Rng::new(Rng::DEFAULT_SEED)
    }
}

/// Claims the nth counter, starting where iptables puts it (`every - 1 - packet`); random mode
/// needs no per-rule state (the random source is shared by the whole engine).
pub fn compile(m: &Statistic, cx: &mut CompileCtx) -> Result<(), CompileError> {
    match m.mode {
        Mode::Random => Ok(()),
        Mode::Nth => {
            cx.new_slot(StateSlot::Statistic(State {
                count: m.initial_count(),
            }));
            Ok(())
        }
    }
}

/// Kernel rule (statistic_mt, random): a fresh 32-bit random number with its top bit cleared
/// is compared with the probability scaled to 2^31; below it matches (`!` inverts). So
/// probability 1 (2^31) always matches and probability 0 never does.
#[inline]
pub fn random_matches(probability_scaled: u32, invert: bool, r: u32) -> bool {
    ((r & 0x7fff_ffff) < probability_scaled) ^ invert
}

/// Evaluates the match: random mode draws one number per evaluation (as the kernel does, even
/// for probabilities 0 and 1); nth mode: the counter goes to 0 when it equals `every - 1`,
/// else up by one, and the packet that sets it to 0 matches (`!` inverts).
pub fn eval(m: &Statistic, _p: &PktCtx, env: &mut MatchEnv) -> bool {
    let (random, value) = params(m);
    step(random, value, m.invert, env.state, env.slot)
}

/// The match's parameters as [`step`] takes them: random mode, and the probability scaled
/// (random) or `every - 1` (nth).
pub fn params(m: &Statistic) -> (bool, u32) {
    match m.mode {
        Mode::Random => (true, m.probability_scaled()),
        Mode::Nth => (false, m.every_minus_one()),
    }
}

/// One evaluation from the unpacked parameters (see [`eval`]); the table walk calls it with
/// the parameters kept in a rule's hot record.
#[inline]
pub fn step(random: bool, value: u32, invert: bool, state: &mut EvalState, slot: u32) -> bool {
    if random {
        return random_matches(value, invert, state.rng.next_u32());
    }
    let Some(StateSlot::Statistic(s)) = state.slots.get_mut(slot as usize) else {
        return false;
    };
    s.count = if s.count == value {
        0
    } else {
        s.count.wrapping_add(1)
    };
    (s.count == 0) ^ invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pkt, rule_matches};
    use super::super::{compile_match, eval_match, CompileCtx, EvalState, MatchEnv, NoHost};
    use super::{random_matches, Rng};
    use nfrs_rules::ext::Match;
    use nfrs_rules::{Hook, IpSpec, TableKind};

    fn run(args: &[&str], n: usize) -> Vec<bool> {
        run_seeded(args, n, Rng::DEFAULT_SEED)
    }

    #[test]
    fn every_two_packet_zero_first_packet_matches() {
        // kube-proxy's round robin: the 1st, 3rd, 5th... packet.
        assert_eq!(
            run(&["--mode", "nth", "--every", "2", "--packet", "0"], 5),
            [true, false, true, false, true]
        );
    }

    #[test]
    fn every_three_packet_two() {
        assert_eq!(
            run(&["--mode", "nth", "--every", "3", "--packet", "2"], 6),
            [false, false, true, false, false, true]
        );
        assert_eq!(
            run(&["--mode", "nth", "!", "--every", "3", "--packet", "0"], 4),
            [false, true, true, false]
        );
    }

    #[test]
    fn measured_every_three_packet_one() {
        // Measured on Linux 6.18 (netns, OUTPUT counter): 7 datagrams, 2 counted.
        let r = run(&["--mode", "nth", "--every", "3", "--packet", "1"], 7);
        assert_eq!(r, [false, true, false, false, true, false, false]);
    }

    /// Runs a statistic match over `n` packets from an engine state whose random source is
    /// seeded with `seed`.
    fn run_seeded(args: &[&str], n: usize, seed: u64) -> Vec<bool> {
        let mut v = vec!["-m", "statistic"];
        v.extend_from_slice(args);
        let m: Match = rule_matches(&v).remove(0);
        let mut st = EvalState {
            rng: Rng::new(seed),
            ..EvalState::default()
        };
        let ip = IpSpec::default();
        let mut cx = CompileCtx {
            table: TableKind::Filter,
            hooks: Hook::Input.bit(),
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        let slot = compile_match(&m, &mut cx).unwrap();
        let p = pkt("udp 10.0.0.2:1 > 10.0.0.1:2");
        (0..n)
            .map(|_| {
                let mut env = MatchEnv {
                    state: &mut st,
                    slot,
                    hotdrop: false,
                    host: &NoHost,
                };
                eval_match(&m, &p, &mut env)
            })
            .collect()
    }

    #[test]
    fn random_half_rate_in_band_and_same_seed_same_sequence() {
        let args = ["--mode", "random", "--probability", "0.5"];
        let a = run_seeded(&args, 10_000, 7);
        let hits = a.iter().filter(|x| **x).count();
        // Binomial(10000, 0.5): sd 50, so 4800..5200 is four standard deviations either side.
        assert!((4800..=5200).contains(&hits), "{hits} of 10000");
        assert_eq!(a, run_seeded(&args, 10_000, 7));
        assert_ne!(a, run_seeded(&args, 10_000, 8));
        // `!` matches exactly where the plain rule does not (same seed, same draws).
        let inv = run_seeded(
            &["--mode", "random", "!", "--probability", "0.5"],
            10_000,
            7,
        );
        assert!(a.iter().zip(&inv).all(|(x, y)| x != y));
    }

    #[test]
    fn random_low_probability_rate() {
        let hits = run_seeded(&["--mode", "random", "--probability", "0.1"], 10_000, 1)
            .iter()
            .filter(|x| **x)
            .count();
        // sd 30: 880..1120 is four standard deviations.
        assert!((880..=1120).contains(&hits), "{hits} of 10000");
    }

    #[test]
    fn random_probability_one_and_zero_are_certain() {
        for seed in [0, 1, Rng::DEFAULT_SEED] {
            let one = run_seeded(&["--mode", "random", "--probability", "1"], 2000, seed);
            assert!(one.iter().all(|x| *x));
            let zero = run_seeded(&["--mode", "random", "--probability", "0"], 2000, seed);
            assert!(zero.iter().all(|x| !*x));
            let not_one = run_seeded(&["--mode", "random", "!", "--probability", "1"], 2000, seed);
            assert!(not_one.iter().all(|x| !*x));
        }
    }

    #[test]
    fn random_decision_rule_edges() {
        // 2^31 (P=1): every value with the top bit cleared is below it.
        assert!(random_matches(0x8000_0000, false, u32::MAX));
        assert!(!random_matches(0, false, 0));
        // The top bit is ignored: 0x8000_0000 counts as 0.
        assert!(random_matches(1, false, 0x8000_0000));
        assert!(!random_matches(1, false, 1));
        assert!(random_matches(1, true, 1));
    }

    #[test]
    fn rng_sequence_is_fixed_for_a_seed() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u32> = (0..64).map(|_| a.next_u32()).collect();
        let ys: Vec<u32> = (0..64).map(|_| b.next_u32()).collect();
        assert_eq!(xs, ys);
        // Not stuck: many distinct values, both halves of the 31-bit range reached.
        let mut d = xs.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), 64);
        assert!(xs.iter().any(|x| x & 0x7fff_ffff < 0x4000_0000));
        assert!(xs.iter().any(|x| x & 0x7fff_ffff >= 0x4000_0000));
        assert_eq!(Rng::default(), Rng::new(Rng::DEFAULT_SEED));
    }

    /// The packet counter of a FORWARD rule `--probability 0.5` after 400 forwarded packets
    /// through a whole engine seeded with `seed` (None: the engine's default seed).
    fn engine_hits(seed: Option<u64>) -> u64 {
        let q = "'''";
        let mut packets = String::new();
        for i in 0..400 {
            packets += &format!(
                "{}.{:02} lan0 udp 10.0.0.2:{} > 192.0.2.9:53 len=8\n",
                i / 100,
                i % 100,
                1000 + i
            );
        }
        let text = format!(
            "description = \"seed\"\nrules = {q}\n*filter\n-A FORWARD -m statistic --mode random --probability 0.5\nCOMMIT\n{q}\npackets = {q}\n{packets}{q}\n\n[sysctl]\n\"net.ipv4.ip_forward\" = 1\n\n[[interface]]\nname = \"lan0\"\naddress = \"10.0.0.1/24\"\n\n[[interface]]\nname = \"wan0\"\naddress = \"192.0.2.1/24\"\n"
        );
        let sc = nfrs_scenario::parse(&text, std::path::Path::new("seed.toml")).unwrap();
        let mut eng = crate::replay::engine_for(&sc).unwrap();
        if let Some(s) = seed {
            eng.set_random_seed(s);
        }
        for (i, line) in sc.packet_lines().iter().enumerate() {
            let l = &line.parsed;
            let ctx = nfrs_wire::build::FrameCtx {
                dst_mac: nfrs_wire::ethernet::MacAddr(eng.host.ifaces()[0].mac),
                ip_id: i as u16 + 1,
                ..Default::default()
            };
            let frame = nfrs_wire::build::build_frame(&l.spec, &ctx).unwrap();
            let mut mac = [0u8; 14];
            mac.copy_from_slice(&frame[..14]);
            eng.receive(0, frame[14..].to_vec(), mac, l.time_us * 1000);
        }
        let rs = eng.ruleset_with_counters();
        let t = rs
            .tables
            .iter()
            .find(|t| t.kind == TableKind::Filter)
            .unwrap();
        let c = t.chains.iter().find(|c| c.name == "FORWARD").unwrap();
        c.rules[0].counters.packets
    }

    #[test]
    fn engine_seed_decides_the_draws() {
        let a = engine_hits(Some(3));
        // Binomial(400, 0.5): sd 10.
        assert!((150..=250).contains(&a), "{a} of 400");
        assert_eq!(a, engine_hits(Some(3)));
        assert_eq!(engine_hits(None), engine_hits(Some(Rng::DEFAULT_SEED)));
        // Different seeds, different draws (the counts of a few seeds are not all equal).
        let counts: Vec<u64> = (10..14).map(|s| engine_hits(Some(s))).collect();
        assert!(counts.iter().any(|c| *c != counts[0]), "{counts:?}");
    }
}
