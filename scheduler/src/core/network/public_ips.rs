//! Public IPs (the standard's `publicips` extension, B.3.3): a floating IP from the
//! default external network, bound to a server (its first port) or to a private
//! address of the caller's project. Same rows, same NAT and quota as floating IPs.

use super::floating_ips::floating_ip_not_found;
use super::{FloatingIpCreate, FloatingIpDetail, FloatingIpUpdate};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{Access, authorize, require_project};
use crate::model::{Caller, NetworkFilter, PortFilter};

/// What a bind or unbind names: exactly one of a server and a private address.
#[derive(Debug, Clone)]
pub enum PublicIpTarget {
    Server(String),
    PrivateIp(String),
}

impl Core {
    /// The external network public IPs come from: the configured one, else the only one.
    async fn default_external_network(&self) -> Result<String> {
        if let Some(id) = self.config.network.default_external_network.clone() {
            return Ok(id);
        }
        let external = self
            .store
            .read(|db| {
                db.networks_list(&NetworkFilter {
                    external: Some(true),
                    ..NetworkFilter::default()
                })
            })
            .await?;
        match external.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(Error::Conflict(
                "No public IP can be allocated: this cloud has no external network; an \
                 administrator creates one (router:external true, with a subnet)."
                    .into(),
            )),
            _ => Err(Error::Conflict(
                "No public IP can be allocated: several external networks exist and none is the \
                 default; an administrator sets [network] default_external_network."
                    .into(),
            )),
        }
    }

    /// `POST /v2.0/publicips`.
    pub async fn public_ip_create(
        &self,
        caller: &Caller,
        name: Option<String>,
    ) -> Result<FloatingIpDetail> {
        let project = require_project(caller)?;
        authorize(caller, project, Access::Write, "public IPs of the project")?;
        let network = self.default_external_network().await?;
        self.floating_ip_create(
            caller,
            FloatingIpCreate {
                floating_network_id: network,
                name,
                ..FloatingIpCreate::default()
            },
        )
        .await
    }

    /// The port and address a bind names: the server's first port, or the caller's
    /// port holding the private address.
    async fn public_ip_target(
        &self,
        caller: &Caller,
        target: &PublicIpTarget,
    ) -> Result<(String, Option<String>)> {
        match target {
            PublicIpTarget::Server(id) => {
                let server = self.server_get(caller, id, Access::Read).await?;
                let device = server.id.to_string();
                let ports = self
                    .store
                    .read(move |db| {
                        db.ports_list(&PortFilter {
                            device_id: Some(device),
                            ..PortFilter::default()
                        })
                    })
                    .await?;
                let first = ports.into_iter().next().ok_or_else(|| {
                    Error::Conflict(format!(
                        "Server {id} has no port to bind a public IP to; attach it to a network \
                         first."
                    ))
                })?;
                Ok((first.id, None))
            }
            PublicIpTarget::PrivateIp(ip) => {
                let project = require_project(caller)?.to_string();
                let ports = self
                    .store
                    .read(move |db| {
                        db.ports_list(&PortFilter {
                            project_scope: Some(project),
                            ..PortFilter::default()
                        })
                    })
                    .await?;
                let port = ports
                    .into_iter()
                    .find(|p| p.fixed_ips.iter().any(|f| f.ip_address == *ip))
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "No port of your project holds the private IP address {ip}; GET \
                             /v2.0/ports lists your ports and their fixed_ips."
                        ))
                    })?;
                Ok((port.id, Some(ip.clone())))
            }
        }
    }

    /// `POST /v2.0/publicips/{id}/bind`.
    pub async fn public_ip_bind(
        &self,
        caller: &Caller,
        id: &str,
        target: PublicIpTarget,
    ) -> Result<FloatingIpDetail> {
        let current = self.floating_ip_get(caller, id).await?.floating_ip;
        authorize(
            caller,
            &current.project_id,
            Access::Write,
            &format!("public IP {id}"),
        )?;
        let (port_id, fixed_ip_address) = self.public_ip_target(caller, &target).await?;
        self.floating_ip_update(
            caller,
            id,
            FloatingIpUpdate {
                port_id: Some(Some(port_id)),
                fixed_ip_address,
                description: None,
            },
        )
        .await
    }

    /// `POST /v2.0/publicips/{id}/unbind`: 400 when bound to something else.
    pub async fn public_ip_unbind(
        &self,
        caller: &Caller,
        id: &str,
        target: PublicIpTarget,
    ) -> Result<FloatingIpDetail> {
        let current = self.floating_ip_get(caller, id).await?;
        authorize(
            caller,
            &current.floating_ip.project_id,
            Access::Write,
            &format!("public IP {id}"),
        )?;
        let (port_id, fixed) = self.public_ip_target(caller, &target).await?;
        let fip = &current.floating_ip;
        let matches = fip.port_id.as_deref() == Some(port_id.as_str())
            && fixed.is_none_or(|ip| fip.fixed_ip_address.as_deref() == Some(ip.as_str()));
        if !matches {
            return Err(Error::BadRequest(format!(
                "Public IP {id} is not bound to {}; it is bound to {}.",
                match &target {
                    PublicIpTarget::Server(s) => format!("server {s}"),
                    PublicIpTarget::PrivateIp(ip) => format!("private IP {ip}"),
                },
                match (&fip.port_id, &fip.fixed_ip_address) {
                    (Some(p), Some(ip)) => format!("{ip} (port {p})"),
                    _ => "nothing".into(),
                }
            )));
        }
        self.floating_ip_update(
            caller,
            id,
            FloatingIpUpdate {
                port_id: Some(None),
                ..FloatingIpUpdate::default()
            },
        )
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => floating_ip_not_found(id),
            other => other,
        })
    }
}
