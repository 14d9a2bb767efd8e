//! The kernel's message rate limit (`net_ratelimit`: `net.core.message_burst` = 10 messages per
//! `net.core.message_cost` = 5 s), on the injected clock.

use crate::config::{Nanos, SEC};

/// A burst-per-interval limiter like the kernel's `___ratelimit`.
#[derive(Clone, Debug)]
pub struct RateLimit {
    /// Window length.
    pub interval: Nanos,
    /// Messages allowed per window.
    pub burst: u32,
    begin: Option<Nanos>,
    printed: u32,
    missed: u32,
}

/// What the limiter said about one message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Allowed {
    /// Print the message?
    pub print: bool,
    /// Messages suppressed in the window that just ended (the kernel then prints
    /// `net_ratelimit: N callbacks suppressed` before this message).
    pub suppressed: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new(5 * SEC, 10)
    }
}

impl RateLimit {
    /// A limiter of `burst` messages per `interval`.
    pub fn new(interval: Nanos, burst: u32) -> Self {
        RateLimit {
            interval,
            burst,
            begin: None,
            printed: 0,
            missed: 0,
        }
    }

    /// Asks to print one message at `now`.
    pub fn allow(&mut self, now: Nanos) -> Allowed {
        let mut suppressed = 0;
        let begin = *self.begin.get_or_insert(now);
        if now > begin + self.interval {
            suppressed = self.missed;
            self.begin = Some(now);
            self.printed = 0;
            self.missed = 0;
        }
        if self.printed < self.burst {
            self.printed += 1;
            Allowed {
                print: true,
                suppressed,
            }
        } else {
            self.missed += 1;
            Allowed {
                print: false,
                suppressed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_per_five_seconds_then_reports_suppressed() {
        let mut r = RateLimit::default();
        let printed = (0..15).filter(|i| r.allow(i * SEC / 10).print).count();
        assert_eq!(printed, 10);
        // Still inside the window at exactly 5 s.
        assert!(!r.allow(5 * SEC).print);
        let a = r.allow(5 * SEC + 1);
        assert_eq!(
            a,
            Allowed {
                print: true,
                suppressed: 6
            }
        );
    }
}
