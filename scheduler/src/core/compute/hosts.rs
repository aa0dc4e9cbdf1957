//! Hosts (clauses B.1.2 and B.1.3.1): nodes seen as Nova's hypervisors and compute
//! services, the data centre's capacity and use, and availability zones.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use yunji_common::agent_api::{Capacity, VmmDriver};

use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::require_admin;
use crate::model::{Allocation, Caller, Node, NodeState, Server, ServerFilter};

/// The zone of Nova's control services (scheduler, conductor).
pub const INTERNAL_ZONE: &str = "internal";
/// Service ids of the control services; a node's compute service is its hypervisor id
/// plus this.
const CONDUCTOR_ID: i64 = 1;
const SCHEDULER_ID: i64 = 2;
const COMPUTE_ID_BASE: i64 = 2;

/// The namespace of the UUIDs hypervisors and services have from 2.53 (RFC 4122 v5):
/// derived from the node's name, so they stay the same across restarts.
const HOST_UUIDS: uuid::Uuid = uuid::Uuid::from_u128(0x5f1c_7a3e_9d2b_4c61_8e0f_3b7d_a1c4_2e96);

fn host_uuid(kind: &str, name: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&HOST_UUIDS, format!("{kind}:{name}").as_bytes())
}

/// A node as Nova's hypervisor: its capacity and what its servers hold.
#[derive(Debug, Clone)]
pub struct Hypervisor {
    /// Nova's integer id, stable for the node's life.
    pub id: i64,
    /// The id of the node's nova-compute service.
    pub service_id: i64,
    pub node: Node,
    pub capacity: Capacity,
    pub used: Allocation,
}

impl Hypervisor {
    /// Its id from 2.53 on.
    pub fn uuid(&self) -> uuid::Uuid {
        host_uuid("hypervisor", &self.node.name)
    }

    /// Its compute service's id from 2.53 on.
    pub fn service_uuid(&self) -> uuid::Uuid {
        host_uuid("nova-compute", &self.node.name)
    }

    pub fn up(&self) -> bool {
        self.node.state == NodeState::Up
    }

    /// Nova's `hypervisor_type`.
    pub fn kind(&self) -> &'static str {
        match self.node.status.as_ref().map(|s| s.drivers.vmm) {
            Some(VmmDriver::Sim) => "fake",
            Some(VmmDriver::CloudHypervisor) => "cloud-hypervisor",
            Some(VmmDriver::Qemu) | None => "QEMU",
        }
    }

    /// The node's address as the scheduler reaches it.
    pub fn host_ip(&self) -> String {
        self.node
            .url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(|h| h.trim_matches(['[', ']']).to_string()))
            .unwrap_or_default()
    }

    pub fn free_ram_mb(&self) -> i64 {
        self.used.free_of(&self.capacity).1
    }

    pub fn free_disk_gb(&self) -> i64 {
        self.used.free_of(&self.capacity).2
    }
}

/// `GET /os-hypervisors/statistics`: the sum over the nodes that are up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HypervisorStatistics {
    pub count: i64,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub vcpus_used: i64,
    pub memory_mb_used: i64,
    pub local_gb_used: i64,
    pub free_ram_mb: i64,
    pub free_disk_gb: i64,
    pub running_vms: i64,
    pub current_workload: i64,
    pub disk_available_least: i64,
}

/// One of Nova's services: nova-compute on each node, scheduler and conductor here.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeService {
    pub id: i64,
    pub binary: &'static str,
    pub host: String,
    pub zone: String,
    pub up: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

impl ComputeService {
    /// Its id from 2.53 on: a node's compute service has its hypervisor's service uuid.
    pub fn uuid(&self) -> uuid::Uuid {
        host_uuid(self.binary, &self.host)
    }
}

/// An availability zone, with its hosts' services (detail, administrators only).
#[derive(Debug, Clone, PartialEq)]
pub struct AvailabilityZone {
    pub name: String,
    pub available: bool,
    /// Host → its services; `None` in the plain listing.
    pub hosts: Option<BTreeMap<String, Vec<ComputeService>>>,
}

