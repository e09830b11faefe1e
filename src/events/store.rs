//! The store: one schema, versioned migrations applied on open, and the same SQL on
//! SQLite and PostgreSQL.
//!
//! Portability is kept by construction rather than by an ORM: every column is TEXT,
//! BIGINT or BOOLEAN (which both read alike), times are BIGINT milliseconds since the
//! epoch (no time zone arithmetic in SQL), placeholders are `$1, $2, ...` in the order
//! they appear (PostgreSQL's form; SQLite reads `$1` as a named parameter and numbers
//! parameters by first appearance, which is the same numbering), and idempotent inserts
//! use `ON CONFLICT (id) DO NOTHING`, which both have.
//!
//! Migrations are a list; the store records the versions it applied in
//! `gitops_render_migrations`, and applies the missing ones in one transaction, under
//! an exclusive lock (`BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL), so
//! two processes opening a fresh store at once do not both migrate it. A store migrated
//! by a newer gitops-render is used as it is: migrations only ever add.

use std::time::Duration;

use super::{Database, Event, Kind, Outcome};
/// A database driver's error (rusqlite, postgres) or what was wrong with a row.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong with the event store, with the driver's error as the source. The
/// edge decides what it means: a command that only records an event warns and goes on
/// (`events::record`); one that reads the store exits 3, as for a repository.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the event store {store}: {source}")]
    Open {
        store: String,
        #[source]
        source: Source,
    },
    #[error("event store {store}: cannot {what}: {source}")]
    Query {
        store: String,
        what: String,
        #[source]
        source: Source,
    },
}

impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        crate::error::Error::repository(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The schema, in order. Never edit an entry that shipped: add one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE events (
        id TEXT PRIMARY KEY,
        time BIGINT NOT NULL,
        kind TEXT NOT NULL,
        outcome TEXT NOT NULL,
        team TEXT,
        app TEXT,
        env TEXT,
        version TEXT,
        previous_version TEXT,
        actor TEXT,
        source_repo TEXT,
        source_commit TEXT,
        source_time BIGINT,
        gitops_commit TEXT,
        duration_ms BIGINT,
        fix BOOLEAN NOT NULL DEFAULT FALSE,
        rules TEXT NOT NULL DEFAULT ''
    );
    -- The report reads one window of time; its filters narrow it further in memory.
    CREATE INDEX events_time ON events (time);
    -- Holds open now: the rollbacks and releases of all time, without the deploys.
    CREATE INDEX events_kind_time ON events (kind, time);
    -- serve's counters on /metrics: a covering index, so counting never reads rows.
    CREATE INDEX events_counts ON events (kind, team, env, outcome);",
    ),
    (
        2,
        // serve's state shared by replicas (src/server/deliveries.rs, spill.rs).
        // `heartbeat` is the lease: a replica refreshes the rows it holds, so a row whose
        // heartbeat is older than the lease belongs to a replica that died.
        "CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        replica TEXT NOT NULL,
        heartbeat BIGINT NOT NULL,
        created BIGINT NOT NULL
    );
    -- Pruning by age, and a replica's heartbeat over the claims it holds.
    CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created);
    CREATE INDEX webhook_deliveries_replica ON webhook_deliveries (replica, state);
    CREATE TABLE webhook_spill (
        id TEXT PRIMARY KEY,
        delivery TEXT NOT NULL,
        target TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        spilled_at BIGINT NOT NULL,
        taken_by TEXT,
        heartbeat BIGINT
    );
    CREATE INDEX webhook_spill_taken ON webhook_spill (taken_by, heartbeat);",
    ),
    (
        3,
        // The deploy API's per-identity rate limit, counted across replicas: one row
        // per identity and fixed window, bumped by an upsert (src/server/deliveries.rs).
        "CREATE TABLE rate_limits (
        identity TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        hits BIGINT NOT NULL,
        PRIMARY KEY (identity, window_start)
    );
    CREATE INDEX rate_limits_window ON rate_limits (window_start);",
    ),
];

