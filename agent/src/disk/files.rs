//! The files volume store: each volume a qcow2 file in `<data-dir>/volumes/` (a raw one
//! when shared: QEMU lets two VMs write a raw file together, never a qcow2), each
//! snapshot a self-contained qcow2 copy in `<data-dir>/volume-snapshots/`, made with
//! `qemu-img`. A file is written under a `.part` name and renamed when complete, so a
//! restart never finds half a volume; the sizes are kept in a `.json` beside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use yunji_common::agent_api::{DiskDriver, SnapshotInventory};
use yunji_common::execute::execute;

use super::{StoreSource, VolumeStore, not_found, store_failed};
use crate::drivers::DriverError;
use crate::vmm::images;

/// Longest a copy or conversion may take (a volume from a large image).
const COPY_TIMEOUT: Duration = Duration::from_secs(1800);
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// What the `.json` beside a volume or snapshot file holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Meta {
    size_gb: u64,
    /// The volume a snapshot was taken of.
    #[serde(default)]
    volume_id: Option<Uuid>,
    /// A volume several VMs may write at once: a raw file (`<id>.raw`).
    #[serde(default)]
    shared: bool,
}

impl Meta {
    /// qemu-img's name of the file's format, which is also its extension.
    fn format(&self) -> &'static str {
        if self.shared { "raw" } else { "qcow2" }
    }
}

pub struct FileStore {
    volumes_dir: PathBuf,
    snapshots_dir: PathBuf,
    volumes: Mutex<HashMap<Uuid, Meta>>,
    snapshots: Mutex<HashMap<Uuid, Meta>>,
}

/// The records of one directory: `<id>.json` with its `<id>.qcow2` (or `.raw`);
/// anything else (parts of copies a restart cut short, files without a record) is
/// removed.
fn load(dir: &Path) -> anyhow::Result<HashMap<Uuid, Meta>> {
    std::fs::create_dir_all(dir)?;
    let mut found = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_json = path.extension().is_some_and(|e| e == "json");
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<Uuid>().ok());
        if let (true, Some(id)) = (is_json, id) {
            let meta: Meta = serde_json::from_slice(&std::fs::read(&path)?)?;
            if path.with_extension(meta.format()).exists() {
                found.insert(id, meta);
            }
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let kept = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<Uuid>().ok())
            .and_then(|id| found.get(&id))
            .is_some_and(|meta| {
                path.extension()
                    .is_some_and(|e| e == "json" || e == meta.format())
            });
        if !kept {
            tracing::warn!(path = %path.display(), "removing an unfinished volume file");
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(found)
}

