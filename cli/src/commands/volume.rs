//! Cloud disks (B.4.1): create, delete, show, attach, detach, extend.

use clap::Subcommand;
use serde_json::json;
use yunji_client::volume::{Volume, VolumeCreate};
use yunji_client::{Client, Error};

use super::opt;
use crate::output::{Printer, col};
use crate::progress::wait_for;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Lists volumes (B.4.1.3).
    List,
    /// Shows a volume with its attachments (B.4.1.3).
    Show { volume: String },
    /// Creates a volume: blank, from an image or from a snapshot (B.4.1.1).
    Create {
        name: String,
        /// Size in GiB.
        #[arg(long)]
        size: u64,
        /// e.g. SATA or SSD.
        #[arg(long = "type")]
        volume_type: Option<String>,
        #[arg(long, conflicts_with = "snapshot")]
        image: Option<String>,
        #[arg(long)]
        snapshot: Option<String>,
        #[arg(long)]
        availability_zone: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// May be attached to several servers at once.
        #[arg(long)]
        multiattach: bool,
        /// Wait until it is available.
        #[arg(long)]
        wait: bool,
    },
    /// Deletes volumes (B.4.1.2).
    Delete {
        #[arg(required = true)]
        volumes: Vec<String>,
        #[arg(long)]
        wait: bool,
    },
    /// Attaches a volume to a server (B.4.1.4).
    Attach {
        volume: String,
        #[arg(long)]
        server: String,
        #[arg(long)]
        device: Option<String>,
        /// Wait until it is in-use.
        #[arg(long)]
        wait: bool,
    },
    /// Detaches a volume from a server (B.4.1.5).
    Detach {
        volume: String,
        #[arg(long)]
        server: String,
        #[arg(long)]
        wait: bool,
    },
    /// Grows a volume, live when attached (B.4.1.6).
    Extend {
        volume: String,
        /// The new size in GiB (larger than now).
        #[arg(long)]
        size: u64,
        #[arg(long)]
        wait: bool,
    },
}

async fn wait_volume(client: &Client, id: &str, wanted: &[&str]) -> Result<(), Error> {
    wait_for(&format!("volume {id}"), wanted, || async {
        Ok(client.volume(id).await?.status)
    })
    .await
    .map(drop)
}

impl VolumeCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            VolumeCommand::List => {
                let volumes = client.volumes().await?;
                out.list(
                    &volumes,
                    &[
                        col("ID", |v: &Volume| json!(v.id)),
                        col("Name", |v| json!(v.name())),
                        col("Status", |v| json!(v.status)),
                        col("Size", |v| json!(v.size)),
                        col("Type", |v| opt(&v.volume_type)),
                        col("Attached to", |v| json!(v.attached_to())),
                    ],
                );
            }
            VolumeCommand::Show { volume } => out.one(&client.volume(&volume).await?),
            VolumeCommand::Create {
                name,
                size,
                volume_type,
                image,
                snapshot,
                availability_zone,
                description,
                multiattach,
                wait,
            } => {
                let image_ref = match image {
                    Some(image) => Some(client.image(&image).await?.id),
                    None => None,
                };
                let request = VolumeCreate {
                    size,
                    name: Some(name),
                    description,
                    volume_type,
                    availability_zone,
                    image_ref,
                    snapshot_id: snapshot,
                    multiattach,
                };
                let volume = client.create_volume(&request).await?;
                if wait {
                    wait_volume(client, &volume.id, &["available"]).await?;
                }
                out.one(&client.volume(&volume.id).await?);
            }
            VolumeCommand::Delete { volumes, wait } => {
                for volume in volumes {
                    let id = client.volume(&volume).await?.id;
                    client.delete_volume(&id).await?;
                    if wait {
                        wait_volume(client, &id, &["DELETED"]).await?;
                    }
                }
            }
            VolumeCommand::Attach {
                volume,
                server,
                device,
                wait,
            } => {
                let volume = client.volume(&volume).await?.id;
                let server = client.server(&server).await?.id;
                client
                    .attach_volume(&server, &volume, device.as_deref())
                    .await?;
                if wait {
                    wait_volume(client, &volume, &["in-use"]).await?;
                }
                out.one(&client.volume(&volume).await?);
            }
            VolumeCommand::Detach {
                volume,
                server,
                wait,
            } => {
                let volume = client.volume(&volume).await?.id;
                let server = client.server(&server).await?.id;
                client.detach_volume(&server, &volume).await?;
                if wait {
                    wait_volume(client, &volume, &["available"]).await?;
                }
            }
            VolumeCommand::Extend { volume, size, wait } => {
                let current = client.volume(&volume).await?;
                client.extend_volume(&current.id, size).await?;
                if wait {
                    let settled = if current.attachments.is_empty() {
                        "available"
                    } else {
                        "in-use"
                    };
                    wait_for(&format!("volume {}", current.id), &[settled], || async {
                        let v = client.volume(&current.id).await?;
                        // Done once it has the new size and left `extending`.
                        Ok(if v.size >= size {
                            v.status
                        } else {
                            format!("{} ({} GiB)", v.status, v.size)
                        })
                    })
                    .await?;
                }
                out.one(&client.volume(&current.id).await?);
            }
        }
        Ok(())
    }
}
