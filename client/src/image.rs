//! Images (Glance v2, B.2.3): records, streamed upload, JSON-patch updates.

use std::path::Path;

use futures_util::TryStreamExt;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Client, Error, Extra, Service};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    #[serde(default)]
    pub visibility: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub disk_format: Option<String>,
    #[serde(default)]
    pub container_format: Option<String>,
    #[serde(default)]
    pub protected: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Image {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// A new image record (B.2.3.1).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageCreate {
    pub name: String,
    pub disk_format: String,
    pub container_format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_disk: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ram: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// One JSON-patch operation of an image update (B.2.3.5): `replace`, `add` or `remove`.
#[derive(Debug, Clone, Serialize)]
pub struct PatchOp {
    pub op: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Client {
    pub async fn images(&self) -> Result<Vec<Image>, Error> {
        self.get(Service::Image, "/images", "images").await
    }

    pub async fn image(&self, name_or_id: &str) -> Result<Image, Error> {
        self.find(
            Service::Image,
            ("/images", "/images"),
            ("", "images"),
            "image",
            name_or_id,
            |i: &Image| (&i.id, i.name()),
        )
        .await
    }

    pub async fn create_image(&self, request: &ImageCreate) -> Result<Image, Error> {
        self.call(Service::Image, Method::POST, "/images", request, "")
            .await
    }

    /// Streams the file at `path` as the image's data (B.2.3.2); `progress` is told how
    /// many bytes have gone so far. The file is never held whole in memory.
    pub async fn upload_image(
        &self,
        id: &str,
        path: &Path,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<(), Error> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| Error::File {
                path: path.display().to_string(),
                source,
            })?;
        let mut sent = 0u64;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).inspect_ok(
            move |chunk| {
                sent += chunk.len() as u64;
                progress(sent);
            },
        );
        let url = format!("{}/images/{id}/file", self.endpoint(Service::Image)?);
        let request = self
            .request(Service::Image, Method::PUT, &url)
            .header("Content-Type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream));
        self.exchange(Method::PUT, url, request)
            .await?
            .success()
            .map(drop)
    }

    /// Applies JSON-patch operations (B.2.3.5).
    pub async fn update_image(&self, id: &str, ops: &[PatchOp]) -> Result<Image, Error> {
        let url = format!("{}/images/{id}", self.endpoint(Service::Image)?);
        let request = self
            .request(Service::Image, Method::PATCH, &url)
            .header(
                "Content-Type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(json!(ops).to_string());
        let reply = self
            .exchange(Method::PATCH, url, request)
            .await?
            .success()?;
        crate::session::unwrap_key(reply, "")
    }

    pub async fn delete_image(&self, id: &str) -> Result<(), Error> {
        self.send(
            Service::Image,
            Method::DELETE,
            &format!("/images/{id}"),
            None,
        )
        .await
        .map(drop)
    }
}
