//! Compute: servers (clause B.2.1) — create, show, list, update, delete, actions,
//! metadata, tags and the console, in Nova's shapes from 2.1 to 2.55.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use http::{HeaderValue, Method, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha224};
use utoipa::ToSchema;

use super::ComputeRequest;
use crate::core::Core;
use crate::core::compute::servers::{Action, ServerCreate};
use crate::core::policy::Access;
use crate::http::microversion::Microversion;
use crate::http::{ApiError, ApiResult, empty, json_response, network};
use std::collections::HashMap;

use crate::core::compute::servers::hostname_of;
use crate::model::{Caller, NodeState, Server, ServerFilter, VmState};

pub async fn route(core: &Core, mut creq: ComputeRequest) -> ApiResult {
    use Method as M;
    let path: Vec<String> = creq.path.clone();
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let caller = creq.req.caller(core).await?;
    let method = creq.req.method.clone();
    match (&method, p.as_slice()) {
        (&M::GET, ["servers"]) => list(core, &creq, &caller, false).await,
        (&M::GET, ["servers", "detail"]) => list(core, &creq, &caller, true).await,
        (&M::POST, ["servers"]) => create(core, &mut creq, &caller).await,
        (&M::GET, ["servers", id]) => {
            let server = core.server_get(&caller, id, Access::Read).await?;
            let view = View::new(core, &caller, creq.mv, std::slice::from_ref(&server)).await?;
            ok(json!({"server": detail_value(core, &server, &view)}))
        }
        (&M::PUT, ["servers", id]) => update(core, &mut creq, &caller, id).await,
        (&M::DELETE, ["servers", id]) => {
            core.server_delete(&caller, id, &creq.req.request_id)
                .await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&M::POST, ["servers", id, "action"]) => action(core, &mut creq, &caller, id).await,
        (_, ["servers", id, "tags", rest @ ..]) => tags(core, &mut creq, &caller, id, rest).await,
        (&M::GET, ["servers", id, "ips"]) => network::server_ips(core, &caller, id, None).await,
        (&M::GET, ["servers", id, "ips", net]) => {
            network::server_ips(core, &caller, id, Some(net)).await
        }
        (_, ["servers", _, "os-volume_attachments", ..]) => {
            super::volume_attachments::route(core, &mut creq, &caller).await
        }
        (&M::GET, ["servers", id, "os-security-groups"]) => {
            let groups = core.server_security_groups(&caller, id).await?;
            let list: Vec<Value> = groups.iter().map(nova_security_group).collect();
            ok(json!({"security_groups": list}))
        }
        (&M::GET, ["servers", id, "metadata"]) => {
            let server = core.server_get(&caller, id, Access::Read).await?;
            ok(json!({"metadata": server.metadata}))
        }
        (&M::PUT | &M::POST, ["servers", id, "metadata"]) => {
            #[derive(Deserialize)]
            struct Body {
                metadata: BTreeMap<String, String>,
            }
            let body: Body = creq.req.json().await?;
            let replace = method == M::PUT;
            let metadata = core
                .server_metadata_set(&caller, id, body.metadata, replace)
                .await?;
            ok(json!({"metadata": metadata}))
        }
        (&M::GET, ["servers", id, "metadata", key]) => {
            let server = core.server_get(&caller, id, Access::Read).await?;
            let value = server
                .metadata
                .get(*key)
                .ok_or_else(|| ApiError::not_found(format!("Metadata item {key} was not found")))?;
            ok(json!({"meta": {*key: value}}))
        }
        (&M::PUT, ["servers", id, "metadata", key]) => {
            #[derive(Deserialize)]
            struct Body {
                meta: BTreeMap<String, String>,
            }
            let body: Body = creq.req.json().await?;
            if body.meta.len() != 1 || !body.meta.contains_key(*key) {
                return Err(ApiError::bad_request(
                    "the body must be {\"meta\": {KEY: VALUE}} with the KEY of the URL",
                ));
            }
            core.server_metadata_set(&caller, id, body.meta.clone(), false)
                .await?;
            ok(json!({"meta": body.meta}))
        }
        (&M::DELETE, ["servers", id, "metadata", key]) => {
            core.server_metadata_delete(&caller, id, key).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (_, ["servers", id, "migrations", rest @ ..]) => {
            super::migrations::server_route(core, &mut creq, &caller, id, rest).await
        }
        (&M::POST, ["servers", id, "remote-consoles"]) => {
            if !creq.mv.at_least(2, 6) {
                return Err(ApiError::not_found(format!(
                    "{} needs compute microversion 2.6 or later",
                    creq.req.path
                )));
            }
            core.server_get(&caller, id, Access::Read).await?;
            Err(no_remote_console())
        }
        (&M::GET, ["servers", id, "os-instance-actions"]) => {
            let actions = core
                .server_actions(&caller, id, creq.mv.at_least(2, 21))
                .await?;
            let views: Vec<Value> = actions.iter().map(action_view).collect();
            ok(json!({"instanceActions": views}))
        }
        (&M::GET, ["servers", id, "os-instance-actions", request_id]) => {
            let action = core
                .server_action_get(&caller, id, request_id, creq.mv.at_least(2, 21))
                .await?;
            let mut view = action_view(&action);
            // Before 2.51 only administrators see an action's events; from 2.51 everyone
            // does, and only administrators their tracebacks.
            if caller.is_admin() || creq.mv.at_least(2, 51) {
                let mut event = json!({
                    "event": action.event,
                    "start_time": time(action.start_time),
                    "finish_time": action.finish_time.map(time),
                    "result": action.result,
                });
                if caller.is_admin() {
                    event["traceback"] = json!(action.message);
                }
                view["events"] = json!([event]);
            }
            ok(json!({"instanceAction": view}))
        }
        _ => Err(ApiError::unrouted(&creq.req)),
    }
}

/// A security group as Nova's `os-security-groups` shows it: ingress rules only.
fn nova_security_group(g: &crate::model::SecurityGroup) -> Value {
    let rules: Vec<Value> = g
        .rules
        .iter()
        .filter(|r| r.direction == "ingress")
        .map(|r| {
            json!({
                "id": r.id,
                "parent_group_id": g.id,
                "ip_protocol": r.protocol,
                "from_port": r.port_range_min,
                "to_port": r.port_range_max,
                "group": r.remote_group_id.as_ref().map_or_else(
                    || json!({}),
                    |_| json!({"tenant_id": g.project_id}),
                ),
                "ip_range": r.remote_ip_prefix.as_ref().map_or_else(
                    || json!({}),
                    |cidr| json!({"cidr": cidr}),
                ),
            })
        })
        .collect();
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "tenant_id": g.project_id,
        "rules": rules,
    })
}