/// A host aggregate. This cloud groups hosts by availability zone only, so there are
/// none; the list exists because clients read it (`openstack hypervisor show`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostAggregate {
    pub id: i64,
    pub name: String,
    pub availability_zone: Option<String>,
    pub hosts: Vec<String>,
}

impl HostAggregate {
    /// Its `uuid` (2.41).
    pub fn uuid(&self) -> uuid::Uuid {
        host_uuid("aggregate", &self.name)
    }
}

/// The scheduler's own host name, as its services show it.
pub fn scheduler_host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "yunji-scheduler".into())
    })
}

fn zone_of(node: &Node) -> String {
    node.status
        .as_ref()
        .map(|s| s.availability_zone.clone())
        .unwrap_or_else(yunji_common::agent_api::default_zone)
}

fn compute_service(h: &Hypervisor) -> ComputeService {
    ComputeService {
        id: h.service_id,
        binary: "nova-compute",
        host: h.node.name.clone(),
        zone: zone_of(&h.node),
        up: h.up(),
        updated_at: h.node.last_seen,
    }
}

fn control_services() -> Vec<ComputeService> {
    let now = Utc::now();
    [
        (CONDUCTOR_ID, "nova-conductor"),
        (SCHEDULER_ID, "nova-scheduler"),
    ]
    .into_iter()
    .map(|(id, binary)| ComputeService {
        id,
        binary,
        host: scheduler_host().to_string(),
        zone: INTERNAL_ZONE.into(),
        up: true,
        updated_at: Some(now),
    })
    .collect()
}

impl Core {
    /// Every node as a hypervisor, by id.
    async fn hypervisors_all(&self) -> Result<Vec<Hypervisor>> {
        let (nodes, ids, held) = self
            .store
            .read(|db| {
                Ok((
                    db.nodes_list()?,
                    db.hypervisor_ids()?,
                    db.allocations_by_node()?,
                ))
            })
            .await?;
        let mut held: HashMap<String, Allocation> = held;
        let mut out: Vec<Hypervisor> = nodes
            .into_iter()
            .filter_map(|node| {
                let id = *ids.get(&node.name)?;
                let capacity = node.status.as_ref().map_or(
                    Capacity {
                        vcpus: 0,
                        memory_mb: 0,
                        disk_gb: 0,
                    },
                    |s| s.capacity,
                );
                Some(Hypervisor {
                    id,
                    service_id: id + COMPUTE_ID_BASE,
                    used: held.remove(&node.name).unwrap_or_default(),
                    capacity,
                    node,
                })
            })
            .collect();
        out.sort_by_key(|h| h.id);
        Ok(out)
    }

    /// `GET /os-hypervisors[/detail]` (admin).
    pub async fn hypervisors(&self, caller: &Caller) -> Result<Vec<Hypervisor>> {
        require_admin(caller, "listing hypervisors")?;
        self.hypervisors_all().await
    }

    /// `GET /os-hypervisors/{id}` (admin); an id that is not one of ours is a 404. Ids
    /// are integers before 2.53 and UUIDs from then on (`by_uuid`).
    pub async fn hypervisor_get(
        &self,
        caller: &Caller,
        id: &str,
        by_uuid: bool,
    ) -> Result<Hypervisor> {
        require_admin(caller, "showing a hypervisor")?;
        let kind = if by_uuid { "UUIDs" } else { "integers" };
        let not_found = || {
            Error::NotFound(format!(
                "Hypervisor with ID '{id}' could not be found; at this microversion hypervisor \
                 ids are the {kind} GET /os-hypervisors lists."
            ))
        };
        self.hypervisors_all()
            .await?
            .into_iter()
            .find(|h| {
                if by_uuid {
                    h.uuid().to_string() == id
                } else {
                    h.id.to_string() == id
                }
            })
            .ok_or_else(not_found)
    }

    /// `GET /os-hypervisors/{pattern}/search` (admin): nodes whose name contains it.
    pub async fn hypervisors_search(
        &self,
        caller: &Caller,
        pattern: &str,
    ) -> Result<Vec<Hypervisor>> {
        require_admin(caller, "searching hypervisors")?;
        let found: Vec<Hypervisor> = self
            .hypervisors_all()
            .await?
            .into_iter()
            .filter(|h| h.node.name.contains(pattern))
            .collect();
        if found.is_empty() {
            return Err(Error::NotFound(format!(
                "No hypervisor matching '{pattern}' could be found."
            )));
        }
        Ok(found)
    }

