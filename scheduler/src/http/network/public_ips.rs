//! `/v2.0/publicips` (the standard's `publicips` extension, B.3.3): floating IPs from
//! the default external network, seen by name and bound to servers or private IPs.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{member, timestamp};
use crate::core::Core;
use crate::core::network::{FloatingIpDetail, PublicIpTarget};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::FloatingIpFilter;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PublicIpCreate)]
pub(crate) struct CreateBody {
    name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PublicIpBind)]
pub(crate) struct BindBody {
    server_id: Option<String>,
    private_ip_address: Option<String>,
}

fn target(body: Value, action: &str) -> Result<PublicIpTarget, ApiError> {
    let body: BindBody = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "Invalid input for {action}: {e}; send {{\"server_id\": …}} or \
             {{\"private_ip_address\": …}}"
        ))
    })?;
    match (body.server_id, body.private_ip_address) {
        (Some(s), None) => Ok(PublicIpTarget::Server(s)),
        (None, Some(ip)) => Ok(PublicIpTarget::PrivateIp(ip)),
        _ => Err(ApiError::bad_request(format!(
            "Invalid input for {action}: give exactly one of server_id and private_ip_address."
        ))),
    }
}

pub async fn route(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    match (&method, p) {
        (&M::GET, []) => {
            let caller = req.caller(core).await?;
            let list = core
                .floating_ips_list(&caller, FloatingIpFilter::default())
                .await?;
            let items: Vec<Value> = list.iter().map(view).collect();
            Ok(json_response(StatusCode::OK, &json!({"publicips": items})))
        }
        (&M::POST, []) => {
            let caller = req.caller(core).await?;
            let body: CreateBody = member(req.json().await?, "publicip")?;
            let made = core.public_ip_create(&caller, body.name).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"publicip": view(&made)}),
            ))
        }
        (&M::GET, [id]) => {
            let caller = req.caller(core).await?;
            let found = core.floating_ip_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"publicip": view(&found)}),
            ))
        }
        (&M::DELETE, [id]) => {
            let caller = req.caller(core).await?;
            core.floating_ip_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&M::POST, [id, action @ ("bind" | "unbind")]) => {
            let caller = req.caller(core).await?;
            let target = target(req.json().await?, action)?;
            let done = if *action == "bind" {
                core.public_ip_bind(&caller, id, target).await?
            } else {
                core.public_ip_unbind(&caller, id, target).await?
            };
            Ok(json_response(
                StatusCode::OK,
                &json!({"publicip": view(&done)}),
            ))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

/// The standard's public IP: `server_id` when the bound port is a server's.
fn view(d: &FloatingIpDetail) -> Value {
    let f = &d.floating_ip;
    let server_id = d
        .port
        .as_ref()
        .filter(|p| p.device_owner.starts_with("compute:"))
        .map(|p| p.device_id.clone());
    json!({
        "id": f.id,
        "name": f.name,
        "public_ip_address": f.floating_ip_address,
        "status": f.status,
        "server_id": server_id,
        "private_ip_address": f.fixed_ip_address,
        "port_id": f.port_id,
        "project_id": f.project_id,
        "created_at": timestamp(&f.created_at),
    })
}