/// What Nova answers when a console type is not enabled, which is all of them here.
fn no_remote_console() -> ApiError {
    ApiError::bad_request(
        "Unavailable console type: this cloud offers no graphical or serial console \
         proxy; read the console log instead (os-getConsoleOutput, openstack console log show)",
    )
}

/// An instance action as Nova lists it: `message` is "Error" for a failed one.
fn action_view(a: &crate::model::InstanceAction) -> Value {
    json!({
        "action": a.action,
        "instance_uuid": a.server_id,
        "request_id": a.request_id,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "start_time": time(a.start_time),
        "message": (a.result.as_deref() == Some("Error")).then_some("Error"),
    })
}

fn ok(body: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, &body))
}

fn ok_typed(body: &impl Serialize) -> ApiResult {
    Ok(json_response(StatusCode::OK, body))
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn links(core: &Core, kind: &str, id: &str) -> Value {
    let base = core.public_url();
    json!([
        {"rel": "self", "href": format!("{base}/compute/v2.1/{kind}/{id}")},
        {"rel": "bookmark", "href": format!("{base}/compute/{kind}/{id}")},
    ])
}

/// The list view: id, name, links.
fn summary(core: &Core, s: &Server) -> Value {
    json!({"id": s.id, "name": s.name, "links": links(core, "servers", &s.id.to_string())})
}

/// Context a detailed view needs beyond the server: who asks, at which microversion,
/// and (for admins at 2.16+) the state of the hosts.
struct View<'a> {
    caller: &'a Caller,
    mv: Microversion,
    hosts: Option<HashMap<String, NodeState>>,
    /// The servers' addresses, from their ports.
    addresses: HashMap<uuid::Uuid, Vec<crate::model::ServerAddress>>,
    /// The volumes attached to the servers shown.
    volumes: HashMap<uuid::Uuid, Vec<crate::model::VolumeAttachment>>,
    /// The names of the security groups on the servers' ports.
    groups: HashMap<uuid::Uuid, Vec<String>>,
}

impl<'a> View<'a> {
    async fn new(
        core: &Core,
        caller: &'a Caller,
        mv: Microversion,
        servers: &[Server],
    ) -> Result<View<'a>, ApiError> {
        let hosts = if caller.is_admin() && mv.at_least(2, 16) {
            Some(core.node_states().await?)
        } else {
            None
        };
        let ids: Vec<uuid::Uuid> = servers.iter().map(|s| s.id).collect();
        let addresses = core.server_addresses(&ids).await?;
        let groups = core.server_security_group_names(&ids).await?;
        let volumes = core.servers_attached_volumes(ids).await?;
        Ok(View {
            caller,
            mv,
            hosts,
            addresses,
            volumes,
            groups,
        })
    }
}

/// A `{rel, href}` link.
#[derive(Serialize)]
struct Link {
    rel: &'static str,
    href: String,
}

