//! `/v2/lbaas/listeners`, `/pools` (with `/pools/{id}/members`) and `/healthmonitors`.
//! Their provisioning status is their load balancer's: they are applied with it.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{member, timestamp};
use crate::core::Core;
use crate::core::load_balancers::{
    ChildUpdate, HealthMonitorCreate, ListenerCreate, MemberCreate, PoolCreate,
};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::{Caller, HealthMonitor, Listener, Member, Pool};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Listener)]
pub(crate) struct ListenerBody {
    loadbalancer_id: Option<String>,
    protocol: Option<String>,
    protocol_port: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    connection_limit: Option<i64>,
    default_pool_id: Option<String>,
    admin_state_up: Option<bool>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Pool)]
pub(crate) struct PoolBody {
    listener_id: Option<String>,
    loadbalancer_id: Option<String>,
    protocol: Option<String>,
    lb_algorithm: Option<String>,
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    /// Session persistence is not offered; `null` is accepted.
    session_persistence: Option<Value>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Member)]
pub(crate) struct MemberBody {
    address: Option<String>,
    protocol_port: Option<i64>,
    weight: Option<i64>,
    subnet_id: Option<String>,
    name: Option<String>,
    admin_state_up: Option<bool>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HealthMonitor)]
pub(crate) struct MonitorBody {
    pool_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    delay: Option<i64>,
    timeout: Option<i64>,
    max_retries: Option<i64>,
    max_retries_down: Option<i64>,
    http_method: Option<String>,
    url_path: Option<String>,
    expected_codes: Option<String>,
    name: Option<String>,
    admin_state_up: Option<bool>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute {field}. Value: 'None'. Mandatory field missing."
        ))
    })
}

fn update_of(body: &Value, key: &str) -> Result<ChildUpdate, ApiError> {
    let inner = body.get(key).and_then(Value::as_object).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input: the body must be {{\"{key}\": {{…}}}}"
        ))
    })?;
    let text = |k: &str| inner.get(k).and_then(Value::as_str).map(str::to_string);
    let int = |k: &str| inner.get(k).and_then(Value::as_i64);
    Ok(ChildUpdate {
        name: text("name"),
        description: text("description"),
        admin_state_up: inner.get("admin_state_up").and_then(Value::as_bool),
        connection_limit: int("connection_limit"),
        lb_algorithm: text("lb_algorithm"),
        weight: int("weight"),
        delay: int("delay"),
        timeout: int("timeout"),
        max_retries: int("max_retries"),
    })
}

/// The status fields of a child of load balancer `lb_id`: its load balancer's.
async fn status(core: &Core, caller: &Caller, lb_id: &str) -> Result<(String, String), ApiError> {
    let lb = core.load_balancer_get(caller, lb_id).await?;
    Ok((lb.provisioning_status, lb.operating_status))
}

