//! Servers (clause B.2.1): create, show, list, update, delete, and the actions of their
//! lifecycle. An operation is accepted in one transaction — policy, state check, quota,
//! the new desired state — and answered at once (202); a background task then drives the
//! node's agent, one operation per server at a time, and records what the node observed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;
use yunji_common::agent_api::{
    FlavorSpec, ImageSpec, PowerState, ServerAction, ServerSpec,
    VolumeAttachment as VolumeAttachmentSpec,
};

use crate::core::Core;
use crate::core::compute::flavors::usable_flavor;
use crate::core::compute::instance_actions::{
    Requester, action_begin, action_create, action_end_if_done,
};
use crate::core::compute::server_groups::server_group_for_create;
use crate::core::error::{Error, Result};
use crate::core::error_chain;
use crate::core::images::bootable_image;
use crate::core::network::{DEFAULT_GROUP, plan_server_networks, port_groups};
use crate::core::policy::{Access, authorize, require_admin, require_project};
use crate::core::volumes::volumes_movable;
use crate::model::{
    Caller, ComputeQuota, ComputeUsage, Fault, Flavor, GroupPolicy, Node, NodeState, Server,
    ServerFilter, ServerMigration, TaskState, VmState, power,
};
use crate::store::{Db, Tx};

/// What a create request asks for, after the HTTP layer parsed it.
#[derive(Debug, Clone, Default)]
pub struct ServerCreate {
    pub name: String,
    pub flavor_ref: String,
    pub image_ref: Option<String>,
    pub networks: Value,
    pub block_devices: Value,
    pub metadata: BTreeMap<String, String>,
    /// Tags at boot (2.52).
    pub tags: Vec<String>,
    pub user_data: Option<String>,
    pub security_groups: Vec<String>,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub description: Option<String>,
    /// The server group to join (`os:scheduler_hints.group`).
    pub group: Option<String>,
    /// The API request, which the server's `create` action records.
    pub request_id: String,
}

/// An action on a server (`POST /servers/{id}/action`).
#[derive(Debug, Clone)]
pub enum Action {
    Start,
    Stop,
    Reboot { hard: bool },
    LiveMigrate { host: Option<String> },
    Resize { flavor_ref: String },
    ConfirmResize,
    RevertResize,
}

impl Action {
    /// The action's name as the API spells it, for messages.
    fn api_name(&self) -> &'static str {
        match self {
            Action::Start => "os-start",
            Action::Stop => "os-stop",
            Action::Reboot { .. } => "reboot",
            Action::LiveMigrate { .. } => "os-migrateLive",
            Action::Resize { .. } => "resize",
            Action::ConfirmResize => "confirmResize",
            Action::RevertResize => "revertResize",
        }
    }
}

fn spec_of(flavor: &Flavor) -> FlavorSpec {
    FlavorSpec {
        vcpus: flavor.vcpus,
        memory_mb: flavor.ram_mb,
        disk_gb: flavor.disk_gb,
    }
}

/// The statuses (as the API shows them) an action may start from.
fn allowed(action: &Action) -> (&'static [VmState], &'static str) {
    match action {
        Action::Start => (&[VmState::Stopped], "SHUTOFF"),
        Action::Stop => (&[VmState::Active, VmState::Error], "ACTIVE or ERROR"),
        Action::Reboot { hard: false } => (&[VmState::Active], "ACTIVE"),
        Action::Reboot { hard: true } => (
            &[VmState::Active, VmState::Stopped, VmState::Error],
            "ACTIVE, SHUTOFF or ERROR",
        ),
        Action::LiveMigrate { .. } => (&[VmState::Active], "ACTIVE"),
        Action::Resize { .. } => (&[VmState::Active, VmState::Stopped], "ACTIVE or SHUTOFF"),
        Action::ConfirmResize | Action::RevertResize => (&[VmState::Resized], "VERIFY_RESIZE"),
    }
}

/// A 409 that says what state the server is in and which one the action needs.
fn wrong_state(server: &Server, action: &str, needs: &str) -> Error {
    let task = server
        .task_state
        .map(|t| format!(" (task {})", t.as_str()))
        .unwrap_or_default();
    Error::Conflict(format!(
        "Cannot '{action}' server {} while it is {}{task}; it must be {needs} with no task in progress.",
        server.id,
        server.status()
    ))
}

/// Checks `usage + extra` against `quota`, naming the first resource that would be over.
fn check_quota(quota: &ComputeQuota, usage: &ComputeUsage, extra: &ComputeUsage) -> Result<()> {
    for (name, limit, used, want) in [
        (
            "instances",
            quota.instances,
            usage.instances,
            extra.instances,
        ),
        ("cores", quota.cores, usage.cores, extra.cores),
        ("ram", quota.ram_mb, usage.ram_mb, extra.ram_mb),
    ] {
        if want > 0 && limit >= 0 && used + want > limit {
            return Err(Error::OverQuota(format!(
                "Quota exceeded for {name}: Requested {want}, but already used {used} of {limit} {name}. \
                 Delete servers or ask an administrator to raise the quota."
            )));
        }
    }
    Ok(())
}

/// Free capacity of a node after what its servers hold.
fn free_on(node: &Node, held: &crate::model::Allocation) -> Option<(i64, i64, i64)> {
    Some(held.free_of(&node.status.as_ref()?.capacity))
}

/// How a server's task ended, beyond the server's own fields.
#[derive(Debug, Default)]
struct Ending {
    /// Why it failed, for its instance action, when the server records no fault.
    failure: Option<String>,
    /// The status its migration moves to.
    migration: Option<&'static str>,
}

/// What placement honours for one server.
struct Want<'a> {
    flavor: &'a Flavor,
    zone: Option<&'a str>,
    /// The one node it may run on (where its boot volume is).
    only: Option<String>,
    /// The node a migration leaves: never chosen.
    except: Option<&'a str>,
    /// The server's group: its policy and the nodes its other members run on.
    group: Option<(GroupPolicy, BTreeSet<String>)>,
}

impl Want<'_> {
    /// For a server already in the store: its group as it stands now.
    fn group_of(db: &Db, server: &Server) -> Result<Option<(GroupPolicy, BTreeSet<String>)>> {
        let id = server.id.to_string();
        Ok(match db.server_group_of(&id)? {
            Some(g) => Some((g.policy, db.server_group_hosts(&g.id, &id)?)),
            None => None,
        })
    }

    /// Whether the group's hard policy lets the server run on `node`.
    fn group_allows(&self, node: &str) -> bool {
        match &self.group {
            Some((GroupPolicy::Affinity, hosts)) => hosts.is_empty() || hosts.contains(node),
            Some((GroupPolicy::AntiAffinity, hosts)) => !hosts.contains(node),
            _ => true,
        }
    }

    /// Whether the group's soft policy prefers `node`.
    fn group_prefers(&self, node: &str) -> bool {
        match &self.group {
            Some((GroupPolicy::SoftAffinity, hosts)) => hosts.contains(node),
            Some((GroupPolicy::SoftAntiAffinity, hosts)) => !hosts.contains(node),
            _ => true,
        }
    }
}