/// An image or flavor reference: `{id, links}`.
#[derive(Serialize)]
struct Ref<'a> {
    id: &'a str,
    links: [Link; 1],
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

/// A server's flavor: a reference before 2.47, from then on what it was booted with.
#[derive(Serialize)]
#[serde(untagged)]
enum FlavorView<'a> {
    Ref(Ref<'a>),
    Embedded {
        vcpus: u32,
        ram: u64,
        disk: u64,
        ephemeral: u64,
        swap: u64,
        original_name: &'a str,
        extra_specs: &'a BTreeMap<String, String>,
    },
}

/// The detailed view of Nova (2.1 to 2.55), serialised straight from the server:
/// optional members appear only where the microversion and the caller's role say so.
#[derive(Serialize)]
struct Detail<'a> {
    id: &'a str,
    name: &'a str,
    status: &'static str,
    tenant_id: &'a str,
    user_id: &'a str,
    metadata: &'a BTreeMap<String, String>,
    #[serde(rename = "hostId")]
    host_id: String,
    /// `""` for a server booted from a volume, as Nova shows it.
    image: Value,
    flavor: FlavorView<'a>,
    created: String,
    updated: String,
    addresses: Map<String, Value>,
    #[serde(rename = "accessIPv4")]
    access_ipv4: &'static str,
    #[serde(rename = "accessIPv6")]
    access_ipv6: &'static str,
    links: [Link; 2],
    #[serde(rename = "OS-DCF:diskConfig")]
    disk_config: &'static str,
    #[serde(rename = "OS-EXT-AZ:availability_zone")]
    availability_zone: &'a str,
    config_drive: &'static str,
    key_name: Option<&'a str>,
    #[serde(rename = "OS-SRV-USG:launched_at")]
    launched_at: Option<String>,
    #[serde(rename = "OS-SRV-USG:terminated_at")]
    terminated_at: Option<String>,
    #[serde(rename = "OS-EXT-STS:task_state")]
    task_state: Option<&'static str>,
    #[serde(rename = "OS-EXT-STS:vm_state")]
    vm_state: &'static str,
    #[serde(rename = "OS-EXT-STS:power_state")]
    power_state: i64,
    #[serde(rename = "os-extended-volumes:volumes_attached")]
    volumes_attached: Vec<Value>,
    security_groups: Vec<Named<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<u8>,
    #[serde(flatten)]
    admin: Option<AdminAttrs<'a>>,
    #[serde(flatten)]
    admin_2_3: Option<AdminAttrs23<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<Value>,
}

/// What only admins see.
#[derive(Serialize)]
struct AdminAttrs<'a> {
    #[serde(rename = "OS-EXT-SRV-ATTR:host")]
    host: Option<&'a str>,
    #[serde(rename = "OS-EXT-SRV-ATTR:hypervisor_hostname")]
    hypervisor_hostname: Option<&'a str>,
    #[serde(rename = "OS-EXT-SRV-ATTR:instance_name")]
    instance_name: String,
}

/// What admins see from 2.3 on.
#[derive(Serialize)]
struct AdminAttrs23<'a> {
    #[serde(rename = "OS-EXT-SRV-ATTR:reservation_id")]
    reservation_id: String,
    #[serde(rename = "OS-EXT-SRV-ATTR:launch_index")]
    launch_index: u32,
    #[serde(rename = "OS-EXT-SRV-ATTR:hostname")]
    hostname: String,
    #[serde(rename = "OS-EXT-SRV-ATTR:kernel_id")]
    kernel_id: &'static str,
    #[serde(rename = "OS-EXT-SRV-ATTR:ramdisk_id")]
    ramdisk_id: &'static str,
    #[serde(rename = "OS-EXT-SRV-ATTR:root_device_name")]
    root_device_name: &'static str,
    #[serde(rename = "OS-EXT-SRV-ATTR:user_data")]
    user_data: Option<&'a str>,
}

