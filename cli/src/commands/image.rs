//! Images (B.2.3): records, uploads with a progress bar, JSON-patch updates.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Subcommand;
use serde_json::json;
use yunji_client::image::{Image, ImageCreate, PatchOp};
use yunji_client::{Client, Error};

use crate::output::{Printer, col};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Lists images (B.2.3.6).
    List,
    /// Shows an image (B.2.3.4).
    Show { image: String },
    /// Creates an image record (B.2.3.1) and, with --file, uploads its data (B.2.3.2).
    Create {
        name: String,
        /// The disk image to upload.
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, default_value = "qcow2")]
        disk_format: String,
        #[arg(long, default_value = "bare")]
        container_format: String,
        /// public, private, shared or community.
        #[arg(long)]
        visibility: Option<String>,
        #[arg(long)]
        min_disk: Option<u64>,
        #[arg(long)]
        min_ram: Option<u64>,
        #[arg(long)]
        protected: bool,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Uploads data to an image record (B.2.3.2).
    Upload {
        image: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Updates an image (B.2.3.5): replaces, adds or removes attributes.
    Set {
        image: String,
        #[arg(long)]
        name: Option<String>,
        /// KEY=VALUE to add or replace; repeatable.
        #[arg(long = "property", value_parser = super::key_value)]
        properties: Vec<(String, String)>,
        /// KEY to remove; repeatable.
        #[arg(long = "remove-property")]
        remove: Vec<String>,
        #[arg(long, conflicts_with = "unprotected")]
        protected: bool,
        #[arg(long)]
        unprotected: bool,
    },
    /// Deletes images (B.2.3.3).
    Delete {
        #[arg(required = true)]
        images: Vec<String>,
    },
}

impl ImageCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            ImageCommand::List => {
                let images = client.images().await?;
                out.list(
                    &images,
                    &[
                        col("ID", |i: &Image| json!(i.id)),
                        col("Name", |i| json!(i.name())),
                        col("Status", |i| json!(i.status)),
                        col("Visibility", |i| json!(i.visibility)),
                        col("Size", |i| json!(i.size)),
                    ],
                );
            }
            ImageCommand::Show { image } => out.one(&client.image(&image).await?),
            ImageCommand::Create {
                name,
                file,
                disk_format,
                container_format,
                visibility,
                min_disk,
                min_ram,
                protected,
                tags,
            } => {
                let request = ImageCreate {
                    name,
                    disk_format,
                    container_format,
                    visibility,
                    min_disk,
                    min_ram,
                    protected: protected.then_some(true),
                    tags,
                };
                let image = client.create_image(&request).await?;
                if let Some(file) = file {
                    upload(client, &image.id, &file).await?;
                }
                out.one(&client.image(&image.id).await?);
            }
            ImageCommand::Upload { image, file } => {
                let id = client.image(&image).await?.id;
                upload(client, &id, &file).await?;
                out.one(&client.image(&id).await?);
            }
            ImageCommand::Set {
                image,
                name,
                properties,
                remove,
                protected,
                unprotected,
            } => {
                let current = client.image(&image).await?;
                let mut ops = Vec::new();
                if let Some(name) = name {
                    ops.push(PatchOp {
                        op: "replace".into(),
                        path: "/name".into(),
                        value: Some(json!(name)),
                    });
                }
                if protected || unprotected {
                    ops.push(PatchOp {
                        op: "replace".into(),
                        path: "/protected".into(),
                        value: Some(json!(protected)),
                    });
                }
                for (key, value) in properties {
                    // JSON patch: `add` only for an absent attribute, `replace` for a present one.
                    let op = if current.extra.contains_key(&key) {
                        "replace"
                    } else {
                        "add"
                    };
                    ops.push(PatchOp {
                        op: op.into(),
                        path: format!("/{key}"),
                        value: Some(json!(value)),
                    });
                }
                for key in remove {
                    ops.push(PatchOp {
                        op: "remove".into(),
                        path: format!("/{key}"),
                        value: None,
                    });
                }
                if ops.is_empty() {
                    return Err(Error::Lookup("nothing to change: give --name, --property, --remove-property or --protected".into()));
                }
                out.one(&client.update_image(&current.id, &ops).await?);
            }
            ImageCommand::Delete { images } => {
                for image in images {
                    let id = client.image(&image).await?.id;
                    client.delete_image(&id).await?;
                }
            }
        }
        Ok(())
    }
}

/// Streams `file` into the image with a progress bar, then says how fast it went.
async fn upload(client: &Client, id: &str, file: &Path) -> Result<(), Error> {
    let size = std::fs::metadata(file)
        .map_err(|source| Error::File {
            path: file.display().to_string(),
            source,
        })?
        .len();
    let bar = crate::progress::bytes_bar(size, "uploading");
    let started = Instant::now();
    let shown = bar.clone();
    let result = client
        .upload_image(id, file, move |sent| shown.set_position(sent))
        .await;
    bar.finish_and_clear();
    result?;
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    eprintln!(
        "uploaded {:.1} MiB in {secs:.1} s ({:.1} MiB/s)",
        size as f64 / 1048576.0,
        size as f64 / 1048576.0 / secs
    );
    Ok(())
}
