//! Every endpoint of the agent API, in one table: the agent admits only what it lists
//! (anything else is a 404 before its handlers run), and [`document`] renders it, with
//! the schemas of the request and reply types above, as `docs/agent-api.json`.

use serde_json::{Map, Value, json};
use utoipa::openapi::{RefOr, schema::Schema};

use super::*;
use crate::openapi::{SchemaFn, Schemas, path_parameters, schema_of as of, template_matches};

/// One endpoint of the agent.
#[derive(Debug)]
pub struct AgentRoute {
    pub method: http::Method,
    /// Path template; `{name}` matches one segment.
    pub path: &'static str,
    pub summary: &'static str,
    /// The JSON request body.
    pub request: Option<SchemaFn>,
    /// The JSON reply on success.
    pub reply: Option<SchemaFn>,
    /// Query parameters: name, whether required, what.
    pub query: &'static [(&'static str, bool, &'static str)],
}

const fn route(method: http::Method, path: &'static str, summary: &'static str) -> AgentRoute {
    AgentRoute {
        method,
        path,
        summary,
        request: None,
        reply: None,
        query: &[],
    }
}

impl AgentRoute {
    const fn request(mut self, schema: SchemaFn) -> AgentRoute {
        self.request = Some(schema);
        self
    }
    const fn reply(mut self, schema: SchemaFn) -> AgentRoute {
        self.reply = Some(schema);
        self
    }
    const fn query(mut self, query: &'static [(&'static str, bool, &'static str)]) -> AgentRoute {
        self.query = query;
        self
    }
}

use http::Method as M;

/// The agent API.
#[rustfmt::skip]
pub static AGENT_ROUTES: &[AgentRoute] = &[
    route(M::GET, STATUS_PATH, "The heartbeat: drivers, capacity, inventory").reply(of::<NodeStatus>),
    route(M::POST, SERVERS_PATH, "Create and boot a server").request(of::<ServerSpec>).reply(of::<ServerReply>),
    route(M::POST, "/v1/servers/{server_id}/action", "Start, stop, reboot, resize, live-migration steps").request(of::<ServerAction>).reply(of::<ServerReply>),
    route(M::GET, "/v1/servers/{server_id}/console", "The console log").query(&[("length", false, "only the last N lines")]).reply(of::<ConsoleReply>),
    route(M::POST, "/v1/servers/{server_id}/snapshot", "A consistent copy of the root disk, for createImage").reply(of::<SnapshotReply>),
    route(M::DELETE, "/v1/servers/{server_id}", "Delete a server and everything it owned"),
    route(M::GET, "/v1/images/{image_id}", "Whether the node holds an image").reply(of::<ImageOnNode>),
    route(M::PUT, "/v1/images/{image_id}", "Stream an image in (the body is the data, checked while written)").query(&[ ("disk_format", true, "raw or qcow2"), ("sha512", false, "the hex digest to check"), ]).reply(of::<ImageOnNode>),
    route(M::GET, "/v1/snapshots/{name}", "Fetch a root-disk snapshot (the file)"),
    route(M::DELETE, "/v1/snapshots/{name}", "Remove a fetched snapshot"),
    route(M::PUT, "/v1/network", "Apply the whole network state the node must carry, atomically").request(of::<NodeNetworkSpec>).reply(of::<NetworkApplied>),
    route(M::GET, "/v1/network", "The network state the node carries now").reply(of::<NodeNetworkSpec>),
    route(M::POST, "/v1/volumes", "Create a volume").request(of::<VolumeSpec>).reply(of::<VolumeInventory>),
    route(M::DELETE, "/v1/volumes/{volume_id}", "Delete a volume"),
    route(M::POST, "/v1/volumes/{volume_id}/extend", "Grow a volume").request(of::<VolumeExtend>).reply(of::<VolumeInventory>),
    route(M::POST, "/v1/volumes/{volume_id}/attach", "Attach a volume to a server (hot-plugged when it runs)").request(of::<VolumeAttach>).reply(of::<VolumeInventory>),
    route(M::POST, "/v1/volumes/{volume_id}/detach", "Detach a volume from a server").request(of::<VolumeDetach>).reply(of::<VolumeInventory>),
    route(M::POST, "/v1/volume-snapshots", "Snapshot a volume").request(of::<SnapshotSpec>).reply(of::<SnapshotInventory>),
    route(M::DELETE, "/v1/volume-snapshots/{snapshot_id}", "Delete a volume snapshot"),
    route(M::PUT, "/v1/sim/faults/{operation}", "Sim driver set only: inject (or clear, with null) a failure or delay"),
];