fn usage_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn detail<'a>(core: &Core, s: &'a Server, id: &'a str, view: &'a View) -> Detail<'a> {
    let (caller, mv) = (view.caller, view.mv);
    let base = core.public_url();
    let host_id = s
        .host
        .as_ref()
        .map(|h| {
            let mut hasher = Sha224::new();
            hasher.update(s.project_id.as_bytes());
            hasher.update(h.as_bytes());
            hasher
                .finalize()
                .iter()
                .fold(String::with_capacity(56), |mut out, b| {
                    use std::fmt::Write;
                    let _ = write!(out, "{b:02x}");
                    out
                })
        })
        .unwrap_or_default();
    let image = match &s.image_id {
        Some(i) => {
            json!({"id": i, "links": [{"rel": "bookmark", "href": format!("{base}/compute/images/{i}")}]})
        }
        None => json!(""),
    };
    let status = s.status();
    let admin = caller.is_admin();
    Detail {
        id,
        name: &s.name,
        status,
        tenant_id: &s.project_id,
        user_id: &s.user_id,
        metadata: &s.metadata,
        host_id,
        image,
        flavor: if mv.at_least(2, 47) {
            let f = &s.flavor;
            FlavorView::Embedded {
                vcpus: f.vcpus,
                ram: f.ram_mb,
                disk: f.disk_gb,
                ephemeral: f.ephemeral_gb,
                swap: f.swap_mb,
                original_name: &f.name,
                extra_specs: &f.extra_specs,
            }
        } else {
            FlavorView::Ref(Ref {
                id: &s.flavor.id,
                links: [Link {
                    rel: "bookmark",
                    href: format!("{base}/compute/flavors/{}", s.flavor.id),
                }],
            })
        },
        created: time(s.created_at),
        updated: time(s.updated_at),
        addresses: network::server_addresses_view(view.addresses.get(&s.id)),
        access_ipv4: "",
        access_ipv6: "",
        links: [
            Link {
                rel: "self",
                href: format!("{base}/compute/v2.1/servers/{id}"),
            },
            Link {
                rel: "bookmark",
                href: format!("{base}/compute/servers/{id}"),
            },
        ],
        disk_config: "MANUAL",
        availability_zone: s.availability_zone.as_deref().unwrap_or_default(),
        config_drive: "",
        key_name: s.key_name.as_deref(),
        launched_at: s.launched_at.map(usage_time),
        terminated_at: s.deleted_at.map(usage_time),
        task_state: s.task_state.map(|t| t.as_str()),
        vm_state: s.vm_state.as_str(),
        power_state: s.power_state,
        volumes_attached: view
            .volumes
            .get(&s.id)
            .into_iter()
            .flatten()
            .map(|a| {
                let mut v = json!({"id": a.volume_id.to_string()});
                if mv.at_least(2, 3) {
                    v["delete_on_termination"] = json!(a.delete_on_termination);
                }
                v
            })
            .collect(),
        // By name, from the server's ports as Nova shows them (the request may have
        // named a group by id); a server without ports shows what it asked for.
        security_groups: view
            .groups
            .get(&s.id)
            .unwrap_or(&s.security_groups)
            .iter()
            .map(|n| Named { name: n })
            .collect(),
        progress: match status {
            "BUILD" => Some(0),
            "ACTIVE" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING" => Some(100),
            _ => None,
        },
        admin: admin.then(|| AdminAttrs {
            host: s.host.as_deref(),
            hypervisor_hostname: s.host.as_deref(),
            instance_name: format!("instance-{}", &id[..8]),
        }),
        admin_2_3: (admin && mv.at_least(2, 3)).then(|| AdminAttrs23 {
            reservation_id: format!("r-{}", &id[..8]),
            launch_index: 0,
            hostname: hostname_of(&s.name),
            kernel_id: "",
            ramdisk_id: "",
            root_device_name: "/dev/vda",
            user_data: s.user_data.as_deref(),
        }),
        locked: mv.at_least(2, 9).then_some(s.locked),
        host_status: view.hosts.as_ref().map(|hosts| {
            match s.host.as_ref().and_then(|h| hosts.get(h)) {
                Some(NodeState::Up) => "UP",
                Some(NodeState::Down) => "DOWN",
                Some(NodeState::Joining) => "UNKNOWN",
                None => "",
            }
        }),
        description: mv.at_least(2, 19).then_some(s.description.as_deref()),
        tags: mv.at_least(2, 26).then_some(s.tags.as_slice()),
        fault: s
            .fault
            .as_ref()
            .filter(|_| s.vm_state == VmState::Error)
            .map(|f| json!({"code": f.code, "message": f.message, "created": time(f.created)})),
    }
}

/// A server's detailed view as JSON (single-server responses).
fn detail_value(core: &Core, s: &Server, view: &View) -> Value {
    let id = s.id.to_string();
    serde_json::to_value(detail(core, s, &id, view)).unwrap_or(Value::Null)
}

