//! The device-mapper thin volume store (`--thin-pool`): each volume a thin device of a
//! dm-thin pool the operator made, active as `/dev/mapper/yunji-vol-<uuid>` and opened raw
//! by QEMU; each snapshot an internal snapshot in the same pool, kept inactive. All of it
//! goes through `dmsetup` as the kernel's
//! Documentation/admin-guide/device-mapper/thin-provisioning.rst describes: thin devices
//! and snapshots are pool messages (`create_thin`, `create_snap` with an active origin
//! suspended, `delete`), a volume grows by reloading its table, and the pool's space is
//! its `table` (data block size) and `status` (used/total data blocks) lines.
//!
//! The pool keeps neither names nor sizes, so the store keeps each device's id and size
//! in `<data-dir>/thin-volumes.json`, recorded as pending before the pool hears of a
//! device and as complete once it is. A failing step undoes what the operation made; a
//! start removes what a crash left pending and activates the volumes a host reboot
//! deactivated. The pool is yunji's alone: an id it finds taken is skipped, never used.
//!
//! **This store has not run against a real thin pool**: the kernel it was written on has
//! no device-mapper. Its tests drive `agent/tests/dmsetup_standin/dmsetup`, a stand-in
//! that checks dmsetup's syntax strictly and answers in the kernel's formats.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use yunji_common::agent_api::{DiskDriver, SnapshotInventory};
use yunji_common::execute::execute;

use super::{StoreSource, VolumeStore, not_found, store_failed};
use crate::drivers::DriverError;
use crate::vmm::images;

const DMSETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest an image conversion may take (a volume from a large image).
const COPY_TIMEOUT: Duration = Duration::from_secs(1800);
/// Thin device ids are 24-bit numbers the caller chooses (thin-provisioning.rst).
const MAX_DEV_ID: u32 = (1 << 24) - 1;
/// How many ids found taken (`File exists`) one create skips before giving up.
const ID_ATTEMPTS: usize = 16;
const RECORD_FILE: &str = "thin-volumes.json";
/// strerror(EEXIST): the pool has a thin device of that id.
const TAKEN: &str = "File exists";
/// strerror(ENODATA): the pool has no thin device of that id.
const NO_SUCH_THIN: &str = "No data available";

/// What the store keeps of a thin device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ThinDevice {
    dev_id: u32,
    size_gb: u64,
    /// The volume a snapshot was taken of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    volume_id: Option<Uuid>,
    /// Being made or removed: not offered, and removed at the next start if still so.
    #[serde(default)]
    pending: bool,
    /// A volume several VMs may write at once (thin devices are raw already).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    shared: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Records {
    volumes: BTreeMap<Uuid, ThinDevice>,
    snapshots: BTreeMap<Uuid, ThinDevice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Volume,
    Snapshot,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Volume => "volume",
            Kind::Snapshot => "snapshot",
        }
    }
}

impl Records {
    fn of(&mut self, kind: Kind) -> &mut BTreeMap<Uuid, ThinDevice> {
        match kind {
            Kind::Volume => &mut self.volumes,
            Kind::Snapshot => &mut self.snapshots,
        }
    }

    fn get(&self, kind: Kind, id: Uuid) -> Option<ThinDevice> {
        match kind {
            Kind::Volume => self.volumes.get(&id).copied(),
            Kind::Snapshot => self.snapshots.get(&id).copied(),
        }
    }

    fn dev_ids(&self) -> BTreeSet<u32> {
        self.volumes
            .values()
            .chain(self.snapshots.values())
            .map(|d| d.dev_id)
            .collect()
    }
}

/// The pool's data space: its block size (from `table`) and blocks (from `status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub block_sectors: u64,
    pub used_blocks: u64,
    pub total_blocks: u64,
}

impl PoolUsage {
    pub fn total_bytes(&self) -> u64 {
        self.total_blocks * self.block_sectors * 512
    }

    pub fn used_bytes(&self) -> u64 {
        self.used_blocks * self.block_sectors * 512
    }
}

/// What a thin-pool `status` line says beside the blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PoolStatus {
    used_blocks: u64,
    total_blocks: u64,
    /// `rw`, `ro` or `out_of_data_space`.
    mode: String,
    needs_check: bool,
}

/// The data block size (sectors) of a thin-pool `table` line: `<start> <length>
/// thin-pool <metadata dev> <data dev> <data block size> <low water mark> [<#features>
/// <feature>*]`.
fn parse_pool_table(line: &str) -> Result<u64, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.get(2) != Some(&"thin-pool") {
        return Err(format!("its table is not a thin-pool's: {line:?}"));
    }
    fields
        .get(5)
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|sectors| *sectors > 0)
        .ok_or_else(|| format!("no data block size in its table {line:?}"))
}

/// The used and total data blocks of a thin-pool `status` line: `<start> <length>
/// thin-pool <transaction id> <used>/<total metadata blocks> <used>/<total data blocks>
/// <held metadata root> ro|rw|out_of_data_space <discard> <no-space mode> needs_check|-
/// ...`; a pool that failed reports `Fail` (or `Error`) instead.
fn parse_pool_status(line: &str) -> Result<PoolStatus, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.get(2) != Some(&"thin-pool") {
        return Err(format!("its status is not a thin-pool's: {line:?}"));
    }
    if let Some(failed @ (&"Fail" | &"Error")) = fields.get(3) {
        return Err(format!(
            "the pool reports {failed}: deactivate it and check its metadata with thin_check \
             (thin_repair to repair it)"
        ));
    }
    let blocks = |field: Option<&&str>| {
        let (used, total) = field?.split_once('/')?;
        Some((used.parse::<u64>().ok()?, total.parse::<u64>().ok()?))
    };
    let (used_blocks, total_blocks) =
        blocks(fields.get(5)).ok_or_else(|| format!("no data blocks in its status {line:?}"))?;
    Ok(PoolStatus {
        used_blocks,
        total_blocks,
        mode: fields.get(7).unwrap_or(&"").to_string(),
        needs_check: fields.get(10) == Some(&"needs_check"),
    })
}

/// The device-mapper name of a volume's thin device.
pub fn device_name(id: Uuid) -> String {
    format!("yunji-vol-{id}")
}

