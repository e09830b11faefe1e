//! Checks spilled: a verified delivery that finds the queue of waiting checks full is
//! written down and answered `202` at once, instead of held open and then refused
//! (GitHub never redelivers a 503 by itself, so that pull request's check would be lost).
//! A drain runs the spilled checks, oldest first, each as a place in the queue frees up.
//!
//! Where they go: the event store's database when `serve` was given one (`--database`):
//! there any replica may take one (an atomic `UPDATE … RETURNING`, with `FOR UPDATE
//! SKIP LOCKED` on PostgreSQL so replicas never wait on each other's choice), and one
//! taken by a replica that died is taken again once its lease runs out. Otherwise, and
//! when that database fails, a spool directory (`--spool-dir`, by default
//! `$XDG_STATE_HOME/gitops-render/spool`): one file per check, written to a temporary
//! name, synced, renamed and the directory synced, so a file is whole or absent; it is
//! locked by one process. A spilled check is deleted once it ran, so one that was
//! running when the process died runs again at the next start: at least once.
//!
//! What is spilled is the check, not the delivery: the repository, pull request, head
//! commit and installation (about 300 bytes), parsed and verified already. The spill is
//! bounded by `--max-spilled` and `--max-spilled-bytes`; beyond them a delivery is
//! treated as before spilling existed (it waits a few seconds for room, then 503).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::deliveries::{now_ms, Shared};
use super::webhook::{Repo, Target};
use crate::error::{Error, Result};
use crate::events::store::Value;

/// How often the drain looks for checks spilled by other replicas (or whose taker's
/// lease ran out) when nothing woke it.
const POLL: Duration = Duration::from_secs(2);

/// One spilled check, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    delivery: String,
    installation: u64,
    owner: String,
    name: String,
    pull_request: Option<u64>,
    head_sha: String,
    trigger: String,
}

impl Stored {
    fn of(delivery: &str, t: &Target) -> Stored {
        Stored {
            delivery: delivery.to_string(),
            installation: t.installation,
            owner: t.repo.owner().to_string(),
            name: t.repo.name().to_string(),
            pull_request: t.pull_request,
            head_sha: t.head_sha.clone(),
            trigger: t.trigger.clone(),
        }
    }

    /// Checked again as a delivery is: a spool file is input like any other.
    fn parse(text: &str) -> std::result::Result<(String, Target), String> {
        let s: Stored = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let repo = Repo::new(&s.owner, &s.name)?;
        let sha_ok = matches!(s.head_sha.len(), 40 | 64)
            && s.head_sha.bytes().all(|b| b.is_ascii_hexdigit());
        if !sha_ok || s.delivery.is_empty() || s.delivery.len() > 200 {
            return Err("not a spilled check".into());
        }
        Ok((
            s.delivery,
            Target {
                installation: s.installation,
                repo,
                pull_request: s.pull_request,
                head_sha: s.head_sha,
                trigger: s.trigger,
            },
        ))
    }
}

/// Where a taken check is kept until it ran.
#[derive(Debug, Clone)]
pub enum Place {
    Database(String),
    Dir(String),
}

/// A check taken from the spill to run.
pub struct Taken {
    pub place: Place,
    pub delivery: String,
    pub target: Target,
}

/// What became of a check offered to the spill.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    Spilled,
    /// `--max-spilled` or `--max-spilled-bytes` reached.
    Full,
    /// Nowhere to write it.
    Failed,
}

pub struct Spill {
    database: Option<Arc<Shared>>,
    dir: Option<SpoolDir>,
    max_count: u64,
    max_bytes: u64,
    /// Wakes the drain: something was spilled, or the process started.
    pub wake: tokio::sync::Notify,
    spilled: AtomicU64,
    drained: AtomicU64,
    dropped: AtomicU64,
}