pub async fn listeners(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    let caller = req.caller(core).await?;
    match (&method, p) {
        (&M::GET, []) => {
            let mut items = Vec::new();
            for l in core.listeners_list(&caller).await? {
                items.push(listener_view(core, &caller, &l).await?);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"listeners": items, "listeners_links": []}),
            ))
        }
        (&M::POST, []) => {
            let body: ListenerBody = member(req.json().await?, "listener")?;
            let _ = (body.project_id, body.tenant_id);
            let made = core
                .listener_create(
                    &caller,
                    ListenerCreate {
                        loadbalancer_id: required(body.loadbalancer_id, "loadbalancer_id")?,
                        protocol: required(body.protocol, "protocol")?,
                        protocol_port: required(body.protocol_port, "protocol_port")?,
                        name: body.name,
                        description: body.description,
                        connection_limit: body.connection_limit,
                        default_pool_id: body.default_pool_id,
                        admin_state_up: body.admin_state_up,
                    },
                )
                .await?;
            let view = listener_view(core, &caller, &made).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"listener": view}),
            ))
        }
        (&M::GET, [id]) => {
            let l = core.listener_get(&caller, id).await?;
            let view = listener_view(core, &caller, &l).await?;
            Ok(json_response(StatusCode::OK, &json!({"listener": view})))
        }
        (&M::PUT, [id]) => {
            let change = update_of(&req.json().await?, "listener")?;
            let l = core.listener_update(&caller, id, change).await?;
            let view = listener_view(core, &caller, &l).await?;
            Ok(json_response(StatusCode::OK, &json!({"listener": view})))
        }
        (&M::DELETE, [id]) => {
            core.listener_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

pub async fn pools(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    let caller = req.caller(core).await?;
    match (&method, p) {
        (&M::GET, []) => {
            let mut items = Vec::new();
            for pool in core.pools_list(&caller).await? {
                items.push(pool_view(core, &caller, &pool).await?);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"pools": items, "pools_links": []}),
            ))
        }
        (&M::POST, []) => {
            let body: PoolBody = member(req.json().await?, "pool")?;
            let _ = (body.project_id, body.tenant_id);
            if body
                .session_persistence
                .as_ref()
                .is_some_and(|v| !v.is_null())
            {
                return Err(ApiError::bad_request(
                    "Invalid input for session_persistence: not offered by this cloud; leave \
                     it out.",
                ));
            }
            let made = core
                .pool_create(
                    &caller,
                    PoolCreate {
                        listener_id: body.listener_id,
                        loadbalancer_id: body.loadbalancer_id,
                        protocol: required(body.protocol, "protocol")?,
                        lb_algorithm: required(body.lb_algorithm, "lb_algorithm")?,
                        name: body.name,
                        description: body.description,
                        admin_state_up: body.admin_state_up,
                    },
                )
                .await?;
            let view = pool_view(core, &caller, &made).await?;
            Ok(json_response(StatusCode::CREATED, &json!({"pool": view})))
        }
        (&M::GET, [id]) => {
            let pool = core.pool_get(&caller, id).await?;
            let view = pool_view(core, &caller, &pool).await?;
            Ok(json_response(StatusCode::OK, &json!({"pool": view})))
        }
        (&M::PUT, [id]) => {
            let change = update_of(&req.json().await?, "pool")?;
            let pool = core.pool_update(&caller, id, change).await?;
            let view = pool_view(core, &caller, &pool).await?;
            Ok(json_response(StatusCode::OK, &json!({"pool": view})))
        }
        (&M::DELETE, [id]) => {
            core.pool_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&M::GET, [pool, "members"]) => {
            let pool_row = core.pool_get(&caller, pool).await?;
            let (prov, _) = status(core, &caller, &pool_row.load_balancer_id).await?;
            let items: Vec<Value> = core
                .members_list(&caller, pool)
                .await?
                .iter()
                .map(|m| member_view(m, &prov))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"members": items, "members_links": []}),
            ))
        }
        (&M::POST, [pool, "members"]) => {
            let body: MemberBody = member(req.json().await?, "member")?;
            let _ = (body.project_id, body.tenant_id);
            let made = core
                .member_create(
                    &caller,
                    pool,
                    MemberCreate {
                        address: required(body.address, "address")?,
                        protocol_port: required(body.protocol_port, "protocol_port")?,
                        weight: body.weight,
                        subnet_id: body.subnet_id,
                        name: body.name,
                        admin_state_up: body.admin_state_up,
                    },
                )
                .await?;
            let pool_row = core.pool_get(&caller, pool).await?;
            let (prov, _) = status(core, &caller, &pool_row.load_balancer_id).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"member": member_view(&made, &prov)}),
            ))
        }
        (&M::GET, [pool, "members", id]) => {
            let m = core.member_get(&caller, pool, id).await?;
            let pool_row = core.pool_get(&caller, pool).await?;
            let (prov, _) = status(core, &caller, &pool_row.load_balancer_id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"member": member_view(&m, &prov)}),
            ))
        }
        (&M::PUT, [pool, "members", id]) => {
            let change = update_of(&req.json().await?, "member")?;
            let m = core.member_update(&caller, pool, id, change).await?;
            let pool_row = core.pool_get(&caller, pool).await?;
            let (prov, _) = status(core, &caller, &pool_row.load_balancer_id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"member": member_view(&m, &prov)}),
            ))
        }
        (&M::DELETE, [pool, "members", id]) => {
            core.member_delete(&caller, pool, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

pub async fn health_monitors(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    let caller = req.caller(core).await?;
    match (&method, p) {
        (&M::GET, []) => {
            let mut items = Vec::new();
            for h in core.health_monitors_list(&caller).await? {
                items.push(monitor_view(core, &caller, &h).await?);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"healthmonitors": items, "healthmonitors_links": []}),
            ))
        }
        (&M::POST, []) => {
            let body: MonitorBody = member(req.json().await?, "healthmonitor")?;
            let _ = (body.project_id, body.tenant_id);
            let made = core
                .health_monitor_create(
                    &caller,
                    HealthMonitorCreate {
                        pool_id: required(body.pool_id, "pool_id")?,
                        kind: required(body.kind, "type")?,
                        delay: required(body.delay, "delay")?,
                        timeout: required(body.timeout, "timeout")?,
                        max_retries: required(body.max_retries, "max_retries")?,
                        max_retries_down: body.max_retries_down,
                        http_method: body.http_method,
                        url_path: body.url_path,
                        expected_codes: body.expected_codes,
                        name: body.name,
                        admin_state_up: body.admin_state_up,
                    },
                )
                .await?;
            let view = monitor_view(core, &caller, &made).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"healthmonitor": view}),
            ))
        }
        (&M::GET, [id]) => {
            let h = core.health_monitor_get(&caller, id).await?;
            let view = monitor_view(core, &caller, &h).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"healthmonitor": view}),
            ))
        }
        (&M::PUT, [id]) => {
            let change = update_of(&req.json().await?, "healthmonitor")?;
            let h = core.health_monitor_update(&caller, id, change).await?;
            let view = monitor_view(core, &caller, &h).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"healthmonitor": view}),
            ))
        }
        (&M::DELETE, [id]) => {
            core.health_monitor_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

async fn listener_view(core: &Core, caller: &Caller, l: &Listener) -> Result<Value, ApiError> {
    let (prov, oper) = status(core, caller, &l.load_balancer_id).await?;
    Ok(json!({
        "id": l.id,
        "name": l.name,
        "description": l.description,
        "project_id": l.project_id,
        "tenant_id": l.project_id,
        "protocol": l.protocol,
        "protocol_port": l.protocol_port,
        "connection_limit": l.connection_limit,
        "default_pool_id": l.default_pool_id,
        "admin_state_up": l.admin_state_up,
        "loadbalancers": [{"id": l.load_balancer_id}],
        "l7policies": [],
        "insert_headers": {},
        "default_tls_container_ref": null,
        "sni_container_refs": [],
        "allowed_cidrs": null,
        "tags": [],
        "provisioning_status": prov,
        "operating_status": oper,
        "created_at": timestamp(&l.created_at),
        "updated_at": timestamp(&l.updated_at),
    }))
}

async fn pool_view(core: &Core, caller: &Caller, p: &Pool) -> Result<Value, ApiError> {
    let (prov, oper) = status(core, caller, &p.load_balancer_id).await?;
    let (members, monitor) = core.pool_relations(&p.id).await?;
    Ok(json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "project_id": p.project_id,
        "tenant_id": p.project_id,
        "protocol": p.protocol,
        "lb_algorithm": p.lb_algorithm,
        "admin_state_up": p.admin_state_up,
        "listeners": p.listener_id.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "loadbalancers": [{"id": p.load_balancer_id}],
        "members": members.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "healthmonitor_id": monitor,
        "session_persistence": null,
        "tls_enabled": false,
        "tags": [],
        "provisioning_status": prov,
        "operating_status": oper,
        "created_at": timestamp(&p.created_at),
        "updated_at": timestamp(&p.updated_at),
    }))
}

