//! Nova's `os-volume_attachments` (clause B.4.1.4/B.4.1.5): list, show, attach and
//! detach a server's volumes. The same core operation serves Cinder's `os-attach`.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::ComputeRequest;
use crate::core::Core;
use crate::core::volumes::AttachRequest;
use crate::http::{ApiError, ApiResult, empty, json_response};
use crate::model::{Caller, VolumeAttachment};

/// Nova 2.1's attachment view (before 2.70 adds `tag`): the volume id is the `id`.
fn view(a: &VolumeAttachment) -> Value {
    json!({
        "id": a.volume_id.to_string(),
        "device": a.device,
        "serverId": a.server_id.to_string(),
        "volumeId": a.volume_id.to_string(),
    })
}

pub async fn route(core: &Core, creq: &mut ComputeRequest, caller: &Caller) -> ApiResult {
    use Method as M;
    let path = creq.path.clone();
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let method = creq.req.method.clone();
    match (&method, p.as_slice()) {
        (&M::GET, ["servers", server, "os-volume_attachments"]) => {
            let items: Vec<Value> = core
                .server_volume_attachments(caller, server)
                .await?
                .iter()
                .map(view)
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"volumeAttachments": items}),
            ))
        }
        (&M::POST, ["servers", server, "os-volume_attachments"]) => {
            let body: Value = creq.req.json().await?;
            let Some(obj) = body.get("volumeAttachment").and_then(Value::as_object) else {
                return Err(ApiError::bad_request(
                    "the body must be {\"volumeAttachment\": {\"volumeId\": VOLUME_ID}}",
                ));
            };
            // 2.49 lets a device tag come along. A tag names a device in the guest's
            // metadata, and this cloud's config drive carries no device list yet: the tag
            // is checked, not kept.
            let tagged = creq.mv.at_least(2, 49);
            if let Some(unknown) = obj.keys().find(|k| {
                !(matches!(k.as_str(), "volumeId" | "device") || (tagged && k.as_str() == "tag"))
            }) {
                return Err(ApiError::bad_request(format!(
                    "Additional properties are not allowed ('{unknown}' was unexpected); a \
                     volumeAttachment has volumeId and device (and from microversion 2.49 tag)"
                )));
            }
            if let Some(tag) = obj.get("tag") {
                tag.as_str()
                    .ok_or_else(|| ApiError::bad_request("the tag must be a string"))
                    .and_then(|t| {
                        crate::core::compute::server_tags::check_tag(t).map_err(ApiError::from)
                    })?;
            }
            let volume_id = obj.get("volumeId").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request("'volumeId' is a required property of volumeAttachment")
            })?;
            let device = match obj.get("device") {
                None | Some(Value::Null) => None,
                Some(Value::String(d)) => Some(d.clone()),
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "Invalid input for field/attribute device: give a string like /dev/vdb",
                    ));
                }
            };
            let attachment = core
                .volume_attach(
                    caller,
                    AttachRequest {
                        volume_id: volume_id.to_string(),
                        server_id: server.to_string(),
                        device,
                        read_only: false,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"volumeAttachment": view(&attachment)}),
            ))
        }
        (&M::GET, ["servers", server, "os-volume_attachments", volume]) => {
            let attachment = core
                .server_volume_attachment(caller, server, volume)
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"volumeAttachment": view(&attachment)}),
            ))
        }
        (&M::DELETE, ["servers", server, "os-volume_attachments", volume]) => {
            // The server is checked first: another project's server is a 404.
            core.server_volume_attachment(caller, server, volume)
                .await?;
            core.volume_detach(caller, volume, Some(server), None)
                .await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        _ => Err(ApiError::unrouted(&creq.req)),
    }
}
