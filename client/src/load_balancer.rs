//! Load balancers (Octavia v2, B.3.4) and the standard's `nodes` extension.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Client, Error, Extra, Service};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub vip_address: Option<String>,
    #[serde(default)]
    pub provisioning_status: String,
    #[serde(default)]
    pub operating_status: String,
    /// The standard's 节点: members of the default pool.
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub protocol_port: Option<u16>,
}

/// A node to add: a server (its first address) or an address, and a port.
#[derive(Debug, Clone)]
pub enum NodeRef {
    Server(String),
    Address(String),
}

impl NodeRef {
    fn body(&self, port: Option<u16>) -> Value {
        let mut node = match self {
            NodeRef::Server(id) => json!({ "server_id": id }),
            NodeRef::Address(a) => json!({ "address": a }),
        };
        if let Some(port) = port {
            node["protocol_port"] = json!(port);
        }
        node
    }
}

impl Client {
    pub async fn load_balancers(&self) -> Result<Vec<LoadBalancer>, Error> {
        self.get(
            Service::LoadBalancer,
            "/lbaas/loadbalancers",
            "loadbalancers",
        )
        .await
    }

    pub async fn load_balancer(&self, name_or_id: &str) -> Result<LoadBalancer, Error> {
        self.find(
            Service::LoadBalancer,
            ("/lbaas/loadbalancers", "/lbaas/loadbalancers"),
            ("loadbalancer", "loadbalancers"),
            "lb",
            name_or_id,
            |l: &LoadBalancer| (&l.id, &l.name),
        )
        .await
    }

    pub async fn create_load_balancer(
        &self,
        name: &str,
        vip_subnet: &str,
        description: Option<&str>,
    ) -> Result<LoadBalancer, Error> {
        let mut lb = json!({ "name": name, "vip_subnet_id": vip_subnet });
        if let Some(description) = description {
            lb["description"] = json!(description);
        }
        self.call(
            Service::LoadBalancer,
            Method::POST,
            "/lbaas/loadbalancers",
            &json!({ "loadbalancer": lb }),
            "loadbalancer",
        )
        .await
    }

    /// Deletes it; `cascade` removes its listeners, pools and members too.
    pub async fn delete_load_balancer(&self, id: &str, cascade: bool) -> Result<(), Error> {
        let query = if cascade { "?cascade=true" } else { "" };
        self.send(
            Service::LoadBalancer,
            Method::DELETE,
            &format!("/lbaas/loadbalancers/{id}{query}"),
            None,
        )
        .await
        .map(drop)
    }

    /// Adds nodes (B.3.4.5) on `port`.
    pub async fn add_lb_nodes(
        &self,
        id: &str,
        nodes: &[NodeRef],
        port: u16,
    ) -> Result<LoadBalancer, Error> {
        let add: Vec<Value> = nodes.iter().map(|n| n.body(Some(port))).collect();
        self.call(
            Service::LoadBalancer,
            Method::PATCH,
            &format!("/lbaas/loadbalancers/{id}/nodes"),
            &json!({ "add": add }),
            "loadbalancer",
        )
        .await
    }

    /// Removes nodes (B.3.4.6).
    pub async fn remove_lb_nodes(
        &self,
        id: &str,
        nodes: &[NodeRef],
    ) -> Result<LoadBalancer, Error> {
        let remove: Vec<Value> = nodes.iter().map(|n| n.body(None)).collect();
        self.call(
            Service::LoadBalancer,
            Method::PATCH,
            &format!("/lbaas/loadbalancers/{id}/nodes"),
            &json!({ "remove": remove }),
            "loadbalancer",
        )
        .await
    }
}