    /// `GET /os-hypervisors/statistics` (admin): the capacity and use of the nodes
    /// that are up.
    pub async fn hypervisor_statistics(&self, caller: &Caller) -> Result<HypervisorStatistics> {
        require_admin(caller, "reading hypervisor statistics")?;
        let mut s = HypervisorStatistics::default();
        for h in self.hypervisors_all().await?.iter().filter(|h| h.up()) {
            s.count += 1;
            s.vcpus += i64::from(h.capacity.vcpus);
            s.memory_mb += h.capacity.memory_mb as i64;
            s.local_gb += h.capacity.disk_gb as i64;
            s.vcpus_used += h.used.vcpus;
            s.memory_mb_used += h.used.ram_mb;
            s.local_gb_used += h.used.disk_gb;
            s.free_ram_mb += h.free_ram_mb();
            s.free_disk_gb += h.free_disk_gb();
            s.running_vms += h.used.servers;
            s.disk_available_least += h.free_disk_gb();
        }
        Ok(s)
    }

    /// `GET /os-aggregates` (admin): always empty, see [`HostAggregate`].
    pub async fn host_aggregates(&self, caller: &Caller) -> Result<Vec<HostAggregate>> {
        require_admin(caller, "listing host aggregates")?;
        Ok(Vec::new())
    }

    /// The servers on one node (admin; `with_servers`, 2.53).
    pub async fn servers_on_host(&self, caller: &Caller, host: &str) -> Result<Vec<Server>> {
        require_admin(caller, "listing the servers of a hypervisor")?;
        let filter = ServerFilter {
            host: Some(host.to_string()),
            limit: usize::MAX >> 1,
            ..ServerFilter::default()
        };
        Ok(self.store.read(move |db| db.servers_list(&filter)).await?)
    }

    /// `GET /os-services` (admin), optionally only those on `host` or of `binary`.
    pub async fn compute_services(
        &self,
        caller: &Caller,
        host: Option<&str>,
        binary: Option<&str>,
    ) -> Result<Vec<ComputeService>> {
        require_admin(caller, "listing compute services")?;
        let mut services = control_services();
        services.extend(self.hypervisors_all().await?.iter().map(compute_service));
        services
            .retain(|s| host.is_none_or(|h| s.host == h) && binary.is_none_or(|b| s.binary == b));
        Ok(services)
    }

    /// `GET /os-availability-zone[/detail]`: the zones nodes report; a zone is
    /// available while one of its nodes is up. The detail (administrators only) adds
    /// each zone's hosts and the internal zone of the control services.
    pub async fn availability_zones(
        &self,
        caller: &Caller,
        detail: bool,
    ) -> Result<Vec<AvailabilityZone>> {
        if detail {
            require_admin(caller, "listing availability zones with their hosts")?;
        }
        let mut zones: BTreeMap<String, AvailabilityZone> = BTreeMap::new();
        for h in self.hypervisors_all().await? {
            let service = compute_service(&h);
            let zone = zones
                .entry(service.zone.clone())
                .or_insert_with(|| AvailabilityZone {
                    name: service.zone.clone(),
                    available: false,
                    hosts: detail.then(BTreeMap::new),
                });
            zone.available |= service.up;
            if let Some(hosts) = &mut zone.hosts {
                hosts.entry(service.host.clone()).or_default().push(service);
            }
        }
        let mut out: Vec<AvailabilityZone> = zones.into_values().collect();
        if detail {
            let mut hosts: BTreeMap<String, Vec<ComputeService>> = BTreeMap::new();
            for s in control_services() {
                hosts.entry(s.host.clone()).or_default().push(s);
            }
            out.push(AvailabilityZone {
                name: INTERNAL_ZONE.into(),
                available: true,
                hosts: Some(hosts),
            });
        }
        Ok(out)
    }
}