/// Places a new server inside its create transaction: on the chosen node, spawning; or,
/// with no node that fits, in ERROR with Nova's fault and its quota not held.
fn place(tx: &Tx, server: &mut Server, want: &Want) -> Result<Option<Node>> {
    let node = choose_node(tx, want)?;
    match &node {
        Some(n) => {
            server.host = Some(n.name.clone());
            server.availability_zone = n.status.as_ref().map(|s| s.availability_zone.clone());
            server.task_state = Some(TaskState::Spawning);
        }
        None => {
            server.vm_state = VmState::Error;
            server.task_state = None;
            server.counted = false;
            server.fault = fault(
                500,
                "No valid host was found. There are not enough hosts available.",
            );
        }
    }
    Ok(node)
}

/// Chooses, among the up nodes in the zone that fit the flavor and the group's hard
/// policy, one its soft policy prefers, then the one with the most free memory.
/// Placement is decided inside the caller's transaction, so two builds never both take
/// the last room on a node.
fn choose_node(tx: &Tx, want: &Want) -> Result<Option<Node>> {
    let candidates: Vec<Node> = tx
        .nodes_list()?
        .into_iter()
        .filter(|node| node.state == NodeState::Up && Some(node.name.as_str()) != want.except)
        .filter(|node| want.only.as_ref().is_none_or(|only| *only == node.name))
        .filter(|node| {
            want.zone.is_none()
                || node.status.as_ref().map(|s| s.availability_zone.as_str()) == want.zone
        })
        .filter(|node| want.group_allows(&node.name))
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let held = tx.allocations_by_node()?;
    let flavor = want.flavor;
    let mut best: Option<((bool, i64), Node)> = None;
    for node in candidates {
        let Some((cpu, ram, disk)) =
            free_on(&node, &held.get(&node.name).copied().unwrap_or_default())
        else {
            continue;
        };
        let fits = cpu >= i64::from(flavor.vcpus)
            && ram >= flavor.ram_mb as i64
            && disk >= flavor.disk_gb as i64;
        let rank = (want.group_prefers(&node.name), ram);
        if fits && best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, node));
        }
    }
    Ok(best.map(|(_, n)| n))
}

fn fault(code: u16, message: impl Into<String>) -> Option<Fault> {
    Some(Fault {
        code,
        message: message.into(),
        created: Utc::now(),
    })
}

fn power_of(p: PowerState) -> i64 {
    match p {
        PowerState::Running => power::RUNNING,
        PowerState::Paused => power::PAUSED,
        PowerState::Shutdown => power::SHUTDOWN,
        PowerState::Crashed => power::CRASHED,
    }
}

/// The id from a reference that may be a URL (`…/flavors/42` → `42`).
pub fn id_from_ref(reference: &str) -> &str {
    reference
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(reference)
}