/// The columns of `events`, in the order `insert` binds them and `EVENT_COLUMNS` reads.
const EVENT_COLUMNS: &str = "id, time, kind, outcome, team, app, env, version, previous_version, actor, source_repo, source_commit, source_time, gitops_commit, duration_ms, fix, rules";
const COLUMN_COUNT: usize = 17;

/// Rows per INSERT statement: a round trip per 500 events instead of per event, and
/// 500 × 17 parameters stays under both backends' limits (SQLite 32,766; PG 65,535).
const BATCH: usize = 500;

/// A value bound to a placeholder or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

impl Value {
    pub fn text(self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn opt_text(v: &Option<String>) -> Value {
        v.clone().map(Value::Text).unwrap_or(Value::Null)
    }

    fn opt_int(v: Option<i64>) -> Value {
        v.map(Value::Int).unwrap_or(Value::Null)
    }
}

/// Which events a read takes: a window of time, the kinds, and the report's scope, so
/// that the database narrows them with its indexes instead of the report in memory.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    /// Milliseconds, `[from, to)`.
    pub from: i64,
    pub to: i64,
    /// Only these kinds (empty: every kind).
    pub kinds: &'a [Kind],
    pub outcome: Option<Outcome>,
    pub team: Option<&'a str>,
    pub app: Option<&'a str>,
    /// Only these environments (`None`: any).
    pub envs: Option<&'a [String]>,
}