/// Whether the agent serves `method` on `path`.
pub fn is_agent_route(method: &http::Method, path: &str) -> bool {
    AGENT_ROUTES
        .iter()
        .any(|r| r.method == method && template_matches(r.path.split('/'), path.split('/')))
}

fn json_content(schema: RefOr<Schema>) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// The OpenAPI 3.1 document of the agent API.
pub fn document() -> Value {
    let mut schemas = Schemas::new();
    let mut paths: std::collections::BTreeMap<&str, Map<String, Value>> = Default::default();
    for r in AGENT_ROUTES {
        let mut parameters = path_parameters(r.path);
        parameters.extend(r.query.iter().map(|(name, required, what)| {
            json!({"name": name, "in": "query", "required": required, "description": what,
                   "schema": {"type": "string"}})
        }));
        let mut ok = json!({"description": "Done"});
        if let Some(reply) = r.reply {
            ok["content"] = json_content(reply(&mut schemas));
        }
        let mut operation = json!({
            "operationId": format!("{}{}", r.method.as_str().to_ascii_lowercase(),
                r.path.replace(['{', '}'], "").replace(['/', '-'], "_")),
            "summary": r.summary,
            "parameters": parameters,
            "responses": {"200": ok, "default": {"$ref": "#/components/responses/AgentError"}},
        });
        if let Some(request) = r.request {
            operation["requestBody"] =
                json!({"required": true, "content": json_content(request(&mut schemas))});
        }
        paths
            .entry(r.path)
            .or_default()
            .insert(r.method.as_str().to_ascii_lowercase(), operation);
    }
    of::<AgentError>(&mut schemas);
    let components: Map<String, Value> = schemas
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "yunji agent API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "What the scheduler asks of a node's agent, over mutual TLS (the \
                scheduler's client certificate, the node's server certificate, both from the \
                node CA). The one call the other way, an agent joining, is \
                POST /agent-join/v1 in the scheduler's document.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": paths,
        "components": {
            "responses": {"AgentError": {
                "description": "A stable code and a message for the operator",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AgentError"}}},
            }},
            "schemas": components,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/agent-api.json");

    #[test]
    fn the_committed_agent_document_is_generated_from_the_table() {
        let document = document();
        if std::env::var_os("YUNJI_BLESS").is_some() {
            let pretty = serde_json::to_string_pretty(&document).unwrap() + "\n";
            std::fs::write(COMMITTED, pretty).unwrap();
        }
        let committed: Value =
            serde_json::from_str(&std::fs::read_to_string(COMMITTED).unwrap()).unwrap();
        assert!(
            committed == document,
            "docs/agent-api.json is out of date: regenerate it with \
             YUNJI_BLESS=1 cargo test -p yunji-common agent_document"
        );
    }

    #[test]
    fn the_agent_admits_the_listed_methods_and_paths_only() {
        assert!(is_agent_route(&M::POST, "/v1/servers/abc/action"));
        assert!(!is_agent_route(&M::GET, "/v1/servers/abc/action"));
        assert!(!is_agent_route(&M::POST, "/v1/servers/abc/action/more"));
        assert!(!is_agent_route(&M::GET, "/v1"));
    }
}
