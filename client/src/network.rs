//! Network (Neutron v2.0): networks (B.3.1), floating IPs (B.3.2), the `publicips`
//! extension (B.3.3) and security groups (B.3.5).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Client, Error, Extra, Service};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub shared: bool,
    #[serde(rename = "router:external", default)]
    pub external: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloatingIp {
    pub id: String,
    pub floating_ip_address: String,
    #[serde(default)]
    pub fixed_ip_address: Option<String>,
    #[serde(default)]
    pub floating_network_id: String,
    #[serde(default)]
    pub port_id: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The standard's public IP (B.3.3): an external address bound to a server or a private IP.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicIp {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub public_ip_address: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub server_id: Option<String>,
    #[serde(default)]
    pub private_ip_address: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What a public IP is bound to (exactly one of the two).
#[derive(Debug, Clone)]
pub enum BindTarget {
    Server(String),
    PrivateIp(String),
}

impl BindTarget {
    fn body(&self) -> Value {
        match self {
            BindTarget::Server(id) => json!({ "server_id": id }),
            BindTarget::PrivateIp(ip) => json!({ "private_ip_address": ip }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub security_group_rules: Vec<SecurityGroupRule>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub security_group_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_range_min: Option<u16>,
    #[serde(default)]
    pub port_range_max: Option<u16>,
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
    #[serde(default)]
    pub remote_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Client {
    pub async fn networks(&self) -> Result<Vec<Network>, Error> {
        self.get(Service::Network, "/networks", "networks").await
    }

    pub async fn network(&self, name_or_id: &str) -> Result<Network, Error> {
        self.find(
            Service::Network,
            ("/networks", "/networks"),
            ("network", "networks"),
            "network",
            name_or_id,
            |n: &Network| (&n.id, &n.name),
        )
        .await
    }

    /// The project's floating IPs.
    pub async fn floating_ips(&self) -> Result<Vec<FloatingIp>, Error> {
        self.get(Service::Network, "/floatingips", "floatingips")
            .await
    }

    /// The floating IP with this id or address.
    pub async fn floating_ip(&self, id_or_address: &str) -> Result<FloatingIp, Error> {
        match self
            .get(
                Service::Network,
                &format!("/floatingips/{}", crate::query_value(id_or_address)),
                "floatingip",
            )
            .await
        {
            Err(e) if e.is_not_found() => {}
            other => return other,
        }
        let items = self.floating_ips().await?;
        crate::pick(
            "floating-ip",
            id_or_address,
            items,
            |f| &f.id,
            |f| &f.floating_ip_address,
        )
    }

    /// A floating IP from `network` (B.3.2.1), optionally at `address` and for `port`.
    pub async fn create_floating_ip(
        &self,
        network: &str,
        address: Option<&str>,
        port: Option<&str>,
    ) -> Result<FloatingIp, Error> {
        let mut fip = json!({ "floating_network_id": network });
        if let Some(address) = address {
            fip["floating_ip_address"] = json!(address);
        }
        if let Some(port) = port {
            fip["port_id"] = json!(port);
        }
        self.call(
            Service::Network,
            Method::POST,
            "/floatingips",
            &json!({ "floatingip": fip }),
            "floatingip",
        )
        .await
    }

    /// Associates with `port` or, with `None`, disassociates.
    pub async fn set_floating_ip_port(
        &self,
        id: &str,
        port: Option<&str>,
    ) -> Result<FloatingIp, Error> {
        self.call(
            Service::Network,
            Method::PUT,
            &format!("/floatingips/{id}"),
            &json!({ "floatingip": { "port_id": port } }),
            "floatingip",
        )
        .await
    }

    pub async fn delete_floating_ip(&self, id: &str) -> Result<(), Error> {
        self.send(
            Service::Network,
            Method::DELETE,
            &format!("/floatingips/{id}"),
            None,
        )
        .await
        .map(drop)
    }

    /// The first port of a server (`device_id`), which floating IPs are associated with.
    pub async fn server_port(&self, server_id: &str) -> Result<String, Error> {
        let ports: Vec<Value> = self
            .get(
                Service::Network,
                &format!("/ports?device_id={server_id}"),
                "ports",
            )
            .await?;
        ports
            .first()
            .and_then(|p| p.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Lookup(format!("server {server_id} has no port")))
    }

    pub async fn public_ips(&self) -> Result<Vec<PublicIp>, Error> {
        self.get(Service::Network, "/publicips", "publicips").await
    }

    pub async fn public_ip(&self, name_or_id: &str) -> Result<PublicIp, Error> {
        self.find(
            Service::Network,
            ("/publicips", "/publicips"),
            ("publicip", "publicips"),
            "public-ip",
            name_or_id,
            |p: &PublicIp| (&p.id, &p.name),
        )
        .await
    }

    pub async fn create_public_ip(&self, name: &str) -> Result<PublicIp, Error> {
        self.call(
            Service::Network,
            Method::POST,
            "/publicips",
            &json!({ "publicip": { "name": name } }),
            "publicip",
        )
        .await
    }

    pub async fn bind_public_ip(&self, id: &str, target: &BindTarget) -> Result<PublicIp, Error> {
        self.call(
            Service::Network,
            Method::POST,
            &format!("/publicips/{id}/bind"),
            &target.body(),
            "publicip",
        )
        .await
    }

    pub async fn unbind_public_ip(&self, id: &str, target: &BindTarget) -> Result<PublicIp, Error> {
        self.call(
            Service::Network,
            Method::POST,
            &format!("/publicips/{id}/unbind"),
            &target.body(),
            "publicip",
        )
        .await
    }

    pub async fn delete_public_ip(&self, id: &str) -> Result<(), Error> {
        self.send(
            Service::Network,
            Method::DELETE,
            &format!("/publicips/{id}"),
            None,
        )
        .await
        .map(drop)
    }

    pub async fn security_groups(&self) -> Result<Vec<SecurityGroup>, Error> {
        self.get(Service::Network, "/security-groups", "security_groups")
            .await
    }

    pub async fn security_group(&self, name_or_id: &str) -> Result<SecurityGroup, Error> {
        self.find(
            Service::Network,
            ("/security-groups", "/security-groups"),
            ("security_group", "security_groups"),
            "security-group",
            name_or_id,
            |g: &SecurityGroup| (&g.id, &g.name),
        )
        .await
    }

    pub async fn create_security_group(
        &self,
        name: &str,
        description: &str,
    ) -> Result<SecurityGroup, Error> {
        self.call(
            Service::Network,
            Method::POST,
            "/security-groups",
            &json!({ "security_group": { "name": name, "description": description } }),
            "security_group",
        )
        .await
    }

    pub async fn delete_security_group(&self, id: &str) -> Result<(), Error> {
        self.send(
            Service::Network,
            Method::DELETE,
            &format!("/security-groups/{id}"),
            None,
        )
        .await
        .map(drop)
    }

    pub async fn create_security_group_rule(
        &self,
        rule: &SecurityGroupRule,
    ) -> Result<SecurityGroupRule, Error> {
        self.call(
            Service::Network,
            Method::POST,
            "/security-group-rules",
            &json!({ "security_group_rule": rule }),
            "security_group_rule",
        )
        .await
    }

    pub async fn delete_security_group_rule(&self, id: &str) -> Result<(), Error> {
        self.send(
            Service::Network,
            Method::DELETE,
            &format!("/security-group-rules/{id}"),
            None,
        )
        .await
        .map(drop)
    }
}
