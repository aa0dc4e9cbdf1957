//! One owner per directory: an exclusive `flock` on a file that names the owner's pid.
//!
//! Two agents on one data directory would both adopt the same VMs and race over their
//! disks. An agent takes the lock before it touches the directory; the scheduler reads
//! who holds it to stop a local agent that outlived the scheduler which started it. The
//! kernel drops the lock when the owner dies, so a pid read from a held lock is alive.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// The file in an agent's data directory that names the agent running on it.
pub const AGENT_LOCK_FILE: &str = "agent.lock";

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct PidLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another process (pid {pid}) holds {path}", pid = pid.map_or("unknown".into(), |p| p.to_string()), path = path.display())]
    Held { path: PathBuf, pid: Option<i32> },
    #[error("cannot lock {path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PidLock {
    /// Takes the lock at `path` (made if missing) and writes this process's pid into it.
    /// Blocking: a [`PidLock::holder`] probe holds the lock shared for a moment, so a
    /// busy lock is tried again for up to 100 ms before it counts as held.
    pub fn acquire(path: &Path) -> Result<PidLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut tries = 10;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) if tries > 1 => {
                    tries -= 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(LockError::Held {
                        path: path.to_path_buf(),
                        pid: read_pid(&mut file),
                    });
                }
                Err(errno) => return Err(io(errno.into())),
            }
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(PidLock { _file: file })
    }

    /// Whether some process holds the lock at `path`, and its pid when it has written it.
    /// Probing takes the lock shared for a moment when it is free (see `acquire`).
    pub fn holder(path: &Path) -> Option<Holder> {
        let mut file = File::open(path).ok()?;
        match flock(&file, FlockOperation::NonBlockingLockShared) {
            // Free: the shared lock taken to find out goes with `file`.
            Ok(()) => None,
            Err(_) => Some(Holder {
                pid: read_pid(&mut file),
            }),
        }
    }
}

/// The process holding a lock. `pid` is `None` in the moment between its `flock` and
/// writing its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<i32>,
}

fn read_pid(file: &mut File) -> Option<i32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok().filter(|pid| *pid > 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_lock_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.lock");
        assert_eq!(PidLock::holder(&path), None, "no file: nobody holds it");

        let lock = PidLock::acquire(&path).unwrap();
        let me = Some(std::process::id() as i32);
        assert_eq!(PidLock::holder(&path), Some(Holder { pid: me }));
        match PidLock::acquire(&path) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, me),
            other => panic!("a second owner got {other:?}"),
        }

        drop(lock);
        // A process another test forks in this moment shares the lock until it execs.
        let released = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            PidLock::holder(&path).is_none()
        });
        assert!(released, "released on drop");
        // A probe holding the free lock shared for a moment does not turn an owner away.
        let probe = File::open(&path).unwrap();
        flock(&probe, FlockOperation::NonBlockingLockShared).unwrap();
        let releases = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            drop(probe);
        });
        let after_probe = PidLock::acquire(&path).unwrap();
        releases.join().unwrap();
        drop(after_probe);
        let again = PidLock::acquire(&path).unwrap();
        drop(again);
    }
}
