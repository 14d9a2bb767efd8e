//! `-m limit --limit N/unit --limit-burst B` (xt_limit limit_mt): one token bucket per rule,
//! counted in the kernel's credits and jiffies.
//!
//! Time: the kernel counts jiffies at HZ (250 on the reference machine, `CONFIG_HZ=250`), so a
//! packet's time is cut to whole 4 ms ticks with [`jiffies`]. The rule's bucket is filled when
//! the ruleset is loaded, which the engine does at scenario time 0. The phase of the kernel's
//! tick against the scenario clock cannot be known, so two packets less than 4 ms apart across
//! a tick may see one tick more or less than on the machine that recorded them.

use super::{CompileCtx, CompileError, MatchEnv, StateSlot};
use crate::pkt::PktCtx;
use nfrs_conntrack::Nanos;
use nfrs_rules::ext::limit::{Limit, LIMIT_SCALE};

/// The kernel's tick rate on the reference machine (`CONFIG_HZ=250`).
pub const HZ: u64 = 250;

/// Nanoseconds in one jiffy.
pub const NS_PER_JIFFY: u64 = 1_000_000_000 / HZ;

/// Credits earned per jiffy: the largest power of two with `cpj * HZ * 86400 < 2^32`
/// (128 at HZ=250), so one packet a day still fits in 32 bits.
pub const CREDITS_PER_JIFFY: u32 = pow2_below(0xFFFF_FFFF / (HZ as u32 * 86400));

const fn pow2_below(x: u32) -> u32 {
    if x == 0 {
        return 0;
    }
    1 << (31 - x.leading_zeros())
}

/// The scenario time `now` as a jiffies count (whole ticks since time 0).
#[inline]
pub fn jiffies(now: Nanos) -> u64 {
    now / NS_PER_JIFFY
}

/// Kernel rule (user2credits): a period in 1/10000 s into credits, dividing first when the
/// product would not fit 32 bits (all arithmetic on 32-bit words).
pub fn user2credits(user: u32) -> u32 {
    let k = HZ as u32 * CREDITS_PER_JIFFY;
    if user > u32::MAX / k {
        (user / LIMIT_SCALE).wrapping_mul(k)
    } else {
        user * k / LIMIT_SCALE
    }
}

/// Per-rule state of `-m limit`: the bucket (the kernel's xt_limit_priv plus the costs its
/// checkentry writes into the rule).
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Jiffies at the last packet (or at load).
    pub prev: u64,
    /// Credits in the bucket.
    pub credit: u32,
    /// The bucket's size (`avg * burst` in credits).
    pub credit_cap: u32,
    /// The price of one matching packet (`avg` in credits).
    pub cost: u32,
}

impl State {
    /// A full bucket for `m`, loaded at jiffy `now`.
    pub fn new(m: &Limit, now: u64) -> State {
        let full = user2credits(m.avg.wrapping_mul(m.burst));
        State {
            prev: now,
            credit: full,
            credit_cap: full,
            cost: user2credits(m.avg),
        }
    }

    /// Kernel rule (limit_mt): earn `CREDITS_PER_JIFFY` per jiffy since the last packet
    /// (the sum kept in 32 bits), cap at the bucket size, then pay `cost` if there is enough.
    #[inline]
    pub fn take(&mut self, now: u64) -> bool {
        let earned = now
            .wrapping_sub(self.prev)
            .wrapping_mul(CREDITS_PER_JIFFY as u64);
        self.prev = now;
        self.credit = self.credit.wrapping_add(earned as u32);
        if self.credit > self.credit_cap {
            self.credit = self.credit_cap;
        }
        if self.credit >= self.cost {
            self.credit -= self.cost;
            true
        } else {
            false
        }
    }
}

