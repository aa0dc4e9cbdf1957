//! Load balancers (B.3.4) and the standard's nodes.

use clap::Subcommand;
use serde_json::json;
use yunji_client::load_balancer::{LoadBalancer, Node, NodeRef};
use yunji_client::{Client, Error};

use super::opt;
use crate::output::{Printer, col};
use crate::progress::wait_for;

#[derive(Debug, Subcommand)]
pub enum LbCommand {
    /// Lists load balancers (B.3.4.4).
    List,
    /// Shows a load balancer with its nodes (B.3.4.3).
    Show { lb: String },
    /// Creates a load balancer with its VIP on a subnet (B.3.4.1).
    Create {
        name: String,
        /// The subnet (id) its VIP address comes from.
        #[arg(long)]
        vip_subnet: String,
        #[arg(long)]
        description: Option<String>,
        /// Wait until it is ACTIVE.
        #[arg(long)]
        wait: bool,
    },
    /// Deletes a load balancer (B.3.4.2).
    Delete {
        lb: String,
        /// Also its listeners, pools and members.
        #[arg(long)]
        cascade: bool,
        #[arg(long)]
        wait: bool,
    },
    /// The load balancer's nodes (B.3.4.5, B.3.4.6).
    #[command(subcommand)]
    Node(NodeCommand),
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Lists a load balancer's nodes.
    List { lb: String },
    /// Adds servers or addresses as nodes on a port (B.3.4.5).
    Add {
        lb: String,
        #[arg(long = "server")]
        servers: Vec<String>,
        #[arg(long = "address")]
        addresses: Vec<String>,
        #[arg(long)]
        port: u16,
    },
    /// Removes nodes (B.3.4.6).
    Remove {
        lb: String,
        #[arg(long = "server")]
        servers: Vec<String>,
        #[arg(long = "address")]
        addresses: Vec<String>,
    },
}

async fn node_refs(
    client: &Client,
    servers: &[String],
    addresses: &[String],
) -> Result<Vec<NodeRef>, Error> {
    let mut refs = Vec::new();
    for server in servers {
        refs.push(NodeRef::Server(client.server(server).await?.id));
    }
    refs.extend(addresses.iter().cloned().map(NodeRef::Address));
    if refs.is_empty() {
        return Err(Error::Lookup(
            "give at least one --server or --address".into(),
        ));
    }
    Ok(refs)
}

async fn wait_lb(client: &Client, id: &str, wanted: &str) -> Result<(), Error> {
    wait_for(&format!("load balancer {id}"), &[wanted], || async {
        Ok(client.load_balancer(id).await?.provisioning_status)
    })
    .await
    .map(drop)
}

impl LbCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            LbCommand::List => {
                let lbs = client.load_balancers().await?;
                out.list(
                    &lbs,
                    &[
                        col("ID", |l: &LoadBalancer| json!(l.id)),
                        col("Name", |l| json!(l.name)),
                        col("VIP Address", |l| opt(&l.vip_address)),
                        col("Provisioning Status", |l| json!(l.provisioning_status)),
                        col("Operating Status", |l| json!(l.operating_status)),
                        col("Nodes", |l| json!(l.nodes.len())),
                    ],
                );
            }
            LbCommand::Show { lb } => out.one(&client.load_balancer(&lb).await?),
            LbCommand::Create {
                name,
                vip_subnet,
                description,
                wait,
            } => {
                let lb = client
                    .create_load_balancer(&name, &vip_subnet, description.as_deref())
                    .await?;
                if wait {
                    wait_lb(client, &lb.id, "ACTIVE").await?;
                }
                out.one(&client.load_balancer(&lb.id).await?);
            }
            LbCommand::Delete { lb, cascade, wait } => {
                let id = client.load_balancer(&lb).await?.id;
                client.delete_load_balancer(&id, cascade).await?;
                if wait {
                    wait_lb(client, &id, "DELETED").await?;
                }
            }
            LbCommand::Node(NodeCommand::List { lb }) => {
                let lb = client.load_balancer(&lb).await?;
                out.list(
                    &lb.nodes,
                    &[
                        col("ID", |n: &Node| opt(&n.id)),
                        col("Name", |n| opt(&n.name)),
                        col("Address", |n| opt(&n.address)),
                        col("Port", |n| json!(n.protocol_port)),
                    ],
                );
            }
            LbCommand::Node(NodeCommand::Add {
                lb,
                servers,
                addresses,
                port,
            }) => {
                let id = client.load_balancer(&lb).await?.id;
                let nodes = node_refs(client, &servers, &addresses).await?;
                out.one(&client.add_lb_nodes(&id, &nodes, port).await?);
            }
            LbCommand::Node(NodeCommand::Remove {
                lb,
                servers,
                addresses,
            }) => {
                let id = client.load_balancer(&lb).await?.id;
                let nodes = node_refs(client, &servers, &addresses).await?;
                out.one(&client.remove_lb_nodes(&id, &nodes).await?);
            }
        }
        Ok(())
    }
}
