//! Delivery ids shared by replicas: a delivery is claimed in the event store's database
//! (`webhook_deliveries`), so a redelivery that reaches another replica is acknowledged
//! and not re-run.
//!
//! A claim has the life `webhook::Seen` gives an id in memory: `pending` while its
//! check waits or runs, `handled` once its check run is completed, and deleted when no
//! check run could be written (so a manual "Redeliver" is taken). A replica refreshes
//! the `heartbeat` of the claims it holds every quarter of the lease; a pending claim
//! whose heartbeat is older than the lease belongs to a replica that died mid-check,
//! and the next delivery of that id takes it over instead of being turned away forever.
//!
//! The drivers are synchronous, so every statement runs on a blocking thread, on one of
//! a few pooled connections, within `DB_TIMEOUT`: a database that does not answer
//! costs a delivery at most that, and the caller then falls back to the in-memory ids
//! (one replica's view) with a warning and a count on `/metrics`. GitHub never sees a
//! 500 because the database is down.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::webhook::DeliveryState;
use crate::error::{Error, Result};
use crate::events::store::Value;
use crate::events::{Database, Store};

/// How long one database round trip may take before the delivery goes on without it:
/// well inside the ten seconds GitHub gives a delivery.
pub const DB_TIMEOUT: Duration = Duration::from_secs(3);

/// Connections kept open between statements; more are opened when needed and closed.
const POOL: usize = 4;

/// Handled ids are kept this long: GitHub redelivers (by hand or by API) deliveries of
/// the past three days, so a week never forgets one that could come back.
const KEEP_MS: i64 = 7 * 86_400_000;

/// The event store's database, as serve's replicas share it.
pub struct Shared {
    database: Database,
    pool: Mutex<Vec<Store>>,
    /// This process: its claims and the spilled checks it took carry it.
    pub replica: String,
    /// After this long without a heartbeat, a claim or a taken spilled check is
    /// another replica's to take.
    pub lease: Duration,
    /// Failed round trips, by operation (a closed list chosen here).
    errors: Mutex<BTreeMap<&'static str, u64>>,
    claimed: AtomicU64,
}

impl Shared {
    pub fn new(database: Database, lease: Duration) -> Shared {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        Shared {
            database,
            pool: Mutex::new(Vec::new()),
            replica: format!("{host}:{}:{}", std::process::id(), uuid::Uuid::new_v4()),
            lease,
            errors: Mutex::new(BTreeMap::new()),
            claimed: AtomicU64::new(0),
        }
    }

    pub fn shown(&self) -> String {
        self.database.shown()
    }

    fn lease_ms(&self) -> i64 {
        self.lease.as_millis().min(i64::MAX as u128) as i64
    }