impl Spill {
    /// `dir` is locked for this process: a second `serve` on it is a usage error.
    pub fn new(
        database: Option<Arc<Shared>>,
        dir: Option<&Path>,
        max_count: u64,
        max_bytes: u64,
    ) -> Result<Spill> {
        let dir = dir.map(SpoolDir::open).transpose()?;
        Ok(Spill {
            database,
            dir,
            max_count,
            max_bytes,
            wake: tokio::sync::Notify::new(),
            spilled: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// Where spilled checks go, for the start-up log line.
    pub fn shown(&self) -> String {
        let mut places = Vec::new();
        if let Some(db) = &self.database {
            places.push(format!("database {}", db.shown()));
        }
        if let Some(d) = &self.dir {
            places.push(format!("directory {}", d.path.display()));
        }
        places.join(", then ")
    }

    /// Writes the check down; `Spilled` once it is durable.
    pub async fn put(self: &Arc<Self>, delivery: &str, target: &Target) -> Put {
        let text = match serde_json::to_string(&Stored::of(delivery, target)) {
            Ok(t) => t,
            Err(_) => return Put::Failed,
        };
        let id = uuid::Uuid::now_v7().to_string();
        let mut full = false;
        if let Some(db) = &self.database {
            let (id, delivery, text) = (id.clone(), delivery.to_string(), text.clone());
            let (max_count, max_bytes) = (self.max_count, self.max_bytes);
            match db
                .call("spill", move |_, store| {
                    put_row(store, &id, &delivery, &text, max_count, max_bytes)
                })
                .await
            {
                Ok(true) => return self.spilled(),
                Ok(false) => full = true,
                // Logged and counted by `call`; the directory, if any, takes it.
                Err(_) => {}
            }
        }
        if !full && self.dir.is_some() {
            let me = self.clone();
            let put = tokio::task::spawn_blocking(move || {
                me.dir
                    .as_ref()
                    .map(|d| d.put(&id, &text, me.max_count, me.max_bytes))
            })
            .await;
            match put {
                Ok(Some(Ok(true))) => return self.spilled(),
                Ok(Some(Ok(false))) => full = true,
                Ok(Some(Err(e))) => {
                    tracing::error!(error = %e.message, "cannot spill a check to the spool directory")
                }
                _ => {}
            }
        }
        if full {
            Put::Full
        } else {
            Put::Failed
        }
    }

    fn spilled(&self) -> Put {
        self.spilled.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
        Put::Spilled
    }

    /// A delivery refused because the spill could not take it.
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// The oldest spilled check nobody runs, now ours to run.
    pub async fn take(self: &Arc<Self>) -> Option<Taken> {
        if let Some(db) = &self.database {
            if let Ok(Some(t)) = db.call("take", take_row).await {
                self.drained.fetch_add(1, Ordering::Relaxed);
                return Some(t);
            }
        }
        if self.dir.is_some() {
            let me = self.clone();
            let taken = tokio::task::spawn_blocking(move || me.dir.as_ref().and_then(|d| d.take()))
                .await
                .ok()
                .flatten();
            if let Some(t) = taken {
                self.drained.fetch_add(1, Ordering::Relaxed);
                return Some(t);
            }
        }
        None
    }

    /// The check ran (or was given up on): it is not spilled any more.
    pub async fn done(self: &Arc<Self>, place: Place) {
        match place {
            Place::Database(id) => {
                if let Some(db) = &self.database {
                    let _ = db
                        .call("finish a spilled check", move |_, store| {
                            Ok(store.query_as(
                                "delete a spilled check",
                                "DELETE FROM webhook_spill WHERE id = $1 RETURNING id",
                                &[Value::Text(id)],
                            )?)
                        })
                        .await;
                }
            }
            Place::Dir(name) => {
                let me = self.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if let Some(d) = &me.dir {
                        d.done(&name)
                    }
                })
                .await;
            }
        }
    }

    /// Prometheus lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP gitops_render_spill_total Checks that found the queue full: spilled (answered 202 and written down), drained (taken from the spill to run), dropped (the spill was full or unwritable: 503)."
        );
        let _ = writeln!(out, "# TYPE gitops_render_spill_total counter");
        for (what, n) in [
            ("dropped", &self.dropped),
            ("drained", &self.drained),
            ("spilled", &self.spilled),
        ] {
            let _ = writeln!(
                out,
                "gitops_render_spill_total{{outcome=\"{what}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Runs spilled checks as places in the queue free up, oldest first, until `stop`.
/// The oldest check is taken, then a place waited for: the queue's semaphore is fair,
/// so the drain gets the next place before deliveries that arrive after it.
pub async fn drain(
    app: Arc<super::App>,
    spill: Arc<Spill>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        // Take the check first, then wait for a place: holding a place of the queue
        // while looking for work would make a delivery that arrives meanwhile find the
        // queue full, and spill it for nothing.
        let Some(t) = spill.take().await else {
            tokio::select! {
                _ = spill.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        // Stopping here leaves the check spilled: it is deleted only once it ran, so the
        // next start (or, on a shared database, another replica after the lease) runs it.
        let slot = tokio::select! {
            s = app.queue.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        tracing::info!(delivery = %t.delivery, repo = %t.target.repo.full_name(), pr = ?t.target.pull_request, "running a spilled check");
        super::start_check(app.clone(), slot, t.delivery, t.target, Some(t.place));
    }
}

/// Inserts a spilled check unless the spill is at its bounds, in one statement.
fn put_row(
    store: &mut crate::events::Store,
    id: &str,
    delivery: &str,
    text: &str,
    max_count: u64,
    max_bytes: u64,
) -> Result<bool> {
    let rows = store.query_as(
        "spill a check",
        "INSERT INTO webhook_spill (id, delivery, target, bytes, spilled_at)
         SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS BIGINT), CAST($5 AS BIGINT)
         WHERE (SELECT COUNT(*) FROM webhook_spill) < CAST($6 AS BIGINT)
           AND CAST((SELECT COALESCE(SUM(bytes), 0) FROM webhook_spill) AS BIGINT) + CAST($4 AS BIGINT) <= CAST($7 AS BIGINT)
         RETURNING id",
        &[
            Value::Text(id.into()),
            Value::Text(delivery.into()),
            Value::Text(text.into()),
            Value::Int(text.len() as i64),
            Value::Int(now_ms()),
            Value::Int(max_count.min(i64::MAX as u64) as i64),
            Value::Int(max_bytes.min(i64::MAX as u64) as i64),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// Takes the oldest check nobody holds (or whose taker's lease ran out), and the
/// delivery's claim with it, so the claim lives as long as the check does.
fn take_row(shared: &Shared, store: &mut crate::events::Store) -> Result<Option<Taken>> {
    let now = now_ms();
    let expired = now - shared.lease.as_millis().min(i64::MAX as u128) as i64;
    let lock = if store.is_postgres() {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    loop {
        let rows = store.query_as(
            "take a spilled check",
            &format!(
                "UPDATE webhook_spill SET taken_by = $1, heartbeat = $2
                 WHERE id = (SELECT id FROM webhook_spill WHERE taken_by IS NULL OR heartbeat < $3 ORDER BY id LIMIT 1{lock})
                 RETURNING id, delivery, target"
            ),
            &[
                Value::Text(shared.replica.clone()),
                Value::Int(now),
                Value::Int(expired),
            ],
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let mut it = row.into_iter();
        let (Some(id), Some(delivery), Some(text)) = (
            it.next().and_then(Value::text),
            it.next().and_then(Value::text),
            it.next().and_then(Value::text),
        ) else {
            return Err(Error::internal("a spilled check without its columns"));
        };
        match Stored::parse(&text) {
            Ok((_, target)) => {
                store.query_as(
                    "take over a delivery",
                    "UPDATE webhook_deliveries SET replica = $1, heartbeat = $2 WHERE id = $3 AND state = 'pending' RETURNING id",
                    &[
                        Value::Text(shared.replica.clone()),
                        Value::Int(now),
                        Value::Text(delivery.clone()),
                    ],
                )?;
                return Ok(Some(Taken {
                    place: Place::Database(id),
                    delivery,
                    target,
                }));
            }
            Err(why) => {
                // Written by a build that stored it differently, or by hand: it cannot
                // run, and keeping it would block the ones behind it.
                tracing::error!(%id, %delivery, %why, "dropping a spilled check that cannot be read");
                store.query_as(
                    "delete a spilled check",
                    "DELETE FROM webhook_spill WHERE id = $1 RETURNING id",
                    &[Value::Text(id)],
                )?;
            }
        }
    }
}

/// The spool directory: one `<uuidv7>.json` per check (names sort by time), owned by one
/// process through a lock on `.lock`.
struct SpoolDir {
    path: PathBuf,
    /// Held for the life of the process: the lock is released when it closes.
    _lock: std::fs::File,
    state: Mutex<DirState>,
}

#[derive(Default)]
struct DirState {
    /// Name -> bytes, of every spilled check on disk.
    files: BTreeMap<String, u64>,
    /// Taken and running: not to be taken again by this process.
    taken: HashSet<String>,
    bytes: u64,
}

impl SpoolDir {
    fn open(path: &Path) -> Result<SpoolDir> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::usage(format!(
                "spool directory {}: cannot {what}: {e}",
                path.display()
            ))
        };
        std::fs::create_dir_all(path).map_err(|e| fail("create it", &e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(".lock"))
            .map_err(|e| fail("open its lock", &e))?;
        // rustix's flock, as the repository lock (src/repo/lock.rs) takes it: the MSRV
        // predates `File::try_lock`.
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(Error::usage(format!(
                    "spool directory {} is in use by another gitops-render serve",
                    path.display()
                ))
                .with_hint(
                    "give each process its own --spool-dir, or share a PostgreSQL --database",
                ))
            }
            Err(e) => return Err(fail("lock it", &e)),
        }
        let mut state = DirState::default();
        for entry in std::fs::read_dir(path).map_err(|e| fail("read it", &e))? {
            let entry = entry.map_err(|e| fail("read it", &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                // A write that did not finish: it was never answered 202.
                let _ = std::fs::remove_file(entry.path());
            } else if name.ends_with(".json") {
                let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
                state.bytes += bytes;
                state.files.insert(name, bytes);
            }
        }
        if !state.files.is_empty() {
            tracing::info!(checks = state.files.len(), dir = %path.display(), "spilled checks from before the start: they run as places free up");
        }
        Ok(SpoolDir {
            path: path.to_path_buf(),
            _lock: lock,
            state: Mutex::new(state),
        })
    }

    fn put(&self, id: &str, text: &str, max_count: u64, max_bytes: u64) -> Result<bool> {
        let bytes = text.len() as u64;
        let name = format!("{id}.json");
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.files.len() as u64 >= max_count || s.bytes + bytes > max_bytes {
                return Ok(false);
            }
            // Counted before it is written, so two writers cannot both pass the bound.
            s.files.insert(name.clone(), bytes);
            s.bytes += bytes;
        }
        let written = write_atomically(&self.path, &name, text.as_bytes());
        if let Err(e) = written {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.files.remove(&name);
            s.bytes -= bytes;
            return Err(Error::repository(format!(
                "spool directory {}: cannot write {name}: {e}",
                self.path.display()
            )));
        }
        Ok(true)
    }

    fn take(&self) -> Option<Taken> {
        loop {
            let name = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let name = s.files.keys().find(|n| !s.taken.contains(*n))?.clone();
                s.taken.insert(name.clone());
                name
            };
            let read = std::fs::read(self.path.join(&name))
                .map_err(|e| e.to_string())
                .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
                .and_then(|t| Stored::parse(&t));
            match read {
                Ok((delivery, target)) => {
                    return Some(Taken {
                        place: Place::Dir(name),
                        delivery,
                        target,
                    })
                }
                Err(why) => {
                    // Kept beside the others for a person to look at, never run.
                    tracing::error!(file = %self.path.join(&name).display(), %why, "a spilled check that cannot be read: renamed to .bad");
                    let _ = std::fs::rename(
                        self.path.join(&name),
                        self.path.join(format!("{name}.bad")),
                    );
                    self.forget(&name);
                }
            }
        }
    }

    fn done(&self, name: &str) {
        match std::fs::remove_file(self.path.join(name)) {
            Ok(()) => {
                let _ = sync_dir(&self.path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(file = %self.path.join(name).display(), error = %e, "cannot delete a spilled check that ran: it runs again at the next start")
            }
        }
        self.forget(name);
    }

    fn forget(&self, name: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.taken.remove(name);
        if let Some(b) = s.files.remove(name) {
            s.bytes -= b;
        }
    }
}

/// `dir/name` holds `bytes` or does not exist, whatever happens: a temporary file,
/// synced, renamed over, and the directory synced so the rename itself is durable.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".tmp-{name}"));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(n: u64) -> Target {
        Target {
            installation: 1,
            repo: Repo::new("acme", "x").unwrap(),
            pull_request: Some(n),
            head_sha: format!("{n:040x}"),
            trigger: "pull_request.opened".into(),
        }
    }

    #[test]
    fn the_spool_directory_keeps_checks_across_a_restart_oldest_first_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let spool = SpoolDir::open(dir.path()).unwrap();
        assert!(SpoolDir::open(dir.path()).is_err(), "locked by the first");
        let text =
            |n: u64| serde_json::to_string(&Stored::of(&format!("d{n}"), &target(n))).unwrap();
        for n in 1..=3 {
            let id = uuid::Uuid::now_v7().to_string();
            assert!(spool.put(&id, &text(n), 3, 10_000).unwrap());
        }
        let id = uuid::Uuid::now_v7().to_string();
        assert!(!spool.put(&id, &text(4), 3, 10_000).unwrap(), "count bound");
        let first = spool.take().unwrap();
        assert_eq!(first.delivery, "d1");
        spool.done(match &first.place {
            Place::Dir(n) => n,
            _ => unreachable!(),
        });
        let second = spool.take().unwrap();
        assert_eq!(second.delivery, "d2");
        // A crash: the taken one and the untaken one are both there at the next start.
        std::fs::write(dir.path().join(".tmp-half.json"), "{").unwrap();
        std::fs::write(dir.path().join("00-bad.json"), "not json").unwrap();
        drop(spool);
        let spool = SpoolDir::open(dir.path()).unwrap();
        assert!(!dir.path().join(".tmp-half.json").exists());
        let got: Vec<String> = std::iter::from_fn(|| spool.take().map(|t| t.delivery)).collect();
        assert_eq!(got, ["d2", "d3"]);
        assert!(dir.path().join("00-bad.json.bad").exists());
        // The byte bound.
        let id = uuid::Uuid::now_v7().to_string();
        assert!(!spool.put(&id, &text(5), 100, 10).unwrap());
    }

    #[test]
    fn a_spilled_check_that_steers_a_path_is_refused() {
        let mut s = Stored::of("d", &target(1));
        s.name = "../../orgs".into();
        assert!(Stored::parse(&serde_json::to_string(&s).unwrap()).is_err());
    }
}