impl Selection<'_> {
    /// The `WHERE` condition, its values appended to `params` (placeholders numbered
    /// in the order they appear, as SQLite numbers `$N` names).
    fn condition(&self, params: &mut Vec<Value>) -> String {
        let mut mark = |v: Value| {
            params.push(v);
            format!("${}", params.len())
        };
        let mut parts = vec![
            format!("time >= {}", mark(Value::Int(self.from))),
            format!("time < {}", mark(Value::Int(self.to))),
        ];
        let list = |mark: &mut dyn FnMut(Value) -> String, values: Vec<String>| {
            values
                .into_iter()
                .map(|v| mark(Value::Text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.kinds.is_empty() {
            let kinds = self.kinds.iter().map(|k| k.as_str().to_string()).collect();
            parts.push(format!("kind IN ({})", list(&mut mark, kinds)));
        }
        if let Some(o) = self.outcome {
            parts.push(format!(
                "outcome = {}",
                mark(Value::Text(o.as_str().into()))
            ));
        }
        for (column, value) in [("team", self.team), ("app", self.app)] {
            if let Some(v) = value {
                parts.push(format!("{column} = {}", mark(Value::Text(v.into()))));
            }
        }
        if let Some(envs) = self.envs {
            parts.push(if envs.is_empty() {
                "FALSE".to_string()
            } else {
                format!("env IN ({})", list(&mut mark, envs.to_vec()))
            });
        }
        parts.join(" AND ")
    }
}

/// Events of one kind, outcome and set of rule ids, counted by `Store::tally`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub kind: Kind,
    pub outcome: Outcome,
    pub rules: Vec<String>,
    pub events: u64,
}

/// (kind, team, env, outcome, events) of `Store::counts`.
pub type Count = (Kind, Option<String>, Option<String>, Outcome, i64);

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

/// An open, migrated store.
pub struct Store {
    backend: Backend,
    shown: String,
}

impl Store {
    /// Connects (creating a SQLite file and its directory if missing) and migrates.
    pub fn open(db: &Database) -> Result<Store> {
        let shown = db.shown();
        let fail = |e: Source| StoreError::Open {
            store: shown.clone(),
            source: e,
        };
        let backend = match db {
            Database::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| fail(e.into()))?;
                }
                let conn = rusqlite::Connection::open(path).map_err(|e| fail(e.into()))?;
                // WAL: `serve` reads while a deploy on the same machine writes.
                conn.busy_timeout(Duration::from_secs(10))
                    .map_err(|e| fail(e.into()))?;
                conn.pragma_update(None, "journal_mode", "WAL")
                    .map_err(|e| fail(e.into()))?;
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(|e| fail(e.into()))?;
                Backend::Sqlite(conn)
            }
            Database::Postgres(url) => {
                let mut config: postgres::Config =
                    url.parse().map_err(|e: postgres::Error| fail(e.into()))?;
                if config.get_connect_timeout().is_none() {
                    config.connect_timeout(Duration::from_secs(10));
                }
                config.application_name("gitops-render");
                let client = config
                    .connect(postgres::NoTls)
                    .map_err(|e| fail(e.into()))?;
                Backend::Postgres(Box::new(client))
            }
        };
        let mut store = Store {
            backend,
            shown: shown.clone(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database for messages (no password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn err(&self, what: &str, e: impl Into<Source>) -> StoreError {
        StoreError::Query {
            store: self.shown.clone(),
            what: what.to_string(),
            source: e.into(),
        }
    }

    fn migrate(&mut self) -> Result<()> {
        const TABLE: &str = "CREATE TABLE IF NOT EXISTS gitops_render_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";
        let now = jiff::Timestamp::now().as_millisecond();
        let result = match &mut self.backend {
            Backend::Sqlite(conn) => (|| {
                let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
                tx.execute_batch(TABLE)?;
                let done: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM gitops_render_migrations",
                    [],
                    |r| r.get(0),
                )?;
                for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done) {
                    tx.execute_batch(sql)?;
                    tx.execute(
                        "INSERT INTO gitops_render_migrations (version, applied_at) VALUES ($1, $2)",
                        rusqlite::params![version, now],
                    )?;
                }
                tx.commit()
            })()
            .map_err(Source::from),
            Backend::Postgres(client) => (|| {
                let mut tx = client.transaction()?;
                // One migrator at a time across replicas; released at commit.
                tx.execute("SELECT pg_advisory_xact_lock(7234501)", &[])?;
                tx.batch_execute(TABLE)?;
                let done: i64 = tx
                    .query_one(
                        "SELECT COALESCE(MAX(version), 0) FROM gitops_render_migrations",
                        &[],
                    )?
                    .get(0);
                for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done) {
                    tx.batch_execute(sql)?;
                    tx.execute(
                        "INSERT INTO gitops_render_migrations (version, applied_at) VALUES ($1, $2)",
                        &[version, &now],
                    )?;
                }
                tx.commit()
            })()
            .map_err(Source::from),
        };
        result.map_err(|e| self.err("apply its migrations", e))
    }

    /// Inserts events in one transaction; an event whose id is already stored is left
    /// as it is. Returns how many were new.
    pub fn insert(&mut self, events: &[Event]) -> Result<usize> {
        let mut added = 0usize;
        let rows: Vec<Vec<Value>> = events.iter().map(row_of).collect();
        let result = match &mut self.backend {
            Backend::Sqlite(conn) => (|| {
                let tx = conn.transaction()?;
                for chunk in rows.chunks(BATCH) {
                    let sql = insert_sql(chunk.len());
                    let mut stmt = tx.prepare_cached(&sql)?;
                    let params: Vec<&dyn rusqlite::ToSql> = chunk
                        .iter()
                        .flatten()
                        .map(|v| v as &dyn rusqlite::ToSql)
                        .collect();
                    added += stmt.execute(params.as_slice())?;
                }
                tx.commit()
            })()
            .map_err(Source::from),
            Backend::Postgres(client) => (|| {
                let mut tx = client.transaction()?;
                for chunk in rows.chunks(BATCH) {
                    let sql = insert_sql(chunk.len());
                    let params: Vec<&(dyn postgres::types::ToSql + Sync)> = chunk
                        .iter()
                        .flatten()
                        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                        .collect();
                    added += tx.execute(sql.as_str(), &params)? as usize;
                }
                tx.commit()
            })()
            .map_err(Source::from),
        };
        result.map_err(|e| self.err("write events", e))?;
        Ok(added)
    }

    /// Whether this is PostgreSQL, for the few statements whose best form differs
    /// (`FOR UPDATE SKIP LOCKED` has no SQLite spelling; SQLite has one writer anyway).
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Rows of a query, each as `Value`s in column order.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
        self.query_as("read events", sql, params)
    }

    /// `query` for any statement (an `INSERT … RETURNING` included); `what` names it in
    /// an error ("cannot {what}").
    pub fn query_as(&mut self, what: &str, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
        let result = match &mut self.backend {
            Backend::Sqlite(conn) => (|| {
                let mut stmt = conn.prepare_cached(sql)?;
                let n = stmt.column_count();
                let p: Vec<&dyn rusqlite::ToSql> =
                    params.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
                let mut rows = stmt.query(p.as_slice())?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let mut values = Vec::with_capacity(n);
                    for i in 0..n {
                        values.push(match row.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                            rusqlite::types::ValueRef::Real(f) => Value::Int(f as i64),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                Value::Text(String::from_utf8_lossy(t).into_owned())
                            }
                        });
                    }
                    out.push(values);
                }
                Ok::<_, rusqlite::Error>(out)
            })()
            .map_err(Source::from),
            Backend::Postgres(client) => (|| {
                let p: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let rows = client.query(sql, &p)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut values = Vec::with_capacity(row.len());
                    for (i, col) in row.columns().iter().enumerate() {
                        use postgres::types::Type;
                        let t = col.type_();
                        values.push(
                            if *t == Type::INT8 {
                                row.get::<_, Option<i64>>(i).map(Value::Int)
                            } else if *t == Type::INT4 {
                                row.get::<_, Option<i32>>(i).map(|v| Value::Int(v.into()))
                            } else if *t == Type::BOOL {
                                row.get::<_, Option<bool>>(i).map(Value::Bool)
                            } else {
                                row.get::<_, Option<String>>(i).map(Value::Text)
                            }
                            .unwrap_or(Value::Null),
                        );
                    }
                    out.push(values);
                }
                Ok::<_, postgres::Error>(out)
            })()
            .map_err(Source::from),
        };
        result.map_err(|e| self.err(what, e))
    }

    /// The selected events, oldest first.
    pub fn events(&mut self, s: &Selection) -> Result<Vec<Event>> {
        let mut params = Vec::new();
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY time, id",
            s.condition(&mut params)
        );
        self.rows_as_events(&sql, &params)
    }

    /// The newest selected event of each app and environment, by app and environment.
    pub fn latest_per_dir(&mut self, s: &Selection) -> Result<Vec<Event>> {
        let mut params = Vec::new();
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM (SELECT {EVENT_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY app, env ORDER BY time DESC, id DESC) AS newest FROM events WHERE {} AND app IS NOT NULL AND env IS NOT NULL) AS latest WHERE newest = 1 ORDER BY app, env",
            s.condition(&mut params)
        );
        self.rows_as_events(&sql, &params)
    }

    /// How many selected events there are of each kind, outcome and set of rule ids:
    /// what the report counts of rejections, verify runs and checks, without reading
    /// them one by one.
    pub fn tally(&mut self, s: &Selection) -> Result<Vec<Tally>> {
        let mut params = Vec::new();
        let sql = format!(
            "SELECT kind, outcome, rules, COUNT(*) FROM events WHERE {} GROUP BY kind, outcome, rules ORDER BY kind, outcome, rules",
            s.condition(&mut params)
        );
        let mut out = Vec::new();
        for row in self.query(&sql, &params)? {
            let mut it = row.into_iter();
            let (Some(k), Some(o), Some(r), Some(n)) = (it.next(), it.next(), it.next(), it.next())
            else {
                continue;
            };
            let (Some(kind), Some(outcome)) = (
                k.text().as_deref().and_then(Kind::parse),
                o.text().as_deref().and_then(Outcome::parse),
            ) else {
                return Err(self.err("read events", "a row of an unknown kind or outcome"));
            };
            let rules = r
                .text()
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect();
            out.push(Tally {
                kind,
                outcome,
                rules,
                events: n.int().unwrap_or_default().max(0) as u64,
            });
        }
        Ok(out)
    }

    fn rows_as_events(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Event>> {
        self.query(sql, params)?
            .into_iter()
            .map(event_of)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.err("read events", "a row of an unknown kind or outcome"))
    }

    /// How many events of each (kind, team, env, outcome), for serve's counters.
    pub fn counts(&mut self, kinds: &[Kind]) -> Result<Vec<Count>> {
        let marks: Vec<String> = (1..=kinds.len()).map(|i| format!("${i}")).collect();
        let params: Vec<Value> = kinds
            .iter()
            .map(|k| Value::Text(k.as_str().into()))
            .collect();
        let sql = format!(
            "SELECT kind, team, env, outcome, COUNT(*) FROM events WHERE kind IN ({}) GROUP BY kind, team, env, outcome ORDER BY kind, team, env, outcome",
            marks.join(", ")
        );
        let mut out = Vec::new();
        for row in self.query(&sql, &params)? {
            let mut it = row.into_iter();
            let (Some(k), Some(t), Some(e), Some(o), Some(n)) =
                (it.next(), it.next(), it.next(), it.next(), it.next())
            else {
                continue;
            };
            let (Some(kind), Some(outcome)) = (
                k.text().as_deref().and_then(Kind::parse),
                o.text().as_deref().and_then(Outcome::parse),
            ) else {
                continue;
            };
            out.push((kind, t.text(), e.text(), outcome, n.int().unwrap_or(0)));
        }
        Ok(out)
    }
}