async fn qemu_img(args: &[&std::ffi::OsStr], timeout: Duration) -> Result<(), DriverError> {
    execute("qemu-img", args, timeout)
        .await
        .map_err(|e| store_failed(e.to_string()))?;
    Ok(())
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

impl FileStore {
    pub fn new(data_dir: &Path) -> anyhow::Result<FileStore> {
        let volumes_dir = data_dir.join("volumes");
        let snapshots_dir = data_dir.join("volume-snapshots");
        Ok(FileStore {
            volumes: Mutex::new(load(&volumes_dir)?),
            snapshots: Mutex::new(load(&snapshots_dir)?),
            volumes_dir,
            snapshots_dir,
        })
    }

    /// The file of a volume in `format`.
    fn volume_file(&self, id: Uuid, format: &str) -> PathBuf {
        self.volumes_dir.join(format!("{id}.{format}"))
    }

    /// The file of a volume that exists (a qcow2 path for one that does not).
    fn volume_path(&self, id: Uuid) -> PathBuf {
        let format = self.volume_meta(id).map_or("qcow2", |m| m.format());
        self.volume_file(id, format)
    }

    fn snapshot_path(&self, id: Uuid) -> PathBuf {
        self.snapshots_dir.join(format!("{id}.qcow2"))
    }

    fn volume_meta(&self, id: Uuid) -> Option<Meta> {
        self.volumes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied()
    }

    /// Writes `file`'s record and makes it known: the `.part` becomes the file.
    fn commit(&self, file: &Path, part: &Path, meta: Meta) -> Result<(), DriverError> {
        let json = serde_json::to_vec(&meta).map_err(|e| store_failed(e.to_string()))?;
        std::fs::rename(part, file)
            .map_err(|e| store_failed(format!("cannot finish {}: {e}", file.display())))?;
        yunji_common::fsutil::write_atomic(&file.with_extension("json"), &json, 0o600)
            .map_err(|e| store_failed(format!("cannot record {}: {e}", file.display())))
    }

    async fn make_volume(
        &self,
        part: &Path,
        size_gb: u64,
        source: StoreSource<'_>,
        target_format: &str,
    ) -> Result<(), DriverError> {
        let size = (size_gb << 30).to_string();
        let from = match source {
            StoreSource::Blank => {
                let args = [os("create"), os("-q"), os("-f"), os(target_format)];
                let args: Vec<&std::ffi::OsStr> = args
                    .into_iter()
                    .chain([part.as_os_str(), os(&size)])
                    .collect();
                return qemu_img(&args, TOOL_TIMEOUT).await;
            }
            StoreSource::Image { path, format } => (path.to_path_buf(), format),
            StoreSource::Snapshot(id) => (self.snapshot_path(id), "qcow2"),
        };
        let (path, format) = from;
        // Inspected first: its content must fit the volume.
        let virtual_size = images::virtual_size(&path).await?;
        if virtual_size > size_gb << 30 {
            return Err(DriverError {
                code: "bad-request",
                message: format!(
                    "the source holds {virtual_size} bytes, more than the {size_gb} GB volume"
                ),
            });
        }
        let convert = [
            os("convert"),
            os("-q"),
            os("-f"),
            os(format),
            os("-O"),
            os(target_format),
            path.as_os_str(),
            part.as_os_str(),
        ];
        qemu_img(&convert, COPY_TIMEOUT).await?;
        let resize = [
            os("resize"),
            os("-q"),
            os("-f"),
            os(target_format),
            part.as_os_str(),
            os(&size),
        ];
        qemu_img(&resize, TOOL_TIMEOUT).await
    }
}

/// Removes a file and its record, the record first: a file without one is removed at
/// the next start. What is not there is removed already.
async fn remove_with_record(file: &Path) -> Result<(), DriverError> {
    for path in [file.with_extension("json"), file.to_path_buf()] {
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(store_failed(format!(
                    "cannot remove {}: {e}",
                    path.display()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

fn part_of(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

impl VolumeStore for FileStore {
    fn kind(&self) -> DiskDriver {
        DiskDriver::Files
    }

    fn provisioned_gb(&self) -> u64 {
        let sum = |m: &Mutex<HashMap<Uuid, Meta>>| {
            m.lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .map(|m| m.size_gb)
                .sum::<u64>()
        };
        sum(&self.volumes) + sum(&self.snapshots)
    }

    fn capacity_gb(&self) -> u64 {
        rustix::fs::statvfs(&self.volumes_dir)
            .map(|fs| (fs.f_blocks * fs.f_frsize) >> 30)
            .unwrap_or(0)
    }

    fn volumes(&self) -> Vec<(Uuid, u64)> {
        let volumes = self.volumes.lock().unwrap_or_else(|p| p.into_inner());
        volumes.iter().map(|(id, m)| (*id, m.size_gb)).collect()
    }

    fn snapshots(&self) -> Vec<SnapshotInventory> {
        let snapshots = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        snapshots
            .iter()
            .map(|(id, m)| SnapshotInventory {
                id: *id,
                volume_id: m.volume_id.unwrap_or_default(),
                size_gb: m.size_gb,
            })
            .collect()
    }

    fn size_gb(&self, id: Uuid) -> Option<u64> {
        self.volume_meta(id).map(|m| m.size_gb)
    }

    fn open(&self, id: Uuid) -> Result<(PathBuf, &'static str, bool), DriverError> {
        let meta = self
            .volume_meta(id)
            .ok_or_else(|| not_found("volume", id))?;
        Ok((self.volume_file(id, meta.format()), meta.format(), false))
    }

    fn shared(&self, id: Uuid) -> bool {
        self.volume_meta(id).is_some_and(|m| m.shared)
    }

    async fn create(
        &self,
        id: Uuid,
        size_gb: u64,
        source: StoreSource<'_>,
        shared: bool,
    ) -> Result<(), DriverError> {
        if let StoreSource::Snapshot(snapshot) = source
            && !self
                .snapshots
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&snapshot)
        {
            return Err(not_found("snapshot", snapshot));
        }
        let meta = Meta {
            size_gb,
            volume_id: None,
            shared,
        };
        let file = self.volume_file(id, meta.format());
        let part = part_of(&file);
        let made = self
            .make_volume(&part, size_gb, source, meta.format())
            .await;
        if let Err(e) = made.and_then(|()| self.commit(&file, &part, meta)) {
            let _ = tokio::fs::remove_file(&part).await;
            let _ = tokio::fs::remove_file(&file).await;
            return Err(e);
        }
        self.volumes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, meta);
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> Result<(), DriverError> {
        remove_with_record(&self.volume_path(id)).await?;
        self.volumes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        Ok(())
    }

    async fn grow(&self, id: Uuid, size_gb: u64, live: bool) -> Result<(), DriverError> {
        let meta = self
            .volume_meta(id)
            .ok_or_else(|| not_found("volume", id))?;
        // A running VM grows the file itself (`block_resize`); QEMU holds its lock.
        if !live {
            let file = self.volume_path(id);
            let size = (size_gb << 30).to_string();
            let resize = [
                os("resize"),
                os("-q"),
                os("-f"),
                os(meta.format()),
                file.as_os_str(),
                os(&size),
            ];
            qemu_img(&resize, TOOL_TIMEOUT).await?;
        }
        let meta = Meta { size_gb, ..meta };
        let json = serde_json::to_vec(&meta).map_err(|e| store_failed(e.to_string()))?;
        yunji_common::fsutil::write_atomic(
            &self.volume_path(id).with_extension("json"),
            &json,
            0o600,
        )
        .map_err(|e| store_failed(format!("cannot record volume {id}: {e}")))?;
        self.volumes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, meta);
        Ok(())
    }

    async fn snapshot(&self, id: Uuid, volume_id: Uuid) -> Result<(), DriverError> {
        let meta = self
            .volume_meta(volume_id)
            .ok_or_else(|| not_found("volume", volume_id))?;
        let file = self.snapshot_path(id);
        let part = part_of(&file);
        let source = self.volume_path(volume_id);
        // -U: a VM using the volume holds its lock; the caller keeps that VM paused.
        let copy = [
            os("convert"),
            os("-q"),
            os("-U"),
            os("-f"),
            os(meta.format()),
            os("-O"),
            os("qcow2"),
            source.as_os_str(),
            part.as_os_str(),
        ];
        let meta = Meta {
            size_gb: meta.size_gb,
            volume_id: Some(volume_id),
            shared: false,
        };
        let made = qemu_img(&copy, COPY_TIMEOUT).await;
        if let Err(e) = made.and_then(|()| self.commit(&file, &part, meta)) {
            let _ = tokio::fs::remove_file(&part).await;
            let _ = tokio::fs::remove_file(&file).await;
            return Err(e);
        }
        self.snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, meta);
        Ok(())
    }

    async fn snapshot_delete(&self, id: Uuid) -> Result<(), DriverError> {
        remove_with_record(&self.snapshot_path(id)).await?;
        self.snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn virtual_gb(path: &Path) -> u64 {
        images::virtual_size(path).await.unwrap() >> 30
    }

    #[tokio::test]
    async fn volumes_and_snapshots_are_qcow2_files_that_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path()).unwrap();
        let volume = Uuid::new_v4();
        store
            .create(volume, 1, StoreSource::Blank, false)
            .await
            .unwrap();
        let (path, format, block) = store.open(volume).unwrap();
        assert_eq!((format, block), ("qcow2", false));
        assert_eq!(virtual_gb(&path).await, 1);

        store.grow(volume, 2, false).await.unwrap();
        assert_eq!(virtual_gb(&path).await, 2);
        let snapshot = Uuid::new_v4();
        store.snapshot(snapshot, volume).await.unwrap();
        let copy = Uuid::new_v4();
        store
            .create(copy, 3, StoreSource::Snapshot(snapshot), false)
            .await
            .unwrap();
        assert_eq!(virtual_gb(&store.open(copy).unwrap().0).await, 3);
        assert_eq!(store.provisioned_gb(), 2 + 2 + 3);

        // A copy cut short by a restart leaves only a part file: it is removed.
        std::fs::write(part_of(&store.volume_path(Uuid::new_v4())), b"half").unwrap();
        let store = FileStore::new(dir.path()).unwrap();
        assert_eq!(store.size_gb(volume), Some(2));
        assert_eq!(store.snapshots()[0].volume_id, volume);
        let files = std::fs::read_dir(dir.path().join("volumes"))
            .unwrap()
            .count();
        assert_eq!(files, 4, "two volumes, each a file and its record");

        store.delete(volume).await.unwrap();
        store.snapshot_delete(snapshot).await.unwrap();
        assert_eq!(store.size_gb(volume), None);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_shared_volume_is_a_raw_file_through_grow_snapshot_restart_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path()).unwrap();
        let volume = Uuid::new_v4();
        store
            .create(volume, 1, StoreSource::Blank, true)
            .await
            .unwrap();
        let (path, format, _) = store.open(volume).unwrap();
        assert_eq!(format, "raw");
        assert!(store.shared(volume));
        assert_eq!(path.extension().unwrap(), "raw");
        let mut magic = [0u8; 4];
        std::io::Read::read_exact(&mut std::fs::File::open(&path).unwrap(), &mut magic).unwrap();
        assert_ne!(&magic, b"QFI\xfb", "not a qcow2");
        store.grow(volume, 2, false).await.unwrap();
        assert_eq!(virtual_gb(&path).await, 2);
        // Its snapshot is a qcow2 like any, and a volume from it need not be shared.
        let snapshot = Uuid::new_v4();
        store.snapshot(snapshot, volume).await.unwrap();
        let copy = Uuid::new_v4();
        store
            .create(copy, 2, StoreSource::Snapshot(snapshot), false)
            .await
            .unwrap();
        assert!(!store.shared(copy));

        let store = FileStore::new(dir.path()).unwrap();
        assert!(store.shared(volume), "still shared after a restart");
        assert_eq!(store.open(volume).unwrap().0, path);
        store.delete(volume).await.unwrap();
        assert!(!path.exists());
        assert!(!path.with_extension("json").exists());
    }

    #[tokio::test]
    async fn a_source_larger_than_the_volume_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path()).unwrap();
        let big = Uuid::new_v4();
        store
            .create(big, 2, StoreSource::Blank, false)
            .await
            .unwrap();
        let snapshot = Uuid::new_v4();
        store.snapshot(snapshot, big).await.unwrap();
        let small = Uuid::new_v4();
        let error = store
            .create(small, 1, StoreSource::Snapshot(snapshot), false)
            .await
            .unwrap_err();
        assert_eq!(error.code, "bad-request", "{}", error.message);
        assert_eq!(store.size_gb(small), None);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("volumes"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "only the first volume: {left:?}");
    }
}
