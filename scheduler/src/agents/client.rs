//! Calls to agents over mutual TLS: the scheduler presents its client certificate, and
//! accepts only a server certificate from the node CA issued for the node's own name.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use yunji_common::agent_api::{NodeStatus, STATUS_PATH};
use yunji_common::client::{CallError, Transport, call_json};

use crate::model::Node;

/// Time allowed for a status call.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AgentClient {
    tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient").finish_non_exhaustive()
    }
}

impl AgentClient {
    pub fn new(tls: Arc<ClientConfig>) -> AgentClient {
        AgentClient { tls }
    }

    fn transport(&self, node: &Node) -> Result<Transport, CallError> {
        let server_name = ServerName::try_from(node.name.clone())
            .map_err(|_| CallError::Url(format!("node name {} is not a DNS name", node.name)))?;
        Ok(Transport::Tls {
            config: self.tls.clone(),
            server_name,
        })
    }

    /// The node's heartbeat: capacity, drivers, inventory.
    pub async fn status(&self, node: &Node) -> Result<NodeStatus, CallError> {
        call_json::<(), _>(
            &self.transport(node)?,
            &node.url,
            Method::GET,
            STATUS_PATH,
            None,
            STATUS_TIMEOUT,
        )
        .await
    }
}