async fn list(core: &Core, creq: &ComputeRequest, caller: &Caller, detailed: bool) -> ApiResult {
    let req = &creq.req;
    let limit = match req.query_param("limit") {
        Some(l) => l.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("limit {l:?} must be a non-negative integer"))
        })?,
        None => 1000,
    }
    .min(1000);
    let mut filter = ServerFilter {
        name: req.query_param("name"),
        flavor_id: req.query_param("flavor"),
        image_id: req.query_param("image"),
        host: req.query_param("host"),
        limit,
        ..ServerFilter::default()
    };
    if let Some(name) = &filter.name
        && let Err(e) = regex::Regex::new(name)
    {
        return Err(ApiError::bad_request(format!(
            "the name filter {name:?} is not a regular expression this cloud reads: {e}"
        )));
    }
    if let Some(status) = req.query_param("status") {
        let states = Server::vm_states_for_status(&status);
        // Before 2.38 an unknown status matched nothing; from 2.38 it is an error.
        if states.is_empty() && creq.mv.at_least(2, 38) {
            return Err(ApiError::bad_request(format!(
                "Invalid status value {status:?}: use ACTIVE, BUILD, DELETED, ERROR, \
                 HARD_REBOOT, MIGRATING, REBOOT, RESIZE, REVERT_RESIZE, SHUTOFF or VERIFY_RESIZE"
            )));
        }
        filter.vm_states = Some(states);
    }
    if creq.mv.at_least(2, 26) {
        // Each filter is a set: a tag named twice counts once.
        let tags = |key: &str| -> Vec<String> {
            req.query_param(key)
                .map(|v| {
                    v.split(',')
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default()
        };
        filter.tags = tags("tags");
        filter.tags_any = tags("tags-any");
        filter.not_tags = tags("not-tags");
        filter.not_tags_any = tags("not-tags-any");
    }
    if let Some(since) = req.query_param("changes-since") {
        let t = DateTime::parse_from_rfc3339(&since)
            .map(|t| t.with_timezone(&Utc))
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(&since, "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|t| t.and_utc())
            })
            .map_err(|_| ApiError::bad_request(format!("changes-since {since:?} is not a time")))?;
        filter.changes_since = Some(t);
    }
    if let Some(marker) = req.query_param("marker") {
        let m = core
            .server_get(caller, &marker, Access::Read)
            .await
            .map_err(|_| ApiError::bad_request(format!("marker [{marker}] not found")))?;
        filter.marker = Some((m.created_at, m.id));
    }
    let all_tenants = req.query_flag("all_tenants");
    let servers = core.servers_list(caller, filter, all_tenants).await?;
    let view = View::new(core, caller, creq.mv, if detailed { &servers } else { &[] }).await?;
    let next = (servers.len() == limit)
        .then(|| servers.last())
        .flatten()
        .map(|last| {
            let path = if detailed {
                "servers/detail"
            } else {
                "servers"
            };
            [Link {
                rel: "next",
                href: super::next_page(core, req, path, &last.id.to_string()),
            }]
        });
    /// The list body, serialised straight from the servers.
    #[derive(Serialize)]
    struct Page<T> {
        servers: Vec<T>,
        #[serde(skip_serializing_if = "Option::is_none")]
        servers_links: Option<[Link; 1]>,
    }
    let ids: Vec<String> = servers.iter().map(|s| s.id.to_string()).collect();
    if detailed {
        let items = servers
            .iter()
            .zip(&ids)
            .map(|(s, id)| detail(core, s, id, &view))
            .collect();
        ok_typed(&Page {
            servers: items,
            servers_links: next,
        })
    } else {
        let items = servers.iter().map(|s| summary(core, s)).collect::<Vec<_>>();
        ok_typed(&Page {
            servers: items,
            servers_links: next,
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ServerCreate)]
pub(crate) struct CreateBody {
    server: CreateServer,
    /// Hints for placement; `group` is the one this cloud acts on.
    #[serde(
        rename = "os:scheduler_hints",
        alias = "OS-SCH-HNT:scheduler_hints",
        default
    )]
    scheduler_hints: Option<SchedulerHints>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = SchedulerHints)]
pub(crate) struct SchedulerHints {
    #[serde(default)]
    group: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = Server)]
pub(crate) struct CreateServer {
    name: String,
    #[serde(rename = "flavorRef")]
    flavor_ref: FlexId,
    #[serde(rename = "imageRef", default)]
    image_ref: Option<String>,
    #[serde(default)]
    networks: Option<Value>,
    #[serde(default)]
    block_device_mapping_v2: Option<Vec<Value>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    user_data: Option<String>,
    #[serde(default)]
    security_groups: Option<Vec<NamedGroup>>,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    key_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Tags at boot (2.52).
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    min_count: Option<u32>,
    #[serde(default)]
    max_count: Option<u32>,
}

/// Flavor references come as strings or, from some clients, numbers.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = FlavorRef)]
pub(crate) enum FlexId {
    Text(String),
    Number(u64),
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NamedSecurityGroup)]
pub(crate) struct NamedGroup {
    name: String,
}

