//! Networks (B.3.1), floating IPs (B.3.2), public IPs (B.3.3), security groups (B.3.5).

use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;
use yunji_client::network::{
    BindTarget, FloatingIp, Network, PublicIp, SecurityGroup, SecurityGroupRule,
};
use yunji_client::{Client, Error};

use super::opt;
use crate::output::{Printer, col};

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Lists networks with their subnets (B.3.1.1).
    List,
    /// Shows a network.
    Show { network: String },
}

impl NetworkCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            NetworkCommand::List => {
                let networks = client.networks().await?;
                out.list(
                    &networks,
                    &[
                        col("ID", |n: &Network| json!(n.id)),
                        col("Name", |n| json!(n.name)),
                        col("Subnets", |n| json!(n.subnets)),
                        col("Shared", |n| json!(n.shared)),
                        col("External", |n| json!(n.external)),
                    ],
                );
            }
            NetworkCommand::Show { network } => out.one(&client.network(&network).await?),
        }
        Ok(())
    }
}

/// A server or a port, to associate a floating IP with.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["server", "port"])))]
pub struct PortTarget {
    /// The server (its first port).
    #[arg(long)]
    server: Option<String>,
    #[arg(long)]
    port: Option<String>,
}

impl PortTarget {
    async fn port(&self, client: &Client) -> Result<String, Error> {
        match (&self.port, &self.server) {
            (Some(port), _) => Ok(port.clone()),
            (None, Some(server)) => client.server_port(&client.server(server).await?.id).await,
            (None, None) => Err(Error::Lookup("give --server or --port".into())),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum FloatingIpCommand {
    /// Lists floating IPs.
    List,
    /// Shows a floating IP (id or address).
    Show { floating_ip: String },
    /// Allocates a floating IP from an external network (B.3.2.1).
    Create {
        /// The external network (name or id).
        #[arg(long)]
        network: String,
        /// A particular address.
        #[arg(long)]
        address: Option<String>,
    },
    /// Associates a floating IP with a server or port.
    Set {
        floating_ip: String,
        #[command(flatten)]
        target: PortTarget,
    },
    /// Disassociates a floating IP.
    Unset { floating_ip: String },
    /// Releases floating IPs (B.3.2.2).
    Delete {
        #[arg(required = true)]
        floating_ips: Vec<String>,
    },
}

impl FloatingIpCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            FloatingIpCommand::List => {
                let fips = client.floating_ips().await?;
                out.list(
                    &fips,
                    &[
                        col("ID", |f: &FloatingIp| json!(f.id)),
                        col("Floating IP Address", |f| json!(f.floating_ip_address)),
                        col("Fixed IP Address", |f| opt(&f.fixed_ip_address)),
                        col("Port", |f| opt(&f.port_id)),
                        col("Status", |f| json!(f.status)),
                    ],
                );
            }
            FloatingIpCommand::Show { floating_ip } => {
                out.one(&client.floating_ip(&floating_ip).await?)
            }
            FloatingIpCommand::Create { network, address } => {
                let network = client.network(&network).await?.id;
                out.one(
                    &client
                        .create_floating_ip(&network, address.as_deref(), None)
                        .await?,
                );
            }
            FloatingIpCommand::Set {
                floating_ip,
                target,
            } => {
                let id = client.floating_ip(&floating_ip).await?.id;
                let port = target.port(client).await?;
                out.one(&client.set_floating_ip_port(&id, Some(&port)).await?);
            }
            FloatingIpCommand::Unset { floating_ip } => {
                let id = client.floating_ip(&floating_ip).await?.id;
                out.one(&client.set_floating_ip_port(&id, None).await?);
            }
            FloatingIpCommand::Delete { floating_ips } => {
                for fip in floating_ips {
                    let id = client.floating_ip(&fip).await?.id;
                    client.delete_floating_ip(&id).await?;
                }
            }
        }
        Ok(())
    }
}

/// Exactly one of a server or a private IP, as the standard's bind takes.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("bound").required(true).args(["server", "private_ip"])))]
pub struct BindArgs {
    #[arg(long)]
    server: Option<String>,
    #[arg(long)]
    private_ip: Option<String>,
}