/// A device-mapper name as dmsetup takes it (no path, no blanks).
fn valid_dm_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c))
}

fn busy(kind: Kind, id: Uuid) -> DriverError {
    DriverError {
        code: "state",
        message: format!(
            "{} {id} is being made or removed on this node; retry once that finished",
            kind.noun()
        ),
    }
}

/// Refuses a source larger than the volume made of it.
fn fits(source_bytes: u64, size_gb: u64) -> Result<(), DriverError> {
    if source_bytes > size_gb << 30 {
        return Err(DriverError {
            code: "bad-request",
            message: format!(
                "the source holds {source_bytes} bytes, more than the {size_gb} GB volume"
            ),
        });
    }
    Ok(())
}

/// `error`, telling also that undoing it failed (the agent's next start retries that).
fn with_cleanup_failure(error: DriverError, cleanup: DriverError) -> DriverError {
    DriverError {
        code: error.code,
        message: format!(
            "{}; undoing it failed too, the agent's next start retries: {}",
            error.message, cleanup.message
        ),
    }
}

pub struct ThinStore {
    /// The pool's device-mapper name (`/dev/mapper/<pool>`).
    pool: String,
    /// The dmsetup program; the tests' stand-in in tests.
    dmsetup: String,
    /// Where device-mapper nodes appear: `/dev/mapper`, or the stand-in's directory.
    mapper_dir: PathBuf,
    record_path: PathBuf,
    records: Mutex<Records>,
    /// Ids the pool answered as taken by devices not ours: never tried again.
    foreign_ids: Mutex<BTreeSet<u32>>,
    usage: Mutex<PoolUsage>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ThinStore {
    /// The store on the active thin pool `/dev/mapper/<pool>`, with the system's dmsetup.
    pub async fn load(data_dir: &Path, pool: &str) -> anyhow::Result<ThinStore> {
        ThinStore::load_with(data_dir, pool, "dmsetup", Path::new("/dev/mapper")).await
    }

    /// [`ThinStore::load`] with another dmsetup program and mapper directory.
    pub async fn load_with(
        data_dir: &Path,
        pool: &str,
        dmsetup: &str,
        mapper_dir: &Path,
    ) -> anyhow::Result<ThinStore> {
        anyhow::ensure!(
            valid_dm_name(pool),
            "--thin-pool {pool:?}: give the pool's device-mapper name (as under /dev/mapper, \
             e.g. yunji-pool)"
        );
        let record_path = data_dir.join(RECORD_FILE);
        let records = match std::fs::read(&record_path) {
            Ok(json) => serde_json::from_slice(&json)
                .with_context(|| format!("cannot parse {}", record_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Records::default(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", record_path.display()));
            }
        };
        let store = ThinStore {
            pool: pool.to_string(),
            dmsetup: dmsetup.to_string(),
            mapper_dir: mapper_dir.to_path_buf(),
            record_path,
            records: Mutex::new(records),
            foreign_ids: Mutex::new(BTreeSet::new()),
            usage: Mutex::new(PoolUsage::default()),
        };
        store.refresh_usage().await.map_err(|e| {
            anyhow::anyhow!(
                "{}; the thin pool must be made and active before the agent starts \
                 (thin-provisioning.rst, \"Setting up a fresh pool device\")",
                e.message
            )
        })?;
        store.recover().await;
        Ok(store)
    }

    /// The pool's data space as last read (at start and after each change).
    pub fn usage(&self) -> PoolUsage {
        *lock(&self.usage)
    }

    /// Finishes removing what a crash left pending, resumes the volumes a crash left
    /// suspended (mid-snapshot or mid-grow, with the table they had), and activates
    /// those a host reboot deactivated (device-mapper tables do not outlive the kernel).
    async fn recover(&self) {
        let records = lock(&self.records).clone();
        for (kind, devices) in [
            (Kind::Volume, &records.volumes),
            (Kind::Snapshot, &records.snapshots),
        ] {
            for (id, device) in devices.iter().filter(|(_, d)| d.pending) {
                tracing::info!(%id, kind = kind.noun(), "removing a thin device a restart cut short");
                if let Err(e) = self.discard(kind, *id, device.dev_id).await {
                    tracing::warn!(%id, error = %e.message, "cannot remove a half-made thin device; the next start retries");
                }
            }
        }
        for (id, device) in records.volumes.iter().filter(|(_, d)| !d.pending) {
            let name = device_name(*id);
            let ready = if self.is_active(*id) {
                // Both are no-ops on a device that is neither suspended nor reloaded.
                match self.dmsetup(&["clear", &name]).await {
                    Ok(_) => self.dmsetup(&["resume", &name]).await.map(drop),
                    Err(e) => Err(e),
                }
            } else {
                self.activate(*id, device.dev_id, device.size_gb).await
            };
            if let Err(e) = ready {
                tracing::warn!(%id, error = %e.message, "cannot activate or resume a thin volume; VMs cannot use it until it is");
            }
        }
    }

    fn device_path(&self, id: Uuid) -> PathBuf {
        self.mapper_dir.join(device_name(id))
    }

    fn is_active(&self, id: Uuid) -> bool {
        self.device_path(id).exists()
    }

    /// The `thin` target of thin device `dev_id` at `size_gb`.
    fn thin_table(&self, dev_id: u32, size_gb: u64) -> String {
        let pool = self.mapper_dir.join(&self.pool);
        format!("0 {} thin {} {dev_id}", size_gb << 21, pool.display())
    }

    async fn dmsetup(&self, args: &[&str]) -> Result<String, DriverError> {
        let out = execute(&self.dmsetup, args, DMSETUP_TIMEOUT)
            .await
            .map_err(|e| store_failed(e.to_string()))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn message(&self, message: &str) -> Result<(), DriverError> {
        self.dmsetup(&["message", &self.pool, "0", message])
            .await
            .map(drop)
    }

    /// Deletes thin device `dev_id`; one the pool does not have is deleted already.
    async fn delete_thin(&self, dev_id: u32) -> Result<(), DriverError> {
        match self.message(&format!("delete {dev_id}")).await {
            Err(e) if !e.message.contains(NO_SUCH_THIN) => Err(e),
            _ => Ok(()),
        }
    }

    /// Deactivates a volume's device; `--retry` rides out udev's probes, which hold a
    /// device open briefly after QEMU released it (dmsetup(8), "remove").
    async fn remove_device(&self, id: Uuid) -> Result<(), DriverError> {
        self.dmsetup(&["remove", "--retry", &device_name(id)])
            .await
            .map(drop)
    }

    async fn activate(&self, id: Uuid, dev_id: u32, size_gb: u64) -> Result<(), DriverError> {
        let table = self.thin_table(dev_id, size_gb);
        self.dmsetup(&["create", &device_name(id), "--table", &table])
            .await
            .map(drop)
    }

    /// Reads the pool's block size and use (its `table` and `status`).
    async fn refresh_usage(&self) -> Result<PoolUsage, DriverError> {
        let in_pool = |e: String| store_failed(format!("thin pool {}: {e}", self.pool));
        let table = self.dmsetup(&["table", &self.pool]).await?;
        let block_sectors = parse_pool_table(&table).map_err(in_pool)?;
        let status = self.dmsetup(&["status", &self.pool]).await?;
        let status = parse_pool_status(&status).map_err(in_pool)?;
        if status.mode != "rw" {
            tracing::warn!(pool = %self.pool, mode = %status.mode, "the thin pool is not read-write: writes to volumes fail or wait; grow or repair it");
        }
        if status.needs_check {
            tracing::warn!(pool = %self.pool, "the thin pool needs a metadata check (thin_check)");
        }
        let usage = PoolUsage {
            block_sectors,
            used_blocks: status.used_blocks,
            total_blocks: status.total_blocks,
        };
        *lock(&self.usage) = usage;
        Ok(usage)
    }

    /// Reads the pool's use after a change; a failure keeps the last reading.
    async fn refresh_usage_after_change(&self) {
        if let Err(e) = self.refresh_usage().await {
            tracing::warn!(error = %e.message, "cannot read the thin pool's use");
        }
    }

    fn record(&self, kind: Kind, id: Uuid) -> Option<ThinDevice> {
        lock(&self.records).get(kind, id)
    }

    /// The complete device `kind`/`id`.
    fn ready(&self, kind: Kind, id: Uuid) -> Result<ThinDevice, DriverError> {
        match self.record(kind, id) {
            None => Err(not_found(kind.noun(), id)),
            Some(device) if device.pending => Err(busy(kind, id)),
            Some(device) => Ok(device),
        }
    }

    /// Changes the records on disk, then in memory (which stays as it was if the write
    /// fails).
    fn update<T>(&self, change: impl FnOnce(&mut Records) -> T) -> Result<T, DriverError> {
        let mut records = lock(&self.records);
        let mut changed = records.clone();
        let out = change(&mut changed);
        let json = serde_json::to_vec_pretty(&changed).map_err(|e| store_failed(e.to_string()))?;
        yunji_common::fsutil::write_atomic(&self.record_path, &json, 0o600).map_err(|e| {
            store_failed(format!(
                "cannot record the thin volumes in {}: {e}",
                self.record_path.display()
            ))
        })?;
        *records = changed;
        Ok(out)
    }

    fn set_pending(&self, kind: Kind, id: Uuid, pending: bool) -> Result<(), DriverError> {
        self.update(|r| {
            if let Some(device) = r.of(kind).get_mut(&id) {
                device.pending = pending;
            }
        })
    }

    /// The lowest id neither recorded nor found taken.
    fn free_dev_id(&self, records: &Records) -> Result<u32, DriverError> {
        let taken = records.dev_ids();
        let foreign = lock(&self.foreign_ids);
        (0..=MAX_DEV_ID)
            .find(|id| !taken.contains(id) && !foreign.contains(id))
            .ok_or_else(|| store_failed(format!("thin pool {} has no free device id", self.pool)))
    }

    /// Records a new device as pending under a free id before the pool hears of it, so
    /// a crash leaves a record to clean up by.
    fn reserve(
        &self,
        kind: Kind,
        id: Uuid,
        size_gb: u64,
        volume_id: Option<Uuid>,
    ) -> Result<u32, DriverError> {
        self.update(|r| {
            let dev_id = self.free_dev_id(r)?;
            r.of(kind).insert(
                id,
                ThinDevice {
                    dev_id,
                    size_gb,
                    volume_id,
                    pending: true,
                    shared: false,
                },
            );
            Ok::<u32, DriverError>(dev_id)
        })?
    }

    /// Sends `create_thin` (or `create_snap` of `origin`) for the pending device
    /// `kind`/`id`, moving it to another id while the pool answers its id is taken.
    async fn create_in_pool(
        &self,
        kind: Kind,
        id: Uuid,
        mut dev_id: u32,
        origin: Option<u32>,
    ) -> Result<u32, DriverError> {
        for _ in 0..ID_ATTEMPTS {
            let message = match origin {
                None => format!("create_thin {dev_id}"),
                Some(origin) => format!("create_snap {dev_id} {origin}"),
            };
            match self.message(&message).await {
                Ok(()) => return Ok(dev_id),
                Err(e) if e.message.contains(TAKEN) => {
                    tracing::warn!(pool = %self.pool, dev_id, "a thin device id is taken by a device this agent did not make; trying another");
                    lock(&self.foreign_ids).insert(dev_id);
                    dev_id = self.update(|r| {
                        let dev_id = self.free_dev_id(r)?;
                        if let Some(device) = r.of(kind).get_mut(&id) {
                            device.dev_id = dev_id;
                        }
                        Ok::<u32, DriverError>(dev_id)
                    })??;
                }
                Err(e) => return Err(e),
            }
        }
        Err(store_failed(format!(
            "thin pool {} answered {ID_ATTEMPTS} device ids as taken; is another volume \
             manager using it?",
            self.pool
        )))
    }

    /// Removes what exists of device `kind`/`id`, then its record: the volume's device if
    /// active, then the thin device (one never made is fine).
    async fn discard(&self, kind: Kind, id: Uuid, dev_id: u32) -> Result<(), DriverError> {
        if kind == Kind::Volume && self.is_active(id) {
            self.remove_device(id).await?;
        }
        self.delete_thin(dev_id).await?;
        self.update(|r| {
            r.of(kind).remove(&id);
        })
    }

    /// Undoes a failed make of `kind`/`id`; answers `error`.
    async fn undo(&self, kind: Kind, id: Uuid, error: DriverError) -> DriverError {
        let Some(device) = self.record(kind, id) else {
            return error;
        };
        match self.discard(kind, id, device.dev_id).await {
            Ok(()) => error,
            Err(cleanup) => with_cleanup_failure(error, cleanup),
        }
    }

    /// Marks `kind`/`id` complete again after a failed removal; answers `error`.
    fn restore(&self, kind: Kind, id: Uuid, error: DriverError) -> DriverError {
        match self.set_pending(kind, id, false) {
            Ok(()) => error,
            Err(cleanup) => with_cleanup_failure(error, cleanup),
        }
    }

    /// Makes the thin device of pending volume `id` and activates it with its content.
    async fn make_volume(
        &self,
        id: Uuid,
        dev_id: u32,
        size_gb: u64,
        origin: Option<u32>,
        source: StoreSource<'_>,
    ) -> Result<(), DriverError> {
        // The origin is a snapshot, never active: there is no device to suspend.
        let dev_id = self
            .create_in_pool(Kind::Volume, id, dev_id, origin)
            .await?;
        self.activate(id, dev_id, size_gb).await?;
        if let StoreSource::Image { path, format } = source {
            let target = self.device_path(id);
            // A new thin device reads as zeros: skipping them keeps the image's holes
            // unprovisioned.
            let convert: [&OsStr; 10] = [
                "convert".as_ref(),
                "-q".as_ref(),
                "-f".as_ref(),
                format.as_ref(),
                "-O".as_ref(),
                "raw".as_ref(),
                "-n".as_ref(),
                "--target-is-zero".as_ref(),
                path.as_os_str(),
                target.as_os_str(),
            ];
            execute("qemu-img", convert, COPY_TIMEOUT)
                .await
                .map_err(|e| store_failed(e.to_string()))?;
        }
        Ok(())
    }

    /// Swaps a device's table for one of `size_gb`. The table is loaded before the device
    /// is suspended, so a refused table never stops its I/O; a failure later leaves the
    /// old table live.
    async fn resize(&self, name: &str, dev_id: u32, size_gb: u64) -> Result<(), DriverError> {
        let table = self.thin_table(dev_id, size_gb);
        self.dmsetup(&["reload", name, "--table", &table]).await?;
        if let Err(e) = self.dmsetup(&["suspend", name]).await {
            return Err(match self.dmsetup(&["clear", name]).await {
                Ok(_) => e,
                Err(cleanup) => with_cleanup_failure(e, cleanup),
            });
        }
        if let Err(e) = self.dmsetup(&["resume", name]).await {
            // Suspended, the VM's I/O waits: drop the new table and resume the old one.
            let _ = self.dmsetup(&["clear", name]).await;
            return Err(match self.dmsetup(&["resume", name]).await {
                Ok(_) => e,
                Err(_) => store_failed(format!(
                    "{}; {name} is left suspended and its I/O waits: run `dmsetup resume \
                     {name}`",
                    e.message
                )),
            });
        }
        Ok(())
    }

    /// Resumes a device suspended for a snapshot, trying twice: its I/O waits meanwhile.
    async fn resume_origin(&self, name: &str) -> Result<(), DriverError> {
        if self.dmsetup(&["resume", name]).await.is_ok() {
            return Ok(());
        }
        self.dmsetup(&["resume", name])
            .await
            .map(drop)
            .map_err(|e| {
                store_failed(format!(
                    "{}; {name} is left suspended and its I/O waits: run `dmsetup resume {name}`",
                    e.message
                ))
            })
    }
}

impl VolumeStore for ThinStore {
    fn kind(&self) -> DiskDriver {
        DiskDriver::DeviceMapper
    }

    /// The pool's data space: volumes are refused beyond it, so it never runs out.
    fn capacity_gb(&self) -> u64 {
        self.usage().total_bytes() >> 30
    }

    fn provisioned_gb(&self) -> u64 {
        let records = lock(&self.records);
        records
            .volumes
            .values()
            .chain(records.snapshots.values())
            .map(|d| d.size_gb)
            .sum()
    }

    fn volumes(&self) -> Vec<(Uuid, u64)> {
        let records = lock(&self.records);
        records
            .volumes
            .iter()
            .filter(|(_, d)| !d.pending)
            .map(|(id, d)| (*id, d.size_gb))
            .collect()
    }

    fn snapshots(&self) -> Vec<SnapshotInventory> {
        let records = lock(&self.records);
        records
            .snapshots
            .iter()
            .filter(|(_, d)| !d.pending)
            .map(|(id, d)| SnapshotInventory {
                id: *id,
                volume_id: d.volume_id.unwrap_or_default(),
                size_gb: d.size_gb,
            })
            .collect()
    }

    fn size_gb(&self, id: Uuid) -> Option<u64> {
        self.ready(Kind::Volume, id).ok().map(|d| d.size_gb)
    }

    fn open(&self, id: Uuid) -> Result<(PathBuf, &'static str, bool), DriverError> {
        self.ready(Kind::Volume, id)?;
        let path = self.device_path(id);
        if !self.is_active(id) {
            return Err(store_failed(format!(
                "volume {id}'s thin device {} is not active (see the agent's log from its \
                 start); restart the agent to activate it",
                path.display()
            )));
        }
        Ok((path, "raw", true))
    }

    fn shared(&self, id: Uuid) -> bool {
        self.record(Kind::Volume, id).is_some_and(|v| v.shared)
    }

    async fn create(
        &self,
        id: Uuid,
        size_gb: u64,
        source: StoreSource<'_>,
        shared: bool,
    ) -> Result<(), DriverError> {
        if self.record(Kind::Volume, id).is_some() {
            return Err(busy(Kind::Volume, id));
        }
        // Refused before anything is made.
        let origin = match source {
            StoreSource::Snapshot(snapshot_id) => {
                let snapshot = self.ready(Kind::Snapshot, snapshot_id)?;
                fits(snapshot.size_gb << 30, size_gb)?;
                Some(snapshot.dev_id)
            }
            StoreSource::Image { path, .. } => {
                fits(images::virtual_size(path).await?, size_gb)?;
                None
            }
            StoreSource::Blank => None,
        };
        let dev_id = self.reserve(Kind::Volume, id, size_gb, None)?;
        let made = self
            .make_volume(id, dev_id, size_gb, origin, source)
            .await
            .and_then(|()| {
                self.update(|r| {
                    if let Some(device) = r.volumes.get_mut(&id) {
                        device.shared = shared;
                    }
                })
            })
            .and_then(|()| self.set_pending(Kind::Volume, id, false));
        if let Err(e) = made {
            return Err(self.undo(Kind::Volume, id, e).await);
        }
        self.refresh_usage_after_change().await;
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> Result<(), DriverError> {
        let Some(volume) = self.record(Kind::Volume, id) else {
            return Ok(());
        };
        if volume.pending {
            return Err(busy(Kind::Volume, id));
        }
        self.set_pending(Kind::Volume, id, true)?;
        let was_active = self.is_active(id);
        if was_active && let Err(e) = self.remove_device(id).await {
            return Err(self.restore(Kind::Volume, id, e));
        }
        if let Err(e) = self.delete_thin(volume.dev_id).await {
            // The thin device is whole: bring the volume back as it was.
            let back = if was_active {
                self.activate(id, volume.dev_id, volume.size_gb).await
            } else {
                Ok(())
            };
            return Err(match back {
                Ok(()) => self.restore(Kind::Volume, id, e),
                Err(cleanup) => with_cleanup_failure(e, cleanup),
            });
        }
        self.update(|r| {
            r.volumes.remove(&id);
        })?;
        self.refresh_usage_after_change().await;
        Ok(())
    }

    async fn grow(&self, id: Uuid, size_gb: u64, _live: bool) -> Result<(), DriverError> {
        // Live or not, the table grows: a running VM's QEMU then sees the device's new
        // size (block_resize cannot grow a block device itself).
        let volume = self.ready(Kind::Volume, id)?;
        let name = device_name(id);
        self.resize(&name, volume.dev_id, size_gb).await?;
        let recorded = self.update(|r| {
            if let Some(device) = r.volumes.get_mut(&id) {
                device.size_gb = size_gb;
            }
        });
        if let Err(e) = recorded {
            // No VM was told of the new size yet: shrinking back loses nothing.
            return Err(
                match self.resize(&name, volume.dev_id, volume.size_gb).await {
                    Ok(()) => e,
                    Err(cleanup) => with_cleanup_failure(e, cleanup),
                },
            );
        }
        self.refresh_usage_after_change().await;
        Ok(())
    }

    async fn snapshot(&self, id: Uuid, volume_id: Uuid) -> Result<(), DriverError> {
        let volume = self.ready(Kind::Volume, volume_id)?;
        if self.record(Kind::Snapshot, id).is_some() {
            return Err(busy(Kind::Snapshot, id));
        }
        let dev_id = self.reserve(Kind::Snapshot, id, volume.size_gb, Some(volume_id))?;
        let origin = device_name(volume_id);
        // thin-provisioning.rst: an active origin must be suspended around create_snap,
        // or the snapshot may be corrupt (the kernel does not enforce it).
        if let Err(e) = self.dmsetup(&["suspend", &origin]).await {
            return Err(self.undo(Kind::Snapshot, id, e).await);
        }
        let made = self
            .create_in_pool(Kind::Snapshot, id, dev_id, Some(volume.dev_id))
            .await;
        let resumed = self.resume_origin(&origin).await;
        let made = match (made, resumed) {
            (Ok(_), Ok(())) => self.set_pending(Kind::Snapshot, id, false),
            (Err(e), Ok(())) | (Ok(_), Err(e)) => Err(e),
            (Err(e), Err(suspended)) => Err(DriverError {
                code: e.code,
                message: format!("{}; {}", e.message, suspended.message),
            }),
        };
        if let Err(e) = made {
            return Err(self.undo(Kind::Snapshot, id, e).await);
        }
        self.refresh_usage_after_change().await;
        Ok(())
    }

    async fn snapshot_delete(&self, id: Uuid) -> Result<(), DriverError> {
        let Some(snapshot) = self.record(Kind::Snapshot, id) else {
            return Ok(());
        };
        if snapshot.pending {
            return Err(busy(Kind::Snapshot, id));
        }
        self.set_pending(Kind::Snapshot, id, true)?;
        if let Err(e) = self.delete_thin(snapshot.dev_id).await {
            return Err(self.restore(Kind::Snapshot, id, e));
        }
        self.update(|r| {
            r.snapshots.remove(&id);
        })?;
        self.refresh_usage_after_change().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::FileExt;

    use super::*;

    const POOL: &str = "yunji-pool";
    /// 10 GiB of 64 KiB data blocks, as an operator would make it.
    const POOL_TABLE: &str = "0 20971520 thin-pool 7:0 7:1 128 32768 1 skip_block_zeroing";

    /// A thin pool in a temp dir, kept by the dmsetup stand-in (run through a symlink
    /// there, so its state lives beside it).
    struct Rig {
        dir: tempfile::TempDir,
    }

    /// What the pool and the store hold: thin ids, devices (table, suspended, inactive
    /// table) and the store's records.
    type State = (BTreeSet<u32>, BTreeMap<String, String>, Records);

    impl Rig {
        async fn new() -> Rig {
            let dir = tempfile::tempdir().unwrap();
            let standin =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dmsetup_standin/dmsetup");
            std::os::unix::fs::symlink(standin, dir.path().join("dmsetup")).unwrap();
            let rig = Rig { dir };
            rig.dm(&["create", POOL, "--table", POOL_TABLE])
                .await
                .unwrap();
            rig
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        async fn dm(&self, args: &[&str]) -> Result<String, String> {
            let dmsetup = self.path("dmsetup");
            execute(dmsetup.to_str().unwrap(), args, Duration::from_secs(10))
                .await
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                .map_err(|e| e.to_string())
        }

        async fn store(&self) -> ThinStore {
            ThinStore::load_with(
                &self.path("data"),
                POOL,
                self.path("dmsetup").to_str().unwrap(),
                &self.path("mapper"),
            )
            .await
            .unwrap()
        }

        /// The next dmsetup commands starting with each of `prefixes` fail, once each.
        fn fail_next(&self, prefixes: &[&str]) {
            std::fs::write(self.path("fail"), prefixes.join("\n") + "\n").unwrap();
        }

        fn failure_unused(&self) -> bool {
            self.path("fail").exists()
        }

        fn thin_ids(&self) -> BTreeSet<u32> {
            std::fs::read_dir(self.path("dm/pools/yunji-pool/thins"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
                .collect()
        }

        fn devices(&self) -> BTreeMap<String, String> {
            let mut devices = BTreeMap::new();
            for entry in std::fs::read_dir(self.path("dm/devices")).unwrap() {
                let dir = entry.unwrap().path();
                let mut about = std::fs::read_to_string(dir.join("table")).unwrap();
                if dir.join("suspended").exists() {
                    about.push_str("suspended\n");
                }
                if let Ok(inactive) = std::fs::read_to_string(dir.join("inactive")) {
                    about.push_str(&format!("inactive: {inactive}"));
                }
                let name = dir.file_name().unwrap().to_str().unwrap().to_string();
                devices.insert(name, about);
            }
            devices
        }

        fn records(&self) -> Records {
            std::fs::read(self.path("data").join(RECORD_FILE))
                .map(|json| serde_json::from_slice(&json).unwrap())
                .unwrap_or_default()
        }

        fn state(&self) -> State {
            (self.thin_ids(), self.devices(), self.records())
        }

        fn log(&self) -> String {
            std::fs::read_to_string(self.path("log")).unwrap()
        }
    }

    fn write_at(path: &Path, offset: u64, data: &[u8]) {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(data, offset).unwrap();
    }

    fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
        let mut data = vec![0; len];
        let file = std::fs::File::open(path).unwrap();
        file.read_exact_at(&mut data, offset).unwrap();
        data
    }

    fn size_of(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[tokio::test]
    async fn volumes_snapshots_and_clones_are_thin_devices_that_survive_a_restart() {
        let rig = Rig::new().await;
        let store = rig.store().await;
        let volume = Uuid::new_v4();
        store
            .create(volume, 1, StoreSource::Blank, false)
            .await
            .unwrap();
        let (path, format, block_device) = store.open(volume).unwrap();
        assert_eq!(path, rig.path("mapper").join(format!("yunji-vol-{volume}")));
        assert_eq!((format, block_device), ("raw", true));
        assert_eq!(size_of(&path), 1 << 30);
        write_at(&path, 4096, b"before");

        store.grow(volume, 2, true).await.unwrap();
        assert_eq!(size_of(&path), 2 << 30);
        assert_eq!(store.size_gb(volume), Some(2));
        let snapshot = Uuid::new_v4();
        store.snapshot(snapshot, volume).await.unwrap();
        write_at(&path, 4096, b"after!");
        let clone = Uuid::new_v4();
        store
            .create(clone, 3, StoreSource::Snapshot(snapshot), false)
            .await
            .unwrap();
        let clone_path = store.open(clone).unwrap().0;
        assert_eq!(size_of(&clone_path), 3 << 30);
        assert_eq!(
            read_at(&clone_path, 4096, 6),
            b"before",
            "the snapshot's data"
        );
        assert_eq!(store.provisioned_gb(), 2 + 2 + 3);
        assert_eq!(rig.thin_ids(), BTreeSet::from([0, 1, 2]));
        let log = rig.log();
        let name = device_name(volume);
        assert!(
            log.contains(&format!(
                "suspend {name}\nmessage yunji-pool 0 create_snap 1 0\nresume {name}\n"
            )),
            "the origin is suspended around create_snap:\n{log}"
        );
        assert!(
            log.contains(&format!(
                "reload {name} --table 0 4194304 thin {}/yunji-pool 0\nsuspend {name}\nresume {name}\n",
                rig.path("mapper").display()
            )),
            "grown by a reloaded table:\n{log}"
        );
        let active: Vec<String> = rig.devices().into_keys().collect();
        assert_eq!(
            active.len(),
            3,
            "the pool and two volumes; snapshots stay inactive"
        );

        // A host reboot: device-mapper forgets every device; the operator brings the pool
        // back, the agent its volumes.
        drop(store);
        for id in [volume, clone] {
            rig.dm(&["remove", &device_name(id)]).await.unwrap();
        }
        // The clone's activation fails: it is kept, but no VM can open it.
        rig.fail_next(&[&format!("create {}", device_name(clone))]);
        let store = rig.store().await;
        assert!(!rig.failure_unused());
        assert_eq!(store.size_gb(volume), Some(2));
        assert_eq!(store.size_gb(clone), Some(3));
        let inactive = store.open(clone).unwrap_err();
        assert!(
            inactive.message.contains("not active"),
            "{}",
            inactive.message
        );
        let snapshots = store.snapshots();
        assert_eq!(
            (
                snapshots[0].id,
                snapshots[0].volume_id,
                snapshots[0].size_gb
            ),
            (snapshot, volume, 2)
        );
        assert_eq!(size_of(&path), 2 << 30);
        assert_eq!(read_at(&path, 4096, 6), b"after!");

        store.delete(clone).await.unwrap();
        store.snapshot_delete(snapshot).await.unwrap();
        store.delete(volume).await.unwrap();
        assert!(rig.thin_ids().is_empty());
        let active: Vec<String> = rig.devices().into_keys().collect();
        assert_eq!(active, [POOL]);
        assert_eq!(store.provisioned_gb(), 0);
        assert!(!path.exists());
        // Deleting what is gone is done.
        store.delete(volume).await.unwrap();
    }

    #[tokio::test]
    async fn capacity_is_the_pools_data_space() {
        let rig = Rig::new().await;
        std::fs::write(rig.path("dm/pools/yunji-pool/used"), "16384\n").unwrap();
        let store = rig.store().await;
        assert_eq!(
            store.usage(),
            PoolUsage {
                block_sectors: 128,
                used_blocks: 16384,
                total_blocks: 163_840,
            }
        );
        assert_eq!(store.capacity_gb(), 10);
        assert_eq!(store.usage().used_bytes(), 1 << 30);
    }

    #[tokio::test]
    async fn a_pool_that_is_not_there_stops_the_start_with_what_to_do() {
        let rig = Rig::new().await;
        rig.dm(&["remove", POOL]).await.unwrap();
        let error = ThinStore::load_with(
            &rig.path("data"),
            POOL,
            rig.path("dmsetup").to_str().unwrap(),
            &rig.path("mapper"),
        )
        .await
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("No such device"), "{error}");
        assert!(error.contains("must be made and active"), "{error}");
        let error = ThinStore::load(&rig.path("data"), "/dev/mapper/x")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("device-mapper name"), "{error}");
    }

    #[test]
    fn pool_lines_are_read_as_the_kernel_writes_them() {
        // dm-thin's pool_status: the table, and the status of several kernel versions.
        assert_eq!(
            parse_pool_table("0 20971520 thin-pool 253:0 253:1 1024 0 1 skip_block_zeroing"),
            Ok(1024)
        );
        assert_eq!(
            parse_pool_table("0 20971520 thin-pool 253:0 253:1 128 32768 0"),
            Ok(128)
        );
        assert!(parse_pool_table("0 2097152 thin 253:2 1").is_err());
        let current = "0 20971520 thin-pool 1 18/4096 100/20480 - rw no_discard_passdown \
                       queue_if_no_space - 1024";
        assert_eq!(
            parse_pool_status(current),
            Ok(PoolStatus {
                used_blocks: 100,
                total_blocks: 20480,
                mode: "rw".into(),
                needs_check: false,
            })
        );
        let old = parse_pool_status("0 20971520 thin-pool 0 18/4096 5/163840 -").unwrap();
        assert_eq!((old.used_blocks, old.total_blocks), (5, 163_840));
        let full = parse_pool_status(
            "0 20971520 thin-pool 3 18/4096 163840/163840 - out_of_data_space \
             discard_passdown error_if_no_space needs_check 1024",
        )
        .unwrap();
        assert_eq!(full.mode, "out_of_data_space");
        assert!(full.needs_check);
        let failed = parse_pool_status("0 20971520 thin-pool Fail").unwrap_err();
        assert!(failed.contains("thin_check"), "{failed}");
        assert!(parse_pool_status("0 20971520 thin-pool 0 18/4096 x/y -").is_err());
    }

    #[tokio::test]
    async fn a_volume_from_an_image_is_the_image_converted_to_raw() {
        let rig = Rig::new().await;
        let store = rig.store().await;
        let raw = rig.path("image.raw");
        std::fs::File::create(&raw)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        write_at(&raw, 1 << 20, b"image!");
        let qcow2 = rig.path("image.qcow2");
        let convert = ["convert", "-q", "-f", "raw", "-O", "qcow2"];
        let paths = [raw.to_str().unwrap(), qcow2.to_str().unwrap()];
        execute("qemu-img", convert.iter().chain(&paths), COPY_TIMEOUT)
            .await
            .unwrap();

        let volume = Uuid::new_v4();
        let image = StoreSource::Image {
            path: &qcow2,
            format: "qcow2",
        };
        store.create(volume, 1, image, false).await.unwrap();
        let path = store.open(volume).unwrap().0;
        assert_eq!(size_of(&path), 1 << 30);
        assert_eq!(read_at(&path, 1 << 20, 6), b"image!");

        // The conversion failing (the data is not the format it is said to be) leaves
        // nothing; an image larger than the volume is refused before anything is made.
        let before = rig.state();
        let not_qcow2 = StoreSource::Image {
            path: &raw,
            format: "qcow2",
        };
        let error = store
            .create(Uuid::new_v4(), 1, not_qcow2, false)
            .await
            .unwrap_err();
        assert!(
            error.message.contains("qemu-img convert"),
            "{}",
            error.message
        );
        assert_eq!(rig.state(), before);
        let big = rig.path("big.qcow2");
        let create = ["create", "-q", "-f", "qcow2", big.to_str().unwrap(), "2G"];
        execute("qemu-img", create, COPY_TIMEOUT).await.unwrap();
        let big = StoreSource::Image {
            path: &big,
            format: "qcow2",
        };
        let error = store
            .create(Uuid::new_v4(), 1, big, false)
            .await
            .unwrap_err();
        assert_eq!(error.code, "bad-request", "{}", error.message);
        assert_eq!(rig.state(), before);
    }

    #[derive(Debug, Clone, Copy)]
    enum Op {
        CreateBlank,
        CreateFromSnapshot,
        Grow,
        Snapshot,
        Delete,
        SnapshotDelete,
    }

    #[tokio::test]
    async fn a_failure_at_any_step_leaves_nothing_half_made() {
        let rig = Rig::new().await;
        let store = rig.store().await;
        let volume = Uuid::new_v4();
        store
            .create(volume, 1, StoreSource::Blank, false)
            .await
            .unwrap();
        let snapshot = Uuid::new_v4();
        store.snapshot(snapshot, volume).await.unwrap();
        let name = device_name(volume);
        let cases = [
            (
                Op::CreateBlank,
                "message yunji-pool 0 create_thin".to_string(),
            ),
            (Op::CreateBlank, "create yunji-vol-".into()),
            (
                Op::CreateFromSnapshot,
                "message yunji-pool 0 create_snap".into(),
            ),
            (Op::CreateFromSnapshot, "create yunji-vol-".into()),
            (Op::Grow, format!("reload {name}")),
            (Op::Grow, format!("suspend {name}")),
            (Op::Grow, format!("resume {name}")),
            (Op::Snapshot, format!("suspend {name}")),
            (Op::Snapshot, "message yunji-pool 0 create_snap".into()),
            (Op::Delete, format!("remove --retry {name}")),
            (Op::Delete, "message yunji-pool 0 delete".into()),
            (Op::SnapshotDelete, "message yunji-pool 0 delete".into()),
        ];
        for (op, step) in cases {
            let before = rig.state();
            rig.fail_next(&[&step]);
            let result = match op {
                Op::CreateBlank => {
                    store
                        .create(Uuid::new_v4(), 1, StoreSource::Blank, false)
                        .await
                }
                Op::CreateFromSnapshot => {
                    let source = StoreSource::Snapshot(snapshot);
                    store.create(Uuid::new_v4(), 1, source, false).await
                }
                Op::Grow => store.grow(volume, 2, false).await,
                Op::Snapshot => store.snapshot(Uuid::new_v4(), volume).await,
                Op::Delete => store.delete(volume).await,
                Op::SnapshotDelete => store.snapshot_delete(snapshot).await,
            };
            assert!(!rig.failure_unused(), "{op:?} never ran `{step}`");
            let error = result.unwrap_err();
            assert!(
                error.message.contains("injected failure"),
                "{op:?} at `{step}`: {}",
                error.message
            );
            assert_eq!(rig.state(), before, "{op:?} failing at `{step}` left this");
            assert_eq!(store.size_gb(volume), Some(1));
        }

        // The origin failing to resume once is resumed again: the snapshot is made, and
        // nothing stays suspended.
        rig.fail_next(&[&format!("resume {name}")]);
        let again = Uuid::new_v4();
        store.snapshot(again, volume).await.unwrap();
        assert!(!rig.failure_unused());
        assert!(!rig.devices()[&name].contains("suspended"));
        assert_eq!(store.snapshots().len(), 2);
    }

    #[tokio::test]
    async fn a_restart_repairs_what_a_failed_undo_or_a_crash_left() {
        let rig = Rig::new().await;
        let store = rig.store().await;
        let empty = rig.state();

        // Activation fails, and so does deleting the thin device it made.
        rig.fail_next(&["create yunji-vol-", "message yunji-pool 0 delete"]);
        let volume = Uuid::new_v4();
        let error = store
            .create(volume, 1, StoreSource::Blank, false)
            .await
            .unwrap_err();
        assert!(
            error.message.contains("next start retries"),
            "{}",
            error.message
        );
        assert_eq!(
            store.size_gb(volume),
            None,
            "a half-made volume is not offered"
        );
        assert!(store.open(volume).is_err());
        assert_eq!(rig.thin_ids(), BTreeSet::from([0]));

        // A crash in the middle of a delete: the volume's record says pending.
        let deleted = Uuid::new_v4();
        store
            .create(deleted, 1, StoreSource::Blank, false)
            .await
            .unwrap();
        store.set_pending(Kind::Volume, deleted, true).unwrap();
        // A crash while growing a volume: its device suspended with a new table loaded.
        let grown = Uuid::new_v4();
        store
            .create(grown, 1, StoreSource::Blank, false)
            .await
            .unwrap();
        let name = device_name(grown);
        let table = store.thin_table(rig.records().volumes[&grown].dev_id, 2);
        rig.dm(&["reload", &name, "--table", &table]).await.unwrap();
        rig.dm(&["suspend", &name]).await.unwrap();
        drop(store);

        let store = rig.store().await;
        assert_eq!(
            store.provisioned_gb(),
            1,
            "only the grown volume, at its old size"
        );
        assert_eq!(size_of(&store.open(grown).unwrap().0), 1 << 30);
        assert_eq!(
            rig.devices()[&name],
            format!(
                "{}\n",
                store.thin_table(rig.records().volumes[&grown].dev_id, 1)
            ),
            "resumed with its old table, the new one dropped"
        );
        store.delete(grown).await.unwrap();
        let (thin_ids, devices, records) = rig.state();
        assert_eq!((thin_ids, devices), (empty.0, empty.1));
        assert_eq!(records, Records::default());
    }

    #[tokio::test]
    async fn ids_taken_by_devices_not_ours_are_skipped() {
        let rig = Rig::new().await;
        rig.dm(&["message", POOL, "0", "create_thin 0"])
            .await
            .unwrap();
        let store = rig.store().await;
        let volume = Uuid::new_v4();
        store
            .create(volume, 1, StoreSource::Blank, false)
            .await
            .unwrap();
        assert_eq!(rig.records().volumes[&volume].dev_id, 1);
        store.delete(volume).await.unwrap();
        assert_eq!(rig.thin_ids(), BTreeSet::from([0]), "not ours: kept");
    }

    #[tokio::test]
    async fn the_standin_refuses_what_dmsetup_and_the_kernel_refuse() {
        let rig = Rig::new().await;
        let pool = format!("{}/yunji-pool", rig.path("mapper").display());
        let thin = |id: &str| format!("0 2097152 thin {pool} {id}");
        rig.dm(&["message", POOL, "0", "create_thin 7"])
            .await
            .unwrap();
        let wrong: [&[&str]; 10] = [
            &["message", POOL, "create_thin 8"],
            &["message", POOL, "0", "create_thin 16777216"],
            &["message", POOL, "0", "create_thin 7"],
            &["message", POOL, "0", "create_snap 8 9"],
            &["message", POOL, "0", "set_transaction_id 0 1"],
            &["create", "v", "--table", &thin("")],
            &["create", "v", "--table", &thin("9")],
            &["create", "v"],
            &["reload", "nothing", "--table", &thin("7")],
            &["create", "p", "--table", "0 2048 thin-pool 7:2 7:3 100 0"],
        ];
        for args in wrong {
            assert!(rig.dm(args).await.is_err(), "accepted: dmsetup {args:?}");
        }
        rig.dm(&["create", "v", "--table", &thin("7")])
            .await
            .unwrap();
        let unsuspended = rig.dm(&["message", POOL, "0", "create_snap 8 7"]).await;
        assert!(unsuspended.unwrap_err().contains("not suspended"));
        let busy = rig.dm(&["message", POOL, "0", "delete 7"]).await;
        assert!(busy.unwrap_err().contains("Device or resource busy"));
        let pool_in_use = rig.dm(&["remove", POOL]).await;
        assert!(pool_in_use.unwrap_err().contains("Device or resource busy"));
    }
}
