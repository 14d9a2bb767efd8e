//! `-m statistic` (xt_statistic): `--mode nth` counts packets per rule and matches every
//! `--every`th one, starting after `--packet`; `--mode random` needs the kernel's random
//! numbers, which replay does not have: it is refused when the ruleset is compiled (the
//! engine has no injectable random source yet).

use super::{CompileCtx, CompileError, MatchEnv, StateSlot};
use crate::pkt::PktCtx;
use nfrs_rules::ext::statistic::{Mode, Statistic};

/// Per-rule state of `--mode nth`: the counter shared by every CPU (`master->count`).
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Current count; the packet that brings it back to 0 matches.
    pub count: u32,
}

/// Claims the nth counter, starting where iptables puts it (`every - 1 - packet`); refuses
/// random mode.
pub fn compile(m: &Statistic, cx: &mut CompileCtx) -> Result<(), CompileError> {
    match m.mode {
        Mode::Random => Err(CompileError(
            "nfrs replay: match `statistic --mode random` not supported: the engine has no \
             random source to replay the kernel's (use --mode nth)"
                .into(),
        )),
        Mode::Nth => {
            cx.new_slot(StateSlot::Statistic(State {
                count: m.initial_count(),
            }));
            Ok(())
        }
    }
}

/// Kernel rule (statistic_mt, nth): the counter goes to 0 when it equals `every - 1`, else
/// up by one; the packet that sets it to 0 matches (`!` inverts).
pub fn eval(m: &Statistic, _p: &PktCtx, env: &mut MatchEnv) -> bool {
    let Some(StateSlot::Statistic(s)) = env.state.slots.get_mut(env.slot as usize) else {
        return false;
    };
    let every = m.every_minus_one();
    s.count = if s.count == every {
        0
    } else {
        s.count.wrapping_add(1)
    };
    (s.count == 0) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pkt, rule_matches};
    use super::super::{compile_match, eval_match, CompileCtx, EvalState, MatchEnv, NoHost};
    use nfrs_rules::ext::Match;
    use nfrs_rules::{Hook, IpSpec, TableKind};

    fn run(args: &[&str], n: usize) -> Vec<bool> {
        let mut v = vec!["-m", "statistic"];
        v.extend_from_slice(args);
        let m: Match = rule_matches(&v).remove(0);
        let mut st = EvalState::default();
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

    #[test]
    fn random_refused() {
        let m = rule_matches(&[
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.5",
        ])
        .remove(0);
        let mut st = EvalState::default();
        let ip = IpSpec::default();
        let mut cx = CompileCtx {
            table: TableKind::Filter,
            hooks: Hook::Input.bit(),
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        let e = compile_match(&m, &mut cx).unwrap_err();
        assert!(e.0.contains("random"), "{e}");
    }
}