fn insert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO events ({EVENT_COLUMNS}) VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..COLUMN_COUNT {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * COLUMN_COUNT + c + 1));
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    sql
}

fn row_of(e: &Event) -> Vec<Value> {
    vec![
        Value::Text(e.id.clone()),
        Value::Int(e.time),
        Value::Text(e.kind.as_str().into()),
        Value::Text(e.outcome.as_str().into()),
        Value::opt_text(&e.team),
        Value::opt_text(&e.app),
        Value::opt_text(&e.env),
        Value::opt_text(&e.version),
        Value::opt_text(&e.previous_version),
        Value::opt_text(&e.actor),
        Value::opt_text(&e.source_repo),
        Value::opt_text(&e.source_commit),
        Value::opt_int(e.source_time),
        Value::opt_text(&e.gitops_commit),
        Value::opt_int(e.duration_ms),
        Value::Bool(e.fix),
        Value::Text(e.rules.join(" ")),
    ]
}

fn event_of(row: Vec<Value>) -> Option<Event> {
    let mut it = row.into_iter();
    let mut next = || it.next().unwrap_or(Value::Null);
    let id = next().text()?;
    let time = next().int()?;
    let kind = Kind::parse(&next().text()?)?;
    let outcome = Outcome::parse(&next().text()?)?;
    let mut e = Event::blank(id, time, kind, outcome);
    e.team = next().text();
    e.app = next().text();
    e.env = next().text();
    e.version = next().text();
    e.previous_version = next().text();
    e.actor = next().text();
    e.source_repo = next().text();
    e.source_commit = next().text();
    e.source_time = next().int();
    e.gitops_commit = next().text();
    e.duration_ms = next().int();
    e.fix = match next() {
        Value::Bool(b) => b,
        Value::Int(i) => i != 0,
        _ => false,
    };
    e.rules = next()
        .text()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    Some(e)
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(*b as i64)),
        })
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        match self {
            Value::Null => Ok(postgres::types::IsNull::Yes),
            Value::Int(i) => i.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        <i64 as postgres::types::ToSql>::accepts(ty)
            || <String as postgres::types::ToSql>::accepts(ty)
            || <bool as postgres::types::ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}
