//! Boot from volume (`block_device_mapping_v2` at server create): the devices are
//! checked when the create is accepted, made on the server's node during the build
//! (volumes from an image, a snapshot or blank; or an existing volume), attached once
//! the server exists, and deleted with the server when `delete_on_termination`. A build
//! that fails removes every volume it made and detaches the ones it was given.

use std::collections::HashSet;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;
use yunji_common::agent_api::{ImageSpec, VolumeAttach, VolumeSource, VolumeSpec};

use super::lifecycle::place;
use super::{check_quota, check_volume_size};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::error_chain;
use crate::core::policy::Access;
use crate::model::{
    Caller, Node, Server, Volume, VolumeAttachment, VolumeUsage, volume_status as st,
};
use crate::store::Tx;

/// Where a block device's data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source_type", content = "uuid", rename_all = "snake_case")]
enum BootSource {
    Volume(Uuid),
    Image(String),
    Snapshot(Uuid),
    Blank,
}

/// One checked block device, as the server keeps it until its build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BootDevice {
    #[serde(flatten)]
    source: BootSource,
    size_gb: i64,
    boot_index: Option<i64>,
    delete_on_termination: bool,
    volume_type: Option<String>,
}

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("Block Device Mapping is Invalid: {why}"))
}

fn devices_of(server: &Server) -> Vec<BootDevice> {
    serde_json::from_value(server.block_devices.clone()).unwrap_or_default()
}

/// The node a server booting from an existing volume (or a snapshot) must run on: the
/// one holding it, since a volume attaches only on its own node.
pub(crate) fn boot_volume_host(tx: &Tx, server: &Server) -> Result<Option<String>> {
    for device in devices_of(server) {
        let host = match device.source {
            BootSource::Volume(id) => tx.volume_get(id)?.and_then(|v| v.host),
            BootSource::Snapshot(id) => match tx.snapshot_get(id)? {
                Some(s) => tx.volume_get(s.volume_id)?.and_then(|v| v.host),
                None => None,
            },
            _ => None,
        };
        if host.is_some() {
            return Ok(host);
        }
    }
    Ok(None)
}