async fn create(core: &Core, creq: &mut ComputeRequest, caller: &Caller) -> ApiResult {
    let body: CreateBody = creq.req.json().await?;
    let s = body.server;
    if s.description.is_some() && !creq.mv.at_least(2, 19) {
        return Err(ApiError::bad_request(
            "description needs microversion 2.19 or later",
        ));
    }
    if s.min_count.unwrap_or(1) != 1 || s.max_count.unwrap_or(1) != 1 {
        return Err(ApiError::bad_request(
            "create one server per request (min_count and max_count 1)",
        ));
    }
    if s.tags.is_some() && !creq.mv.at_least(2, 52) {
        return Err(ApiError::bad_request(
            "tags at create need microversion 2.52 or later",
        ));
    }
    check_device_tags(&s, creq.mv)?;
    if let Some(bdm) = &s.block_device_mapping_v2 {
        for d in bdm {
            let source = d.get("source_type").and_then(Value::as_str).unwrap_or("");
            if !matches!(source, "image" | "volume" | "snapshot" | "blank") {
                return Err(ApiError::bad_request(format!(
                    "block_device_mapping_v2 source_type {source:?} must be image, volume, snapshot or blank"
                )));
            }
        }
    }
    check_networks(s.networks.as_ref(), creq.mv)?;
    let input = ServerCreate {
        name: s.name,
        flavor_ref: match s.flavor_ref {
            FlexId::Text(t) => t,
            FlexId::Number(n) => n.to_string(),
        },
        image_ref: s.image_ref,
        networks: s.networks.unwrap_or(Value::Null),
        block_devices: Value::Array(s.block_device_mapping_v2.unwrap_or_default()),
        metadata: s.metadata.unwrap_or_default(),
        tags: s.tags.unwrap_or_default(),
        user_data: s.user_data,
        security_groups: s
            .security_groups
            .unwrap_or_default()
            .into_iter()
            .map(|g| g.name)
            .collect(),
        availability_zone: s.availability_zone.filter(|z| !z.is_empty()),
        key_name: s.key_name,
        description: s.description,
        group: body.scheduler_hints.and_then(|h| h.group),
        request_id: creq.req.request_id.clone(),
    };
    let server = core.server_create(caller, input).await?;
    let id = server.id.to_string();
    let mut response = json_response(
        StatusCode::ACCEPTED,
        &json!({"server": {
            "id": id,
            "links": links(core, "servers", &id),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": server.security_groups.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        }}),
    );
    if let Ok(location) =
        HeaderValue::from_str(&format!("{}/compute/v2.1/servers/{id}", core.public_url()))
    {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    Ok(response)
}

async fn update(core: &Core, creq: &mut ComputeRequest, caller: &Caller, id: &str) -> ApiResult {
    #[derive(Deserialize)]
    struct Body {
        server: Fields,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fields {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<Option<String>>,
        #[serde(default, rename = "accessIPv4")]
        _v4: Option<String>,
        #[serde(default, rename = "accessIPv6")]
        _v6: Option<String>,
    }
    let body: Body = creq.req.json().await?;
    if body.server.description.is_some() && !creq.mv.at_least(2, 19) {
        return Err(ApiError::bad_request(
            "description needs microversion 2.19 or later",
        ));
    }
    let server = core
        .server_update(caller, id, body.server.name, body.server.description)
        .await?;
    let view = View::new(core, caller, creq.mv, std::slice::from_ref(&server)).await?;
    // Nova answers an update with a shorter view than show: none of the extensions'
    // members (OS-EXT-*, OS-SRV-USG:*, key_name, security groups, volumes, host status).
    const UPDATE_VIEW: &[&str] = &[
        "id",
        "name",
        "status",
        "tenant_id",
        "user_id",
        "metadata",
        "hostId",
        "image",
        "flavor",
        "created",
        "updated",
        "addresses",
        "accessIPv4",
        "accessIPv6",
        "links",
        "OS-DCF:diskConfig",
        "progress",
        "locked",
        "description",
        "tags",
        "fault",
    ];
    let mut shown = detail_value(core, &server, &view);
    if let Value::Object(members) = &mut shown {
        members.retain(|k, _| UPDATE_VIEW.contains(&k.as_str()));
    }
    ok(json!({"server": shown}))
}

async fn action(core: &Core, creq: &mut ComputeRequest, caller: &Caller, id: &str) -> ApiResult {
    let body: Map<String, Value> = match creq.req.json::<Value>().await? {
        Value::Object(m) => m,
        _ => {
            return Err(ApiError::bad_request(
                "the action body must be an object like {\"os-start\": null}",
            ));
        }
    };
    if body.len() != 1 {
        return Err(ApiError::bad_request(
            "name exactly one action, e.g. {\"reboot\": {\"type\": \"SOFT\"}}",
        ));
    }
    let Some((name, args)) = body.into_iter().next() else {
        return Err(ApiError::bad_request("the action body is empty"));
    };
    let field = |key: &str| args.get(key).cloned().unwrap_or(Value::Null);
    let action = match name.as_str() {
        "os-start" => Action::Start,
        "os-stop" => Action::Stop,
        "reboot" => match field("type")
            .as_str()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("SOFT") => Action::Reboot { hard: false },
            Some("HARD") => Action::Reboot { hard: true },
            _ => {
                return Err(ApiError::bad_request(
                    "reboot needs {\"type\": \"SOFT\"} or {\"type\": \"HARD\"}",
                ));
            }
        },
        "os-migrateLive" => {
            // 2.25 made block_migration "auto" and dropped disk_over_commit.
            let block = field("block_migration");
            // 2.30 added `force`: skip the scheduler's check of the named host. This
            // cloud checks a named host's room all the same, so a forced move can never
            // over-commit a node; `force` is accepted and changes nothing.
            let force_ok = match args.get("force") {
                None => true,
                Some(f) => creq.mv.at_least(2, 30) && f.is_boolean(),
            };
            let valid = force_ok
                && if creq.mv.at_least(2, 25) {
                    args.get("disk_over_commit").is_none()
                        && (block == "auto" || block.is_boolean())
                } else {
                    block.is_boolean() && field("disk_over_commit").is_boolean()
                };
            if !valid {
                return Err(ApiError::bad_request(if creq.mv.at_least(2, 30) {
                    "os-migrateLive needs {\"host\": HOST or null, \"block_migration\": \"auto\" or a boolean} and optionally \"force\": a boolean"
                } else if creq.mv.at_least(2, 25) {
                    "os-migrateLive needs {\"host\": HOST or null, \"block_migration\": \"auto\" or a boolean}"
                } else {
                    "os-migrateLive needs {\"host\": HOST or null, \"block_migration\": BOOL, \"disk_over_commit\": BOOL}"
                }));
            }
            Action::LiveMigrate {
                host: field("host")
                    .as_str()
                    .map(str::to_string)
                    .filter(|h| !h.is_empty()),
            }
        }
        "lock" | "unlock" => {
            core.server_set_locked(caller, id, name == "lock").await?;
            return Ok(empty(StatusCode::ACCEPTED));
        }
        "addSecurityGroup" | "removeSecurityGroup" => {
            let group = field("name")
                .as_str()
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{name} needs {{\"name\": GROUP}}: the security group's name"
                    ))
                })?;
            core.server_security_group_change(caller, id, &group, name == "addSecurityGroup")
                .await?;
            return Ok(empty(StatusCode::ACCEPTED));
        }
        "resize" => Action::Resize {
            flavor_ref: match field("flavorRef") {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ApiError::bad_request(
                        "resize needs {\"flavorRef\": FLAVOR_ID}",
                    ));
                }
            },
        },
        "confirmResize" => Action::ConfirmResize,
        "revertResize" => Action::RevertResize,
        "os-getConsoleOutput" => {
            let length = match field("length") {
                Value::Null => None,
                Value::Number(n) if n.as_i64() == Some(-1) => None,
                Value::Number(n) => Some(n.as_u64().ok_or_else(|| {
                    ApiError::bad_request("length must be -1 or a positive integer")
                })? as usize),
                Value::String(s) => Some(
                    s.parse::<usize>()
                        .map_err(|_| ApiError::bad_request("length must be an integer"))?,
                ),
                _ => return Err(ApiError::bad_request("length must be an integer")),
            };
            let output = core.server_console(caller, id, length).await?;
            return ok(json!({"output": output}));
        }
        "createImage" => {
            let image_name = field("name")
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::bad_request("createImage needs {\"name\": …}"))?;
            let metadata = match field("metadata") {
                Value::Object(m) => m,
                Value::Null => Map::new(),
                _ => {
                    return Err(ApiError::bad_request(
                        "createImage metadata must be an object",
                    ));
                }
            };
            let image_id = core
                .server_create_image(caller, id, image_name, metadata, &creq.req.request_id)
                .await?;
            // 2.45 answers with the image's id in the body. The Location header of the
            // earlier versions stays: clients that test for exactly 2.45 still read it.
            let mut response = if creq.mv.at_least(2, 45) {
                json_response(StatusCode::ACCEPTED, &json!({"image_id": image_id}))
            } else {
                empty(StatusCode::ACCEPTED)
            };
            if let Ok(location) =
                HeaderValue::from_str(&format!("{}/image/v2/images/{image_id}", core.public_url()))
            {
                response
                    .headers_mut()
                    .insert(http::header::LOCATION, location);
            }
            return Ok(response);
        }
        "os-getVNCConsole" | "os-getSPICEConsole" | "os-getRDPConsole" | "os-getSerialConsole" => {
            // The server must exist for the caller before the console type matters.
            core.server_get(caller, id, Access::Read).await?;
            return Err(no_remote_console());
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "action {other:?} is not offered; see the compute API reference for server actions"
            )));
        }
    };
    core.server_action(caller, id, action, &creq.req.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED))
}