    /// Runs `f` on a pooled connection, on this (blocking) thread. A connection that
    /// failed is dropped, not pooled: the next call opens a fresh one.
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> Result<R>) -> Result<R> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut store = match pooled {
            Some(s) => s,
            None => Store::open(&self.database)?,
        };
        let result = f(&mut store);
        if result.is_ok() {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOL {
                pool.push(store);
            }
        }
        result
    }

    /// `with` on a blocking thread, within `DB_TIMEOUT`; a failure is logged as a
    /// warning and counted under `operation`.
    pub async fn call<R: Send + 'static>(
        self: &Arc<Self>,
        operation: &'static str,
        f: impl FnOnce(&Shared, &mut Store) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let me = self.clone();
        let work = tokio::task::spawn_blocking(move || me.with(|store| f(&me, store)));
        let result = match tokio::time::timeout(DB_TIMEOUT, work).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(Error::internal(format!("a database task failed: {e}"))),
            Err(_) => Err(Error::repository(format!(
                "event store {}: no answer within {} s",
                self.shown(),
                DB_TIMEOUT.as_secs()
            ))),
        };
        if let Err(e) = &result {
            *self
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(operation)
                .or_default() += 1;
            tracing::warn!(operation, error = %e.message, "the shared database failed; going on with this replica's own state");
        }
        result
    }

    /// Counts a failed round trip made outside `call` (a caller on its own thread).
    pub fn note_error(&self, operation: &'static str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(operation)
            .or_default() += 1;
    }

    /// Claims `id` for this replica. `New`: ours to check (a new id, or a pending one
    /// whose replica stopped refreshing it); otherwise what it already is.
    pub fn claim(&self, store: &mut Store, id: &str) -> Result<DeliveryState> {
        let now = now_ms();
        // One statement: insert, or take over a pending claim whose lease ran out.
        let taken = store.query_as(
            "claim a delivery",
            "INSERT INTO webhook_deliveries (id, state, replica, heartbeat, created)
             VALUES ($1, 'pending', $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET replica = excluded.replica, heartbeat = excluded.heartbeat
             WHERE webhook_deliveries.state = 'pending' AND webhook_deliveries.heartbeat < $4
             RETURNING id",
            &[
                Value::Text(id.into()),
                Value::Text(self.replica.clone()),
                Value::Int(now),
                Value::Int(now - self.lease_ms()),
            ],
        )?;
        if !taken.is_empty() {
            self.claimed.fetch_add(1, Ordering::Relaxed);
            return Ok(DeliveryState::New);
        }
        let state = store.query_as(
            "read a delivery",
            "SELECT state FROM webhook_deliveries WHERE id = $1",
            &[Value::Text(id.into())],
        )?;
        Ok(
            match state
                .into_iter()
                .next()
                .and_then(|r| r.into_iter().next())
                .and_then(Value::text)
                .as_deref()
            {
                Some("handled") => DeliveryState::Handled,
                Some(_) => DeliveryState::Pending,
                // Released between the two statements: a redelivery can try again.
                None => DeliveryState::Pending,
            },
        )
    }

    /// The check of `id` ended: `handled` when its check run is completed, else the
    /// claim is released so a redelivery is taken. Only our own claim is touched: one
    /// another replica took over after our lease ran out is theirs.
    pub fn finish(&self, store: &mut Store, id: &str, handled: bool) -> Result<()> {
        let params = [Value::Text(id.into()), Value::Text(self.replica.clone())];
        if handled {
            store.query_as(
                "mark a delivery handled",
                // Placeholders in order of first appearance: SQLite numbers them so.
                "UPDATE webhook_deliveries SET state = 'handled', heartbeat = $1 WHERE id = $2 AND replica = $3 RETURNING id",
                &[Value::Int(now_ms()), params[0].clone(), params[1].clone()],
            )?;
        } else {
            store.query_as(
                "release a delivery",
                "DELETE FROM webhook_deliveries WHERE id = $1 AND replica = $2 AND state = 'pending' RETURNING id",
                &params,
            )?;
        }
        Ok(())
    }

    /// Counts one request of `identity` in the fixed window of `window_ms` that holds
    /// now, and returns (the window's count with it, milliseconds left in the window):
    /// one upsert round trip, atomic on both backends, so replicas sharing the database
    /// share the count. The deploy API's rate limit across replicas stands on this.
    pub fn count_request(
        &self,
        store: &mut Store,
        identity: &str,
        window_ms: i64,
    ) -> Result<(i64, i64)> {
        let now = now_ms();
        let window_ms = window_ms.max(1);
        let start = now - now.rem_euclid(window_ms);
        let rows = store.query_as(
            "count a request",
            "INSERT INTO rate_limits (identity, window_start, hits) VALUES ($1, $2, 1)
             ON CONFLICT (identity, window_start) DO UPDATE SET hits = rate_limits.hits + 1
             RETURNING hits",
            &[Value::Text(identity.into()), Value::Int(start)],
        )?;
        let hits = rows
            .first()
            .and_then(|r| r.first())
            .and_then(Value::int)
            .ok_or_else(|| Error::internal("the rate limit counter returned no count"))?;
        Ok((hits, start + window_ms - now))
    }

    /// `count_request` on a pooled connection, on this thread (the caller keeps it off
    /// the async workers).
    pub fn count_request_now(&self, identity: &str, window_ms: i64) -> Result<(i64, i64)> {
        self.with(|store| self.count_request(store, identity, window_ms))
    }

    /// Keeps this replica's claims and taken spilled checks alive, and forgets handled
    /// ids older than `KEEP_MS` and rate-limit windows older than a day.
    pub fn heartbeat(&self, store: &mut Store) -> Result<()> {
        let now = now_ms();
        let me = Value::Text(self.replica.clone());
        store.query_as(
            "refresh claims",
            "UPDATE webhook_deliveries SET heartbeat = $1 WHERE replica = $2 AND state = 'pending' RETURNING id",
            &[Value::Int(now), me.clone()],
        )?;
        store.query_as(
            "refresh spilled checks",
            "UPDATE webhook_spill SET heartbeat = $1 WHERE taken_by = $2 RETURNING id",
            &[Value::Int(now), me],
        )?;
        store.query_as(
            "forget old deliveries",
            "DELETE FROM webhook_deliveries WHERE created < $1 AND state = 'handled' RETURNING id",
            &[Value::Int(now - KEEP_MS)],
        )?;
        store.query_as(
            "forget old rate-limit windows",
            "DELETE FROM rate_limits WHERE window_start < $1 RETURNING identity",
            &[Value::Int(now - 86_400_000)],
        )?;
        Ok(())
    }

    /// Refreshes the leases every quarter of the lease, for as long as the process runs.
    pub async fn keep_alive(self: Arc<Self>) {
        let every = (self.lease / 4).max(Duration::from_millis(250));
        loop {
            tokio::time::sleep(every).await;
            let _ = self
                .call("heartbeat", |me, store| me.heartbeat(store))
                .await;
        }
    }

    /// Prometheus lines: failed round trips by operation.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP gitops_render_shared_state_errors_total Round trips to the shared database that failed or timed out, by operation; the replica went on with its own state."
        );
        let _ = writeln!(
            out,
            "# TYPE gitops_render_shared_state_errors_total counter"
        );
        for (op, n) in self.errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "gitops_render_shared_state_errors_total{{operation=\"{op}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP gitops_render_deliveries_claimed_total Delivery ids this replica claimed in the shared database."
        );
        let _ = writeln!(out, "# TYPE gitops_render_deliveries_claimed_total counter");
        let _ = writeln!(
            out,
            "gitops_render_deliveries_claimed_total {}",
            self.claimed.load(Ordering::Relaxed)
        );
        out
    }
}