impl Core {
    pub(crate) fn arc(&self) -> Result<Arc<Core>> {
        self.me
            .upgrade()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("the scheduler is shutting down")))
    }

    fn server_lock(&self, id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        self.server_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_default()
            .clone()
    }

    /// After a scheduler restart: the operations that were in flight died with the old
    /// process. Deletes are taken up again; a build that had no node yet fails with a
    /// fault (its quota given back); any other task is cleared, so the server accepts
    /// actions again — what the node runs is what its inventory reports.
    pub async fn servers_recover(&self) -> Result<()> {
        let stuck = self.store.read(|db| db.servers_in_flight()).await?;
        for server in stuck {
            let id = server.id;
            if server.task_state == Some(TaskState::Deleting) {
                let core = self.arc()?;
                tokio::spawn(async move { core.server_destroy(id).await });
                continue;
            }
            let building = server.vm_state == VmState::Building;
            tracing::warn!(%id, status = server.status(), "operation interrupted by a scheduler restart");
            self.server_record(id, move |s| {
                s.task_state = None;
                if building {
                    s.vm_state = VmState::Error;
                    s.counted = false;
                    s.fault = fault(500, "The build was interrupted by a restart of the scheduler; delete the server and create it again.");
                } else if let Some(old) = s.old_flavor.take().filter(|_| s.vm_state != VmState::Resized) {
                    // A resize that never reached VERIFY_RESIZE keeps its old flavor.
                    s.flavor = old;
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Records the power states a node observed (its heartbeat's inventory, asked for at
    /// `asked_at`): a VM that stopped behind the cloud's back turns SHUTOFF. Servers
    /// being acted on, or changed since the node was asked, are left to that action.
    pub async fn servers_sync_power(
        &self,
        node: &str,
        inventory: &yunji_common::agent_api::Inventory,
        asked_at: chrono::DateTime<Utc>,
    ) -> Result<()> {
        for observed in &inventory.servers {
            let (id, power) = (observed.id, observed.power_state);
            let lock = self.server_lock(id);
            let Ok(guard) = lock.try_lock_owned() else {
                continue;
            };
            let node = node.to_string();
            let host = node.clone();
            let seen = self
                .store
                .write(move |tx| {
                    let Some(mut server) = tx.server_get_even_deleted(id)? else {
                        return Ok::<_, Error>(Observed::Unknown);
                    };
                    if server.updated_at > asked_at {
                        return Ok(Observed::Known);
                    }
                    if server.vm_state == VmState::Deleted {
                        return Ok(Observed::Deleted);
                    }
                    let power_state = power_of(power);
                    if server.host.as_deref() != Some(node.as_str())
                        || server.task_state.is_some()
                        || server.power_state == power_state
                    {
                        return Ok(Observed::Known);
                    }
                    if server.vm_state == VmState::Active
                        && matches!(power, PowerState::Shutdown | PowerState::Crashed)
                    {
                        tracing::warn!(%id, %node, ?power, "server stopped behind the cloud's back");
                        server.vm_state = VmState::Stopped;
                    }
                    server.power_state = power_state;
                    tx.server_update(&server)?;
                    Ok(Observed::Known)
                })
                .await?;
            let why = match seen {
                Observed::Known => continue,
                Observed::Deleted => "its server was deleted while the node was unreachable",
                Observed::Unknown if self.config.compute.remove_unknown_vms => {
                    "no server of this cloud owns it (compute.remove_unknown_vms)"
                }
                Observed::Unknown => {
                    let first_time = self
                        .reported_unknown_vms
                        .lock()
                        .is_ok_and(|mut reported| reported.insert(id));
                    if first_time {
                        tracing::warn!(%id, node = %host,
                            "the node runs a VM no server of this cloud owns; it is left running \
                             (set compute.remove_unknown_vms = true to remove such VMs)");
                    }
                    continue;
                }
            };
            // Removed in the background, still under the server's lock, so the next
            // heartbeat neither waits for it nor starts it again.
            let core = self.arc()?;
            tokio::spawn(async move {
                let _guard = guard;
                let removed = match core.node_named(&host).await {
                    Ok(node) => core
                        .agents
                        .server_delete(&node, id)
                        .await
                        .map_err(|e| error_chain(&e)),
                    Err(e) => Err(error_chain(&e)),
                };
                match removed {
                    Ok(()) => {
                        tracing::warn!(%id, node = %host, why, "removed a VM the node still ran")
                    }
                    Err(error) => tracing::error!(%id, node = %host, why, %error,
                        "cannot remove a VM the node still runs; the next heartbeat tries again"),
                }
            });
        }
        Ok(())
    }

    /// What a project's servers use against its quota.
    pub async fn compute_usage(&self, project_id: &str) -> Result<ComputeUsage> {
        let project = project_id.to_string();
        Ok(self.store.read(move |db| db.server_usage(&project)).await?)
    }

    /// A server the caller may see (404 otherwise, also for another project's).
    pub async fn server_get(&self, caller: &Caller, id: &str, access: Access) -> Result<Server> {
        let missing = || Error::NotFound(format!("Instance {id} could not be found."));
        let uuid = Uuid::parse_str(id).map_err(|_| missing())?;
        let server = self
            .store
            .read(move |db| db.server_get(uuid))
            .await?
            .ok_or_else(missing)?;
        authorize(
            caller,
            &server.project_id,
            access,
            &format!("Instance {id}"),
        )?;
        if access == Access::Write && server.locked && !caller.is_admin() {
            return Err(Error::Conflict(format!(
                "Instance {id} is locked; unlock it (POST action {{\"unlock\": null}}) first"
            )));
        }
        Ok(server)
    }

    /// `lock` / `unlock`: a locked server accepts changes from admins only.
    pub async fn server_set_locked(&self, caller: &Caller, id: &str, locked: bool) -> Result<()> {
        let server = self.server_get(caller, id, Access::Read).await?;
        authorize(
            caller,
            &server.project_id,
            Access::Write,
            &format!("Instance {id}"),
        )?;
        self.server_record(server.id, move |s| s.locked = locked)
            .await?;
        Ok(())
    }

    /// The state of each node, for `host_status`.
    pub async fn node_states(&self) -> Result<std::collections::HashMap<String, NodeState>> {
        Ok(self
            .nodes()
            .await?
            .into_iter()
            .map(|n| (n.name, n.state))
            .collect())
    }

    /// Lists servers: the caller's project, or every project for an admin asking for
    /// `all_tenants`.
    pub async fn servers_list(
        &self,
        caller: &Caller,
        mut filter: ServerFilter,
        all_tenants: bool,
    ) -> Result<Vec<Server>> {
        if all_tenants {
            require_admin(caller, "listing the servers of all projects")?;
        } else {
            filter.project_id = Some(require_project(caller)?.to_string());
        }
        if filter.host.is_some() {
            require_admin(caller, "filtering servers by host")?;
        }
        Ok(self.store.read(move |db| db.servers_list(&filter)).await?)
    }

    /// Accepts a create; the build runs in the background.
    pub async fn server_create(&self, caller: &Caller, input: ServerCreate) -> Result<Server> {
        let project_id = require_project(caller)?.to_string();
        authorize(
            caller,
            &project_id,
            Access::Write,
            "servers of this project",
        )?;
        let name = input.name.trim();
        if name.is_empty() || name.len() > 255 || name != input.name {
            return Err(Error::BadRequest(
                "Invalid input: the server name must be 1 to 255 characters without leading or trailing spaces".into(),
            ));
        }
        let image_ref = input
            .image_ref
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| id_from_ref(r).to_string());
        // Boot from volume: the block devices are checked now and made during the build.
        let block_devices = self
            .boot_devices_check(caller, &input.block_devices, image_ref.is_some())
            .await?;
        if let Some(data) = &input.user_data {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| Error::BadRequest("user_data must be base64".into()))?;
            if decoded.len() > 65_535 {
                return Err(Error::BadRequest("user_data is larger than 64 KiB".into()));
            }
        }
        for (k, v) in &input.metadata {
            if k.is_empty() || k.len() > 255 || v.len() > 255 {
                return Err(Error::BadRequest(
                    "metadata keys must be 1 to 255 characters and values at most 255".into(),
                ));
            }
        }
        let mut input = input;
        input.tags = super::server_tags::check_tags(std::mem::take(&mut input.tags))?;
        // Every look-up that gates the create (flavor, image, key pair, zone, networks) runs in
        // the same transaction as the quota check and the insert: one trip to the store.
        let now = Utc::now();
        let defaults = self.config.compute.default_quota;
        let (caller, flavor_ref) = (caller.clone(), id_from_ref(&input.flavor_ref).to_string());
        let group_id = input.group.clone();
        let by = Requester::new(&caller, &input.request_id);
        let (server, node) = self
            .store
            .write(move |tx| {
                let flavor = usable_flavor(tx, &caller, &flavor_ref)?;
                let image = match &image_ref {
                    Some(id) => Some(bootable_image(tx, &caller, id)?),
                    None => None,
                };
                if let Some(key) = &input.key_name
                    && tx.keypair_get(&caller.user_id, key)?.is_none()
                {
                    return Err(Error::BadRequest(format!(
                        "Invalid key_name provided: you have no key pair named {key:?} (openstack keypair list)."
                    )));
                }
                if let Some(zone) = &input.availability_zone
                    && !tx.nodes_list()?.iter().any(|n| {
                        n.status
                            .as_ref()
                            .is_some_and(|s| &s.availability_zone == zone)
                    })
                {
                    return Err(Error::BadRequest(format!(
                        "The requested availability zone {zone} is not available; GET /os-availability-zone lists them."
                    )));
                }
                let networks = plan_server_networks(tx, &caller, &project_id, &input.networks)?;
                let security_groups = if input.security_groups.is_empty() {
                    vec![DEFAULT_GROUP.to_string()]
                } else {
                    input.security_groups
                };
                // Each named group must exist now; the ports made at build time get them.
                port_groups(tx, Some(&caller), &project_id, true, Some(&security_groups), true)?;
                let mut server = Server {
                    id: Uuid::new_v4(),
                    name: input.name,
                    project_id,
                    user_id: caller.user_id.clone(),
                    flavor,
                    old_flavor: None,
                    image_id: image.as_ref().map(|i| i.id.clone()),
                    vm_state: VmState::Building,
                    task_state: Some(TaskState::Scheduling),
                    power_state: power::NOSTATE,
                    host: None,
                    availability_zone: input.availability_zone,
                    key_name: input.key_name,
                    user_data: input.user_data,
                    metadata: input.metadata,
                    tags: input.tags,
                    description: input.description,
                    networks,
                    block_devices,
                    security_groups,
                    fault: None,
                    counted: true,
                    locked: false,
                    created_at: now,
                    updated_at: now,
                    launched_at: None,
                    deleted_at: None,
                };
                let min_disk = image.as_ref().map_or(0, |i| i.min_disk as u64);
                let flavor = &server.flavor;
                if flavor.disk_gb > 0 && flavor.disk_gb < min_disk {
                    return Err(Error::BadRequest(format!(
                        "Flavor's disk is too small for requested image: the image needs {min_disk} GB, flavor {} has {} GB.",
                        flavor.name, flavor.disk_gb
                    )));
                }
                let quota = tx.compute_quota(&server.project_id, &defaults)?;
                if quota.metadata_items >= 0
                    && server.metadata.len() as i64 > quota.metadata_items
                {
                    return Err(Error::OverQuota(format!(
                        "Quota exceeded for metadata_items: {} requested, {} allowed.",
                        server.metadata.len(),
                        quota.metadata_items
                    )));
                }
                let usage = tx.server_usage(&server.project_id)?;
                let extra = ComputeUsage {
                    instances: 1,
                    cores: i64::from(server.flavor.vcpus),
                    ram_mb: server.flavor.ram_mb as i64,
                };
                check_quota(&quota, &usage, &extra)?;
                let group = match &group_id {
                    Some(id) => Some(server_group_for_create(tx, &caller, id)?),
                    None => None,
                };
                let (flavor, zone) = (server.flavor.clone(), server.availability_zone.clone());
                let want = Want {
                    flavor: &flavor,
                    zone: zone.as_deref(),
                    // A server booting from an existing volume runs where the volume is.
                    only: crate::core::volumes::boot_volume_host(tx, &server)?,
                    except: None,
                    group: group.map(|g| (g.policy, g.hosts)),
                };
                let node = place(tx, &mut server, &want)?;
                tx.server_insert(&server)?;
                if let Some(id) = &group_id {
                    tx.server_group_add_member(id, &server.id.to_string())?;
                }
                action_create(tx, &server, &by)?;
                Ok((server, node))
            })
            .await?;
        if let Some(node) = node {
            let core = self.arc()?;
            let id = server.id;
            tokio::spawn(async move { core.server_build(id, node).await });
        }
        Ok(server)
    }

    /// Boots a placed server on its node; on failure it turns ERROR with a fault and
    /// gives its quota back, and nothing is left on the node.
    async fn server_build(self: Arc<Self>, id: Uuid, node: Node) {
        let lock = self.server_lock(id);
        let _guard = lock.lock().await;
        // A delete may have come first: it waited for this lock and found nothing built.
        let server = match self.store.read(move |db| db.server_get(id)).await {
            Ok(Some(s)) if s.task_state == Some(TaskState::Spawning) => s,
            Ok(_) => return,
            Err(error) => {
                tracing::error!(%id, error = %error_chain(&error), "building a server failed");
                return;
            }
        };
        let spec = match self.server_ports_bind(&server, &node).await {
            Ok(()) => self.server_spec(&server).await,
            Err(e) => Err(e),
        };
        let made = match spec {
            Ok(_) => self.boot_volumes_prepare(&server, &node).await,
            Err(_) => Ok(Vec::new()),
        };
        // The node boots the server with the volumes of its block device mapping.
        let spec = match (spec, &made) {
            (Ok(mut spec), Ok(_)) => match self.server_spec_volumes(id).await {
                Ok(volumes) => {
                    spec.volumes = volumes;
                    Ok(spec)
                }
                Err(e) => Err(e),
            },
            (spec, _) => spec,
        };
        let result = match (spec, made.clone()) {
            (Ok(spec), Ok(_)) => match self.image_push_if_missing(&node, spec.image.as_ref()).await
            {
                Ok(()) => match self.agents.server_create(&node, &spec).await {
                    Ok(reply) => self.boot_volumes_attach(id, &node).await.map(|()| reply),
                    Err(e) => Err(error_chain(&e)),
                },
                Err(e) => Err(error_chain(&e)),
            },
            (Err(e), _) => Err(error_chain(&e)),
            (_, Err(message)) => Err(message),
        };
        let outcome = match result {
            Ok(reply) => {
                tracing::info!(%id, node = %node.name, "server built");
                self.server_record(id, move |s| {
                    s.vm_state = VmState::Active;
                    s.task_state = None;
                    s.power_state = power_of(reply.power_state);
                    s.launched_at = Some(Utc::now());
                })
                .await
            }
            Err(message) => {
                tracing::warn!(%id, node = %node.name, %message, "building a server failed");
                // Leave nothing behind on the node, whatever step failed.
                let _ = self.agents.server_delete(&node, id).await;
                let _ = self.server_ports_release(&server).await;
                self.boot_volumes_cleanup(id, &made.unwrap_or_default())
                    .await;
                self.server_record(id, move |s| {
                    s.vm_state = VmState::Error;
                    s.task_state = None;
                    s.host = None;
                    s.counted = false;
                    s.fault = fault(
                        500,
                        format!("Build of instance {id} failed on {}: {message}", node.name),
                    );
                })
                .await
            }
        };
        if let Err(error) = outcome {
            tracing::error!(%id, error = %error_chain(&error), "recording a build failed");
        }
    }

    /// What the node needs to run `server`.
    async fn server_spec(&self, server: &Server) -> Result<ServerSpec> {
        let image = match &server.image_id {
            Some(id) => {
                let image = self.image_get_any(id).await?;
                image.map(|i| ImageSpec {
                    id: i.id,
                    disk_format: i.disk_format.unwrap_or_default(),
                    size: i.size.unwrap_or_default() as u64,
                    os_hash_value: i.os_hash_value,
                })
            }
            None => None,
        };
        let public_key = match &server.key_name {
            Some(name) => self
                .keypair_of_user(&server.user_id, name)
                .await?
                .map(|k| k.public_key),
            None => None,
        };
        Ok(ServerSpec {
            id: server.id,
            name: server.name.clone(),
            hostname: hostname_of(&server.name),
            project_id: server.project_id.clone(),
            flavor: spec_of(&server.flavor),
            image,
            user_data: server.user_data.clone(),
            metadata: server.metadata.clone(),
            public_key,
            nics: self.server_nics(server.id).await?,
            // A build fills them in once it made them, a live migration with those
            // attached.
            volumes: Vec::new(),
        })
    }

    /// The volumes attached to a server, as its node is told them.
    async fn server_spec_volumes(&self, id: Uuid) -> Result<Vec<VolumeAttachmentSpec>> {
        let mut volumes = Vec::new();
        for a in self.server_attached_volumes(id).await? {
            volumes.push(VolumeAttachmentSpec {
                volume_id: a.volume_id,
                read_only: a.mode == "ro",
                limits: self.volume_io_limits(a.volume_id).await?,
                device: a.device,
            });
        }
        Ok(volumes)
    }

    /// Applies `change` to the stored server in one transaction.
    async fn server_record(
        &self,
        id: Uuid,
        change: impl FnOnce(&mut Server) + Send + 'static,
    ) -> Result<Option<Server>> {
        self.server_finish(id, Ending::default(), change).await
    }

    /// Records a change that may end the server's task, with how it ended: the failure
    /// its action reports and the status its migration moves to.
    async fn server_finish(
        &self,
        id: Uuid,
        ending: Ending,
        change: impl FnOnce(&mut Server) + Send + 'static,
    ) -> Result<Option<Server>> {
        self.store
            .write(move |tx| {
                let Some(mut server) = tx.server_get(id)? else {
                    return Ok::<_, Error>(None);
                };
                let before = server.clone();
                change(&mut server);
                tx.server_update(&server)?;
                let now = Utc::now();
                if let Some(status) = ending.migration {
                    tx.server_migration_set_status(id, status, now)?;
                }
                if let Some(failure) = &ending.failure {
                    tx.instance_action_finish(id, Some(failure), now)?;
                }
                action_end_if_done(tx, &before, &server)?;
                Ok(Some(server))
            })
            .await
    }

    /// Starts a task on a server and the action that records it, in one transaction.
    async fn server_begin(
        &self,
        id: Uuid,
        task: TaskState,
        by: Requester,
        api_name: &'static str,
    ) -> Result<()> {
        self.store
            .write(move |tx| {
                let Some(mut server) = tx.server_get(id)? else {
                    return Err(Error::NotFound(format!(
                        "Instance {id} could not be found."
                    )));
                };
                server.task_state = Some(task);
                tx.server_update(&server)?;
                action_begin(tx, &server, &by, api_name)
            })
            .await
    }

    pub(crate) async fn node_named(&self, name: &str) -> Result<Node> {
        let key = name.to_string();
        self.store
            .read(move |db| db.node_get(&key))
            .await?
            .ok_or_else(|| Error::Conflict(format!("host {name} is not known to the scheduler")))
    }

    /// `PUT /servers/{id}`: name and description.
    pub async fn server_update(
        &self,
        caller: &Caller,
        id: &str,
        name: Option<String>,
        description: Option<Option<String>>,
    ) -> Result<Server> {
        let server = self.server_get(caller, id, Access::Write).await?;
        if let Some(n) = &name
            && (n.trim().is_empty() || n.len() > 255 || n.trim() != n)
        {
            return Err(Error::BadRequest(
                "Invalid input: the server name must be 1 to 255 characters without leading or trailing spaces".into(),
            ));
        }
        let updated = self
            .server_record(server.id, move |s| {
                if let Some(n) = name {
                    s.name = n;
                }
                if let Some(d) = description {
                    s.description = d;
                }
            })
            .await?;
        updated.ok_or_else(|| Error::NotFound(format!("Instance {id} could not be found.")))
    }

    /// `PUT`/`POST` of server metadata: replace all, or merge.
    pub async fn server_metadata_set(
        &self,
        caller: &Caller,
        id: &str,
        items: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<BTreeMap<String, String>> {
        let server = self.server_get(caller, id, Access::Write).await?;
        for (k, v) in &items {
            if k.is_empty() || k.len() > 255 || v.len() > 255 {
                return Err(Error::BadRequest(
                    "metadata keys must be 1 to 255 characters and values at most 255".into(),
                ));
            }
        }
        let defaults = self.config.compute.default_quota;
        let id = server.id;
        self.store
            .write(move |tx| {
                let mut server = tx
                    .server_get(id)?
                    .ok_or_else(|| Error::NotFound(format!("Instance {id} could not be found.")))?;
                if replace {
                    server.metadata = items;
                } else {
                    server.metadata.extend(items);
                }
                let quota = tx.compute_quota(&server.project_id, &defaults)?;
                if quota.metadata_items >= 0 && server.metadata.len() as i64 > quota.metadata_items
                {
                    return Err(Error::OverQuota(format!(
                        "Quota exceeded for metadata_items: {} requested, {} allowed.",
                        server.metadata.len(),
                        quota.metadata_items
                    )));
                }
                tx.server_update(&server)?;
                Ok(server.metadata)
            })
            .await
    }

    pub async fn server_metadata_delete(&self, caller: &Caller, id: &str, key: &str) -> Result<()> {
        let server = self.server_get(caller, id, Access::Write).await?;
        if !server.metadata.contains_key(key) {
            return Err(Error::NotFound(format!(
                "Metadata item {key} was not found"
            )));
        }
        let key = key.to_string();
        self.server_record(server.id, move |s| {
            s.metadata.remove(&key);
        })
        .await?;
        Ok(())
    }

    /// Accepts a delete; the node forgets the server in the background.
    pub async fn server_delete(&self, caller: &Caller, id: &str, request_id: &str) -> Result<()> {
        let server = self.server_get(caller, id, Access::Write).await?;
        if server.task_state == Some(TaskState::Deleting) {
            return Ok(());
        }
        self.server_begin(
            server.id,
            TaskState::Deleting,
            Requester::new(caller, request_id),
            "delete",
        )
        .await?;
        let core = self.arc()?;
        tokio::spawn(async move { core.server_destroy(server.id).await });
        Ok(())
    }

    async fn server_destroy(self: Arc<Self>, id: Uuid) {
        let lock = self.server_lock(id);
        let guard = lock.lock().await;
        let (host, server) = match self.store.read(move |db| db.server_get(id)).await {
            Ok(Some(s)) => (s.host.clone(), s),
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%id, error = %error_chain(&error), "deleting a server failed");
                return;
            }
        };
        if let Some(host) = host {
            let result = match self.node_named(&host).await {
                Ok(node) => self
                    .agents
                    .server_delete(&node, id)
                    .await
                    .map_err(|e| error_chain(&e)),
                Err(e) => Err(error_chain(&e)),
            };
            if let Err(message) = result {
                // The node is unreachable: the server is gone for the user, and the
                // heartbeat that finds its VM still running once the node is back
                // removes it (`servers_sync_power`).
                tracing::warn!(%id, %host, %message, "the node did not confirm the delete");
            }
        }
        if let Err(error) = self.server_ports_release(&server).await {
            tracing::error!(%id, error = %error_chain(&error), "releasing a server's ports failed");
        }
        if let Err(error) = self.volumes_release_server(id).await {
            tracing::error!(%id, error = %error_chain(&error), "releasing a deleted server's volumes failed");
        }
        let outcome = self
            .server_record(id, |s| {
                s.vm_state = VmState::Deleted;
                s.task_state = None;
                s.power_state = power::NOSTATE;
                s.deleted_at = Some(Utc::now());
            })
            .await;
        if let Err(error) = outcome {
            tracing::error!(%id, error = %error_chain(&error), "recording a delete failed");
        }
        drop(guard);
        self.server_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// `os-getConsoleOutput`: the last `length` lines (all when `None`).
    pub async fn server_console(
        &self,
        caller: &Caller,
        id: &str,
        length: Option<usize>,
    ) -> Result<String> {
        let server = self.server_get(caller, id, Access::Read).await?;
        let host = server.host.clone().ok_or_else(|| {
            Error::Conflict(format!(
                "Instance {id} has no console yet: it is {}",
                server.status()
            ))
        })?;
        let node = self.node_named(&host).await?;
        self.agents
            .server_console(&node, server.id, length)
            .await
            .map_err(|e| {
                Error::Conflict(format!(
                    "the console of instance {id} is not available: {}",
                    error_chain(&e)
                ))
            })
    }

    /// Accepts an action: checks policy, state and quota, records the task, and runs it
    /// in the background.
    pub async fn server_action(
        &self,
        caller: &Caller,
        id: &str,
        action: Action,
        request_id: &str,
    ) -> Result<()> {
        if let Action::LiveMigrate { .. } = action {
            require_admin(caller, "live-migrating a server")?;
        }
        let server = self.server_get(caller, id, Access::Write).await?;
        let (states, needs) = allowed(&action);
        if server.task_state.is_some() || !states.contains(&server.vm_state) {
            return Err(wrong_state(&server, action.api_name(), needs));
        }
        let new_flavor = match &action {
            Action::Resize { flavor_ref } => {
                let flavor = self
                    .flavor_for_server(caller, id_from_ref(flavor_ref))
                    .await?;
                if flavor.id == server.flavor.id {
                    return Err(Error::BadRequest(
                        "When resizing, instances must change flavor!".into(),
                    ));
                }
                if flavor.disk_gb < server.flavor.disk_gb {
                    return Err(Error::BadRequest(format!(
                        "Resizing to a smaller disk is not possible: flavor {} has {} GB, the server has {} GB.",
                        flavor.name, flavor.disk_gb, server.flavor.disk_gb
                    )));
                }
                Some(flavor)
            }
            _ => None,
        };
        let target = match &action {
            Action::LiveMigrate { host } => {
                Some(self.migration_target(&server, host.as_deref()).await?)
            }
            _ => None,
        };
        let task = match &action {
            Action::Start => TaskState::PoweringOn,
            Action::Stop => TaskState::PoweringOff,
            Action::Reboot { hard: false } => TaskState::Rebooting,
            Action::Reboot { hard: true } => TaskState::RebootingHard,
            Action::LiveMigrate { .. } => TaskState::Migrating,
            Action::Resize { .. } => TaskState::ResizePrep,
            Action::ConfirmResize => TaskState::ResizeConfirming,
            Action::RevertResize => TaskState::ResizeReverting,
        };
        let defaults = self.config.compute.default_quota;
        let expected = server.updated_at;
        let sid = server.id;
        let api_name = action.api_name();
        let host = server.host.clone();
        let by = Requester::new(caller, request_id);
        let target_name = target.as_ref().map(|n| n.name.clone());
        self.store
            .write(move |tx| {
                let mut current = tx.server_get(sid)?.ok_or_else(|| {
                    Error::NotFound(format!("Instance {sid} could not be found."))
                })?;
                // Another request changed it since we looked: check again under the lock.
                if current.updated_at != expected
                    && (current.task_state.is_some() || !states.contains(&current.vm_state))
                {
                    return Err(wrong_state(&current, api_name, needs));
                }
                if let Some(flavor) = &new_flavor {
                    let quota = tx.compute_quota(&current.project_id, &defaults)?;
                    let usage = tx.server_usage(&current.project_id)?;
                    let extra = ComputeUsage {
                        instances: 0,
                        cores: i64::from(flavor.vcpus) - i64::from(current.flavor.vcpus),
                        ram_mb: flavor.ram_mb as i64 - current.flavor.ram_mb as i64,
                    };
                    check_quota(&quota, &usage, &extra)?;
                    // The host must hold the larger flavor until the resize is confirmed.
                    let held = tx.allocations_by_node()?;
                    let node = host
                        .as_deref()
                        .and_then(|h| tx.node_get(h).transpose())
                        .transpose()?;
                    let room = node
                        .as_ref()
                        .and_then(|n| free_on(n, &held.get(&n.name).copied().unwrap_or_default()));
                    let (cpu, ram, disk) = room.unwrap_or((0, 0, 0));
                    let grow = (
                        i64::from(flavor.vcpus.saturating_sub(current.flavor.vcpus)),
                        flavor.ram_mb.saturating_sub(current.flavor.ram_mb) as i64,
                        flavor.disk_gb.saturating_sub(current.flavor.disk_gb) as i64,
                    );
                    if grow.0 > cpu || grow.1 > ram || grow.2 > disk {
                        return Err(Error::Conflict(format!(
                            "No valid host was found: {} cannot hold flavor {}.",
                            host.as_deref().unwrap_or("the server's host"),
                            flavor.name
                        )));
                    }
                    current.old_flavor = Some(current.flavor.clone());
                    current.flavor = flavor.clone();
                }
                // Its volumes move with it: whether they can is decided here, atomically
                // with the task that makes their other operations wait.
                if let Some(dest) = &target_name {
                    volumes_movable(tx, current.id, dest)?;
                }
                current.task_state = Some(task);
                tx.server_update(&current)?;
                action_begin(tx, &current, &by, api_name)?;
                let source = current.host.clone().unwrap_or_default();
                let (kind, dest, status, old_flavor) = match (&target_name, &current.old_flavor) {
                    (Some(dest), _) => ("live-migration", dest.clone(), "running", &current.flavor),
                    (None, Some(old)) if new_flavor.is_some() => {
                        ("resize", source.clone(), "migrating", old)
                    }
                    _ => return Ok(()),
                };
                tx.server_migration_begin(
                    &ServerMigration {
                        id: 0,
                        server_id: current.id,
                        kind: kind.into(),
                        source_node: source,
                        dest_node: dest,
                        status: status.into(),
                        old_flavor_seq: None,
                        new_flavor_seq: None,
                        created_at: Utc::now(),
                        updated_at: Utc::now(),
                    },
                    &old_flavor.id,
                    &current.flavor.id,
                )?;
                Ok(())
            })
            .await?;
        let core = self.arc()?;
        tokio::spawn(async move { core.server_run_action(sid, action, target).await });
        Ok(())
    }

    /// Where a live migration goes: the named host, or the best other up node.
    async fn migration_target(&self, server: &Server, host: Option<&str>) -> Result<Node> {
        let source = server.host.clone();
        match host {
            Some(name) => {
                let node = self
                    .store
                    .read({
                        let name = name.to_string();
                        move |db| db.node_get(&name)
                    })
                    .await?
                    .ok_or_else(|| {
                        Error::BadRequest(format!("Compute host {name} could not be found."))
                    })?;
                if node.state != NodeState::Up {
                    return Err(Error::BadRequest(format!("Compute host {name} is not up.")));
                }
                if Some(name) == source.as_deref() {
                    return Err(Error::BadRequest(format!(
                        "The server already runs on {name}; name another host or none."
                    )));
                }
                let held = self.store.read(|db| db.allocations_by_node()).await?;
                let (cpu, ram, disk) = free_on(&node, &held.get(name).copied().unwrap_or_default())
                    .unwrap_or((0, 0, 0));
                let f = &server.flavor;
                if cpu < i64::from(f.vcpus) || ram < f.ram_mb as i64 || disk < f.disk_gb as i64 {
                    return Err(Error::Conflict(format!(
                        "Compute host {name} does not have room for flavor {}.",
                        f.name
                    )));
                }
                let copy = server.clone();
                let group = self
                    .store
                    .read_as(move |db| Want::group_of(db, &copy))
                    .await?;
                if let Some((policy, _)) = &group {
                    let want = Want {
                        flavor: f,
                        zone: None,
                        only: None,
                        except: None,
                        group: group.clone(),
                    };
                    if !want.group_allows(name) {
                        return Err(Error::Conflict(format!(
                            "Compute host {name} would break the {} policy of the server's group.",
                            policy.as_str()
                        )));
                    }
                }
                Ok(node)
            }
            None => {
                let server = server.clone();
                self.store
                    .write(move |tx| {
                        choose_node(
                            tx,
                            &Want {
                                flavor: &server.flavor,
                                zone: None,
                                only: None,
                                except: source.as_deref(),
                                group: Want::group_of(tx, &server)?,
                            },
                        )
                    })
                    .await?
                    .ok_or_else(|| {
                        Error::Conflict(
                            "No valid host was found: no other up node has room for this server."
                                .into(),
                        )
                    })
            }
        }
    }

    async fn server_run_action(self: Arc<Self>, id: Uuid, action: Action, target: Option<Node>) {
        let lock = self.server_lock(id);
        let _guard = lock.lock().await;
        let server = match self.store.read(move |db| db.server_get(id)).await {
            Ok(Some(s)) => s,
            _ => return,
        };
        let Some(host) = server.host.clone() else {
            return;
        };
        let node = match self.node_named(&host).await {
            Ok(node) => node,
            Err(error) => {
                tracing::error!(%id, error = %error_chain(&error), "the server's node is unknown");
                return;
            }
        };
        let outcome = match action {
            Action::LiveMigrate { .. } => match target {
                Some(target) => self.live_migrate(&server, &node, &target).await,
                None => Ok(()),
            },
            other => self.act_on_node(&server, &node, other).await,
        };
        if let Err(error) = outcome {
            tracing::error!(%id, error = %error_chain(&error), "recording an action failed");
        }
    }

    /// Runs one action on the server's node and records what it observed. A failure
    /// leaves the server as it was (the node said so), with no task, and is logged.
    async fn act_on_node(&self, server: &Server, node: &Node, action: Action) -> Result<()> {
        let id = server.id;
        let node_action = match &action {
            Action::Start => ServerAction::Start,
            Action::Stop => ServerAction::Stop {
                timeout_secs: self.config.compute.shutdown_timeout_secs,
            },
            Action::Reboot { hard } => ServerAction::Reboot { hard: *hard },
            Action::Resize { .. } => ServerAction::Resize {
                flavor: spec_of(&server.flavor),
            },
            Action::ConfirmResize => ServerAction::ConfirmResize,
            Action::RevertResize => ServerAction::RevertResize,
            Action::LiveMigrate { .. } => return Ok(()),
        };
        let result = self.agents.server_act(node, id, &node_action).await;
        let window = self.config.compute.resize_confirm_window_secs;
        let resized = matches!(action, Action::Resize { .. }) && result.is_ok();
        match result {
            Ok(reply) => {
                let observed = power_of(reply.power_state);
                let migration = match action {
                    Action::Resize { .. } => Some("finished"),
                    Action::ConfirmResize => Some("confirmed"),
                    Action::RevertResize => Some("reverted"),
                    _ => None,
                };
                let ending = Ending {
                    failure: None,
                    migration,
                };
                self.server_finish(id, ending, move |s| {
                    s.task_state = None;
                    s.power_state = observed;
                    match action {
                        Action::Start | Action::Reboot { .. } => s.vm_state = VmState::Active,
                        Action::Stop => s.vm_state = VmState::Stopped,
                        Action::Resize { .. } => s.vm_state = VmState::Resized,
                        Action::ConfirmResize => {
                            s.old_flavor = None;
                            s.vm_state = if observed == power::RUNNING {
                                VmState::Active
                            } else {
                                VmState::Stopped
                            };
                        }
                        Action::RevertResize => {
                            if let Some(old) = s.old_flavor.take() {
                                s.flavor = old;
                            }
                            s.vm_state = if observed == power::RUNNING {
                                VmState::Active
                            } else {
                                VmState::Stopped
                            };
                        }
                        Action::LiveMigrate { .. } => {}
                    }
                })
                .await?;
            }
            Err(e) => {
                let message = error_chain(&e);
                tracing::warn!(%id, node = %node.name, action = node_action.name(), %message, "action failed on the node");
                let migration = matches!(
                    action,
                    Action::Resize { .. } | Action::ConfirmResize | Action::RevertResize
                )
                .then_some("error");
                let ending = Ending {
                    failure: None,
                    migration,
                };
                self.server_finish(id, ending, move |s| {
                    s.task_state = None;
                    if let Action::Resize { .. } = action
                        && let Some(old) = s.old_flavor.take()
                    {
                        s.flavor = old;
                    }
                    s.fault = fault(500, format!("{} failed: {message}", node_action.name()));
                })
                .await?;
            }
        }
        if resized && window > 0 {
            let core = self.arc()?;
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(window)).await;
                core.auto_confirm(id).await;
            });
        }
        Ok(())
    }

    /// Confirms a resize nobody confirmed within the window.
    /// (Boxed: it runs an action, which may start another confirm window.)
    fn auto_confirm(self: Arc<Self>, id: Uuid) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            let accepted = self
                .store
                .write(move |tx| {
                    let Some(mut s) = tx.server_get(id)? else {
                        return Ok::<_, Error>(false);
                    };
                    if s.vm_state != VmState::Resized || s.task_state.is_some() {
                        return Ok(false);
                    }
                    s.task_state = Some(TaskState::ResizeConfirming);
                    tx.server_update(&s)?;
                    Ok(true)
                })
                .await;
            if let Ok(true) = accepted {
                tracing::info!(%id, "resize confirmed automatically after the confirm window");
                self.server_run_action(id, Action::ConfirmResize, None)
                    .await;
            }
        })
    }

    /// Live migration: the target prepares, the source sends, the target takes over.
    /// The host changes only when the migration completed; on failure the server keeps
    /// running on the source.
    async fn live_migrate(&self, server: &Server, source: &Node, target: &Node) -> Result<()> {
        let id = server.id;
        let mut spec = self.server_spec(server).await?;
        spec.volumes = self.server_spec_volumes(id).await?;
        let volumes = spec.volumes.clone();
        // The target makes the VM's disk on the same base image as the source, and blank
        // volumes the source fills.
        let mut copies_made = false;
        let finished: std::result::Result<yunji_common::agent_api::ServerReply, String> = async {
            self.image_push_if_missing(target, spec.image.as_ref())
                .await
                .map_err(|e| {
                    format!(
                        "the server's image could not be pushed to {}: {}",
                        target.name,
                        error_chain(&e)
                    )
                })?;
            self.volumes_make_copies(target, &volumes).await?;
            copies_made = true;
            let call = |e: yunji_common::client::CallError| error_chain(&e);
            let prepared = self
                .agents
                .server_act(
                    target,
                    id,
                    &ServerAction::PrepareIncoming {
                        spec: Box::new(spec),
                    },
                )
                .await
                .map_err(call)?;
            let uri = prepared
                .migration_uri
                .ok_or_else(|| format!("{} gave no migration address", target.name))?;
            self.agents
                .server_act(source, id, &ServerAction::MigrateOut { uri })
                .await
                .map_err(call)?;
            self.agents
                .server_act(target, id, &ServerAction::FinishIncoming)
                .await
                .map_err(call)
        }
        .await;
        match finished {
            Ok(reply) => {
                let (name, zone) = (
                    target.name.clone(),
                    target.status.as_ref().map(|s| s.availability_zone.clone()),
                );
                tracing::info!(%id, from = %source.name, to = %name, "live migration completed");
                if let Err(e) = self.server_ports_rebind(&id.to_string(), &name).await {
                    tracing::warn!(%id, error = %e, "moving the server's ports to its new node failed");
                }
                if let Err(e) = self.volumes_moved(id, source, target, &volumes).await {
                    tracing::error!(%id, error = %error_chain(&e), "recording the server's volumes on its new node failed");
                }
                let ending = Ending {
                    failure: None,
                    migration: Some("completed"),
                };
                self.server_finish(id, ending, move |s| {
                    s.host = Some(name);
                    s.availability_zone = zone.or(s.availability_zone.take());
                    s.task_state = None;
                    s.power_state = power_of(reply.power_state);
                })
                .await?;
            }
            Err(message) => {
                tracing::warn!(%id, from = %source.name, to = %target.name, %message, "live migration failed; the server stays on its source");
                let _ = self
                    .agents
                    .server_act(target, id, &ServerAction::AbortIncoming)
                    .await;
                if copies_made {
                    self.volumes_drop_copies(target, &volumes).await;
                }
                let ending = Ending {
                    failure: Some(format!(
                        "live migration to {} failed: {message}",
                        target.name
                    )),
                    migration: Some("failed"),
                };
                self.server_finish(id, ending, |s| s.task_state = None)
                    .await?;
            }
        }
        Ok(())
    }
}

