//! Per-minute request counters for the last five complete minutes.
//!
//! Definition of `requests:count` (the seed's "mean of the per-minute request
//! count over the last 5 minutes"): with `m = now_ms / 60_000` the current,
//! still-running minute, it is the total number of requests recorded in the
//! five complete minutes `m-5 ..= m-1`, divided by 5. The running minute is
//! not counted until it is complete, so the figure moves once a minute and a
//! burst is not over-weighted by a short partial minute.

/// Length of one bucket.
pub(crate) const MINUTE_MS: u64 = 60_000;
/// Complete minutes averaged.
pub(crate) const WINDOW_MINUTES: u64 = 5;
/// Buckets kept: the window plus the running minute.
const BUCKETS: usize = WINDOW_MINUTES as usize + 1;

/// A ring of per-minute counters, each tagged with the minute it counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestWindow {
    /// `(minute number since the epoch, requests in that minute)`.
    buckets: [(u64, u64); BUCKETS],
}

impl RequestWindow {
    /// Count one request at `now_ms`.
    pub(crate) fn record(&mut self, now_ms: u64) {
        let minute = now_ms / MINUTE_MS;
        let slot = &mut self.buckets[(minute % BUCKETS as u64) as usize];
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 = slot.1.saturating_add(1);
    }

    /// Mean requests per minute over the five complete minutes before `now_ms`.
    pub(crate) fn per_minute(&self, now_ms: u64) -> f64 {
        let current = now_ms / MINUTE_MS;
        let total: u64 = self
            .buckets
            .iter()
            .filter(|(minute, _)| *minute < current && minute + WINDOW_MINUTES >= current)
            .map(|(_, count)| *count)
            .fold(0u64, u64::saturating_add);
        total as f64 / WINDOW_MINUTES as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_minute(m: u64) -> u64 {
        m * MINUTE_MS + 30_000
    }

    #[test]
    fn mean_over_five_complete_minutes() {
        let mut w = RequestWindow::default();
        for _ in 0..10 {
            w.record(at_minute(1));
        }
        for _ in 0..20 {
            w.record(at_minute(2));
        }
        // Minute 2 is still running: only minute 1 counts.
        assert_eq!(w.per_minute(at_minute(2)), 2.0);
        // (10 + 20) / 5 while both minutes are inside the window 1..=5.
        for m in 3..=6 {
            assert_eq!(w.per_minute(at_minute(m)), 6.0, "minute {m}");
        }
        // Minute 1 leaves the window, then minute 2.
        assert_eq!(w.per_minute(at_minute(7)), 4.0);
        assert_eq!(w.per_minute(at_minute(8)), 0.0);
    }

    #[test]
    fn running_minute_is_not_counted() {
        let mut w = RequestWindow::default();
        for _ in 0..100 {
            w.record(at_minute(10));
        }
        assert_eq!(w.per_minute(at_minute(10)), 0.0);
        assert_eq!(w.per_minute(at_minute(11)), 20.0);
    }

    #[test]
    fn reused_bucket_restarts_its_count() {
        let mut w = RequestWindow::default();
        w.record(at_minute(0));
        w.record(at_minute(0));
        // Minute 6 shares minute 0's slot; the old count must not leak in.
        w.record(at_minute(6));
        assert_eq!(w.per_minute(at_minute(7)), 0.2);
    }

    #[test]
    fn clock_going_backwards_does_not_count_the_future() {
        let mut w = RequestWindow::default();
        w.record(at_minute(20));
        assert_eq!(w.per_minute(at_minute(15)), 0.0);
    }

    #[test]
    fn empty_window_is_zero_at_epoch() {
        let w = RequestWindow::default();
        assert_eq!(w.per_minute(0), 0.0);
        assert_eq!(w.per_minute(u64::MAX), 0.0);
    }
}