impl Drop for Shared {
    /// The synchronous PostgreSQL client closes its connection with a `block_on` of
    /// its own, which panics on an async worker: the last `Arc` may well drop there
    /// (at shutdown), so pooled connections are closed on a thread of their own.
    fn drop(&mut self) {
        let stores = std::mem::take(self.pool.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !stores.is_empty() {
            let _ = std::thread::spawn(move || drop(stores)).join();
        }
    }
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(dir: &std::path::Path, lease: Duration) -> Shared {
        Shared::new(Database::Sqlite(dir.join("e.sqlite")), lease)
    }

    #[test]
    fn a_claim_has_the_life_of_an_id_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let a = shared(dir.path(), Duration::from_secs(60));
        let b = shared(dir.path(), Duration::from_secs(60));
        let claim = |s: &Shared, id: &str| s.with(|st| s.claim(st, id)).unwrap();
        assert_eq!(claim(&a, "d1"), DeliveryState::New);
        assert_eq!(claim(&b, "d1"), DeliveryState::Pending);
        // Another replica cannot finish a claim it does not hold.
        b.with(|st| b.finish(st, "d1", false)).unwrap();
        assert_eq!(claim(&b, "d1"), DeliveryState::Pending);
        a.with(|st| a.finish(st, "d1", true)).unwrap();
        assert_eq!(claim(&b, "d1"), DeliveryState::Handled);
        // Released: a redelivery is taken.
        assert_eq!(claim(&a, "d2"), DeliveryState::New);
        a.with(|st| a.finish(st, "d2", false)).unwrap();
        assert_eq!(claim(&b, "d2"), DeliveryState::New);
    }

    #[test]
    fn requests_are_counted_per_identity_and_window_across_replicas() {
        let dir = tempfile::tempdir().unwrap();
        let a = shared(dir.path(), Duration::from_secs(60));
        let b = shared(dir.path(), Duration::from_secs(60));
        // One window for the whole test, whatever the clock says.
        let hour = 1i64 << 50;
        assert_eq!(a.count_request_now("github:x", hour).unwrap().0, 1);
        assert_eq!(b.count_request_now("github:x", hour).unwrap().0, 2);
        let (hits, left) = a.count_request_now("github:x", hour).unwrap();
        assert_eq!(hits, 3);
        assert!(left > 0 && left <= hour, "{left}");
        let (_, left) = a.count_request_now("github:x", 60_000).unwrap();
        assert!(left > 0 && left <= 60_000, "{left}");
        assert_eq!(b.count_request_now("gitlab:y", hour).unwrap().0, 1);
    }

    #[test]
    fn a_pending_claim_whose_lease_ran_out_is_taken_over_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let dead = shared(dir.path(), Duration::from_millis(50));
        let live = shared(dir.path(), Duration::from_millis(50));
        let claim = |s: &Shared, id: &str| s.with(|st| s.claim(st, id)).unwrap();
        assert_eq!(claim(&dead, "x"), DeliveryState::New);
        assert_eq!(claim(&live, "y"), DeliveryState::New);
        std::thread::sleep(Duration::from_millis(120));
        live.with(|st| live.heartbeat(st)).unwrap();
        assert_eq!(claim(&live, "x"), DeliveryState::New, "the dead one's");
        assert_eq!(claim(&dead, "y"), DeliveryState::Pending, "refreshed");
        // The one that lost the claim cannot release it any more.
        dead.with(|st| dead.finish(st, "x", false)).unwrap();
        assert_eq!(claim(&dead, "x"), DeliveryState::Pending);
        // Handled claims never expire.
        live.with(|st| live.finish(st, "x", true)).unwrap();
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(claim(&dead, "x"), DeliveryState::Handled);
    }
}
