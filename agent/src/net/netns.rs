//! Named network namespaces, made and removed as `ip netns add`/`delete` do: a file in
//! `/run/netns` with a namespace bind-mounted on it, which keeps the namespace alive
//! without any process in it. Routers and load balancers each live in one.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Where named network namespaces are bind-mounted (`ip netns` uses the same place).
pub const NETNS_DIR: &str = "/run/netns";

/// `statfs` type of a bind-mounted namespace file.
const NSFS_MAGIC: u64 = 0x6e73_6673;

/// The file of the namespace `name`.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether `file` is a namespace (on nsfs), not the empty file a mount point is.
pub fn is_namespace(file: &File) -> bool {
    rustix::fs::fstatfs(file).is_ok_and(|fs| fs.f_type as u64 == NSFS_MAGIC)
}

/// Whether `path` is a bound namespace, not a missing or stale empty file.
pub fn is_namespace_at(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|fs| fs.f_type as u64 == NSFS_MAGIC)
}

/// `ip netns add`, on a thread of its own that ends afterwards (a thread that unshared
/// a namespace is never reused): `/run/netns` made a shared mount (so the namespace
/// shows in every mount namespace), a file there, a new network namespace unshared by
/// the thread and bind-mounted on the file. An existing file is taken over.
pub async fn create(path: &Path) -> io::Result<()> {
    let path = path.to_path_buf();
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("yunji-netns".into())
        .spawn(move || {
            let _ = done.send(unshare_and_bind(&path));
        })?;
    result
        .await
        .map_err(|_| io::Error::other("the namespace thread ended without an answer"))?
}

fn unshare_and_bind(path: &Path) -> io::Result<()> {
    let dir = Path::new(NETNS_DIR);
    std::fs::create_dir_all(dir)?;
    let shared = || {
        mount(
            None::<&str>,
            dir,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if let Err(nix::errno::Errno::EINVAL) = shared() {
        // Not a mount point yet: make it one.
        mount(
            Some(dir),
            dir,
            Some("none"),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )?;
        shared()?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let bound = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).and_then(|()| {
        mount(
            Some("/proc/thread-self/ns/net"),
            path,
            Some("none"),
            MsFlags::MS_BIND,
            None::<&str>,
        )
    });
    if let Err(error) = bound {
        let _ = std::fs::remove_file(path);
        return Err(error.into());
    }
    Ok(())
}

/// `ip netns delete`: the namespace ends once nothing else holds it. One that is not
/// there is deleted already.
pub async fn delete(path: &Path) -> io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(error) => return Err(error.into()),
        }
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    })
    .await
    .map_err(io::Error::other)?
}
