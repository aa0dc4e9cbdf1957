//! Nodes: agents join with the join token and get a certificate from the scheduler's CA;
//! from then on the scheduler asks each for its status (the heartbeat) over mutual TLS
//! and marks a node down when it stays silent.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use subtle::ConstantTimeEq;
use yunji_common::agent_api::{JoinReply, JoinRequest};

use super::error::{Error, Result};
use super::{Core, error_chain};
use crate::model::Node;

impl Core {
    /// An agent joins (or rejoins after a restart, with a new address).
    pub async fn node_join(&self, request: JoinRequest) -> Result<JoinReply> {
        let secret = request.token.split('.').next().unwrap_or_default();
        if !bool::from(secret.as_bytes().ct_eq(self.pki.join_secret.as_bytes())) {
            return Err(Error::Unauthorized(
                "the join token is wrong; use the one in the scheduler's data directory (join-token)".into(),
            ));
        }
        if !yunji_common::valid_node_name(&request.node_name) {
            return Err(Error::BadRequest(format!(
                "node name {:?} must be a lower-case DNS name (letters, digits, '-', '.')",
                request.node_name
            )));
        }
        let url: http::Uri = request.agent_url.parse().map_err(|_| {
            Error::BadRequest(format!("agent_url {:?} is not a URL", request.agent_url))
        })?;
        if url.scheme_str() != Some("https") || url.host().is_none() {
            return Err(Error::BadRequest(
                "agent_url must be https://HOST:PORT: agents are only reached over mutual TLS"
                    .into(),
            ));
        }
        let certificate_pem = match (&request.csr_pem, &self.pki.ca) {
            (None, _) => None,
            (Some(csr), Some(ca)) => Some(
                ca.sign_node_csr(&request.node_name, csr)
                    .map_err(|e| Error::BadRequest(error_chain(&e)))?,
            ),
            (Some(_), None) => {
                return Err(Error::BadRequest(
                    "this scheduler uses operator-provided certificates: give the agent its \
                     certificate with --tls-cert, --tls-key and --ca-cert"
                        .into(),
                ));
            }
        };
        let (name, agent_url) = (request.node_name.clone(), request.agent_url.clone());
        self.store
            .write(move |tx| tx.node_join(&name, &agent_url))
            .await?;
        tracing::info!(node = %request.node_name, url = %request.agent_url, "node joined");
        Ok(JoinReply {
            certificate_pem,
            ca_pem: self.pki.ca_pem.clone(),
        })
    }

    /// Every node and what it last reported (operators' view).
    pub async fn nodes(&self) -> Result<Vec<Node>> {
        Ok(self.store.read(|db| db.nodes_list()).await?)
    }

    /// The up node carrying the fewest of something (`load`: count per node name, as
    /// the store answers it), by name on a tie; '' when none is up.
    pub(crate) async fn least_loaded_up_node(&self, load: Vec<(String, i64)>) -> Result<String> {
        let load: std::collections::HashMap<String, i64> = load.into_iter().collect();
        Ok(self
            .nodes()
            .await?
            .into_iter()
            .filter(|n| n.state == crate::model::NodeState::Up)
            .min_by_key(|n| (load.get(&n.name).copied().unwrap_or(0), n.name.clone()))
            .map(|n| n.name)
            .unwrap_or_default())
    }

    /// Asks every node for its status once, all at the same time.
    pub async fn heartbeat_round(&self) {
        let nodes = match self.nodes().await {
            Ok(nodes) => nodes,
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "cannot list nodes");
                return;
            }
        };
        let down_after = chrono::Duration::seconds(self.config.agents.down_after_secs as i64);
        let polls = nodes.into_iter().map(|node| async move {
            let asked_at = Utc::now();
            let outcome = self.agents.status(&node).await;
            let now = Utc::now();
            let name = node.name.clone();
            let result = match outcome {
                Ok(status) if status.node_name == node.name => {
                    let inventory = status.inventory.clone();
                    let seen = self.store.write(move |tx| tx.node_seen(&name, &status, now)).await.map(|()| false);
                    if let Err(e) = self.servers_sync_power(&node.name, &inventory, asked_at).await {
                        tracing::warn!(node = %node.name, error = %error_chain(&e), "recording power states failed");
                    }
                    seen
                }
                Ok(status) => {
                    let error = format!("the agent at {} says it is {}", node.url, status.node_name);
                    self.store.write(move |tx| tx.node_missed(&name, &error, now - down_after)).await
                }
                Err(e) => {
                    let error = error_chain(&e);
                    tracing::debug!(node = %node.name, %error, "heartbeat failed");
                    self.store.write(move |tx| tx.node_missed(&name, &error, now - down_after)).await
                }
            };
            match result {
                Ok(true) => tracing::warn!(node = %node.name, "node marked down: no heartbeat"),
                Ok(false) => {}
                Err(e) => tracing::warn!(node = %node.name, error = %error_chain(&e), "recording heartbeat failed"),
            }
        });
        futures_util::future::join_all(polls).await;
    }

    /// Runs heartbeat rounds for as long as the scheduler runs.
    pub fn spawn_heartbeats(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let core = self.clone();
        let every = Duration::from_secs(core.config.agents.heartbeat_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                core.heartbeat_round().await;
            }
        })
    }
}