/// A member; without a health monitor its operating status is NO_MONITOR, as Octavia's.
fn member_view(m: &Member, provisioning_status: &str) -> Value {
    json!({
        "id": m.id,
        "name": m.name,
        "project_id": m.project_id,
        "tenant_id": m.project_id,
        "address": m.address,
        "protocol_port": m.protocol_port,
        "weight": m.weight,
        "subnet_id": m.subnet_id,
        "admin_state_up": m.admin_state_up,
        "backup": false,
        "monitor_address": null,
        "monitor_port": null,
        "tags": [],
        "provisioning_status": provisioning_status,
        "operating_status": "NO_MONITOR",
        "created_at": timestamp(&m.created_at),
        "updated_at": timestamp(&m.updated_at),
    })
}

async fn monitor_view(core: &Core, caller: &Caller, h: &HealthMonitor) -> Result<Value, ApiError> {
    let pool = core.pool_get(caller, &h.pool_id).await?;
    let (prov, oper) = status(core, caller, &pool.load_balancer_id).await?;
    Ok(json!({
        "id": h.id,
        "name": h.name,
        "project_id": h.project_id,
        "tenant_id": h.project_id,
        "type": h.kind,
        "delay": h.delay,
        "timeout": h.timeout,
        "max_retries": h.max_retries,
        "max_retries_down": h.max_retries_down,
        "http_method": h.http_method,
        "url_path": h.url_path,
        "expected_codes": h.expected_codes,
        "admin_state_up": h.admin_state_up,
        "pools": [{"id": h.pool_id}],
        "tags": [],
        "provisioning_status": prov,
        "operating_status": oper,
        "created_at": timestamp(&h.created_at),
        "updated_at": timestamp(&h.updated_at),
    }))
}
