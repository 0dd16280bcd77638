//! When and how long to wait before trying a request again.
//!
//! - 429, 503 and 504 with `Retry-After: <seconds>` wait exactly that long (capped by
//!   [`RetryPolicy::max_retry_after`]); an HTTP-date form is honoured too.
//! - Without `Retry-After` (and for 502, resets and timeouts): exponential backoff with "full
//!   jitter" — a uniformly random wait in `[0, min(max_delay, base * 2^n)]`, at least
//!   `base / 4`, so a crowd of workers does not come back in lock-step.
//! - Other 4xx answers are never retried.
//!
//! Waiting goes through a [`Sleeper`], so tests can scale or record the waits instead of
//! spending wall-clock time.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Retry limits. [`Default`] is: 8 attempts, 1 s base, 60 s cap, honour Retry-After up to
/// 10 minutes.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 = never retry).
    pub max_attempts: u32,
    /// First backoff step when the server gave no Retry-After.
    pub base_delay: Duration,
    /// Longest backoff step.
    pub max_delay: Duration,
    /// Longest Retry-After honoured; a longer one is clamped to this.
    pub max_retry_after: Duration,
    /// How the waits are spent.
    pub sleeper: Arc<dyn Sleeper>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(600),
            sleeper: Arc::new(TokioSleeper),
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1` (`attempt` counts from 1) when the server said
    /// nothing about when to come back.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let floor = self.base_delay / 4;
        let span = exp.saturating_sub(floor);
        floor + span.mul_f64(fastrand::f64())
    }

    /// The wait before the next attempt: `Retry-After` when given, else [`Self::backoff`].
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff(attempt),
        }
    }
}

/// The client's time: how it waits (retries, `Retry-After`) and what time it is (token
/// expiry). The default is `tokio::time::sleep` and `Instant::now`; tests scale the waits and
/// move the clock, so no test waits on the wall clock.
pub trait Sleeper: Send + Sync + Debug {
    /// Wait for `d` (or a scaled version of it, in tests).
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Now, for deciding whether a cached token is still good.
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Parse a `Retry-After` value: delta-seconds (what Graph sends) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, RFC 9110 IMF-fixdate). `None` when unreadable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_imf_fixdate(v)?;
    Some(at.duration_since(now).unwrap_or_default())
}

fn parse_imf_fixdate(v: &str) -> Option<SystemTime> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let rest = v.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: i64 = parts[0].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[1])? as i64
        + 1;
    let year: i64 = parts[2].parse().ok()?;
    let hms: Vec<i64> = parts[3]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    // days_from_civil (Howard Hinnant)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770); // 08:49:30
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for attempt in 1..20 {
            let cap = (Duration::from_millis(100) * (1u32 << (attempt - 1).min(16)))
                .min(Duration::from_millis(1000));
            for _ in 0..50 {
                let d = p.backoff(attempt);
                assert!(
                    d >= Duration::from_millis(25) && d <= cap,
                    "{attempt}: {d:?}"
                );
            }
        }
        // jitter: not all the same
        let set: std::collections::HashSet<_> = (0..20).map(|_| p.backoff(5)).collect();
        assert!(set.len() > 10);
        assert_eq!(
            p.delay(3, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.delay(3, Some(Duration::from_secs(5000))),
            Duration::from_secs(600)
        );
    }
}