impl Core {
    /// An image by id, whoever may see it (for what a node needs to boot).
    pub async fn image_get_any(&self, id: &str) -> Result<Option<crate::model::Image>> {
        let key = id.to_string();
        Ok(self.store.read(move |db| db.image_get(&key)).await?)
    }

    /// `createImage` (B.2.3.1): a new image of the server's project from the server's
    /// disk. With the sim driver set the disk is the image it booted from.
    pub async fn server_create_image(
        &self,
        caller: &Caller,
        id: &str,
        name: String,
        metadata: serde_json::Map<String, Value>,
        request_id: &str,
    ) -> Result<String> {
        let server = self.server_get(caller, id, Access::Write).await?;
        let states = [VmState::Active, VmState::Stopped];
        if server.task_state.is_some() || !states.contains(&server.vm_state) {
            return Err(wrong_state(&server, "createImage", "ACTIVE or SHUTOFF"));
        }
        let source_id = server.image_id.clone().ok_or_else(|| {
            Error::Conflict(format!(
                "server {id} booted from a volume; snapshot the volume instead"
            ))
        })?;
        let source = self.image_get_any(&source_id).await?.ok_or_else(|| {
            Error::Conflict(format!("the image server {id} booted from ({source_id}) was deleted; its disk cannot be copied"))
        })?;
        self.server_begin(
            server.id,
            TaskState::ImageSnapshot,
            Requester::new(caller, request_id),
            "createImage",
        )
        .await?;
        let mut properties = metadata;
        properties.insert("instance_uuid".into(), Value::String(server.id.to_string()));
        properties.insert("image_type".into(), Value::String("snapshot".into()));
        properties.insert("base_image_ref".into(), Value::String(source_id));
        let node = match &server.host {
            // A node the scheduler lost: the copy of the boot image below still works.
            Some(host) => self.node_named(host).await.ok(),
            None => None,
        };
        let from_disk = match &node {
            Some(node) => {
                self.image_create_from_disk(
                    caller,
                    &source,
                    server.id,
                    &server.project_id,
                    node,
                    name.clone(),
                    properties.clone(),
                )
                .await
            }
            None => Ok(None),
        };
        let created = match from_disk {
            Ok(Some(image)) => Ok(image),
            // The node has no disks (sim): the server's disk is the image it booted from.
            Ok(None) => {
                self.image_create_from(caller, &source, &server.project_id, name, properties)
                    .await
            }
            Err(e) => Err(e),
        };
        self.server_record(server.id, |s| s.task_state = None)
            .await?;
        Ok(created?.id)
    }
}

