//! Attaching volumes to servers and detaching them: one operation behind both Nova's
//! `os-volume_attachments` and Cinder's `os-attach`/`os-detach`. The volume goes
//! available → attaching → in-use → detaching → available; the node really attaches it
//! (in the background), and a failure there puts the volume back where it was.

use std::collections::HashSet;

use chrono::Utc;
use uuid::Uuid;
use yunji_common::agent_api::{IoLimits, VolumeAttach};

use super::{parse_volume_id, volume_missing};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::error_chain;
use crate::core::policy::Access;
use crate::model::{Caller, VmState, VolumeAttachment, volume_status as st};

/// What an attach asks for.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    pub volume_id: String,
    pub server_id: String,
    /// A device name the caller would like (`/dev/vdc`); the next free one otherwise.
    pub device: Option<String>,
    pub read_only: bool,
}

const ATTACHED: &str = "attached";
const ATTACHING: &str = "attaching";
const DETACHING: &str = "detaching";

/// The device for a new attachment: the one asked for when valid and free, else the
/// first free of `/dev/vdb`…`/dev/vdz` (`/dev/vda` is the root disk).
fn pick_device(asked: Option<&str>, used: &HashSet<String>) -> Result<String> {
    if let Some(name) = asked.filter(|d| !d.is_empty() && *d != "auto") {
        let valid = name.len() == 8
            && name.starts_with("/dev/")
            && matches!(&name[5..7], "vd" | "sd" | "xv")
            && name.as_bytes()[7].is_ascii_lowercase();
        if !valid {
            return Err(Error::BadRequest(format!(
                "The supplied device path ({name}) is invalid; give one like /dev/vdb, or none."
            )));
        }
        let name = format!("/dev/vd{}", &name[7..]);
        if !used.contains(&name) && name != "/dev/vda" {
            return Ok(name);
        }
    }
    (b'b'..=b'z')
        .map(|c| format!("/dev/vd{}", c as char))
        .find(|d| !used.contains(d))
        .ok_or_else(|| {
            Error::Conflict(
                "The server has no free device name left: detach a volume first.".into(),
            )
        })
}

