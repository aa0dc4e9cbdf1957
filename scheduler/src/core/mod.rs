//! Core: every rule a user can observe — policy, identity, quotas, state machines,
//! placement — between the HTTP layer above and the store and agent client below.
//! Nothing here knows about HTTP; nothing above here touches SQL or agents.

mod bootstrap;
mod catalog;
pub mod compute;
pub mod error;
pub mod identity;
pub mod images;
pub mod load_balancers;
pub mod network;
mod nodes;
mod passwords;
pub mod policy;
pub mod tokens;
pub mod volumes;

use std::sync::Arc;

use serde_json::Value;
use yunji_common::pki::CertificateAuthority;

use crate::agents::AgentClient;
use crate::config::Config;
use crate::store::Store;
pub use bootstrap::Bootstrapped;
pub use error::{Error, Result};
use passwords::Passwords;
use tokens::TokenCache;

/// The scheduler's application state; one per process, shared by every request.
pub struct Core {
    store: Store,
    config: Arc<Config>,
    public_url: String,
    catalog: Value,
    tokens: TokenCache,
    passwords: Passwords,
    agents: AgentClient,
    pki: NodePki,
    /// This core itself, for the background tasks its operations start.
    me: std::sync::Weak<Core>,
    /// One lock per server: its operations run one at a time, in order.
    server_locks:
        std::sync::Mutex<std::collections::HashMap<uuid::Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// The workers that push each node its network state.
    network_sync: network::NetworkSync,
    /// VMs no server owns that have been reported in the log already.
    reported_unknown_vms: std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// What core needs to admit nodes.
pub struct NodePki {
    /// The join token's secret part; compared in constant time.
    pub join_secret: String,
    /// The scheduler's own CA, which signs node certificates; `None` when the operator
    /// provides every certificate.
    pub ca: Option<CertificateAuthority>,
    /// The CA agents' certificates chain to, handed to joining agents.
    pub ca_pem: String,
}

impl Core {
    pub fn new(
        config: Arc<Config>,
        public_url: String,
        store: Store,
        agents: AgentClient,
        pki: NodePki,
    ) -> Result<Core> {
        let passwords = Passwords::new(
            config.identity.argon2_memory_kib,
            config.identity.argon2_iterations,
        )?;
        Ok(Core {
            catalog: catalog::catalog(&public_url, &config.identity.region),
            store,
            public_url,
            tokens: TokenCache::default(),
            passwords,
            agents,
            pki,
            config,
            me: std::sync::Weak::new(),
            server_locks: Default::default(),
            network_sync: Default::default(),
            reported_unknown_vms: Default::default(),
        })
    }

    /// Sets the weak self-reference background tasks upgrade (see `Arc::new_cyclic`).
    pub fn with_self(mut self, me: std::sync::Weak<Core>) -> Core {
        self.me = me;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The base URL every `self` link and catalog endpoint starts with.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// `GET /v3/services`.
    pub fn services(&self) -> Vec<Value> {
        catalog::services()
    }

    /// `GET /v3/endpoints`.
    pub fn endpoints(&self) -> Vec<Value> {
        catalog::endpoint_list(&self.public_url, &self.config.identity.region)
    }

    /// Background upkeep: expired tokens leave memory and the store.
    pub fn spawn_upkeep(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let core = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
            loop {
                tick.tick().await;
                if let Err(error) = core.tokens_sweep().await {
                    tracing::warn!(error = %error_chain(&error), "sweeping expired tokens failed");
                }
            }
        })
    }
}

/// An error with all its causes, for the log.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
