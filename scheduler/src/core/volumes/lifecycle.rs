//! Volumes: create (blank, from an image, from a snapshot), show, list, update, delete,
//! extend and the status actions; the node work runs in the background.

use std::collections::BTreeMap;

use chrono::Utc;
use uuid::Uuid;
use yunji_common::agent_api::{ImageSpec, VolumeSource, VolumeSpec};

use super::{check_quota, check_volume_size, parse_volume_id, volume_missing};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::error_chain;
use crate::core::policy::{Access, authorize, require_admin, require_project};
use crate::model::{
    Caller, Node, NodeState, Volume, VolumeFilter, VolumeUsage, volume_status as st,
};
use crate::store::Tx;

/// What `POST /volumes` asks for, after the HTTP layer parsed it.
#[derive(Debug, Clone, Default)]
pub struct VolumeCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub size_gb: Option<i64>,
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    pub image_ref: Option<String>,
    pub snapshot_id: Option<String>,
    pub multiattach: bool,
    pub metadata: BTreeMap<String, String>,
}

/// What `PUT /volumes/{id}` changes.
#[derive(Debug, Clone, Default)]
pub struct VolumeUpdate {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A list request: filters, sorting (`key`, descending) and paging.
#[derive(Debug, Clone, Default)]
pub struct VolumeListQuery {
    pub filter: VolumeFilter,
    pub all_tenants: bool,
    pub sort: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

pub struct VolumePage {
    pub volumes: Vec<Volume>,
    /// More volumes follow the last one: the view adds a `next` link.
    pub more: bool,
}

/// The status-only actions of `POST /volumes/{id}/action`.
#[derive(Debug, Clone)]
pub enum VolumeAction {
    Reserve,
    Unreserve,
    BeginDetaching,
    RollDetaching,
    SetBootable(bool),
    SetReadOnly(bool),
    ResetStatus(String),
}

/// The most volumes a page holds.
const MAX_PAGE: usize = 1000;
/// Cinder's statuses a volume may be deleted from.
const DELETABLE: &[&str] = &[
    st::AVAILABLE,
    st::ERROR,
    st::ERROR_EXTENDING,
    "error_restoring",
    "error_managing",
];

fn gib_of_bytes(bytes: i64) -> i64 {
    (bytes + (1 << 30) - 1) >> 30
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in metadata {
        if k.is_empty() || k.len() > 255 || v.len() > 255 {
            return Err(Error::BadRequest(
                "metadata keys must be 1 to 255 characters and values at most 255".into(),
            ));
        }
    }
    Ok(())
}

fn check_text(field: &str, value: &Option<String>) -> Result<()> {
    if value.as_ref().is_some_and(|v| v.len() > 255) {
        return Err(Error::BadRequest(format!(
            "{field} must be at most 255 characters"
        )));
    }
    Ok(())
}

/// The up node in `zone` with the most free storage that holds `size_gb` more, or the
/// given `host` only; decided inside the caller's transaction, so two creates never both
/// take the last room on a node.
pub(super) fn place(tx: &Tx, zone: &str, host: Option<&str>, size_gb: i64) -> Result<Option<Node>> {
    let held = tx.volume_gb_by_host()?;
    let mut best: Option<(i64, Node)> = None;
    for node in tx.nodes_list()? {
        let Some(status) = node.status.as_ref() else {
            continue;
        };
        let Some(storage) = status.storage.as_ref() else {
            continue;
        };
        if node.state != NodeState::Up
            || status.availability_zone != zone
            || host.is_some_and(|h| h != node.name)
        {
            continue;
        }
        let free = storage.capacity_gb as i64 - held.get(&node.name).copied().unwrap_or(0);
        if free >= size_gb && best.as_ref().is_none_or(|(f, _)| free > *f) {
            best = Some((free, node));
        }
    }
    Ok(best.map(|(_, n)| n))
}

impl Core {
    /// A volume the caller may see (404 otherwise, also for another project's).
    pub async fn volume_get(&self, caller: &Caller, id: &str, access: Access) -> Result<Volume> {
        let uuid = parse_volume_id(id)?;
        let volume = self
            .store
            .read(move |db| db.volume_get(uuid))
            .await?
            .ok_or_else(|| volume_missing(id))?;
        authorize(caller, &volume.project_id, access, &format!("Volume {id}"))?;
        Ok(volume)
    }