impl Core {
    /// Attaches a volume to a server (202/200 at once; the node attaches it meanwhile).
    pub async fn volume_attach(
        &self,
        caller: &Caller,
        request: AttachRequest,
    ) -> Result<VolumeAttachment> {
        let volume = self
            .volume_get(caller, &request.volume_id, Access::Write)
            .await?;
        let server = self
            .server_get(caller, &request.server_id, Access::Write)
            .await?;
        if server.task_state.is_some()
            || !matches!(server.vm_state, VmState::Active | VmState::Stopped)
        {
            return Err(Error::Conflict(format!(
                "Cannot 'attach_volume' instance {} while it is {}; it must be ACTIVE or \
                 SHUTOFF with no task in progress.",
                server.id,
                server.status()
            )));
        }
        if volume.read_only && !request.read_only {
            return Err(Error::BadRequest(format!(
                "Invalid volume: volume {} is read-only; attach it with mode 'ro'.",
                volume.id
            )));
        }
        let Some(node_name) = server.host.clone() else {
            return Err(Error::Conflict(format!(
                "Instance {} has no host yet.",
                server.id
            )));
        };
        if volume.host.as_deref() != Some(node_name.as_str()) {
            return Err(Error::Conflict(format!(
                "Volume {} lives on node {} and instance {} runs on {node_name}; this cloud \
                 attaches a volume only to servers on its own node. Create the volume in the \
                 server's availability zone, or boot the server from the volume.",
                volume.id,
                volume.host.as_deref().unwrap_or("(none)"),
                server.id
            )));
        }
        let (vid, sid) = (volume.id, server.id);
        let mode = if request.read_only { "ro" } else { "rw" };
        let asked = request.device.clone();
        let host = node_name.clone();
        let attachment = self
            .store
            .write(move |tx| {
                let mut v = tx
                    .volume_get(vid)?
                    .ok_or_else(|| volume_missing(&vid.to_string()))?;
                if v.attachments.iter().any(|a| a.server_id == sid) {
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: volume {vid} is already attached to instance {sid}."
                    )));
                }
                let status_ok = v.status == st::AVAILABLE
                    || v.status == st::RESERVED
                    || (v.multiattach && v.status == st::IN_USE);
                if !status_ok {
                    let why = if v.status == st::IN_USE {
                        " and is not multiattach".to_string()
                    } else {
                        String::new()
                    };
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: volume {vid} status must be 'available' (or 'in-use' \
                         when multiattach); it is '{}'{why}.",
                        v.status
                    )));
                }
                let used: HashSet<String> = tx
                    .volume_attachments_of_server(sid)?
                    .into_iter()
                    .map(|a| a.device)
                    .collect();
                let attachment = VolumeAttachment {
                    id: Uuid::new_v4(),
                    volume_id: vid,
                    server_id: sid,
                    device: pick_device(asked.as_deref(), &used)?,
                    mode: mode.into(),
                    host_name: Some(host),
                    status: ATTACHING.into(),
                    attached_at: None,
                    delete_on_termination: false,
                };
                tx.attachment_put(&attachment)?;
                v.status = st::ATTACHING.into();
                tx.volume_update(&v)?;
                Ok::<_, Error>(attachment)
            })
            .await?;
        let core = self.arc()?;
        let pending = attachment.clone();
        tokio::spawn(async move { core.attach_on_node(pending, node_name).await });
        Ok(attachment)
    }

    async fn attach_on_node(
        self: std::sync::Arc<Self>,
        mut attachment: VolumeAttachment,
        host: String,
    ) {
        let vid = attachment.volume_id;
        let node = match self.volume_io_limits(vid).await {
            Ok(limits) => self.node_named(&host).await.map(|node| (node, limits)),
            Err(e) => Err(e),
        };
        let result = match node {
            Ok((node, limits)) => {
                let request = VolumeAttach {
                    server_id: attachment.server_id,
                    device: attachment.device.clone(),
                    read_only: attachment.mode == "ro",
                    limits,
                };
                self.agents
                    .volume_attach(&node, vid, &request)
                    .await
                    .map(|_| ())
                    .map_err(|e| error_chain(&e))
            }
            Err(e) => Err(error_chain(&e)),
        };
        if let Err(message) = &result {
            tracing::warn!(volume = %vid, server = %attachment.server_id, %message, "attaching a volume failed");
        }
        let outcome = self
            .store
            .write(move |tx| {
                let Some(mut v) = tx.volume_get(vid)? else {
                    return Ok::<_, Error>(());
                };
                // Released meanwhile (the server was deleted): nothing to record.
                if !v.attachments.iter().any(|a| a.id == attachment.id) {
                    return Ok(());
                }
                match result {
                    Ok(()) => {
                        attachment.status = ATTACHED.into();
                        attachment.attached_at = Some(Utc::now());
                        tx.attachment_put(&attachment)?;
                    }
                    Err(_) => tx.attachment_delete(attachment.id)?,
                }
                let attached = tx
                    .volume_get(vid)?
                    .map(|v| v.attachments.len())
                    .unwrap_or(0);
                v.status = if attached > 0 {
                    st::IN_USE
                } else {
                    st::AVAILABLE
                }
                .into();
                tx.volume_update(&v)?;
                Ok(())
            })
            .await;
        if let Err(error) = outcome {
            tracing::error!(volume = %vid, error = %error_chain(&error), "recording an attach failed");
        }
    }

    /// Detaches a volume: from `server_id` (Nova), or by `attachment_id` (Cinder; the
    /// only attachment when none is named).
    pub async fn volume_detach(
        &self,
        caller: &Caller,
        volume_id: &str,
        server_id: Option<&str>,
        attachment_id: Option<&str>,
    ) -> Result<()> {
        let volume = self.volume_get(caller, volume_id, Access::Write).await?;
        let attachment = match (server_id, attachment_id) {
            (Some(sid), _) => volume
                .attachments
                .iter()
                .find(|a| a.server_id.to_string() == sid)
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "volume {volume_id} is not attached to instance {sid}"
                    ))
                })?,
            (None, Some(aid)) => volume
                .attachments
                .iter()
                .find(|a| a.id.to_string() == aid)
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Invalid volume: attachment {aid} is not an attachment of volume {volume_id}"
                    ))
                })?,
            (None, None) => match volume.attachments.as_slice() {
                [only] => only,
                [] => {
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: volume {volume_id} is not attached"
                    )));
                }
                _ => {
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: volume {volume_id} has several attachments; name the \
                         one to detach with attachment_id"
                    )));
                }
            },
        }
        .clone();
        if attachment.status != ATTACHED {
            return Err(Error::BadRequest(format!(
                "Invalid volume: the attachment of volume {volume_id} to instance {} is {}; \
                 wait until it is attached.",
                attachment.server_id, attachment.status
            )));
        }
        let aid = attachment.id;
        let vid = volume.id;
        self.store
            .write(move |tx| {
                let mut v = tx
                    .volume_get(vid)?
                    .ok_or_else(|| volume_missing(&vid.to_string()))?;
                let Some(mut a) = v.attachments.iter().find(|a| a.id == aid).cloned() else {
                    return Err(Error::Conflict(format!(
                        "volume {vid} was detached meanwhile"
                    )));
                };
                if a.status != ATTACHED {
                    return Err(Error::Conflict(format!(
                        "volume {vid} is being detached already"
                    )));
                }
                super::migrate::refuse_while_moving(tx, &v, "detach")?;
                a.status = DETACHING.into();
                tx.attachment_put(&a)?;
                v.status = st::DETACHING.into();
                tx.volume_update(&v)?;
                Ok::<_, Error>(())
            })
            .await?;
        let core = self.arc()?;
        tokio::spawn(async move { core.detach_on_node(attachment).await });
        Ok(())
    }

    /// Detaches on the node; a failure leaves the volume attached and in-use.
    async fn detach_on_node(self: std::sync::Arc<Self>, mut attachment: VolumeAttachment) -> bool {
        let vid = attachment.volume_id;
        let result = match attachment.host_name.as_deref() {
            Some(host) => match self.node_named(host).await {
                Ok(node) => self
                    .agents
                    .volume_detach(&node, vid, attachment.server_id)
                    .await
                    .map(|_| ())
                    .map_err(|e| error_chain(&e)),
                Err(e) => Err(error_chain(&e)),
            },
            None => Ok(()),
        };
        if let Err(message) = &result {
            tracing::warn!(volume = %vid, server = %attachment.server_id, %message, "detaching a volume failed");
        }
        let detached = result.is_ok();
        let outcome = self
            .store
            .write(move |tx| {
                let Some(mut v) = tx.volume_get(vid)? else {
                    return Ok::<_, Error>(());
                };
                if detached {
                    tx.attachment_delete(attachment.id)?;
                } else {
                    attachment.status = ATTACHED.into();
                    tx.attachment_put(&attachment)?;
                }
                let left = tx
                    .volume_get(vid)?
                    .map(|v| v.attachments.len())
                    .unwrap_or(0);
                v.status = if left > 0 { st::IN_USE } else { st::AVAILABLE }.into();
                tx.volume_update(&v)?;
                Ok(())
            })
            .await;
        if let Err(error) = outcome {
            tracing::error!(volume = %vid, error = %error_chain(&error), "recording a detach failed");
        }
        detached
    }

    /// The I/O limits a volume's type sets.
    pub(crate) async fn volume_io_limits(&self, id: Uuid) -> Result<IoLimits> {
        self.store
            .read(move |db| {
                let Some(volume) = db.volume_get(id)? else {
                    return Ok(IoLimits::default());
                };
                Ok(db
                    .volume_type_get(&volume.type_id)?
                    .map(|t| {
                        IoLimits::from_extra_specs(
                            t.extra_specs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        )
                    })
                    .unwrap_or_default())
            })
            .await
            .map_err(Into::into)
    }

    /// The volumes attached to a server (Nova's `os-volume_attachments` list).
    pub async fn server_volume_attachments(
        &self,
        caller: &Caller,
        server_id: &str,
    ) -> Result<Vec<VolumeAttachment>> {
        let server = self.server_get(caller, server_id, Access::Read).await?;
        self.server_attached_volumes(server.id).await
    }

    /// One volume of a server's attachments (404 when it is not attached there).
    pub async fn server_volume_attachment(
        &self,
        caller: &Caller,
        server_id: &str,
        volume_id: &str,
    ) -> Result<VolumeAttachment> {
        let vid = parse_volume_id(volume_id).map_err(|_| {
            Error::NotFound(format!(
                "volume_id not found: {volume_id} is not attached to instance {server_id}"
            ))
        })?;
        self.server_volume_attachments(caller, server_id)
            .await?
            .into_iter()
            .find(|a| a.volume_id == vid)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "volume_id not found: {volume_id} is not attached to instance {server_id}"
                ))
            })
    }

    /// A server's attachments, for its view (`os-extended-volumes:volumes_attached`).
    pub async fn server_attached_volumes(&self, server_id: Uuid) -> Result<Vec<VolumeAttachment>> {
        Ok(self
            .store
            .read(move |db| db.volume_attachments_of_server(server_id))
            .await?)
    }

    /// The attachments of each of `servers`, for their views.
    pub async fn servers_attached_volumes(
        &self,
        servers: Vec<Uuid>,
    ) -> Result<std::collections::HashMap<Uuid, Vec<VolumeAttachment>>> {
        Ok(self
            .store
            .read(move |db| db.volume_attachments_of_servers(&servers))
            .await?)
    }

    /// A server is being deleted: every volume attached to it is detached (the node
    /// forgets them with the server) and becomes available again, or is deleted when
    /// it was attached with `delete_on_termination`.
    pub async fn volumes_release_server(&self, server_id: Uuid) -> Result<()> {
        for attachment in self.server_attached_volumes(server_id).await? {
            let vid = attachment.volume_id;
            if !self.arc()?.detach_on_node(attachment.clone()).await {
                // The node is gone or refused: the server is gone for the user anyway.
                let aid = attachment.id;
                self.store
                    .write(move |tx| {
                        tx.attachment_delete(aid)?;
                        if let Some(mut v) = tx.volume_get(vid)? {
                            v.status = if v.attachments.is_empty() {
                                st::AVAILABLE
                            } else {
                                st::IN_USE
                            }
                            .into();
                            tx.volume_update(&v)?;
                        }
                        Ok::<_, Error>(())
                    })
                    .await?;
            }
            if attachment.delete_on_termination {
                let host = self
                    .store
                    .write(move |tx| {
                        let Some(mut v) = tx.volume_get(vid)? else {
                            return Ok::<_, Error>(None);
                        };
                        if !v.attachments.is_empty() {
                            return Ok(None);
                        }
                        v.status = st::DELETING.into();
                        tx.volume_update(&v)?;
                        Ok(Some(v.host))
                    })
                    .await?;
                if let Some(host) = host {
                    self.arc()?.volume_destroy(vid, host).await;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_allocated_in_order_and_requests_honoured_when_free() {
        let mut used = HashSet::new();
        assert_eq!(pick_device(None, &used).unwrap(), "/dev/vdb");
        used.insert("/dev/vdb".to_string());
        assert_eq!(pick_device(None, &used).unwrap(), "/dev/vdc");
        assert_eq!(pick_device(Some("/dev/vdf"), &used).unwrap(), "/dev/vdf");
        assert_eq!(pick_device(Some("/dev/vdb"), &used).unwrap(), "/dev/vdc");
        assert_eq!(pick_device(Some("/dev/sdd"), &used).unwrap(), "/dev/vdd");
        assert!(matches!(
            pick_device(Some("/etc/passwd"), &used),
            Err(Error::BadRequest(_))
        ));
    }
}