/// Refuses what the kernel's checkentry refuses (a zero burst or an `avg * burst` overflow;
/// nfrs-rules refuses these first) and claims the rule's bucket, full at time 0.
pub fn compile(m: &Limit, cx: &mut CompileCtx) -> Result<(), CompileError> {
    if m.burst == 0 || user2credits(m.avg.wrapping_mul(m.burst)) < user2credits(m.avg) {
        return Err(CompileError(format!(
            "nfrs replay: limit: overflow, try lower: {}/{}",
            m.avg, m.burst
        )));
    }
    cx.new_slot(StateSlot::Limit(State::new(m, 0)));
    Ok(())
}

/// Takes one packet's price from the rule's bucket (`-m limit` has no `!`).
pub fn eval(_m: &Limit, p: &PktCtx, env: &mut MatchEnv) -> bool {
    match env.state.slots.get_mut(env.slot as usize) {
        Some(StateSlot::Limit(s)) => s.take(jiffies(p.now)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pkt, rule_matches};
    use super::super::{compile_match, eval_match, CompileCtx, EvalState, MatchEnv, NoHost};
    use super::*;
    use nfrs_rules::ext::Match;
    use nfrs_rules::{Hook, IpSpec, TableKind};

    /// Runs `m` over packets at the given times (seconds) with one shared state.
    fn run(m: &Match, times_ms: &[u64]) -> Vec<bool> {
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
        let slot = compile_match(m, &mut cx).unwrap();
        let mut p = pkt("icmp 10.0.0.2 > 10.0.0.1 type=8 code=0 id=1 seq=1");
        times_ms
            .iter()
            .map(|t| {
                p.now = t * 1_000_000;
                let mut env = MatchEnv {
                    state: &mut st,
                    slot,
                    hotdrop: false,
                    host: &NoHost,
                };
                eval_match(m, &p, &mut env)
            })
            .collect()
    }

    #[test]
    fn constants_at_hz_250() {
        assert_eq!(CREDITS_PER_JIFFY, 128);
        assert_eq!(NS_PER_JIFFY, 4_000_000);
        // 1/second: avg 10000 -> 250 jiffies of 128 credits.
        assert_eq!(user2credits(10000), 32000);
        // 1/day: divides first.
        assert_eq!(user2credits(864_000_000), 86400 * 32000);
    }

    #[test]
    fn burst_then_rate() {
        // 1/second, burst 3: three at once, then one per full second.
        let m = rule_matches(&["-m", "limit", "--limit", "1/sec", "--limit-burst", "3"]).remove(0);
        let r = run(&m, &[0, 1, 2, 3, 500, 999, 1000, 1001, 2000]);
        assert_eq!(
            r,
            [true, true, true, false, false, false, true, false, true]
        );
    }

    #[test]
    fn measured_burst_then_one_after_a_second() {
        // Measured on Linux 6.18 (netns, OUTPUT counter): 10 datagrams at once, 3 more 1.1 s
        // later, `--limit 1/sec --limit-burst 3` counted 4.
        let m = rule_matches(&["-m", "limit", "--limit", "1/sec", "--limit-burst", "3"]).remove(0);
        let mut t = vec![0u64; 10];
        t.extend([1100, 1100, 1100]);
        assert_eq!(run(&m, &t).iter().filter(|&&b| b).count(), 4);
    }

    #[test]
    fn refill_capped_at_burst() {
        // 10/second (25 jiffies), burst 2: after a long pause only 2 pass.
        let m = rule_matches(&["-m", "limit", "--limit", "10/s", "--limit-burst", "2"]).remove(0);
        let r = run(&m, &[0, 0, 0, 60_000, 60_000, 60_000, 60_100]);
        assert_eq!(r, [true, true, false, true, true, false, true]);
    }

    #[test]
    fn default_rate_three_per_hour_burst_five() {
        let m = rule_matches(&["-m", "limit"]).remove(0);
        let r = run(&m, &[0, 0, 0, 0, 0, 0, 1_199_996, 1_200_000]);
        assert_eq!(r, [true, true, true, true, true, false, false, true]);
    }
}
