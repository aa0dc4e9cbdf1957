//! Calls to agents over mutual TLS: the scheduler presents its client certificate, and
//! accepts only a server certificate from the node CA issued for the node's own name.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use uuid::Uuid;
use yunji_common::agent_api::{
    ConsoleReply, DISK_COPIES_PATH, IMAGES_PATH, ImageOnNode, ImagePush, NETWORK_PATH,
    NetworkApplied, NodeNetworkSpec, NodeStatus, SERVERS_PATH, STATUS_PATH, ServerAction,
    ServerReply, ServerSpec, SnapshotInventory, SnapshotReply, SnapshotSpec, VOLUME_SNAPSHOTS_PATH,
    VOLUMES_PATH, VolumeAttach, VolumeDetach, VolumeExtend, VolumeInventory, VolumeSpec,
};
use yunji_common::client::{CallError, Transport, call_json, download_file, upload_file};

use crate::model::Node;

/// Time allowed for a status call.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for an operation on a server: a real boot or migration takes a while.
const SERVER_TIMEOUT: Duration = Duration::from_secs(600);
/// Time allowed for a node to apply its network spec.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(60);

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

    /// Creates and boots a server on the node.
    pub async fn server_create(
        &self,
        node: &Node,
        spec: &ServerSpec,
    ) -> Result<ServerReply, CallError> {
        call_json(
            &self.transport(node)?,
            &node.url,
            Method::POST,
            SERVERS_PATH,
            Some(spec),
            SERVER_TIMEOUT,
        )
        .await
    }

    pub async fn server_act(
        &self,
        node: &Node,
        id: Uuid,
        action: &ServerAction,
    ) -> Result<ServerReply, CallError> {
        let path = format!("{SERVERS_PATH}/{id}/action");
        call_json(
            &self.transport(node)?,
            &node.url,
            Method::POST,
            &path,
            Some(action),
            SERVER_TIMEOUT,
        )
        .await
    }

    pub async fn server_console(
        &self,
        node: &Node,
        id: Uuid,
        length: Option<usize>,
    ) -> Result<String, CallError> {
        let path = match length {
            Some(n) => format!("{SERVERS_PATH}/{id}/console?length={n}"),
            None => format!("{SERVERS_PATH}/{id}/console"),
        };
        let reply: ConsoleReply = call_json::<(), _>(
            &self.transport(node)?,
            &node.url,
            Method::GET,
            &path,
            None,
            STATUS_TIMEOUT,
        )
        .await?;
        Ok(reply.output)
    }

    /// Whether the node has image `id` (the sim set says it has every image).
    pub async fn image_present(&self, node: &Node, id: &str) -> Result<bool, CallError> {
        let path = format!("{IMAGES_PATH}/{id}");
        let reply = call_json::<(), ImageOnNode>(
            &self.transport(node)?,
            &node.url,
            Method::GET,
            &path,
            None,
            STATUS_TIMEOUT,
        )
        .await;
        match reply {
            Ok(_) => Ok(true),
            Err(CallError::Status { status, .. }) if status == http::StatusCode::NOT_FOUND => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Streams the image stored at `file` to the node, which checks it against `push`.
    pub async fn image_push(
        &self,
        node: &Node,
        id: &str,
        push: &ImagePush,
        file: &std::path::Path,
    ) -> Result<ImageOnNode, CallError> {
        let mut path = format!("{IMAGES_PATH}/{id}?disk_format={}", push.disk_format);
        if let Some(sha512) = &push.sha512 {
            path.push_str(&format!("&sha512={sha512}"));
        }
        upload_file(
            &self.transport(node)?,
            &node.url,
            Method::PUT,
            &path,
            file,
            SERVER_TIMEOUT,
        )
        .await
    }

    /// Has the node copy the server's root disk; `Ok(None)` when its driver set has no
    /// disks (the sim set).
    pub async fn snapshot_take(
        &self,
        node: &Node,
        id: Uuid,
    ) -> Result<Option<SnapshotReply>, CallError> {
        let path = format!("{SERVERS_PATH}/{id}/snapshot");
        let reply = call_json::<(), SnapshotReply>(
            &self.transport(node)?,
            &node.url,
            Method::POST,
            &path,
            None,
            SERVER_TIMEOUT,
        )
        .await;
        match reply {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(CallError::Status { status, .. })
                if status == http::StatusCode::NOT_IMPLEMENTED =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Streams a snapshot the node made into `to`, then has the node remove it.
    pub async fn snapshot_fetch(
        &self,
        node: &Node,
        name: &str,
        to: &std::path::Path,
    ) -> Result<u64, CallError> {
        let transport = self.transport(node)?;
        let path = format!("{DISK_COPIES_PATH}/{name}");
        let fetched = download_file(&transport, &node.url, &path, to, SERVER_TIMEOUT).await;
        let removed = call_json::<(), serde_json::Value>(
            &transport,
            &node.url,
            Method::DELETE,
            &path,
            None,
            STATUS_TIMEOUT,
        )
        .await;
        if let Err(error) = removed {
            tracing::warn!(node = %node.name, %name, %error, "cannot remove a fetched snapshot");
        }
        fetched
    }

    pub async fn server_delete(&self, node: &Node, id: Uuid) -> Result<(), CallError> {
        let path = format!("{SERVERS_PATH}/{id}");
        call_json::<(), serde_json::Value>(
            &self.transport(node)?,
            &node.url,
            Method::DELETE,
            &path,
            None,
            SERVER_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// Pushes the whole network state the node must carry.
    pub async fn network_apply(
        &self,
        node: &Node,
        spec: &NodeNetworkSpec,
    ) -> Result<NetworkApplied, CallError> {
        call_json(
            &self.transport(node)?,
            &node.url,
            Method::PUT,
            NETWORK_PATH,
            Some(spec),
            NETWORK_TIMEOUT,
        )
        .await
    }

    /// A volume operation: `POST` (with a body) or `DELETE` (without) on `path`.
    async fn storage_call<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        node: &Node,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, CallError> {
        call_json(
            &self.transport(node)?,
            &node.url,
            method,
            path,
            body,
            SERVER_TIMEOUT,
        )
        .await
    }

    pub async fn volume_create(
        &self,
        node: &Node,
        spec: &VolumeSpec,
    ) -> Result<VolumeInventory, CallError> {
        self.storage_call(node, Method::POST, VOLUMES_PATH, Some(spec))
            .await
    }

    pub async fn volume_delete(&self, node: &Node, id: Uuid) -> Result<(), CallError> {
        self.storage_call::<(), serde_json::Value>(
            node,
            Method::DELETE,
            &format!("{VOLUMES_PATH}/{id}"),
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn volume_extend(
        &self,
        node: &Node,
        id: Uuid,
        size_gb: u64,
    ) -> Result<VolumeInventory, CallError> {
        let path = format!("{VOLUMES_PATH}/{id}/extend");
        self.storage_call(node, Method::POST, &path, Some(&VolumeExtend { size_gb }))
            .await
    }

    pub async fn volume_attach(
        &self,
        node: &Node,
        id: Uuid,
        attach: &VolumeAttach,
    ) -> Result<VolumeInventory, CallError> {
        let path = format!("{VOLUMES_PATH}/{id}/attach");
        self.storage_call(node, Method::POST, &path, Some(attach))
            .await
    }

    pub async fn volume_detach(
        &self,
        node: &Node,
        id: Uuid,
        server_id: Uuid,
    ) -> Result<VolumeInventory, CallError> {
        let path = format!("{VOLUMES_PATH}/{id}/detach");
        self.storage_call(node, Method::POST, &path, Some(&VolumeDetach { server_id }))
            .await
    }

    pub async fn snapshot_create(
        &self,
        node: &Node,
        spec: &SnapshotSpec,
    ) -> Result<SnapshotInventory, CallError> {
        self.storage_call(node, Method::POST, VOLUME_SNAPSHOTS_PATH, Some(spec))
            .await
    }

    pub async fn snapshot_delete(&self, node: &Node, id: Uuid) -> Result<(), CallError> {
        self.storage_call::<(), serde_json::Value>(
            node,
            Method::DELETE,
            &format!("{VOLUME_SNAPSHOTS_PATH}/{id}"),
            None,
        )
        .await
        .map(|_| ())
    }
}
