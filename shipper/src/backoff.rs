//! Jittered exponential backoff, with the randomness passed in.
//!
//! The delay for retry `attempt` (0 for the first retry) is drawn uniformly
//! from `[base / 2, min(cap, base * 2^attempt)]`: "full jitter" (the AWS
//! architecture blog's name for spreading retries over the whole window, so
//! that many shippers rejected by the same 429 do not come back together),
//! shifted up so the shortest delay is half the base. That floor means a
//! retry loop can never spin: the minimum delay is at least 500 µs because
//! the base must be at least 1 ms.

use std::time::Duration;

/// Why backoff parameters are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackoffError {
    /// A zero or sub-millisecond base would make retries spin.
    #[error("configuring backoff failed: base {0:?} is below 1 ms")]
    BaseTooSmall(Duration),
    /// The cap must not be below the base.
    #[error("configuring backoff failed: cap {cap:?} is below base {base:?}")]
    CapBelowBase {
        /// The base.
        base: Duration,
        /// The cap.
        cap: Duration,
    },
}

/// Backoff parameters. Stateless: the caller counts attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Backoff starting at `base` and never above `cap`.
    pub fn new(base: Duration, cap: Duration) -> Result<Backoff, BackoffError> {
        if base < Duration::from_millis(1) {
            return Err(BackoffError::BaseTooSmall(base));
        }
        if cap < base {
            return Err(BackoffError::CapBelowBase { base, cap });
        }
        Ok(Backoff { base, cap })
    }

    /// The same, in milliseconds as in the config file.
    pub fn from_millis(base_ms: u64, cap_ms: u64) -> Result<Backoff, BackoffError> {
        Backoff::new(
            Duration::from_millis(base_ms),
            Duration::from_millis(cap_ms),
        )
    }

    /// The shortest possible delay: half the base.
    pub fn floor(&self) -> Duration {
        self.base / 2
    }

    /// The longest possible delay for `attempt`: `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry `attempt`, from 64 random bits (only the top
    /// 53 are used). Any `u64` is valid input.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        // The top 53 bits as a uniform fraction in [0, 1).
        let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
        let floor = self.floor();
        let span = self.ceiling(attempt).saturating_sub(floor);
        floor + span.mul_f64(unit)
    }
}

/// SplitMix64: a tiny, fast, well-mixed pseudo-random generator for jitter.
/// Not cryptographic. Seed it from anything that differs between processes
/// (the rim uses the clock and the process id) so shippers don't retry in step.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rejects_spinning_parameters() {
        assert_eq!(
            Backoff::new(Duration::ZERO, ms(10)),
            Err(BackoffError::BaseTooSmall(Duration::ZERO))
        );
        assert_eq!(
            Backoff::new(Duration::from_micros(999), ms(10)),
            Err(BackoffError::BaseTooSmall(Duration::from_micros(999)))
        );
        assert_eq!(
            Backoff::from_millis(100, 50),
            Err(BackoffError::CapBelowBase {
                base: ms(100),
                cap: ms(50)
            })
        );
        assert_eq!(
            Backoff::from_millis(0, 50).unwrap_err().to_string(),
            "configuring backoff failed: base 0ns is below 1 ms"
        );
        assert!(Backoff::from_millis(1, 1).is_ok());
    }

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff::from_millis(100, 30_000).unwrap();
        let table = [
            (0, 100),
            (1, 200),
            (2, 400),
            (8, 25_600),
            (9, 30_000),
            (31, 30_000),
            (32, 30_000),
            (u32::MAX, 30_000),
        ];
        for (attempt, want) in table {
            assert_eq!(b.ceiling(attempt), ms(want), "attempt {attempt}");
        }
        // Huge bases saturate instead of overflowing.
        let huge = Backoff::new(Duration::from_secs(u64::MAX / 2), Duration::MAX).unwrap();
        assert_eq!(huge.ceiling(40), Duration::MAX);
    }

    #[test]
    fn delays_span_floor_to_ceiling() {
        let b = Backoff::from_millis(100, 30_000).unwrap();
        let table: &[(u32, u64, Duration)] = &[
            (0, 0, ms(50)),
            (0, u64::MAX, ms(100)),
            (0, 1 << 63, ms(75)),
            (3, 0, ms(50)),
            (3, 1 << 63, ms(425)),
            (20, 0, ms(50)),
            (20, 1 << 63, ms(15_025)),
        ];
        for (attempt, random, want) in table {
            let got = b.delay(*attempt, *random);
            let diff = got.abs_diff(*want);
            assert!(
                diff < Duration::from_micros(1),
                "{attempt} {random}: {got:?}"
            );
        }
        // u64::MAX maps just below 1.0: the delay stays within the ceiling.
        assert!(b.delay(20, u64::MAX) <= ms(30_000));
    }

    #[test]
    fn never_zero_and_never_above_cap() {
        let b = Backoff::from_millis(1, 5).unwrap();
        let mut rng = SplitMix64::new(7);
        for attempt in 0..70 {
            for _ in 0..50 {
                let d = b.delay(attempt, rng.next_u64());
                assert!(d >= Duration::from_micros(500), "{d:?}");
                assert!(d <= ms(5), "{d:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let b = Backoff::from_millis(100, 30_000).unwrap();
        let mut rng = SplitMix64::new(42);
        let delays: Vec<Duration> = (0..1000).map(|_| b.delay(4, rng.next_u64())).collect();
        let mean = delays.iter().sum::<Duration>() / 1000;
        // Uniform on [50 ms, 1600 ms]: mean 825 ms.
        assert!(mean > ms(770) && mean < ms(880), "{mean:?}");
        assert!(delays.iter().any(|d| *d < ms(200)));
        assert!(delays.iter().any(|d| *d > ms(1400)));
    }

    #[test]
    fn splitmix_is_deterministic() {
        // Reference values of SplitMix64 seeded with 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut a = SplitMix64::new(99);
        let mut b = SplitMix64::new(99);
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
