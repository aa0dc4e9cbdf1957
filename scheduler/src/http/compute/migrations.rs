//! Nova migrations: `GET /os-migrations` (with `migration_type` and `links` from 2.23),
//! and a server's live migrations under way: list and show (2.23), `force_complete`
//! (2.22) and abort (2.24).

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::ComputeRequest;
use crate::core::Core;
use crate::http::microversion::Microversion;
use crate::http::{ApiError, ApiResult, json_response};
use crate::model::{Caller, MigrationFilter, ServerMigration};

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// `GET /os-migrations`.
pub async fn route(core: &Core, creq: ComputeRequest) -> ApiResult {
    let ComputeRequest { req, path, mv } = creq;
    let caller = req.caller(core).await?;
    if path.len() != 1 {
        return Err(ApiError::unrouted(&req));
    }
    let filter = MigrationFilter {
        server_id: req.query_param("instance_uuid"),
        status: req.query_param("status"),
        host: req
            .query_param("host")
            .or_else(|| req.query_param("source_compute")),
        kind: match req.query_param("migration_type").as_deref() {
            None => None,
            Some(kind @ ("live-migration" | "resize")) => Some(kind.to_string()),
            // Cold migration and evacuation exist in Nova but not here: none match.
            Some("migration" | "evacuation") => Some("none".into()),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid migration_type {other:?}: use live-migration, resize, migration or evacuation"
                )));
            }
        },
    };
    let migrations = core.migrations_list(&caller, filter).await?;
    let views: Vec<Value> = migrations.iter().map(|m| list_view(core, m, mv)).collect();
    Ok(json_response(StatusCode::OK, &json!({"migrations": views})))
}

fn list_view(core: &Core, m: &ServerMigration, mv: Microversion) -> Value {
    let mut v = json!({
        "id": m.id,
        "status": m.status,
        "instance_uuid": m.server_id,
        "source_node": m.source_node,
        "source_compute": m.source_node,
        "dest_node": m.dest_node,
        "dest_compute": m.dest_node,
        "dest_host": m.dest_node,
        "old_instance_type_id": m.old_flavor_seq,
        "new_instance_type_id": m.new_flavor_seq,
        "created_at": time(m.created_at),
        "updated_at": time(m.updated_at),
    });
    if mv.at_least(2, 23) {
        v["migration_type"] = json!(m.kind);
        if m.kind == "live-migration" && m.in_progress() {
            let href = format!(
                "{}/compute/v2.1/servers/{}/migrations/{}",
                core.public_url(),
                m.server_id,
                m.id
            );
            v["links"] = json!([{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}]);
        }
    }
    v
}

fn server_view(m: &ServerMigration) -> Value {
    json!({
        "id": m.id,
        "server_uuid": m.server_id,
        "status": m.status,
        "source_node": m.source_node,
        "source_compute": m.source_node,
        "dest_node": m.dest_node,
        "dest_compute": m.dest_node,
        "dest_host": m.dest_node,
        // The VMM reports no copy progress to the scheduler.
        "memory_total_bytes": null,
        "memory_processed_bytes": null,
        "memory_remaining_bytes": null,
        "disk_total_bytes": null,
        "disk_processed_bytes": null,
        "disk_remaining_bytes": null,
        "created_at": time(m.created_at),
        "updated_at": time(m.updated_at),
    })
}

/// `/servers/{id}/migrations[/{migration_id}[/action]]`.
pub async fn server_route(
    core: &Core,
    creq: &mut ComputeRequest,
    caller: &Caller,
    id: &str,
    rest: &[&str],
) -> ApiResult {
    use Method as M;
    let mv = creq.mv;
    let needs = |major, minor| {
        if mv.at_least(major, minor) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "{} needs compute microversion {major}.{minor} or later",
                creq.req.path
            )))
        }
    };
    match (&creq.req.method, rest) {
        (&M::GET, []) => {
            needs(2, 23)?;
            let list = core.server_migrations(caller, id).await?;
            let views: Vec<Value> = list.iter().map(server_view).collect();
            Ok(json_response(StatusCode::OK, &json!({"migrations": views})))
        }
        (&M::GET, [mid]) => {
            needs(2, 23)?;
            let m = core.server_migration_get(caller, id, mid).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"migration": server_view(&m)}),
            ))
        }
        (&M::DELETE, [mid]) => {
            needs(2, 24)?;
            match core
                .server_migration_intervene(caller, id, mid, "abort")
                .await? {}
        }
        (&M::POST, [mid, "action"]) => {
            needs(2, 22)?;
            let body: Value = creq.req.json().await?;
            if body
                .as_object()
                .is_none_or(|o| !o.contains_key("force_complete"))
            {
                return Err(ApiError::bad_request(
                    "the body must be {\"force_complete\": null}",
                ));
            }
            match core
                .server_migration_intervene(caller, id, mid, "force to complete")
                .await? {}
        }
        _ => Err(ApiError::unrouted(&creq.req)),
    }
}
