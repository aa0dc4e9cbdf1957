//! WAL checkpoints, off the request path.
//!
//! SQLite's automatic checkpoint runs inside the commit that grows the log past its
//! limit, so one write in a thousand pages paid for copying them all into the database
//! file and two fsyncs. Here the writer's commit hook only counts the log's pages and,
//! each time it has grown by that limit, wakes a thread of the store's own that
//! checkpoints on a connection of its own. A passive checkpoint never blocks the writer
//! or a reader. The writer starts the log over once everything in it has been copied
//! back — which a steady stream of writes never allows, so past a hard cap the writer
//! checkpoints itself, as SQLite would, and the log stays bounded.

use std::path::Path;
use std::sync::mpsc::{Receiver, sync_channel};

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

use super::Result;

/// Log growth, in pages, that starts a checkpoint: SQLite's own default limit.
const CHECKPOINT_PAGES: i32 = 1000;
/// Log pages past which the writer checkpoints in its own commit (64 MiB of 4 KiB pages).
const LOG_CAP_PAGES: i32 = 16 * CHECKPOINT_PAGES;

/// Hands the checkpoints of the database `writer` commits to to a thread of their own;
/// that thread ends when `writer` is closed.
pub(super) fn checkpoint_in_background(writer: &mut Connection, path: &Path) -> Result<()> {
    let conn = super::open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // One pending wake-up is enough: the checkpoint copies whatever the log holds then.
    let (wake, woken) = sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("yunji-checkpoint".into())
        .spawn(move || checkpoint_when_woken(&conn, &woken))
        .map_err(|e| super::StoreError::Task(format!("starting the checkpoint thread: {e}")))?;
    let mut watch = LogWatch::default();
    // Replaces SQLite's automatic checkpoint, which is a WAL hook too.
    writer.wal_hook(Some(move |wal: &mut Wal, pages: i32| {
        match watch.after_commit(pages) {
            Next::Nothing => {}
            Next::Wake => {
                // Already woken, or gone with the store: either way nothing more to do.
                let _ = wake.try_send(());
            }
            // No write can come in between, so the next one starts the log over.
            Next::CheckpointHere => log_failure(wal.checkpoint()),
        }
        Ok(())
    }))?;
    Ok(())
}

/// What a commit that left `pages` in the log calls for.
#[derive(Debug, PartialEq)]
enum Next {
    Nothing,
    Wake,
    CheckpointHere,
}

/// The log's size when the checkpointer was last woken.
#[derive(Default)]
struct LogWatch {
    woken_at: i32,
}

impl LogWatch {
    fn after_commit(&mut self, pages: i32) -> Next {
        if pages < self.woken_at {
            // The log was started over.
            self.woken_at = 0;
        }
        if pages >= LOG_CAP_PAGES {
            Next::CheckpointHere
        } else if pages - self.woken_at >= CHECKPOINT_PAGES {
            self.woken_at = pages;
            Next::Wake
        } else {
            Next::Nothing
        }
    }
}

fn checkpoint_when_woken(conn: &Connection, woken: &Receiver<()>) {
    // The sender lives in the writer's hook: the loop ends when the writer is closed.
    while woken.recv().is_ok() {
        log_failure(
            conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE)
                .map(drop),
        );
    }
}

/// A checkpoint that did not run is retried when the log has grown again; one busy with
/// another checkpoint (the writer's and the thread's may meet) is no news.
fn log_failure(result: rusqlite::Result<()>) {
    match result {
        Ok(()) => {}
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpointer_is_woken_once_per_limit_of_growth_and_the_writer_checkpoints_at_the_cap() {
        let mut watch = LogWatch::default();
        assert_eq!(watch.after_commit(12), Next::Nothing);
        assert_eq!(watch.after_commit(CHECKPOINT_PAGES), Next::Wake);
        // Still over the limit, but woken already for this much.
        assert_eq!(watch.after_commit(CHECKPOINT_PAGES + 12), Next::Nothing);
        assert_eq!(watch.after_commit(2 * CHECKPOINT_PAGES), Next::Wake);
        // Started over: counted from zero again.
        assert_eq!(watch.after_commit(12), Next::Nothing);
        assert_eq!(watch.after_commit(CHECKPOINT_PAGES + 12), Next::Wake);
        assert_eq!(watch.after_commit(LOG_CAP_PAGES), Next::CheckpointHere);
        assert_eq!(watch.after_commit(LOG_CAP_PAGES + 12), Next::CheckpointHere);
    }
}
