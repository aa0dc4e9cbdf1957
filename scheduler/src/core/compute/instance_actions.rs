//! Instance actions (`os-instance-actions`): every change to a server is recorded in
//! the transaction that starts its task, and finished in the one that ends it, so the
//! record can never disagree with the server.

use chrono::Utc;
use uuid::Uuid;

use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{Access, authorize};
use crate::model::{Caller, InstanceAction, Server};
use crate::store::Tx;

/// Who asked, in which request: what an action records.
#[derive(Debug, Clone)]
pub struct Requester {
    pub user_id: String,
    pub project_id: String,
    pub request_id: String,
}

impl Requester {
    pub fn new(caller: &Caller, request_id: &str) -> Requester {
        Requester {
            user_id: caller.user_id.clone(),
            project_id: caller.project_id().unwrap_or_default().to_string(),
            request_id: request_id.to_string(),
        }
    }
}

/// Nova's action and event names for each kind of change.
pub(crate) fn names(action: &str) -> (&'static str, &'static str) {
    match action {
        "create" => ("create", "compute__do_build_and_run_instance"),
        "delete" => ("delete", "compute_terminate_instance"),
        "os-start" => ("start", "compute_start_instance"),
        "os-stop" => ("stop", "compute_stop_instance"),
        "reboot" => ("reboot", "compute_reboot_instance"),
        "resize" => ("resize", "compute_resize_instance"),
        "confirmResize" => ("confirmResize", "compute_confirm_resize"),
        "revertResize" => ("revertResize", "compute_revert_resize"),
        "os-migrateLive" => ("live-migration", "compute_live_migration"),
        "createImage" => ("createImage", "compute_snapshot_instance"),
        _ => ("unknown", "compute_unknown"),
    }
}

/// Begins an action in the transaction that starts the server's task. An action still
/// open (a build a delete interrupts) ends as an error that says so.
pub(crate) fn action_begin(tx: &Tx, server: &Server, by: &Requester, api_name: &str) -> Result<()> {
    let action = action_of(server, by, api_name);
    tx.instance_action_finish(
        server.id,
        Some(&format!("interrupted by {}", action.action)),
        action.start_time,
    )?;
    tx.instance_action_begin(&action)?;
    Ok(())
}

/// Records a new server's `create` in its create transaction: one row (a new server
/// has no open action to end), already finished as an error when the create placed it
/// in ERROR.
pub(crate) fn action_create(tx: &Tx, server: &Server, by: &Requester) -> Result<()> {
    let mut action = action_of(server, by, "create");
    if let Some(fault) = &server.fault {
        action.finish_time = Some(action.start_time);
        action.result = Some("Error".into());
        action.message = Some(fault.message.clone());
    }
    tx.instance_action_begin(&action)?;
    Ok(())
}

fn action_of(server: &Server, by: &Requester, api_name: &str) -> InstanceAction {
    let (action, event) = names(api_name);
    InstanceAction {
        server_id: server.id,
        request_id: by.request_id.clone(),
        action: action.into(),
        event: event.into(),
        user_id: by.user_id.clone(),
        project_id: by.project_id.clone(),
        start_time: Utc::now(),
        finish_time: None,
        result: None,
        message: None,
    }
}

/// Finishes the open action when a change ends the server's task: an error when the
/// change recorded a new fault (or left the server in ERROR).
pub(crate) fn action_end_if_done(tx: &Tx, before: &Server, after: &Server) -> Result<()> {
    if before.task_state.is_none() || after.task_state.is_some() {
        return Ok(());
    }
    let new_fault = after
        .fault
        .as_ref()
        .filter(|f| before.fault.as_ref().is_none_or(|b| b.created != f.created));
    let failure = match new_fault {
        Some(f) => Some(f.message.clone()),
        None if after.vm_state == crate::model::VmState::Error => {
            Some("the server is in ERROR".into())
        }
        None => None,
    };
    tx.instance_action_finish(after.id, failure.as_deref(), Utc::now())?;
    Ok(())
}

impl Core {
    /// `GET /servers/{id}/os-instance-actions`; a deleted server's too when `deleted`
    /// (microversion 2.21).
    pub async fn server_actions(
        &self,
        caller: &Caller,
        id: &str,
        deleted: bool,
    ) -> Result<Vec<InstanceAction>> {
        let server = self.server_for_actions(caller, id, deleted).await?;
        Ok(self
            .store
            .read(move |db| db.instance_actions_list(server))
            .await?)
    }

    /// `GET /servers/{id}/os-instance-actions/{request_id}`.
    pub async fn server_action_get(
        &self,
        caller: &Caller,
        id: &str,
        request_id: &str,
        deleted: bool,
    ) -> Result<InstanceAction> {
        let server = self.server_for_actions(caller, id, deleted).await?;
        let key = request_id.to_string();
        self.store
            .read(move |db| db.instance_action_get(server, &key))
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "Action for request_id {request_id} on instance {id} not found"
                ))
            })
    }

    async fn server_for_actions(&self, caller: &Caller, id: &str, deleted: bool) -> Result<Uuid> {
        let missing = || Error::NotFound(format!("Instance {id} could not be found."));
        let uuid = Uuid::parse_str(id).map_err(|_| missing())?;
        let server = self
            .store
            .read(move |db| {
                if deleted {
                    db.server_get_even_deleted(uuid)
                } else {
                    db.server_get(uuid)
                }
            })
            .await?
            .ok_or_else(missing)?;
        authorize(
            caller,
            &server.project_id,
            Access::Read,
            &format!("Instance {id}"),
        )?;
        Ok(server.id)
    }
}
