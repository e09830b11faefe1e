//! The deploy API's per-identity rate limit, behind a small interface so that replicas
//! sharing a database can swap in a limiter that counts across processes, without the
//! handler knowing which it talks to.
//!
//! The in-process limiter is a token bucket per identity (`issuer` + `sub`): `per_minute`
//! requests in a burst, refilled evenly over a minute. Buckets that are full again are
//! forgotten when the table grows, so a flood of distinct identities (each needing a
//! valid token) costs bounded memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The answer of a limiter for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Allowed,
    /// Over the limit: try again after this long (the `Retry-After` header).
    Limited {
        retry_after: Duration,
    },
}

/// A per-identity limit on requests. `Err`: the limiter itself failed (a database
/// down); the handler then refuses with 503 rather than let requests through unlimited.
pub trait RateLimit: Send + Sync {
    fn take(&self, identity: &str) -> Result<Taken, String>;
}

/// Distinct identities remembered before full buckets are swept out.
const SWEEP_AT: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets in this process's memory.
pub struct InProcess {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl InProcess {
    /// `per_minute` of 0 allows nothing.
    pub fn new(per_minute: u32) -> InProcess {
        InProcess {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    fn take_at(&self, identity: &str, now: Instant) -> Taken {
        let capacity = f64::from(self.per_minute);
        if self.per_minute == 0 {
            return Taken::Limited {
                retry_after: Duration::from_secs(60),
            };
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(identity) {
            let rate = self.rate();
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < capacity
            });
        }
        let bucket = buckets.entry(identity.to_string()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate();
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Taken::Allowed
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate();
            Taken::Limited {
                retry_after: Duration::from_secs_f64(wait.ceil().max(1.0)),
            }
        }
    }
}

impl RateLimit for InProcess {
    fn take(&self, identity: &str) -> Result<Taken, String> {
        Ok(self.take_at(identity, Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_per_minute_then_one_per_refill_interval() {
        let limit = InProcess::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limit.take_at("a", t0), Taken::Allowed);
        }
        let Taken::Limited { retry_after } = limit.take_at("a", t0) else {
            panic!("the fourth request in a burst of three is limited");
        };
        assert_eq!(retry_after, Duration::from_secs(20));
        // Another identity has its own bucket.
        assert_eq!(limit.take_at("b", t0), Taken::Allowed);
        // One token back after a third of a minute.
        assert_eq!(
            limit.take_at("a", t0 + Duration::from_secs(20)),
            Taken::Allowed
        );
        assert!(matches!(
            limit.take_at("a", t0 + Duration::from_secs(20)),
            Taken::Limited { .. }
        ));
    }

    #[test]
    fn zero_allows_nothing() {
        assert!(matches!(
            InProcess::new(0).take("a"),
            Ok(Taken::Limited { .. })
        ));
    }

    #[test]
    fn full_buckets_are_swept_when_the_table_is_large() {
        let limit = InProcess::new(2);
        let t0 = Instant::now();
        for i in 0..SWEEP_AT {
            limit.take_at(&format!("id{i}"), t0);
        }
        // A minute later every bucket is full again and is forgotten.
        limit.take_at("new", t0 + Duration::from_secs(61));
        assert_eq!(limit.buckets.lock().unwrap().len(), 1);
    }
}
