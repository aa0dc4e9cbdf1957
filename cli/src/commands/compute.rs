//! Servers (B.2.1) and flavors (B.2.2).

use std::collections::BTreeMap;

use base64::Engine;
use clap::{Args, Subcommand};
use serde_json::json;
use yunji_client::compute::{
    BlockDevice, FlavorCreate, Named, NetworkRequest, Server, ServerAction, ServerCreate,
};
use yunji_client::{Client, Error};

use crate::output::{Printer, col};
use crate::progress::wait_for;

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Lists servers (B.2.1.8).
    List {
        /// Every project's servers (admins).
        #[arg(long)]
        all_projects: bool,
    },
    /// Shows a server (B.2.1.3).
    Show { server: String },
    /// Creates a server (B.2.1.1).
    Create(Box<ServerCreateArgs>),
    /// Deletes servers (B.2.1.2).
    Delete {
        #[arg(required = true)]
        servers: Vec<String>,
        #[arg(long)]
        wait: bool,
    },
    /// Renames a server or changes its description (B.2.1.4).
    Set {
        server: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Starts a stopped server (B.2.1.5).
    Start {
        server: String,
        #[arg(long)]
        wait: bool,
    },
    /// Stops a server: ACPI power-down, forced off after a timeout (B.2.1.6).
    Stop {
        server: String,
        #[arg(long)]
        wait: bool,
    },
    /// Reboots a server, gracefully or (--hard) by reset (B.2.1.7).
    Reboot {
        server: String,
        #[arg(long)]
        hard: bool,
        #[arg(long)]
        wait: bool,
    },
    /// Live-migrates a server to another host (B.2.1.9; admins).
    Migrate {
        server: String,
        /// The target host; without it the scheduler picks one.
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        wait: bool,
    },
    /// Changes a server's flavor (B.2.1.10); confirm or revert afterwards.
    Resize {
        server: String,
        #[arg(long)]
        flavor: String,
        #[arg(long)]
        wait: bool,
    },
    /// Confirms a resize.
    ResizeConfirm {
        server: String,
        #[arg(long)]
        wait: bool,
    },
    /// Reverts a resize to the old flavor.
    ResizeRevert {
        server: String,
        #[arg(long)]
        wait: bool,
    },
    /// Makes an image of a server's disk (B.2.3.1).
    ImageCreate {
        server: String,
        #[arg(long)]
        name: String,
        /// Image metadata KEY=VALUE (e.g. description=…); repeatable.
        #[arg(long = "property", value_parser = super::key_value)]
        properties: Vec<(String, String)>,
        #[arg(long)]
        wait: bool,
    },
    /// The server's console log.
    Console {
        server: String,
        #[arg(long)]
        lines: Option<u32>,
    },
}

#[derive(Debug, Args)]
pub struct ServerCreateArgs {
    name: String,
    #[arg(long)]
    flavor: String,
    /// The image to boot (name or id); omit with --boot-volume.
    #[arg(long, required_unless_present = "boot_volume")]
    image: Option<String>,
    /// Boot from this existing volume instead of an image.
    #[arg(long, conflicts_with = "image")]
    boot_volume: Option<String>,
    /// A network (name or id) to put a port on; repeatable.
    #[arg(long = "network")]
    networks: Vec<String>,
    #[arg(long = "security-group")]
    security_groups: Vec<String>,
    /// Metadata KEY=VALUE; repeatable.
    #[arg(long = "property", value_parser = super::key_value)]
    properties: Vec<(String, String)>,
    /// A file whose content cloud-init reads as user data.
    #[arg(long)]
    user_data: Option<std::path::PathBuf>,
    #[arg(long)]
    availability_zone: Option<String>,
    #[arg(long)]
    key_name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Wait until the server is ACTIVE.
    #[arg(long)]
    wait: bool,
}

/// What `--wait` watches on a server: its task state while one runs, else its status.
async fn server_state(client: &Client, id: &str) -> Result<String, Error> {
    let server = client.server(id).await?;
    Ok(server.task_state.unwrap_or(server.status))
}