/// `networks` at create: a list, `auto` or `none` (Nova takes those two from 2.37;
/// this cloud at every version); from 2.37 it is required and a network's `uuid`
/// must be a UUID.
fn check_networks(networks: Option<&Value>, mv: Microversion) -> Result<(), ApiError> {
    let strict = mv.at_least(2, 37);
    match networks {
        None if strict => Err(ApiError::bad_request(
            "networks is required from compute microversion 2.37: give a list of networks \
             or ports, \"auto\" (the project's one network) or \"none\"",
        )),
        None => Ok(()),
        Some(Value::String(s)) if s == "auto" || s == "none" => Ok(()),
        Some(Value::Array(entries)) => {
            if strict {
                for uuid in entries.iter().filter_map(|e| e.get("uuid")) {
                    if uuid
                        .as_str()
                        .and_then(|u| uuid::Uuid::parse_str(u).ok())
                        .is_none()
                    {
                        return Err(ApiError::bad_request(format!(
                            "Invalid input for field/attribute uuid: {uuid} is not a 'uuid'"
                        )));
                    }
                }
            }
            Ok(())
        }
        Some(_) => Err(ApiError::bad_request(
            "networks must be a list, \"auto\" or \"none\"",
        )),
    }
}

/// Device tags at create: on networks from 2.32 to 2.36 and from 2.42, on block
/// devices at 2.32 and from 2.42 (Nova dropped them in between by mistake). They stay
/// in the request the server keeps; the config drive carries no device list yet.
fn check_device_tags(s: &CreateServer, mv: Microversion) -> Result<(), ApiError> {
    let from_42 = mv.at_least(2, 42);
    let nets_ok = from_42 || (mv.at_least(2, 32) && !mv.at_least(2, 37));
    let bdm_ok = from_42 || mv == Microversion::new(2, 32);
    let nets = s.networks.as_ref().and_then(Value::as_array);
    let bdm = s.block_device_mapping_v2.as_ref();
    let checks = [
        (nets.into_iter().flatten(), nets_ok, "networks"),
        (bdm.into_iter().flatten(), bdm_ok, "block_device_mapping_v2"),
    ];
    for (entries, allowed, field) in checks {
        for tag in entries.filter_map(|e| e.get("tag")) {
            if !allowed {
                return Err(ApiError::bad_request(format!(
                    "a tag on {field} needs microversion 2.42 or later"
                )));
            }
            tag.as_str()
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "the tag of an entry of {field} must be a string"
                    ))
                })
                .and_then(|t| {
                    crate::core::compute::server_tags::check_tag(t).map_err(ApiError::from)
                })?;
        }
    }
    Ok(())
}

