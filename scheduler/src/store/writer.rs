//! The single writer, with group commit.
//!
//! Writes queue up; whichever caller finds the writer connection free runs every queued
//! write in one transaction, each inside a savepoint of its own (a write that fails
//! leaves no trace, the others keep theirs), commits once, and only then hands each
//! caller its result. Under load that makes one BEGIN/COMMIT and one thread hand-off per
//! batch instead of per write; alone, a write runs in a transaction of its own, in
//! place on its caller's thread when the runtime allows it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError, TryLockError};

use rusqlite::Connection;

use super::{Db, StoreError, Tx};

/// Writes run in one transaction at most: a bound on how long a batch holds the lock.
const MAX_BATCH: usize = 64;

/// A write waiting for the writer.
pub(super) trait QueuedWrite: Send {
    /// Runs the write; its result, kept until the batch's fate is known.
    fn run(self: Box<Self>, tx: &Tx) -> Box<dyn WriteOutcome>;
    /// The write will not run: its batch failed first.
    fn fail(self: Box<Self>, e: &StoreError);
}

pub(super) trait WriteOutcome: Send {
    /// Whether the write succeeded, so its changes are to be kept.
    fn succeeded(&self) -> bool;
    /// Hands the result over; `commit` says whether the batch's changes were committed.
    fn deliver(self: Box<Self>, commit: Result<(), &StoreError>);
}

/// One caller's write closure and where its result goes.
pub(super) struct Write<F, T, E> {
    pub f: F,
    pub done: tokio::sync::oneshot::Sender<Result<T, E>>,
}

struct Outcome<T, E> {
    result: Result<T, E>,
    done: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> QueuedWrite for Write<F, T, E>
where
    F: FnOnce(&Tx) -> Result<T, E> + Send,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &Tx) -> Box<dyn WriteOutcome> {
        Box::new(Outcome {
            result: (self.f)(tx),
            done: self.done,
        })
    }

    fn fail(self: Box<Self>, e: &StoreError) {
        let _ = self.done.send(Err(E::from(lost(e))));
    }
}

impl<T: Send, E: From<StoreError> + Send> WriteOutcome for Outcome<T, E> {
    fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    fn deliver(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match (self.result, commit) {
            (Ok(_), Err(e)) => Err(E::from(lost(e))),
            (result, _) => result,
        };
        // The caller may have gone away (its request was dropped): nothing to tell.
        let _ = self.done.send(result);
    }
}

pub(super) struct Writer {
    conn: Mutex<Connection>,
    queue: Mutex<Vec<Box<dyn QueuedWrite>>>,
}

impl Writer {
    pub fn new(conn: Connection) -> Writer {
        Writer {
            conn: Mutex::new(conn),
            queue: Mutex::new(Vec::new()),
        }
    }

    pub fn enqueue(&self, write: Box<dyn QueuedWrite>) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(write);
    }

    /// Whether a caller is running writes now — and will run any queued before it lets
    /// go, so a new write need not start a drain of its own.
    pub fn busy(&self) -> bool {
        matches!(self.conn.try_lock(), Err(TryLockError::WouldBlock))
    }

    /// Runs queued writes until the queue is empty, unless another caller holds the
    /// writer — it then runs ours too, as it looks at the queue again after letting go.
    pub fn drain(&self) {
        loop {
            let conn = match self.conn.try_lock() {
                Ok(conn) => conn,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            loop {
                let batch: Vec<_> = {
                    let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                run_batch(&conn, batch);
            }
            drop(conn);
            if self
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
            {
                return;
            }
        }
    }
}

fn run_batch(conn: &Connection, batch: Vec<Box<dyn QueuedWrite>>) {
    let sql = |s: &str| -> Result<(), StoreError> {
        conn.prepare_cached(s)?.execute([])?;
        Ok(())
    };
    let tx = Tx { db: Db { conn } };
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut failure = sql("BEGIN IMMEDIATE").err();
    // A lone write needs no savepoint: if it fails, the whole transaction is undone.
    let alone = batch.len() == 1;
    let mut batch = batch.into_iter();
    if failure.is_none() {
        for write in batch.by_ref() {
            if alone {
                match catch_unwind(AssertUnwindSafe(|| write.run(&tx))) {
                    Ok(outcome) if outcome.succeeded() => outcomes.push(outcome),
                    Ok(outcome) => {
                        outcomes.push(outcome);
                        rollback_lone(conn);
                        return deliver(outcomes, Ok(()));
                    }
                    Err(_) => {
                        tracing::error!("a store write panicked; its changes are rolled back");
                        rollback_lone(conn);
                        return;
                    }
                }
                break;
            }
            if let Err(e) = sql("SAVEPOINT write") {
                failure = Some(e);
                write.fail(failure.as_ref().expect("just set"));
                break;
            }
            let undo = match catch_unwind(AssertUnwindSafe(|| write.run(&tx))) {
                Ok(outcome) => {
                    let undo = !outcome.succeeded();
                    outcomes.push(outcome);
                    undo
                }
                // Its caller sees the result channel closed; the others go on.
                Err(_) => {
                    tracing::error!("a store write panicked; its changes are rolled back");
                    true
                }
            };
            // Some errors (a full disk, I/O) end the whole transaction in SQLite.
            if conn.is_autocommit() {
                failure = Some(StoreError::Commit(
                    "the transaction was aborted by the database".into(),
                ));
                break;
            }
            let undone = if undo {
                sql("ROLLBACK TO write")
            } else {
                Ok(())
            };
            if let Err(e) = undone.and_then(|()| sql("RELEASE write")) {
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_none() {
        failure = sql("COMMIT").err();
    }
    if failure.is_some() && !conn.is_autocommit() {
        // Nothing of the batch is kept, and the writer is clean for the next one.
        let _ = sql("ROLLBACK");
    }
    deliver(outcomes, failure.as_ref().map_or(Ok(()), Err));
    if let Some(e) = &failure {
        for write in batch {
            write.fail(e);
        }
    }
}

fn deliver(outcomes: Vec<Box<dyn WriteOutcome>>, commit: Result<(), &StoreError>) {
    for outcome in outcomes {
        outcome.deliver(commit);
    }
}

/// Undoes a lone write's transaction; the write's own error is what its caller sees.
fn rollback_lone(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "rolling back a failed write");
    }
}

/// What a caller is told when its write was lost with its batch.
fn lost(e: &StoreError) -> StoreError {
    StoreError::Commit(match e {
        StoreError::Sqlite(inner) => inner.to_string(),
        other => other.to_string(),
    })
}
