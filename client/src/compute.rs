//! Compute (Nova 2.1 API): servers and their actions (B.2.1), flavors (B.2.2), quotas
//! and capacity (B.1.3.1), availability zones (B.1.2) and volume attachments (B.4.1.4/5).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Client, Error, Extra, Service};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Server {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    /// `{id, links}` at the microversions used here.
    #[serde(default)]
    pub flavor: Value,
    /// `{id, links}`, or `""` for a server booted from a volume.
    #[serde(default)]
    pub image: Value,
    #[serde(default)]
    pub addresses: BTreeMap<String, Vec<Address>>,
    #[serde(
        rename = "OS-EXT-SRV-ATTR:host",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host: Option<String>,
    #[serde(rename = "OS-EXT-STS:task_state", default)]
    pub task_state: Option<String>,
    #[serde(default)]
    pub fault: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Address {
    pub addr: String,
    #[serde(default)]
    pub version: u8,
    #[serde(rename = "OS-EXT-IPS:type", default)]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Server {
    pub fn flavor_id(&self) -> &str {
        self.flavor.get("id").and_then(Value::as_str).unwrap_or("")
    }

    pub fn image_id(&self) -> &str {
        self.image.get("id").and_then(Value::as_str).unwrap_or("")
    }

    /// `net=addr, addr; net2=addr`, as the `openstack` CLI shows networks.
    pub fn networks(&self) -> String {
        self.addresses
            .iter()
            .map(|(net, addrs)| {
                let list: Vec<&str> = addrs.iter().map(|a| a.addr.as_str()).collect();
                format!("{net}={}", list.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a new server is made of (B.2.1.1, table B.6).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerCreate {
    pub name: String,
    #[serde(rename = "flavorRef")]
    pub flavor_ref: String,
    /// Absent when the server boots from a volume.
    #[serde(rename = "imageRef", skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub block_device_mapping_v2: Vec<BlockDevice>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Base64, as Nova takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<Named>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_ip: Option<String>,
}

/// One entry of `block_device_mapping_v2` (table B.8).
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlockDevice {
    /// `volume`, `image`, `snapshot` or `blank`.
    pub source_type: String,
    pub destination_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<u64>,
    pub boot_index: i32,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub name: String,
}

/// A server action (`POST /servers/{id}/action`).
#[derive(Debug, Clone)]
pub enum ServerAction {
    Start,
    Stop,
    Reboot {
        hard: bool,
    },
    /// To `host`, or where the scheduler picks.
    LiveMigrate {
        host: Option<String>,
    },
    Resize {
        flavor_ref: String,
    },
    ConfirmResize,
    RevertResize,
    CreateImage {
        name: String,
        metadata: BTreeMap<String, String>,
    },
}

impl ServerAction {
    pub fn body(&self) -> Value {
        match self {
            ServerAction::Start => json!({ "os-start": null }),
            ServerAction::Stop => json!({ "os-stop": null }),
            ServerAction::Reboot { hard } => {
                json!({ "reboot": { "type": if *hard { "HARD" } else { "SOFT" } } })
            }
            ServerAction::LiveMigrate { host } => {
                json!({ "os-migrateLive": { "host": host, "block_migration": "auto" } })
            }
            ServerAction::Resize { flavor_ref } => json!({ "resize": { "flavorRef": flavor_ref } }),
            ServerAction::ConfirmResize => json!({ "confirmResize": null }),
            ServerAction::RevertResize => json!({ "revertResize": null }),
            ServerAction::CreateImage { name, metadata } => {
                json!({ "createImage": { "name": name, "metadata": metadata } })
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub ram: u64,
    #[serde(default)]
    pub vcpus: u64,
    #[serde(default)]
    pub disk: u64,
    #[serde(rename = "os-flavor-access:is_public", default = "yes")]
    pub is_public: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

fn yes() -> bool {
    true
}

/// A new flavor (B.2.2.1).
#[derive(Debug, Clone, Serialize)]
pub struct FlavorCreate {
    pub name: String,
    pub ram: u64,
    pub vcpus: u64,
    pub disk: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "os-flavor-access:is_public")]
    pub is_public: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The project's compute quota and usage (B.1.3.1, `GET /limits`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbsoluteLimits {
    #[serde(rename = "maxTotalRAMSize")]
    pub max_total_ram_size: i64,
    #[serde(rename = "totalRAMUsed")]
    pub total_ram_used: i64,
    pub max_total_cores: i64,
    pub total_cores_used: i64,
    pub max_total_instances: i64,
    pub total_instances_used: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A data centre's capacity (B.1.3.1, `os-hypervisors/statistics`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HypervisorStatistics {
    pub count: u64,
    pub vcpus: u64,
    pub vcpus_used: u64,
    pub memory_mb: u64,
    pub memory_mb_used: u64,
    #[serde(default)]
    pub local_gb: u64,
    #[serde(default)]
    pub local_gb_used: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An availability zone, one of the standard's data centres (B.1.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityZone {
    pub zone_name: String,
    #[serde(default)]
    pub zone_state: Value,
    #[serde(default)]
    pub hosts: Option<Value>,
}

impl AvailabilityZone {
    pub fn available(&self) -> bool {
        self.zone_state
            .get("available")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeAttachment {
    pub id: String,
    pub volume_id: String,
    pub server_id: String,
    #[serde(default)]
    pub device: Option<String>,
}

impl Client {
    /// Servers with details; `all_projects` (admins) lists every project's.
    pub async fn servers(&self) -> Result<Vec<Server>, Error> {
        self.get(Service::Compute, "/servers/detail", "servers")
            .await
    }

    pub async fn servers_all_projects(&self) -> Result<Vec<Server>, Error> {
        self.get(Service::Compute, "/servers/detail?all_tenants=1", "servers")
            .await
    }

    /// The server with this id or exact name.
    pub async fn server(&self, name_or_id: &str) -> Result<Server, Error> {
        self.find(
            Service::Compute,
            ("/servers", "/servers/detail"),
            ("server", "servers"),
            "server",
            name_or_id,
            |s: &Server| (&s.id, &s.name),
        )
        .await
    }

    /// Creates a server (202; it is `BUILD` until the node has booted it).
    pub async fn create_server(&self, request: &ServerCreate) -> Result<Server, Error> {
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created = self
            .call(
                Service::Compute,
                Method::POST,
                "/servers",
                &json!({ "server": request }),
                "server",
            )
            .await?;
        self.server(&created.id).await
    }

    pub async fn update_server(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Server, Error> {
        let mut server = serde_json::Map::new();
        if let Some(name) = name {
            server.insert("name".into(), json!(name));
        }
        if let Some(description) = description {
            server.insert("description".into(), json!(description));
        }
        self.call(
            Service::Compute,
            Method::PUT,
            &format!("/servers/{id}"),
            &json!({ "server": server }),
            "server",
        )
        .await
    }

    pub async fn delete_server(&self, id: &str) -> Result<(), Error> {
        self.send(
            Service::Compute,
            Method::DELETE,
            &format!("/servers/{id}"),
            None,
        )
        .await
        .map(drop)
    }

    /// Runs `action` on the server; `createImage` answers with the new image's id.
    pub async fn server_action(
        &self,
        id: &str,
        action: &ServerAction,
    ) -> Result<Option<String>, Error> {
        let reply = self
            .send(
                Service::Compute,
                Method::POST,
                &format!("/servers/{id}/action"),
                Some(&action.body()),
            )
            .await?;
        Ok(reply
            .body
            .get("image_id")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    pub async fn console_output(&self, id: &str, lines: Option<u32>) -> Result<String, Error> {
        let body = json!({ "os-getConsoleOutput": { "length": lines } });
        let reply = self
            .send(
                Service::Compute,
                Method::POST,
                &format!("/servers/{id}/action"),
                Some(&body),
            )
            .await?;
        Ok(reply
            .body
            .get("output")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn flavors(&self) -> Result<Vec<Flavor>, Error> {
        self.get(Service::Compute, "/flavors/detail", "flavors")
            .await
    }

    pub async fn flavor(&self, name_or_id: &str) -> Result<Flavor, Error> {
        match self
            .get(
                Service::Compute,
                &format!("/flavors/{}", crate::query_value(name_or_id)),
                "flavor",
            )
            .await
        {
            Err(e) if e.is_not_found() => {}
            other => return other,
        }
        // Nova's flavor list has no name filter.
        crate::pick(
            "flavor",
            name_or_id,
            self.flavors().await?,
            |f| &f.id,
            |f| &f.name,
        )
    }

    pub async fn create_flavor(&self, request: &FlavorCreate) -> Result<Flavor, Error> {
        self.call(
            Service::Compute,
            Method::POST,
            "/flavors",
            &json!({ "flavor": request }),
            "flavor",
        )
        .await
    }

    pub async fn delete_flavor(&self, id: &str) -> Result<(), Error> {
        self.send(
            Service::Compute,
            Method::DELETE,
            &format!("/flavors/{id}"),
            None,
        )
        .await
        .map(drop)
    }

    pub async fn compute_limits(&self) -> Result<AbsoluteLimits, Error> {
        self.absolute_limits(Service::Compute).await
    }

    pub async fn hypervisor_statistics(&self) -> Result<HypervisorStatistics, Error> {
        self.get(
            Service::Compute,
            "/os-hypervisors/statistics",
            "hypervisor_statistics",
        )
        .await
    }

    /// Availability zones; with hosts when the caller is an admin.
    pub async fn availability_zones(&self) -> Result<Vec<AvailabilityZone>, Error> {
        match self
            .get(
                Service::Compute,
                "/os-availability-zone/detail",
                "availabilityZoneInfo",
            )
            .await
        {
            Err(e) if e.status() == Some(reqwest::StatusCode::FORBIDDEN) => {}
            other => return other,
        }
        self.get(
            Service::Compute,
            "/os-availability-zone",
            "availabilityZoneInfo",
        )
        .await
    }

    /// The compute quota set of `project` (`os-quota-sets`).
    pub async fn compute_quota(&self, project: &str) -> Result<BTreeMap<String, Value>, Error> {
        self.get(
            Service::Compute,
            &format!("/os-quota-sets/{project}"),
            "quota_set",
        )
        .await
    }

    pub async fn set_compute_quota(
        &self,
        project: &str,
        values: &BTreeMap<String, i64>,
    ) -> Result<BTreeMap<String, Value>, Error> {
        self.call(
            Service::Compute,
            Method::PUT,
            &format!("/os-quota-sets/{project}"),
            &json!({ "quota_set": values }),
            "quota_set",
        )
        .await
    }

    /// Attaches a volume to a server through Nova (B.4.1.4).
    pub async fn attach_volume(
        &self,
        server: &str,
        volume: &str,
        device: Option<&str>,
    ) -> Result<VolumeAttachment, Error> {
        let mut attachment = json!({ "volumeId": volume });
        if let Some(device) = device {
            attachment["device"] = json!(device);
        }
        self.call(
            Service::Compute,
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            &json!({ "volumeAttachment": attachment }),
            "volumeAttachment",
        )
        .await
    }

    /// Detaches a volume from a server through Nova (B.4.1.5).
    pub async fn detach_volume(&self, server: &str, volume: &str) -> Result<(), Error> {
        self.send(
            Service::Compute,
            Method::DELETE,
            &format!("/servers/{server}/os-volume_attachments/{volume}"),
            None,
        )
        .await
        .map(drop)
    }
}