/// `/servers/{id}/tags[/{tag}]` (2.26).
async fn tags(
    core: &Core,
    creq: &mut ComputeRequest,
    caller: &Caller,
    id: &str,
    rest: &[&str],
) -> ApiResult {
    use Method as M;
    if !creq.mv.at_least(2, 26) {
        return Err(ApiError::not_found(format!(
            "{} needs compute microversion 2.26 or later",
            creq.req.path
        )));
    }
    let method = creq.req.method.clone();
    match (&method, rest) {
        (&M::GET, []) => {
            let server = core.server_get(caller, id, Access::Read).await?;
            ok(json!({"tags": server.tags}))
        }
        (&M::PUT, []) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Body {
                tags: Vec<String>,
            }
            let body: Body = creq.req.json().await?;
            let tags = core.server_tags_replace(caller, id, body.tags).await?;
            ok(json!({"tags": tags}))
        }
        (&M::DELETE, []) => {
            core.server_tags_clear(caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&M::GET, [tag]) => {
            let server = core.server_get(caller, id, Access::Read).await?;
            if server.tags.iter().any(|t| t == tag) {
                Ok(empty(StatusCode::NO_CONTENT))
            } else {
                Err(ApiError::not_found(format!(
                    "Tag '{tag}' could not be found on the server."
                )))
            }
        }
        (&M::PUT, [tag]) => {
            // Nova names the tag in a Location header whether it was new (201) or not.
            let added = core.server_tag_add(caller, id, tag).await?;
            let mut response = empty(if added {
                StatusCode::CREATED
            } else {
                StatusCode::NO_CONTENT
            });
            let location = format!(
                "{}/compute/v2.1/servers/{id}/tags/{}",
                core.public_url(),
                utf8_percent_encode(tag, NON_ALPHANUMERIC)
            );
            if let Ok(location) = HeaderValue::from_str(&location) {
                response
                    .headers_mut()
                    .insert(http::header::LOCATION, location);
            }
            Ok(response)
        }
        (&M::DELETE, [tag]) => {
            core.server_tag_delete(caller, id, tag).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&creq.req)),
    }
}