async fn wait_server(client: &Client, id: &str, wanted: &[&str]) -> Result<(), Error> {
    wait_for(&format!("server {id}"), wanted, || server_state(client, id))
        .await
        .map(drop)
}

fn server_columns() -> [crate::output::Column<Server>; 6] {
    [
        col("ID", |s: &Server| json!(s.id)),
        col("Name", |s| json!(s.name)),
        col("Status", |s| json!(s.status)),
        col("Networks", |s| json!(s.networks())),
        col("Image", |s| json!(s.image_id())),
        col("Flavor", |s| json!(s.flavor_id())),
    ]
}

impl ServerCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            ServerCommand::List { all_projects } => {
                let servers = if all_projects {
                    client.servers_all_projects().await?
                } else {
                    client.servers().await?
                };
                out.list(&servers, &server_columns());
            }
            ServerCommand::Show { server } => out.one(&client.server(&server).await?),
            ServerCommand::Create(args) => {
                let server = create(client, *args).await?;
                out.one(&server);
            }
            ServerCommand::Delete { servers, wait } => {
                for name in servers {
                    let server = client.server(&name).await?;
                    client.delete_server(&server.id).await?;
                    if wait {
                        wait_server(client, &server.id, &["DELETED"]).await?;
                    }
                }
            }
            ServerCommand::Set {
                server,
                name,
                description,
            } => {
                let id = client.server(&server).await?.id;
                out.one(
                    &client
                        .update_server(&id, name.as_deref(), description.as_deref())
                        .await?,
                );
            }
            ServerCommand::Start { server, wait } => {
                act(
                    client,
                    &server,
                    ServerAction::Start,
                    wait.then_some("ACTIVE"),
                )
                .await?
            }
            ServerCommand::Stop { server, wait } => {
                act(
                    client,
                    &server,
                    ServerAction::Stop,
                    wait.then_some("SHUTOFF"),
                )
                .await?
            }
            ServerCommand::Reboot { server, hard, wait } => {
                act(
                    client,
                    &server,
                    ServerAction::Reboot { hard },
                    wait.then_some("ACTIVE"),
                )
                .await?
            }
            ServerCommand::Migrate { server, host, wait } => {
                act(
                    client,
                    &server,
                    ServerAction::LiveMigrate { host },
                    wait.then_some("ACTIVE"),
                )
                .await?
            }
            ServerCommand::Resize {
                server,
                flavor,
                wait,
            } => {
                let flavor_ref = client.flavor(&flavor).await?.id;
                act(
                    client,
                    &server,
                    ServerAction::Resize { flavor_ref },
                    wait.then_some("VERIFY_RESIZE"),
                )
                .await?
            }
            ServerCommand::ResizeConfirm { server, wait } => {
                act(
                    client,
                    &server,
                    ServerAction::ConfirmResize,
                    wait.then_some("ACTIVE"),
                )
                .await?
            }
            ServerCommand::ResizeRevert { server, wait } => {
                act(
                    client,
                    &server,
                    ServerAction::RevertResize,
                    wait.then_some("ACTIVE"),
                )
                .await?
            }
            ServerCommand::ImageCreate {
                server,
                name,
                properties,
                wait,
            } => {
                let id = client.server(&server).await?.id;
                let action = ServerAction::CreateImage {
                    name,
                    metadata: properties.into_iter().collect(),
                };
                let image = client.server_action(&id, &action).await?.ok_or_else(|| {
                    Error::Lookup("the cloud did not say which image it is making".into())
                })?;
                if wait {
                    wait_for(&format!("image {image}"), &["active"], || async {
                        Ok(client.image(&image).await?.status)
                    })
                    .await?;
                }
                out.one(&client.image(&image).await?);
            }
            ServerCommand::Console { server, lines } => {
                let id = client.server(&server).await?.id;
                print!("{}", client.console_output(&id, lines).await?);
            }
        }
        Ok(())
    }
}

