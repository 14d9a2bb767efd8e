//! The measurement harness: run a closure N times, keep every sample, summarise by the median.
//!
//! The median of N is reported (not the best) because the machine is shared: the median is
//! what a user sees, the best is kept alongside for reference.

use std::time::{Duration, Instant};

/// Samples of one measurement, in seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    pub secs: Vec<f64>,
}

impl Samples {
    /// The median sample (mean of the two middle ones for an even count); 0 when empty.
    pub fn median(&self) -> f64 {
        let mut v = self.secs.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The fastest sample; 0 when empty.
    pub fn best(&self) -> f64 {
        self.secs.iter().copied().reduce(f64::min).unwrap_or(0.0)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.secs.len()
    }

    /// True when nothing was measured.
    pub fn is_empty(&self) -> bool {
        self.secs.is_empty()
    }
}

/// Times `f` `runs` times. `f` returns its own result each time; the first error stops the
/// measurement and is returned. Whatever `f` returns is dropped outside the timed region, and
/// passed through `std::hint::black_box` so the work cannot be optimised away.
pub fn time_runs<T, E>(
    runs: usize,
    f: impl FnMut() -> Result<T, E>,
) -> Result<(Samples, Option<T>), E> {
    time_runs_within(runs, None, f)
}

/// [`time_runs`], but no new sample starts once `budget` has been spent (at least one sample
/// is always taken), so a very slow figure does not hold the whole run; the caller reports
/// how many samples were taken.
pub fn time_runs_within<T, E>(
    runs: usize,
    budget: Option<Duration>,
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<(Samples, Option<T>), E> {
    let mut s = Samples::default();
    let mut last = None;
    let start = Instant::now();
    for _ in 0..runs {
        if !s.is_empty() && budget.is_some_and(|b| start.elapsed() >= b) {
            break;
        }
        let t0 = Instant::now();
        let out = f()?;
        let dt = t0.elapsed();
        let out = std::hint::black_box(out);
        s.secs.push(dt.as_secs_f64());
        last = Some(out);
    }
    Ok((s, last))
}

/// Times `f` once, for work that is measured from its own internal clock (e.g. a child
/// process whose wall time is taken around spawn and wait).
pub fn time_once<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t0 = Instant::now();
    let out = f();
    (t0.elapsed(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_median_and_best() {
        let s = Samples {
            secs: vec![3.0, 1.0, 2.0],
        };
        assert_eq!(s.median(), 2.0);
        assert_eq!(s.best(), 1.0);
        let s = Samples {
            secs: vec![4.0, 1.0, 2.0, 3.0],
        };
        assert_eq!(s.median(), 2.5);
        assert_eq!(Samples::default().median(), 0.0);
    }

    #[test]
    fn test_budget_stops_new_samples() {
        // Sleeping lasts at least its duration, so the budget is spent after one sample.
        let (s, _) = time_runs_within(50, Some(Duration::from_millis(20)), || {
            std::thread::sleep(Duration::from_millis(30));
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(s.len(), 1);
        let (s, _) = time_runs_within(3, Some(Duration::ZERO), || Ok::<_, ()>(())).unwrap();
        assert_eq!(s.len(), 1, "at least one sample");
        let (s, _) =
            time_runs_within(3, Some(Duration::from_secs(60)), || Ok::<_, ()>(())).unwrap();
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn test_time_runs_counts_and_stops_on_error() {
        let mut calls = 0;
        let (s, last) = time_runs(4, || {
            calls += 1;
            Ok::<_, ()>(calls)
        })
        .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(last, Some(4));
        assert!(s.secs.iter().all(|x| *x >= 0.0));
        let mut calls = 0;
        let r = time_runs(4, || {
            calls += 1;
            if calls == 2 {
                Err("boom")
            } else {
                Ok(())
            }
        });
        assert_eq!(r.unwrap_err(), "boom");
        assert_eq!(calls, 2);
    }
}
