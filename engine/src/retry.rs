//! Retry policy for `Database::transaction`: bounded attempts, exponential backoff with full
//! jitter (so conflicting txns spread out instead of colliding again in lockstep).

use std::cell::Cell;
use std::time::Duration;

/// Default bound on runs of one `transaction` closure.
pub const TXN_ATTEMPTS_MAX: u32 = 64;

/// How `Database::transaction` re-runs a txn that hit a retryable error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs in all (the first included); at least 1.
    pub max_attempts: u32,
    /// Backoff ceiling after the first retry; doubles each retry up to `max_backoff`. The actual
    /// wait is uniform in `[0, ceiling]`. The first retry only yields the CPU.
    pub base_backoff: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: TXN_ATTEMPTS_MAX,
            base_backoff: Duration::from_micros(4),
            max_backoff: Duration::from_millis(2),
        }
    }
}

impl RetryPolicy {
    /// No retries: the first retryable error is returned as `RetryLimitExceeded`.
    pub fn no_retry() -> Self {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// The wait before attempt `attempt + 1`, after `attempt` failed runs (`attempt >= 1`).
    pub fn backoff(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let shift = (attempt - 2).min(20);
        let ceiling = self.base_backoff.saturating_mul(1 << shift).min(self.max_backoff);
        let nanos = ceiling.as_nanos() as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(jitter() % (nanos + 1))
    }

    pub(crate) fn wait(&self, attempt: u32) {
        let d = self.backoff(attempt);
        if d.is_zero() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(d);
        }
    }
}

/// A per-thread xorshift64* stream; quality is irrelevant, independence between threads is not.
fn jitter() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let local = 0u8;
            let addr = &local as *const u8 as u64;
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            (addr ^ t.rotate_left(17)) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::ZERO);
        for attempt in 2..200 {
            assert!(p.backoff(attempt) <= p.max_backoff);
        }
        let late: Duration = (0..200).map(|_| p.backoff(30)).max().expect("non-empty");
        assert!(late > p.base_backoff, "ceiling grows with attempts: {late:?}");
    }
}