    /// Applies `change` to the stored volume in one transaction.
    pub(super) async fn volume_record(
        &self,
        id: Uuid,
        change: impl FnOnce(&mut Volume) + Send + 'static,
    ) -> Result<Option<Volume>> {
        self.store
            .write(move |tx| {
                let Some(mut volume) = tx.volume_get(id)? else {
                    return Ok::<_, Error>(None);
                };
                change(&mut volume);
                tx.volume_update(&volume)?;
                Ok(Some(volume))
            })
            .await
    }

    /// Lists volumes: the caller's project, or every project for an administrator
    /// asking for `all_tenants`; sorted and paged.
    pub async fn volumes_list(
        &self,
        caller: &Caller,
        query: VolumeListQuery,
    ) -> Result<VolumePage> {
        let mut filter = query.filter;
        if query.all_tenants {
            require_admin(caller, "listing the volumes of all projects")?;
        } else {
            filter.project_id = Some(require_project(caller)?.to_string());
        }
        if let Some(name) = filter.type_id.clone() {
            match self.volume_type_get(caller, &name).await {
                Ok(t) => filter.type_id = Some(t.id),
                // No such type: no volume has it.
                Err(Error::NotFound(_)) => {
                    return Ok(VolumePage {
                        volumes: Vec::new(),
                        more: false,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let mut volumes = self.store.read(move |db| db.volumes_list(&filter)).await?;
        for (key, _) in &query.sort {
            if !matches!(
                key.as_str(),
                "id" | "name"
                    | "status"
                    | "size"
                    | "created_at"
                    | "updated_at"
                    | "availability_zone"
                    | "bootable"
                    | "volume_type"
            ) {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Invalid sort key {key}; use id, name, status, \
                     size, created_at, updated_at, availability_zone, bootable or volume_type"
                )));
            }
        }
        let sort = if query.sort.is_empty() {
            vec![("created_at".to_string(), true)]
        } else {
            query.sort
        };
        volumes.sort_by(|a, b| {
            for (key, desc) in &sort {
                let ord = match key.as_str() {
                    "id" => a.id.to_string().cmp(&b.id.to_string()),
                    "name" => a.name.cmp(&b.name),
                    "status" => a.status.cmp(&b.status),
                    "size" => a.size_gb.cmp(&b.size_gb),
                    "updated_at" => a.updated_at.cmp(&b.updated_at),
                    "availability_zone" => a.availability_zone.cmp(&b.availability_zone),
                    "bootable" => a.bootable.cmp(&b.bootable),
                    "volume_type" => a.type_name.cmp(&b.type_name),
                    _ => a.created_at.cmp(&b.created_at),
                };
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            // Ties in the order Cinder breaks them: newest, then by id.
            b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id))
        });
        if let Some(marker) = &query.marker {
            let at = volumes
                .iter()
                .position(|v| v.id.to_string() == *marker)
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Invalid input received: marker [{marker}] not found"
                    ))
                })?;
            volumes.drain(..=at);
        }
        let limit = query.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let more = volumes.len() > limit;
        volumes.truncate(limit);
        Ok(VolumePage { volumes, more })
    }

    /// Accepts a create; the node makes the volume in the background.
    pub async fn volume_create(&self, caller: &Caller, input: VolumeCreate) -> Result<Volume> {
        let project_id = require_project(caller)?.to_string();
        authorize(
            caller,
            &project_id,
            Access::Write,
            "volumes of this project",
        )?;
        check_text("name", &input.name)?;
        check_metadata(&input.metadata)?;
        if input.image_ref.is_some() && input.snapshot_id.is_some() {
            return Err(Error::BadRequest(
                "Invalid input received: give imageRef or snapshot_id, not both".into(),
            ));
        }
        // From a snapshot: the snapshot's node, zone and (by default) type and size.
        let snapshot = match &input.snapshot_id {
            Some(id) => {
                let snapshot = self.snapshot_get(caller, id).await?;
                if snapshot.status != st::AVAILABLE {
                    return Err(Error::BadRequest(format!(
                        "Invalid snapshot: Originating snapshot status must be one of \
                         'available' values; snapshot {id} is {}.",
                        snapshot.status
                    )));
                }
                let source = snapshot.volume_id;
                let volume = self
                    .store
                    .read(move |db| db.volume_get(source))
                    .await?
                    .ok_or_else(|| volume_missing(&source.to_string()))?;
                Some((snapshot, volume))
            }
            None => None,
        };
        let size_gb = match (input.size_gb, &snapshot) {
            (Some(size), _) => size,
            (None, Some((s, _))) => s.size_gb,
            (None, None) => {
                return Err(Error::BadRequest(
                    "Invalid input received: size is required: give the volume's size in GB".into(),
                ));
            }
        };
        if size_gb <= 0 {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Volume size '{size_gb}' must be an integer and \
                 greater than 0"
            )));
        }
        if let Some((s, _)) = &snapshot
            && size_gb < s.size_gb
        {
            return Err(Error::BadRequest(format!(
                "Invalid input received: Volume size '{size_gb}'GB cannot be smaller than the \
                 snapshot size {}GB. They must be >= original snapshot size.",
                s.size_gb
            )));
        }
        let image = match input
            .image_ref
            .as_deref()
            .map(crate::core::compute::servers::id_from_ref)
        {
            Some(id) => {
                let image = self.image_for_boot(caller, id).await.map_err(|e| match e {
                    Error::NotFound(_) => Error::BadRequest(format!(
                        "Invalid image identifier or unable to access requested image: {id}"
                    )),
                    other => other,
                })?;
                let needs = gib_of_bytes(image.virtual_size.or(image.size).unwrap_or(0))
                    .max(image.min_disk);
                if size_gb < needs {
                    return Err(Error::BadRequest(format!(
                        "Invalid input received: Size of specified image {needs}GB is larger \
                         than volume size {size_gb}GB."
                    )));
                }
                Some(image)
            }
            None => None,
        };
        let volume_type = match (&input.volume_type, &snapshot) {
            (Some(t), _) => self.volume_type_get(caller, t).await?,
            (None, Some((_, source))) => self.volume_type_get(caller, &source.type_id).await?,
            (None, None) => self.volume_type_default(caller).await?,
        };
        let zones: Vec<String> = self
            .nodes()
            .await?
            .into_iter()
            .filter_map(|n| n.status.map(|s| s.availability_zone))
            .collect();
        let zone = match (&input.availability_zone, &snapshot) {
            (Some(z), _) if !zones.contains(z) => {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Availability zone '{z}' is invalid; \
                     GET /volume/v3/os-availability-zone lists them."
                )));
            }
            (Some(z), Some((_, source))) if *z != source.availability_zone => {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: a volume from snapshot {} must be in zone {}, \
                     where the snapshot is.",
                    input.snapshot_id.as_deref().unwrap_or_default(),
                    source.availability_zone
                )));
            }
            (Some(z), _) => z.clone(),
            (None, Some((_, source))) => source.availability_zone.clone(),
            (None, None) => zones
                .first()
                .cloned()
                .unwrap_or_else(yunji_common::agent_api::default_zone),
        };
        let now = Utc::now();
        let volume = Volume {
            id: Uuid::new_v4(),
            project_id,
            user_id: caller.user_id.clone(),
            name: input.name,
            description: input.description,
            size_gb,
            status: st::CREATING.into(),
            type_id: volume_type.id.clone(),
            type_name: volume_type.name.clone(),
            availability_zone: zone,
            host: None,
            multiattach: input.multiattach,
            bootable: image.is_some() || snapshot.as_ref().is_some_and(|(_, v)| v.bootable),
            read_only: false,
            metadata: input.metadata,
            image_id: image.as_ref().map(|i| i.id.clone()),
            snapshot_id: snapshot.as_ref().map(|(s, _)| s.id),
            counted: true,
            attachments: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        let defaults = self.config.volume.default_quota;
        let pinned = snapshot.as_ref().and_then(|(_, v)| v.host.clone());
        let mut row = volume.clone();
        let volume = self
            .store
            .write(move |tx| {
                let quota = tx.volume_quota(&row.project_id, &defaults)?;
                check_volume_size(&quota, row.size_gb)?;
                let usage = tx.volume_usage(&row.project_id)?;
                let extra = VolumeUsage {
                    volumes: 1,
                    snapshots: 0,
                    gigabytes: row.size_gb,
                };
                check_quota(&quota, &usage, &extra)?;
                match place(tx, &row.availability_zone, pinned.as_deref(), row.size_gb)? {
                    Some(node) => row.host = Some(node.name),
                    // Cinder's answer when no backend has room: the volume errors.
                    None => {
                        row.status = st::ERROR.into();
                        row.counted = false;
                    }
                }
                tx.volume_insert(&row)?;
                Ok::<_, Error>(row)
            })
            .await?;
        if volume.host.is_some() {
            let core = self.arc()?;
            let (id, source) = match (&snapshot, image) {
                (Some((s, _)), _) => (volume.id, VolumeSource::Snapshot { snapshot_id: s.id }),
                (None, Some(i)) => (
                    volume.id,
                    VolumeSource::Image {
                        image: ImageSpec {
                            id: i.id,
                            disk_format: i.disk_format.unwrap_or_default(),
                            size: i.size.unwrap_or_default() as u64,
                            os_hash_value: i.os_hash_value,
                        },
                    },
                ),
                (None, None) => (volume.id, VolumeSource::Blank),
            };
            tokio::spawn(async move { core.volume_build(id, source).await });
        } else {
            tracing::warn!(id = %volume.id, zone = %volume.availability_zone, "no node has room for a volume");
        }
        Ok(volume)
    }

    /// Makes a volume on `node`, which first gets the image it is made from.
    pub(super) async fn volume_create_on(
        &self,
        node: &Node,
        spec: &VolumeSpec,
    ) -> Result<yunji_common::agent_api::VolumeInventory> {
        if let VolumeSource::Image { image } = &spec.source {
            self.image_push_if_missing(node, Some(image)).await?;
        }
        self.agents
            .volume_create(node, spec)
            .await
            .map_err(Error::internal)
    }

    /// Makes the volume on its node; on failure it turns `error`, gives its quota back
    /// and nothing is left on the node.
    async fn volume_build(self: std::sync::Arc<Self>, id: Uuid, source: VolumeSource) {
        let Ok(Some(volume)) = self.store.read(move |db| db.volume_get(id)).await else {
            return;
        };
        let Some(host) = volume.host.clone() else {
            return;
        };
        let spec = VolumeSpec {
            id,
            size_gb: volume.size_gb as u64,
            source,
            shared: volume.multiattach,
        };
        let result = match self.node_named(&host).await {
            Ok(node) => match self.volume_create_on(&node, &spec).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    // Leave nothing behind, whatever step failed.
                    let _ = self.agents.volume_delete(&node, id).await;
                    Err(error_chain(&e))
                }
            },
            Err(e) => Err(error_chain(&e)),
        };
        let outcome = match result {
            Ok(()) => {
                tracing::info!(%id, node = %host, "volume created");
                self.volume_record(id, |v| {
                    if v.status == st::CREATING {
                        v.status = st::AVAILABLE.into();
                    }
                })
                .await
            }
            Err(message) => {
                tracing::warn!(%id, node = %host, %message, "creating a volume failed");
                self.volume_record(id, |v| {
                    v.status = st::ERROR.into();
                    v.counted = false;
                    v.host = None;
                })
                .await
            }
        };
        if let Err(error) = outcome {
            tracing::error!(%id, error = %error_chain(&error), "recording a volume build failed");
        }
    }

    /// `PUT /volumes/{id}`: name, description, metadata (replaced).
    pub async fn volume_update(
        &self,
        caller: &Caller,
        id: &str,
        update: VolumeUpdate,
    ) -> Result<Volume> {
        let volume = self.volume_get(caller, id, Access::Write).await?;
        if let Some(name) = &update.name {
            check_text("name", name)?;
        }
        if let Some(metadata) = &update.metadata {
            check_metadata(metadata)?;
        }
        self.volume_record(volume.id, move |v| {
            if let Some(n) = update.name {
                v.name = n;
            }
            if let Some(d) = update.description {
                v.description = d;
            }
            if let Some(m) = update.metadata {
                v.metadata = m;
            }
        })
        .await?
        .ok_or_else(|| volume_missing(id))
    }

    /// Volume metadata: replace all (`PUT`) or merge (`POST`).
    pub async fn volume_metadata_set(
        &self,
        caller: &Caller,
        id: &str,
        items: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<BTreeMap<String, String>> {
        let volume = self.volume_get(caller, id, Access::Write).await?;
        check_metadata(&items)?;
        let updated = self
            .volume_record(volume.id, move |v| {
                if replace {
                    v.metadata = items;
                } else {
                    v.metadata.extend(items);
                }
            })
            .await?
            .ok_or_else(|| volume_missing(id))?;
        Ok(updated.metadata)
    }

    pub async fn volume_metadata_delete(&self, caller: &Caller, id: &str, key: &str) -> Result<()> {
        let volume = self.volume_get(caller, id, Access::Write).await?;
        if !volume.metadata.contains_key(key) {
            return Err(Error::NotFound(format!(
                "Volume {id} has no metadata with key {key}."
            )));
        }
        let key = key.to_string();
        self.volume_record(volume.id, move |v| {
            v.metadata.remove(&key);
        })
        .await?;
        Ok(())
    }

    /// Accepts a delete (`force`: `os-force_delete`, any status but attached); the node
    /// removes the volume in the background and the row (and its quota) goes with it.
    pub async fn volume_delete(&self, caller: &Caller, id: &str, force: bool) -> Result<()> {
        if force {
            require_admin(caller, "force-deleting a volume")?;
        }
        let volume = self.volume_get(caller, id, Access::Write).await?;
        let vid = volume.id;
        let host = self
            .store
            .write(move |tx| {
                let mut v = tx
                    .volume_get(vid)?
                    .ok_or_else(|| volume_missing(&vid.to_string()))?;
                let snapshots = tx.snapshot_count_of_volume(vid)?;
                let deletable = force || DELETABLE.contains(&v.status.as_str());
                if !deletable || !v.attachments.is_empty() || snapshots > 0 {
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: Volume status must be available or error or \
                         error_restoring or error_extending or error_managing and must not be \
                         migrating, attached, belong to a group, have snapshots or be \
                         disassociated from snapshots after volume transfer. Volume {vid} is {} \
                         with {} attachment(s) and {snapshots} snapshot(s).",
                        v.status,
                        v.attachments.len()
                    )));
                }
                v.status = st::DELETING.into();
                tx.volume_update(&v)?;
                Ok::<_, Error>(v.host)
            })
            .await?;
        let core = self.arc()?;
        tokio::spawn(async move { core.volume_destroy(vid, host).await });
        Ok(())
    }

    pub(super) async fn volume_destroy(self: std::sync::Arc<Self>, id: Uuid, host: Option<String>) {
        let result = match &host {
            Some(host) => match self.node_named(host).await {
                Ok(node) => self
                    .agents
                    .volume_delete(&node, id)
                    .await
                    .map_err(|e| error_chain(&e)),
                Err(e) => Err(error_chain(&e)),
            },
            None => Ok(()),
        };
        let outcome = match result {
            Ok(()) => {
                tracing::info!(%id, "volume deleted");
                self.store
                    .write(move |tx| Ok::<_, Error>(tx.volume_delete(id)?))
                    .await
            }
            Err(message) => {
                tracing::warn!(%id, %message, "deleting a volume failed on its node");
                self.volume_record(id, |v| v.status = st::ERROR_DELETING.into())
                    .await
                    .map(|_| ())
            }
        };
        if let Err(error) = outcome {
            tracing::error!(%id, error = %error_chain(&error), "recording a volume delete failed");
        }
    }

    /// `os-extend`: grows a volume; in use only from microversion 3.42 (`in_use_ok`).
    /// The new size holds quota and node room from the start; a failure on the node
    /// gives both back and returns the volume to the status it had.
    pub async fn volume_extend(
        &self,
        caller: &Caller,
        id: &str,
        new_size: i64,
        in_use_ok: bool,
    ) -> Result<()> {
        let volume = self.volume_get(caller, id, Access::Write).await?;
        let defaults = self.config.volume.default_quota;
        let vid = volume.id;
        let (old_size, previous, host) = self
            .store
            .write(move |tx| {
                let mut v = tx
                    .volume_get(vid)?
                    .ok_or_else(|| volume_missing(&vid.to_string()))?;
                let allowed = v.status == st::AVAILABLE || (in_use_ok && v.status == st::IN_USE);
                if !allowed {
                    let needs = if in_use_ok {
                        "'available' or 'in-use'"
                    } else {
                        "'available' (or 'in-use' with microversion 3.42 or later)"
                    };
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: Volume {vid} status must be {needs} to extend, \
                         currently {}.",
                        v.status
                    )));
                }
                if new_size <= v.size_gb {
                    return Err(Error::BadRequest(format!(
                        "Invalid input received: New size for extend must be greater than \
                         current size. (current: {}, extended: {new_size})",
                        v.size_gb
                    )));
                }
                super::migrate::refuse_while_moving(tx, &v, "extend")?;
                // Each VM using it would have to be told of the new size at once.
                if v.attachments.len() > 1 {
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: volume {vid} is attached to {} servers; detach it \
                         from all but one to extend it.",
                        v.attachments.len()
                    )));
                }
                let grow = new_size - v.size_gb;
                let quota = tx.volume_quota(&v.project_id, &defaults)?;
                check_volume_size(&quota, new_size)?;
                let usage = tx.volume_usage(&v.project_id)?;
                check_quota(
                    &quota,
                    &usage,
                    &VolumeUsage {
                        volumes: 0,
                        snapshots: 0,
                        gigabytes: grow,
                    },
                )?;
                if place(tx, &v.availability_zone, v.host.as_deref(), grow)?.is_none() {
                    return Err(Error::Conflict(format!(
                        "The node holding volume {vid} does not have {grow} GB free to extend it."
                    )));
                }
                let old = (v.size_gb, v.status.clone(), v.host.clone());
                v.size_gb = new_size;
                v.status = st::EXTENDING.into();
                tx.volume_update(&v)?;
                Ok::<_, Error>(old)
            })
            .await?;
        let core = self.arc()?;
        tokio::spawn(async move {
            let result = match &host {
                Some(h) => match core.node_named(h).await {
                    Ok(node) => core
                        .agents
                        .volume_extend(&node, vid, new_size as u64)
                        .await
                        .map(|_| ())
                        .map_err(|e| error_chain(&e)),
                    Err(e) => Err(error_chain(&e)),
                },
                None => Err("the volume has no node".into()),
            };
            if let Err(message) = &result {
                tracing::warn!(id = %vid, %message, "extending a volume failed; size and quota restored");
            }
            let ok = result.is_ok();
            let recorded = core
                .volume_record(vid, move |v| {
                    if !ok {
                        v.size_gb = old_size;
                    }
                    v.status = previous;
                })
                .await;
            if let Err(error) = recorded {
                tracing::error!(id = %vid, error = %error_chain(&error), "recording an extend failed");
            }
        });
        Ok(())
    }

    /// The status-only actions, with Cinder's rules for each.
    pub async fn volume_act(&self, caller: &Caller, id: &str, action: VolumeAction) -> Result<()> {
        if let VolumeAction::ResetStatus(status) = &action {
            require_admin(caller, "resetting a volume's status")?;
            if !st::RESETTABLE.contains(&status.as_str()) {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: {status} is not a volume status; use one of {}",
                    st::RESETTABLE.join(", ")
                )));
            }
        }
        let volume = self.volume_get(caller, id, Access::Write).await?;
        let vid = volume.id;
        self.store
            .write(move |tx| {
                let mut v = tx
                    .volume_get(vid)?
                    .ok_or_else(|| volume_missing(&vid.to_string()))?;
                let needs = |from: &[&str]| -> Result<()> {
                    if from.contains(&v.status.as_str()) {
                        Ok(())
                    } else {
                        Err(Error::BadRequest(format!(
                            "Invalid volume: Volume {vid} status must be {}, currently {}.",
                            from.join(" or "),
                            v.status
                        )))
                    }
                };
                match action {
                    VolumeAction::Reserve => {
                        needs(&[st::AVAILABLE])?;
                        v.status = st::ATTACHING.into();
                    }
                    VolumeAction::Unreserve => {
                        needs(&[st::ATTACHING, st::RESERVED])?;
                        v.status = if v.attachments.is_empty() {
                            st::AVAILABLE
                        } else {
                            st::IN_USE
                        }
                        .into();
                    }
                    VolumeAction::BeginDetaching => {
                        needs(&[st::IN_USE])?;
                        v.status = st::DETACHING.into();
                    }
                    VolumeAction::RollDetaching => {
                        needs(&[st::DETACHING])?;
                        v.status = st::IN_USE.into();
                    }
                    VolumeAction::SetBootable(b) => v.bootable = b,
                    VolumeAction::SetReadOnly(ro) => {
                        needs(&[st::AVAILABLE])?;
                        v.read_only = ro;
                    }
                    VolumeAction::ResetStatus(status) => v.status = status,
                }
                tx.volume_update(&v)?;
                Ok::<_, Error>(())
            })
            .await
    }

    /// The zones volumes may be created in: those of the nodes.
    pub async fn volume_zones(&self, caller: &Caller) -> Result<Vec<(String, bool)>> {
        require_project(caller)?;
        let mut zones: BTreeMap<String, bool> = BTreeMap::new();
        for node in self.nodes().await? {
            if let Some(status) = node.status {
                let up = node.state == NodeState::Up && status.storage.is_some();
                *zones.entry(status.availability_zone).or_default() |= up;
            }
        }
        Ok(zones.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sizes_round_up_to_whole_gigabytes() {
        assert_eq!(gib_of_bytes(0), 0);
        assert_eq!(gib_of_bytes(1), 1);
        assert_eq!(gib_of_bytes(1 << 30), 1);
        assert_eq!(gib_of_bytes((1 << 30) + 1), 2);
    }
}
