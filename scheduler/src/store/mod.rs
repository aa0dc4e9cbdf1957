//! The store: the cloud's state in SQLite, and the only SQL in the project.
//!
//! No call blocks an async worker: reads run on tokio's blocking pool, writes on the
//! store's writer thread. Reads take one of a few read connections (WAL lets them run
//! beside the writer); writes go through the single writer connection, each closure
//! all-or-nothing inside a transaction (`writer.rs` tells how writes share one) — so
//! core can check a quota and create a resource atomically. The log is copied back
//! into the database file by a thread of the store's own (`checkpoint.rs`), not by the
//! commit that grew it.

mod checkpoint;
mod flavors;
mod floating_ips;
mod identity;
mod images;
mod instance_actions;
mod keypairs;
mod load_balancers;
pub use identity::{NameFilter, TokenSelector};
pub use load_balancers::LbChild;
mod migrations;
mod network;
mod network_ports;
mod nodes;
mod quotas;
mod routers;
mod security_groups;
pub use security_groups::RuleFilter;
mod server_groups;
mod server_migrations;
mod servers;
mod volumes;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

#[cfg(test)]
use migrations::schema;

const READERS: usize = 4;
/// Prepared statements kept per connection: more than the store has distinct queries
/// on any hot path.
const STATEMENT_CACHE: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken: the thing already exists.
    #[error("{0} already exists")]
    Duplicate(String),
    /// A referenced row does not exist, or a row is still referenced.
    #[error("constraint failed: {0}")]
    Constraint(String),
    #[error("database error")]
    Sqlite(#[source] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database task failed: {0}")]
    Task(String),
    #[error("the change could not be committed: {0}")]
    Commit(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(code, msg) = &e {
            let msg = msg.clone().unwrap_or_default();
            match code.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    return StoreError::Duplicate(
                        msg.trim_start_matches("UNIQUE constraint failed: ")
                            .to_string(),
                    );
                }
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
                | rusqlite::ffi::SQLITE_CONSTRAINT_CHECK => return StoreError::Constraint(msg),
                _ => {}
            }
        }
        StoreError::Sqlite(e)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writer: writer::Writer,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

/// Read access: the typed queries of every resource.
pub struct Db<'a> {
    conn: &'a Connection,
}

/// Write access inside one transaction; derefs to [`Db`] for reads in the same transaction.
pub struct Tx<'a> {
    db: Db<'a>,
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = Db<'a>;
    fn deref(&self) -> &Db<'a> {
        &self.db
    }
}

impl<'a> Db<'a> {
    // Statements are cached per connection (parsing SQL costs more than running most of
    // it); every query in the store goes through these three.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    fn query_row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(params, f)
    }

    fn prepare(&self, sql: &str) -> rusqlite::Result<rusqlite::CachedStatement<'a>> {
        self.conn.prepare_cached(sql)
    }
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Without the query planner stability guarantee SQLite re-parses and re-plans a
    // cached statement whenever new values are bound to one with `= ?` and ORDER BY
    // (every listing, IPAM, the auto network of a server create), which made those
    // statement caches useless: measured 28 µs of a server create's 96 µs transaction.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Savepoints (one per write in a group commit) and multi-row statements keep the
    // pages they change in a statement journal, a temporary file by default: in memory
    // it costs no system calls (measured: 5% of a parallel port create's CPU).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    add_regexp(&conn)?;
    Ok(conn)
}

