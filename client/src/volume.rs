//! Cloud disks (Cinder v3, B.4.1) and their quota and capacity (B.1.3.2).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Client, Error, Extra, Service};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    pub size: u64,
    #[serde(default)]
    pub volume_type: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub multiattach: bool,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Volume {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// `server on device`, one per attachment.
    pub fn attached_to(&self) -> String {
        self.attachments
            .iter()
            .map(|a| format!("{} on {}", a.server_id, a.device.as_deref().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub server_id: String,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub attachment_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A new volume (B.4.1.1).
#[derive(Debug, Clone, Default, Serialize)]
pub struct VolumeCreate {
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(rename = "imageRef", skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub multiattach: bool,
}

/// The project's volume quota and usage (B.1.3.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeLimits {
    pub max_total_volume_gigabytes: i64,
    pub total_gigabytes_used: i64,
    pub max_total_volumes: i64,
    pub total_volumes_used: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Client {
    pub async fn volumes(&self) -> Result<Vec<Volume>, Error> {
        self.get(Service::Volume, "/volumes/detail", "volumes")
            .await
    }

    pub async fn volume(&self, name_or_id: &str) -> Result<Volume, Error> {
        self.find(
            Service::Volume,
            ("/volumes", "/volumes/detail"),
            ("volume", "volumes"),
            "volume",
            name_or_id,
            |v: &Volume| (&v.id, v.name()),
        )
        .await
    }

    pub async fn create_volume(&self, request: &VolumeCreate) -> Result<Volume, Error> {
        self.call(
            Service::Volume,
            Method::POST,
            "/volumes",
            &json!({ "volume": request }),
            "volume",
        )
        .await
    }

    pub async fn delete_volume(&self, id: &str) -> Result<(), Error> {
        self.send(
            Service::Volume,
            Method::DELETE,
            &format!("/volumes/{id}"),
            None,
        )
        .await
        .map(drop)
    }

    /// Grows the volume to `new_size` GiB (B.4.1.6), live if attached.
    pub async fn extend_volume(&self, id: &str, new_size: u64) -> Result<(), Error> {
        self.volume_action(id, json!({ "os-extend": { "new_size": new_size } }))
            .await
    }

    async fn volume_action(&self, id: &str, body: Value) -> Result<(), Error> {
        self.send(
            Service::Volume,
            Method::POST,
            &format!("/volumes/{id}/action"),
            Some(&body),
        )
        .await
        .map(drop)
    }

    pub async fn volume_limits(&self) -> Result<VolumeLimits, Error> {
        self.absolute_limits(Service::Volume).await
    }
}