impl Core {
    /// Checks a create's `block_device_mapping_v2` and returns what the server keeps
    /// (devices with `destination_type` `local` are the image boot itself and dropped).
    /// Without an image, one device must have boot index 0.
    pub(crate) async fn boot_devices_check(
        &self,
        caller: &Caller,
        mappings: &Value,
        has_image: bool,
    ) -> Result<Value> {
        let items = match mappings {
            Value::Null => Vec::new(),
            Value::Array(items) => items.clone(),
            _ => return Err(invalid("block_device_mapping_v2 must be a list")),
        };
        let mut devices = Vec::new();
        for item in &items {
            let Some(obj) = item.as_object() else {
                return Err(invalid("each block device must be an object"));
            };
            let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
            let int = |k: &str| -> Result<Option<i64>> {
                match obj.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Number(n)) => n
                        .as_i64()
                        .map(Some)
                        .ok_or_else(|| invalid(format!("{k} must be an integer"))),
                    Some(Value::String(s)) => s
                        .parse()
                        .map(Some)
                        .map_err(|_| invalid(format!("{k} must be an integer"))),
                    Some(_) => Err(invalid(format!("{k} must be an integer"))),
                }
            };
            let destination = text("destination_type").unwrap_or_else(|| "volume".into());
            if destination == "local" {
                continue;
            }
            if destination != "volume" {
                return Err(invalid(format!(
                    "destination_type {destination:?} must be volume or local"
                )));
            }
            let source_type = text("source_type").unwrap_or_default();
            let uuid = text("uuid");
            let size = int("volume_size")?;
            let boot_index = int("boot_index")?;
            let delete_on_termination = match obj.get("delete_on_termination") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => {
                    matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes")
                }
                Some(_) => return Err(invalid("delete_on_termination must be a boolean")),
            };
            let need_uuid = || {
                uuid.clone()
                    .ok_or_else(|| invalid(format!("source_type {source_type} needs a uuid")))
            };
            let (source, size_gb) = match source_type.as_str() {
                "volume" => {
                    let volume = self
                        .volume_get(caller, &need_uuid()?, Access::Write)
                        .await?;
                    if volume.status != st::AVAILABLE {
                        return Err(invalid(format!(
                            "volume {} is {}; it must be available",
                            volume.id, volume.status
                        )));
                    }
                    (BootSource::Volume(volume.id), volume.size_gb)
                }
                "image" => {
                    let id = need_uuid()?;
                    let image = self.image_for_boot(caller, &id).await?;
                    let needs = ((image.virtual_size.or(image.size).unwrap_or(0) + (1 << 30) - 1)
                        >> 30)
                        .max(image.min_disk);
                    let size =
                        size.ok_or_else(|| invalid("a volume from an image needs volume_size"))?;
                    if size < needs.max(1) {
                        return Err(invalid(format!(
                            "volume_size {size} GB is smaller than image {id}, which needs {needs} GB"
                        )));
                    }
                    (BootSource::Image(image.id), size)
                }
                "snapshot" => {
                    let snapshot = self.snapshot_get(caller, &need_uuid()?).await?;
                    if snapshot.status != st::AVAILABLE {
                        return Err(invalid(format!(
                            "snapshot {} is {}",
                            snapshot.id, snapshot.status
                        )));
                    }
                    let size = size.unwrap_or(snapshot.size_gb);
                    if size < snapshot.size_gb {
                        return Err(invalid(format!(
                            "volume_size {size} GB is smaller than snapshot {} ({} GB)",
                            snapshot.id, snapshot.size_gb
                        )));
                    }
                    (BootSource::Snapshot(snapshot.id), size)
                }
                "blank" => {
                    let size = size.ok_or_else(|| invalid("a blank volume needs volume_size"))?;
                    (BootSource::Blank, size)
                }
                other => {
                    return Err(invalid(format!(
                        "source_type {other:?} must be image, volume, snapshot or blank"
                    )));
                }
            };
            if size_gb <= 0 {
                return Err(invalid("volume_size must be greater than 0"));
            }
            devices.push(BootDevice {
                source,
                size_gb,
                boot_index,
                delete_on_termination,
                volume_type: text("volume_type"),
            });
        }
        let boots = devices.iter().filter(|d| d.boot_index == Some(0)).count();
        if boots > 1 || (!has_image && boots == 0) {
            return Err(invalid(
                "Boot sequence for the instance and image/block device mapping combination is \
                 not valid: give imageRef, or one block device with boot_index 0",
            ));
        }
        if devices
            .iter()
            .filter(|d| matches!(d.source, BootSource::Volume(_) | BootSource::Snapshot(_)))
            .count()
            > 1
        {
            // Each would pin the server to its own node.
            return Err(invalid("give at most one existing volume or snapshot"));
        }
        serde_json::to_value(&devices).map_err(Error::internal)
    }

    /// During the build, before the server is created on `node`: makes the volumes the
    /// server's devices ask for there and records their attachments. Returns the ids of
    /// the volumes it made, which a failed build deletes.
    pub(crate) async fn boot_volumes_prepare(
        &self,
        server: &Server,
        node: &Node,
    ) -> Result<Vec<Uuid>, String> {
        let mut made = Vec::new();
        let result = self.boot_volumes_make(server, node, &mut made).await;
        match result {
            Ok(()) => Ok(made),
            Err(e) => {
                let message = error_chain(&e);
                self.boot_volumes_cleanup(server.id, &made).await;
                Err(message)
            }
        }
    }

    async fn boot_volumes_make(
        &self,
        server: &Server,
        node: &Node,
        made: &mut Vec<Uuid>,
    ) -> Result<()> {
        let zone = node
            .status
            .as_ref()
            .map(|s| s.availability_zone.clone())
            .unwrap_or_default();
        let mut devices = devices_of(server);
        // The boot volume first, so it gets /dev/vda.
        devices.sort_by_key(|d| d.boot_index.map_or(i64::MAX, |i| i.max(0)));
        let mut used: HashSet<String> = HashSet::new();
        for (n, device) in devices.into_iter().enumerate() {
            let id = match device.source.clone() {
                BootSource::Volume(id) => id,
                source => {
                    let volume = self
                        .boot_volume_create(server, node, &zone, &device, source)
                        .await?;
                    made.push(volume);
                    volume
                }
            };
            let device_name = if n == 0 && device.boot_index == Some(0) {
                "/dev/vda".to_string()
            } else {
                (b'b'..=b'z')
                    .map(|c| format!("/dev/vd{}", c as char))
                    .find(|d| !used.contains(d))
                    .unwrap_or_default()
            };
            used.insert(device_name.clone());
            let attachment = VolumeAttachment {
                id: Uuid::new_v4(),
                volume_id: id,
                server_id: server.id,
                device: device_name,
                mode: "rw".into(),
                host_name: Some(node.name.clone()),
                status: "attaching".into(),
                attached_at: None,
                delete_on_termination: device.delete_on_termination,
            };
            let host = node.name.clone();
            self.store
                .write(move |tx| {
                    let mut v = tx.volume_get(id)?.ok_or_else(|| Error::Conflict(format!("volume {id} was deleted")))?;
                    if v.status != st::AVAILABLE {
                        return Err(Error::Conflict(format!("volume {id} is {}; it must be available", v.status)));
                    }
                    if v.host.as_deref() != Some(host.as_str()) {
                        return Err(Error::Conflict(format!(
                            "volume {id} lives on node {}, not on {host} where the server was placed",
                            v.host.as_deref().unwrap_or("(none)")
                        )));
                    }
                    tx.attachment_put(&attachment)?;
                    v.status = st::ATTACHING.into();
                    tx.volume_update(&v)?;
                    Ok::<_, Error>(())
                })
                .await?;
        }
        Ok(())
    }

    /// Makes one volume of a build on the server's node, waiting for it.
    async fn boot_volume_create(
        &self,
        server: &Server,
        node: &Node,
        zone: &str,
        device: &BootDevice,
        source: BootSource,
    ) -> Result<Uuid> {
        let type_name = device
            .volume_type
            .clone()
            .unwrap_or_else(|| self.config.volume.default_type.clone());
        let key = type_name.clone();
        let volume_type = self
            .store
            .read(move |db| db.volume_type_get(&key))
            .await?
            .ok_or_else(|| invalid(format!("volume type {type_name} does not exist")))?;
        let image = match &source {
            BootSource::Image(id) => self.image_get_any_for_volume(id).await?,
            _ => None,
        };
        let now = Utc::now();
        let volume = Volume {
            id: Uuid::new_v4(),
            project_id: server.project_id.clone(),
            user_id: server.user_id.clone(),
            name: Some(format!(
                "{}-{}",
                server.name,
                if device.boot_index == Some(0) {
                    "boot"
                } else {
                    "data"
                }
            )),
            description: Some(format!("made for server {}", server.id)),
            size_gb: device.size_gb,
            status: st::CREATING.into(),
            type_id: volume_type.id.clone(),
            type_name: volume_type.name.clone(),
            availability_zone: zone.to_string(),
            host: Some(node.name.clone()),
            multiattach: false,
            bootable: image.is_some(),
            read_only: false,
            metadata: Default::default(),
            image_id: image.as_ref().map(|i| i.id.clone()),
            snapshot_id: match source {
                BootSource::Snapshot(s) => Some(s),
                _ => None,
            },
            counted: true,
            attachments: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        let defaults = self.config.volume.default_quota;
        let row = volume.clone();
        let host = node.name.clone();
        self.store
            .write(move |tx| {
                let quota = tx.volume_quota(&row.project_id, &defaults)?;
                check_volume_size(&quota, row.size_gb)?;
                let usage = tx.volume_usage(&row.project_id)?;
                check_quota(
                    &quota,
                    &usage,
                    &VolumeUsage {
                        volumes: 1,
                        snapshots: 0,
                        gigabytes: row.size_gb,
                    },
                )?;
                if place(tx, &row.availability_zone, Some(&host), row.size_gb)?.is_none() {
                    return Err(Error::Conflict(format!(
                        "node {host} has no room for a {} GB volume",
                        row.size_gb
                    )));
                }
                tx.volume_insert(&row)?;
                Ok::<_, Error>(())
            })
            .await?;
        let spec = VolumeSpec {
            id: volume.id,
            size_gb: volume.size_gb as u64,
            source: match (source, image) {
                (BootSource::Snapshot(snapshot_id), _) => VolumeSource::Snapshot { snapshot_id },
                (_, Some(i)) => VolumeSource::Image {
                    image: ImageSpec {
                        id: i.id,
                        disk_format: i.disk_format.unwrap_or_default(),
                        size: i.size.unwrap_or_default() as u64,
                        os_hash_value: i.os_hash_value,
                    },
                },
                _ => VolumeSource::Blank,
            },
            shared: volume.multiattach,
        };
        let id = volume.id;
        match self.volume_create_on(node, &spec).await {
            Ok(_) => {
                self.volume_record(id, |v| v.status = st::AVAILABLE.into())
                    .await?;
                Ok(id)
            }
            Err(e) => {
                let _ = self.agents.volume_delete(node, id).await;
                self.store
                    .write(move |tx| Ok::<_, Error>(tx.volume_delete(id)?))
                    .await?;
                Err(Error::Conflict(format!(
                    "creating volume of {} GB failed: {}",
                    spec.size_gb,
                    error_chain(&e)
                )))
            }
        }
    }

    async fn image_get_any_for_volume(&self, id: &str) -> Result<Option<crate::model::Image>> {
        let key = id.to_string();
        Ok(self.store.read(move |db| db.image_get(&key)).await?)
    }

    /// After the server was created on its node: attaches its volumes there.
    pub(crate) async fn boot_volumes_attach(
        &self,
        server_id: Uuid,
        node: &Node,
    ) -> Result<(), String> {
        let attachments = self
            .server_attached_volumes(server_id)
            .await
            .map_err(|e| error_chain(&e))?;
        for mut attachment in attachments.into_iter().filter(|a| a.status == "attaching") {
            let request = VolumeAttach {
                server_id,
                device: attachment.device.clone(),
                read_only: false,
                limits: self
                    .volume_io_limits(attachment.volume_id)
                    .await
                    .map_err(|e| error_chain(&e))?,
            };
            self.agents
                .volume_attach(node, attachment.volume_id, &request)
                .await
                .map_err(|e| {
                    format!(
                        "attaching volume {} failed: {}",
                        attachment.volume_id,
                        error_chain(&e)
                    )
                })?;
            let vid = attachment.volume_id;
            self.store
                .write(move |tx| {
                    attachment.status = "attached".into();
                    attachment.attached_at = Some(Utc::now());
                    tx.attachment_put(&attachment)?;
                    if let Some(mut v) = tx.volume_get(vid)? {
                        v.status = st::IN_USE.into();
                        tx.volume_update(&v)?;
                    }
                    Ok::<_, Error>(())
                })
                .await
                .map_err(|e| error_chain(&e))?;
        }
        Ok(())
    }

    /// A failed build: detaches every volume of the server and deletes those it made.
    pub(crate) async fn boot_volumes_cleanup(&self, server_id: Uuid, made: &[Uuid]) {
        if let Err(error) = self.volumes_release_server(server_id).await {
            tracing::error!(server = %server_id, error = %error_chain(&error), "releasing the volumes of a failed build failed");
        }
        for id in made {
            let id = *id;
            let host = match self.store.read(move |db| db.volume_get(id)).await {
                Ok(Some(v)) => v.host,
                _ => continue,
            };
            if let Some(node) = match host {
                Some(h) => self.node_named(&h).await.ok(),
                None => None,
            } {
                let _ = self.agents.volume_delete(&node, id).await;
            }
            if let Err(error) = self
                .store
                .write(move |tx| Ok::<_, Error>(tx.volume_delete(id)?))
                .await
            {
                tracing::error!(volume = %id, error = %error_chain(&error), "removing a failed build's volume failed");
            }
        }
    }
}