/// `text REGEXP pattern`, which SQLite leaves to the application: Nova's server name
/// filter is a regular expression, and filtering in SQL keeps paging exact. The
/// compiled pattern is kept for the whole statement.
fn add_regexp(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let pattern = ctx.get_or_create_aux(0, |value| {
                regex::Regex::new(value.as_str()?)
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            })?;
            let text = ctx.get_raw(1).as_str_or_null()?;
            Ok(text.is_some_and(|text| pattern.is_match(text)))
        },
    )?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path` and runs every migration.
    pub fn open(path: &Path) -> Result<Store> {
        let mut writer = open(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrations::run(&mut writer)?;
        checkpoint::checkpoint_in_background(&mut writer, path)?;
        let readers = (0..READERS)
            .map(|_| {
                open(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Store {
            inner: Arc::new(Inner {
                writer: writer::Writer::start(writer)?,
                readers: Mutex::new(readers),
                path: path.to_path_buf(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with read access on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        self.read_as(f).await
    }

    /// Like [`Store::read`], for closures that fail with the caller's own error type
    /// (a look-up that applies a rule as it reads).
    pub async fn read_as<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        off_async(move || {
            let conn = inner.take_reader()?;
            let out = f(&Db { conn: &conn });
            inner.give_back(conn);
            out
        })
        .await
        .map_err(E::from)?
    }

    /// Runs `f` all-or-nothing in a write transaction: its changes are committed if it
    /// returns `Ok` and undone otherwise. `f` may fail with the caller's own error type.
    /// The result comes once the changes are committed.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Tx) -> Result<T, E> + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        self.inner
            .writer
            .enqueue(Box::new(writer::Write { f, done }));
        result.await.map_err(|_| {
            E::from(StoreError::Task(
                "the write was abandoned (it panicked); see the log".into(),
            ))
        })?
    }
}

/// Runs blocking store work on tokio's blocking pool, off the async workers.
async fn off_async<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        StoreError::Task(if e.is_panic() {
            "a store call panicked; see the log".into()
        } else {
            e.to_string()
        })
    })
}

impl Inner {
    fn take_reader(&self) -> Result<Connection> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(conn) => Ok(conn),
            // All pooled readers busy: open one more for this call.
            None => open(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            ),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() < READERS {
            readers.push(conn);
        }
    }
}

/// Booleans are stored as 0/1.
fn flag(v: bool) -> i64 {
    i64::from(v)
}

/// A column holding JSON text, decoded.
fn json<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row,
    column: impl rusqlite::RowIndex,
) -> rusqlite::Result<T> {
    decode_json(&r.get::<_, String>(column)?)
}

/// [`json`] for a column that may be NULL.
fn json_opt<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row,
    column: impl rusqlite::RowIndex,
) -> rusqlite::Result<Option<T>> {
    r.get::<_, Option<String>>(column)?
        .map(|text| decode_json(&text))
        .transpose()
}

fn decode_json<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// A time column, as rusqlite writes `DateTime<Utc>` (`2026-11-29 23:20:01.500+00:00`).
/// chrono's RFC 3339 parser takes that form (it allows the space) and costs a tenth of
/// rusqlite's own reading, which tries a strftime pattern: a page of 1,000 servers
/// reads 2,000 to 4,000 times. Anything else falls back to rusqlite's reading.
fn time<I: rusqlite::RowIndex + Copy>(
    r: &rusqlite::Row,
    column: I,
) -> rusqlite::Result<chrono::DateTime<chrono::Utc>> {
    if let rusqlite::types::ValueRef::Text(text) = r.get_ref(column)?
        && let Ok(text) = std::str::from_utf8(text)
        && let Ok(t) = chrono::DateTime::parse_from_rfc3339(text)
    {
        return Ok(t.to_utc());
    }
    r.get(column)
}

/// [`time`] for a column that may be NULL.
fn time_opt<I: rusqlite::RowIndex + Copy>(
    r: &rusqlite::Row,
    column: I,
) -> rusqlite::Result<Option<chrono::DateTime<chrono::Utc>>> {
    match r.get_ref(column)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => time(r, column).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every time rusqlite writes reads back the same through [`time`], whatever its
    /// fraction of a second; other forms SQLite may hold still read.
    #[test]
    fn times_read_back_as_written() {
        let conn = Connection::open_in_memory().unwrap();
        let base = chrono::DateTime::parse_from_rfc3339("2026-11-29T23:20:01Z")
            .unwrap()
            .to_utc();
        for nanos in [0, 500_000_000, 123_000_000, 123_456_000, 123_456_789] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            let back = conn
                .query_row("SELECT ?1, NULL", [t], |r| {
                    Ok((time(r, 0)?, time_opt(r, 1)?))
                })
                .unwrap();
            assert_eq!(back, (t, None), "{nanos} ns");
        }
        for (text, want) in [
            ("2026-11-29T23:20:01.5Z", "2026-11-29T23:20:01.5Z"),
            ("2026-11-29 23:20:01", "2026-11-29T23:20:01Z"),
            ("2026-11-30 01:20:01+02:00", "2026-11-29T23:20:01Z"),
        ] {
            let want = chrono::DateTime::parse_from_rfc3339(want).unwrap().to_utc();
            let back = conn
                .query_row("SELECT ?1", [text], |r| time_opt(r, 0))
                .unwrap();
            assert_eq!(back, Some(want), "{text}");
        }
        let bad = conn.query_row("SELECT 'yesterday'", [], |r| time(r, 0));
        assert!(bad.is_err(), "a column that is no time is an error");
    }

    #[tokio::test]
    async fn migrated_schema_matches_the_committed_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("yunji.db")).unwrap();
        let actual = store.read(|db| schema(db.conn)).await.unwrap();
        let snapshot_path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/schema.sql");
        if std::env::var_os("YUNJI_BLESS").is_some() {
            std::fs::write(snapshot_path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(snapshot_path).unwrap();
        assert_eq!(
            actual, expected,
            "the migrated schema differs from src/store/schema.sql; \
             if the change is intended, rerun with YUNJI_BLESS=1 and commit the snapshot"
        );
    }

    /// Many writers at once, on a multi-threaded runtime (writes share transactions): exactly the writes that succeeded are kept, a failed or panicking
    /// one leaves nothing, and each caller gets its own result.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_writes_keep_exactly_the_ones_that_succeeded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("yunji.db")).unwrap();
        store
            .write(|tx| Ok::<_, StoreError>(tx.execute("CREATE TABLE t (n INTEGER)", [])?))
            .await
            .unwrap();
        let writes = (0..300_i64).map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |tx| {
                        tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                        match n % 10 {
                            0 => Err(StoreError::Corrupt(format!("refused {n}"))),
                            7 if n == 77 => panic!("write {n} panics"),
                            _ => Ok(n),
                        }
                    })
                    .await
            })
        });
        let results = futures_util::future::join_all(writes).await;
        for (n, result) in (0_i64..).zip(results) {
            match (n % 10, result.unwrap()) {
                (0, Err(StoreError::Corrupt(m))) => assert_eq!(m, format!("refused {n}")),
                (_, Err(StoreError::Task(_))) if n == 77 => {}
                (_, Ok(got)) => assert_eq!(got, n),
                (_, other) => panic!("write {n}: {other:?}"),
            }
        }
        let kept: Vec<i64> = store
            .read(|db| {
                let mut stmt = db.prepare("SELECT n FROM t ORDER BY n")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap();
        let expected: Vec<i64> = (0..300).filter(|n| n % 10 != 0 && *n != 77).collect();
        assert_eq!(kept, expected);
    }

    /// The writer's commits never checkpoint below the cap, so only the background thread
    /// can have copied the log into the database file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yunji.db");
        let store = Store::open(&path).unwrap();
        store
            .write(|tx| Ok::<_, StoreError>(tx.execute("CREATE TABLE t (b BLOB)", [])?))
            .await
            .unwrap();
        let file_pages = || std::fs::metadata(&path).unwrap().len() / 4096;
        let before = file_pages();
        // About 1,500 pages of log, one transaction each 16 KiB.
        for _ in 0..300 {
            store
                .write(|tx| {
                    Ok::<_, StoreError>(tx.execute("INSERT INTO t VALUES (zeroblob(16384))", [])?)
                })
                .await
                .unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while file_pages() < before + 900 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file grew from {before} to only {} pages: no checkpoint ran",
                file_pages()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn reopening_runs_no_migration_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yunji.db");
        drop(Store::open(&path).unwrap());
        let store = Store::open(&path).unwrap();
        let applied = store
            .read(|db| Ok(migrations::applied(db.conn)?))
            .await
            .unwrap();
        assert_eq!(applied, migrations::MIGRATIONS.len());
    }
}