/// Runs an action and, if asked, waits for the state it leads to.
async fn act(
    client: &Client,
    server: &str,
    action: ServerAction,
    wait: Option<&str>,
) -> Result<(), Error> {
    let id = client.server(server).await?.id;
    client.server_action(&id, &action).await?;
    if let Some(wanted) = wait {
        wait_server(client, &id, &[wanted]).await?;
    }
    Ok(())
}

async fn create(client: &Client, args: ServerCreateArgs) -> Result<Server, Error> {
    let flavor_ref = client.flavor(&args.flavor).await?.id;
    let image_ref = match &args.image {
        Some(image) => Some(client.image(image).await?.id),
        None => None,
    };
    let mut block_device_mapping_v2 = Vec::new();
    if let Some(volume) = &args.boot_volume {
        block_device_mapping_v2.push(BlockDevice {
            source_type: "volume".into(),
            destination_type: "volume".into(),
            uuid: Some(client.volume(volume).await?.id),
            boot_index: 0,
            ..BlockDevice::default()
        });
    }
    let mut networks = Vec::new();
    for network in &args.networks {
        networks.push(NetworkRequest {
            uuid: Some(client.network(network).await?.id),
            ..NetworkRequest::default()
        });
    }
    let user_data = match &args.user_data {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| Error::File {
                path: path.display().to_string(),
                source,
            })?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        None => None,
    };
    let request = ServerCreate {
        name: args.name,
        flavor_ref,
        image_ref,
        networks,
        block_device_mapping_v2,
        metadata: args.properties.into_iter().collect::<BTreeMap<_, _>>(),
        user_data,
        security_groups: args
            .security_groups
            .into_iter()
            .map(|name| Named { name })
            .collect(),
        availability_zone: args.availability_zone,
        key_name: args.key_name,
        description: args.description,
    };
    let server = client.create_server(&request).await?;
    if args.wait {
        wait_server(client, &server.id, &["ACTIVE"]).await?;
        return client.server(&server.id).await;
    }
    Ok(server)
}

#[derive(Debug, Subcommand)]
pub enum FlavorCommand {
    /// Lists flavors (B.2.2.4).
    List,
    /// Shows a flavor (B.2.2.3).
    Show { flavor: String },
    /// Creates a flavor (B.2.2.1; admins).
    Create {
        name: String,
        #[arg(long)]
        vcpus: u64,
        /// Memory in MiB.
        #[arg(long)]
        ram: u64,
        /// Root disk in GiB.
        #[arg(long, default_value_t = 0)]
        disk: u64,
        #[arg(long)]
        id: Option<String>,
        /// Only projects given access may use it.
        #[arg(long)]
        private: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// Deletes flavors (B.2.2.2; admins).
    Delete {
        #[arg(required = true)]
        flavors: Vec<String>,
    },
}

impl FlavorCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        use yunji_client::compute::Flavor;
        match self {
            FlavorCommand::List => {
                let mut flavors = client.flavors().await?;
                flavors.sort_by(|a, b| (a.ram, a.vcpus, &a.name).cmp(&(b.ram, b.vcpus, &b.name)));
                out.list(
                    &flavors,
                    &[
                        col("ID", |f: &Flavor| json!(f.id)),
                        col("Name", |f| json!(f.name)),
                        col("RAM", |f| json!(f.ram)),
                        col("Disk", |f| json!(f.disk)),
                        col("VCPUs", |f| json!(f.vcpus)),
                        col("Is Public", |f| json!(f.is_public)),
                    ],
                );
            }
            FlavorCommand::Show { flavor } => out.one(&client.flavor(&flavor).await?),
            FlavorCommand::Create {
                name,
                vcpus,
                ram,
                disk,
                id,
                private,
                description,
            } => {
                let request = FlavorCreate {
                    name,
                    ram,
                    vcpus,
                    disk,
                    id,
                    is_public: !private,
                    description,
                };
                out.one(&client.create_flavor(&request).await?);
            }
            FlavorCommand::Delete { flavors } => {
                for flavor in flavors {
                    let id = client.flavor(&flavor).await?.id;
                    client.delete_flavor(&id).await?;
                }
            }
        }
        Ok(())
    }
}