impl BindArgs {
    async fn target(&self, client: &Client) -> Result<BindTarget, Error> {
        match (&self.server, &self.private_ip) {
            (Some(server), _) => Ok(BindTarget::Server(client.server(server).await?.id)),
            (None, Some(ip)) => Ok(BindTarget::PrivateIp(ip.clone())),
            (None, None) => Err(Error::Lookup("give --server or --private-ip".into())),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PublicIpCommand {
    /// Lists public IPs (B.3.3.4).
    List,
    /// Shows a public IP (B.3.3.4).
    Show { public_ip: String },
    /// Allocates a public IP (B.3.3.1).
    Create { name: String },
    /// Binds a public IP to a server or a private IP (B.3.3.2).
    Bind {
        public_ip: String,
        #[command(flatten)]
        to: BindArgs,
    },
    /// Unbinds a public IP (B.3.3.3).
    Unbind {
        public_ip: String,
        #[command(flatten)]
        from: BindArgs,
    },
    /// Releases public IPs (B.3.3.5).
    Delete {
        #[arg(required = true)]
        public_ips: Vec<String>,
    },
}

impl PublicIpCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            PublicIpCommand::List => {
                let ips = client.public_ips().await?;
                out.list(
                    &ips,
                    &[
                        col("ID", |p: &PublicIp| json!(p.id)),
                        col("Name", |p| json!(p.name)),
                        col("Public IP Address", |p| json!(p.public_ip_address)),
                        col("Server", |p| opt(&p.server_id)),
                        col("Private IP Address", |p| opt(&p.private_ip_address)),
                        col("Status", |p| json!(p.status)),
                    ],
                );
            }
            PublicIpCommand::Show { public_ip } => out.one(&client.public_ip(&public_ip).await?),
            PublicIpCommand::Create { name } => out.one(&client.create_public_ip(&name).await?),
            PublicIpCommand::Bind { public_ip, to } => {
                let id = client.public_ip(&public_ip).await?.id;
                out.one(
                    &client
                        .bind_public_ip(&id, &to.target(client).await?)
                        .await?,
                );
            }
            PublicIpCommand::Unbind { public_ip, from } => {
                let id = client.public_ip(&public_ip).await?.id;
                out.one(
                    &client
                        .unbind_public_ip(&id, &from.target(client).await?)
                        .await?,
                );
            }
            PublicIpCommand::Delete { public_ips } => {
                for ip in public_ips {
                    let id = client.public_ip(&ip).await?.id;
                    client.delete_public_ip(&id).await?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum SecurityGroupCommand {
    /// Lists security groups (B.3.5.3).
    List,
    /// Shows a security group with its rules (B.3.5.3).
    Show { group: String },
    /// Creates a security group (B.3.5.1).
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Deletes security groups (B.3.5.2).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Security group rules.
    #[command(subcommand)]
    Rule(RuleCommand),
}

#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Creates a rule in a group (B.3.5.4).
    Create(Box<RuleArgs>),
    /// Deletes rules by id (B.3.5.5).
    Delete {
        #[arg(required = true)]
        rules: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct RuleArgs {
    group: String,
    /// ingress or egress.
    #[arg(long, default_value = "ingress")]
    direction: String,
    /// IPv4 or IPv6.
    #[arg(long, default_value = "IPv4")]
    ethertype: String,
    /// tcp, udp, icmp, a number, or any.
    #[arg(long)]
    protocol: Option<String>,
    /// A port or range, e.g. 22 or 8000:8080.
    #[arg(long)]
    dst_port: Option<String>,
    #[arg(long, conflicts_with = "remote_group")]
    remote_ip: Option<String>,
    #[arg(long)]
    remote_group: Option<String>,
    #[arg(long)]
    description: Option<String>,
}

fn port_range(spec: &str) -> Result<(u16, u16), Error> {
    let bad = || {
        Error::Lookup(format!(
            "--dst-port {spec:?} is not a port or MIN:MAX range"
        ))
    };
    let (min, max) = spec.split_once(':').unwrap_or((spec, spec));
    Ok((
        min.parse().map_err(|_| bad())?,
        max.parse().map_err(|_| bad())?,
    ))
}

impl SecurityGroupCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            SecurityGroupCommand::List => {
                let groups = client.security_groups().await?;
                out.list(
                    &groups,
                    &[
                        col("ID", |g: &SecurityGroup| json!(g.id)),
                        col("Name", |g| json!(g.name)),
                        col("Description", |g| json!(g.description)),
                        col("Rules", |g| json!(g.security_group_rules.len())),
                    ],
                );
            }
            SecurityGroupCommand::Show { group } => out.one(&client.security_group(&group).await?),
            SecurityGroupCommand::Create { name, description } => {
                out.one(&client.create_security_group(&name, &description).await?)
            }
            SecurityGroupCommand::Delete { groups } => {
                for group in groups {
                    let id = client.security_group(&group).await?.id;
                    client.delete_security_group(&id).await?;
                }
            }
            SecurityGroupCommand::Rule(RuleCommand::Create(args)) => {
                let args = *args;
                let (port_range_min, port_range_max) = match &args.dst_port {
                    Some(spec) => {
                        let (min, max) = port_range(spec)?;
                        (Some(min), Some(max))
                    }
                    None => (None, None),
                };
                let remote_group_id = match &args.remote_group {
                    Some(g) => Some(client.security_group(g).await?.id),
                    None => None,
                };
                let rule = SecurityGroupRule {
                    security_group_id: client.security_group(&args.group).await?.id,
                    direction: args.direction,
                    ethertype: Some(args.ethertype),
                    protocol: args.protocol.filter(|p| p != "any"),
                    port_range_min,
                    port_range_max,
                    remote_ip_prefix: args.remote_ip,
                    remote_group_id,
                    description: args.description,
                    ..SecurityGroupRule::default()
                };
                out.one(&client.create_security_group_rule(&rule).await?);
            }
            SecurityGroupCommand::Rule(RuleCommand::Delete { rules }) => {
                for rule in rules {
                    client.delete_security_group_rule(&rule).await?;
                }
            }
        }
        Ok(())
    }
}