/// A host name from a server name: lower-case letters, digits and '-', at most 63.
pub fn hostname_of(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(63)
        .collect();
    if out.is_empty() {
        out = "server".into();
    }
    out
}

/// How a VM a node reports stands with the cloud's records.
enum Observed {
    /// A server's VM, its power state recorded.
    Known,
    /// The VM of a server deleted while its node could not be reached.
    Deleted,
    /// No server of this cloud ever owned it.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_derived_safely() {
        assert_eq!(hostname_of("My Server_1"), "my-server-1");
        assert_eq!(hostname_of("!!!"), "server");
        assert_eq!(hostname_of(&"a".repeat(100)).len(), 63);
    }

    #[test]
    fn references_may_be_urls() {
        assert_eq!(id_from_ref("http://x/compute/v2.1/flavors/42"), "42");
        assert_eq!(id_from_ref("42"), "42");
    }

    #[test]
    fn quota_names_the_resource_over_its_limit() {
        let quota = ComputeQuota {
            instances: 10,
            cores: 4,
            ram_mb: -1,
            key_pairs: 1,
            metadata_items: 1,
        };
        let used = ComputeUsage {
            instances: 1,
            cores: 3,
            ram_mb: 1 << 30,
        };
        let err = check_quota(
            &quota,
            &used,
            &ComputeUsage {
                instances: 1,
                cores: 2,
                ram_mb: 512,
            },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("cores: Requested 2, but already used 3 of 4")
        );
        assert!(
            check_quota(
                &quota,
                &used,
                &ComputeUsage {
                    instances: 1,
                    cores: 1,
                    ram_mb: 512
                }
            )
            .is_ok()
        );
    }
}
