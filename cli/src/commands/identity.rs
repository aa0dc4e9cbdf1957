//! Tokens (B.1.1), data centres (B.1.2) and quotas (B.1.3).

use clap::Subcommand;
use serde_json::{Value, json};
use yunji_client::{Client, Error};

use crate::output::{Printer, col};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issues a token with the configured credentials.
    Issue,
}

impl TokenCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            TokenCommand::Issue => out.one(&client.token_info()),
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum DatacenterCommand {
    /// Regions and availability zones.
    List,
    /// Total and used vCPUs, RAM and disk of the data centre (B.1.3.1).
    Capacity,
}

/// A row of `datacenter list`: a region or an availability zone.
struct Datacenter {
    id: String,
    name: String,
    kind: &'static str,
    available: Value,
}

impl DatacenterCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        match self {
            DatacenterCommand::List => {
                let mut rows: Vec<Datacenter> = client
                    .regions()
                    .await?
                    .into_iter()
                    .map(|r| Datacenter {
                        name: r.name.clone().unwrap_or_else(|| r.id.clone()),
                        id: r.id,
                        kind: "region",
                        available: Value::Null,
                    })
                    .collect();
                rows.extend(
                    client
                        .availability_zones()
                        .await?
                        .into_iter()
                        .map(|z| Datacenter {
                            available: json!(z.available()),
                            id: z.zone_name.clone(),
                            name: z.zone_name,
                            kind: "availability-zone",
                        }),
                );
                out.list(
                    &rows,
                    &[
                        col("ID", |d: &Datacenter| json!(d.id)),
                        col("Name", |d| json!(d.name)),
                        col("Kind", |d| json!(d.kind)),
                        col("Available", |d| d.available.clone()),
                    ],
                );
            }
            DatacenterCommand::Capacity => out.one(&client.hypervisor_statistics().await?),
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// The project's limits and what it uses: servers, cores, RAM, volumes, gigabytes.
    Show,
}

struct QuotaRow {
    resource: &'static str,
    limit: i64,
    used: i64,
}

impl QuotaCommand {
    pub async fn run(self, client: &Client, out: &Printer) -> Result<(), Error> {
        let QuotaCommand::Show = self;
        let compute = client.compute_limits().await?;
        let mut rows = vec![
            QuotaRow {
                resource: "instances",
                limit: compute.max_total_instances,
                used: compute.total_instances_used,
            },
            QuotaRow {
                resource: "cores",
                limit: compute.max_total_cores,
                used: compute.total_cores_used,
            },
            QuotaRow {
                resource: "ram_mb",
                limit: compute.max_total_ram_size,
                used: compute.total_ram_used,
            },
        ];
        // A cloud without block storage still has compute quotas to show.
        match client.volume_limits().await {
            Ok(volume) => rows.extend([
                QuotaRow {
                    resource: "volumes",
                    limit: volume.max_total_volumes,
                    used: volume.total_volumes_used,
                },
                QuotaRow {
                    resource: "gigabytes",
                    limit: volume.max_total_volume_gigabytes,
                    used: volume.total_gigabytes_used,
                },
            ]),
            Err(Error::NoEndpoint { .. }) => {}
            Err(e) => return Err(e),
        }
        out.list(
            &rows,
            &[
                col("Resource", |r: &QuotaRow| json!(r.resource)),
                col("Limit", |r| json!(r.limit)),
                col("Used", |r| json!(r.used)),
            ],
        );
        Ok(())
    }
}
