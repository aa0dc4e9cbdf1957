//! Instance action queries: begun with the server's task, finished when it ends.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Db, Result, StoreError, Tx};
use crate::model::InstanceAction;

fn action(r: &Row) -> rusqlite::Result<InstanceAction> {
    let server: String = r.get("server_id")?;
    Ok(InstanceAction {
        server_id: Uuid::parse_str(&server).unwrap_or_default(),
        request_id: r.get("request_id")?,
        action: r.get("action")?,
        event: r.get("event")?,
        user_id: r.get("user_id")?,
        project_id: r.get("project_id")?,
        start_time: r.get("start_time")?,
        finish_time: r.get("finish_time")?,
        result: r.get("result")?,
        message: r.get("message")?,
    })
}

impl Db<'_> {
    /// A server's actions, newest first (as Nova lists them).
    pub fn instance_actions_list(&self, server_id: Uuid) -> Result<Vec<InstanceAction>> {
        let mut stmt =
            self.prepare("SELECT * FROM instance_actions WHERE server_id = ?1 ORDER BY id DESC")?;
        let rows = stmt.query_map([server_id.to_string()], action)?;
        rows.map(|r| r.map_err(StoreError::from)).collect()
    }

    pub fn instance_action_get(
        &self,
        server_id: Uuid,
        request_id: &str,
    ) -> Result<Option<InstanceAction>> {
        Ok(self
            .query_row(
                "SELECT * FROM instance_actions WHERE server_id = ?1 AND request_id = ?2
                  ORDER BY id DESC LIMIT 1",
                params![server_id.to_string(), request_id],
                action,
            )
            .optional()?)
    }
}

impl Tx<'_> {
    pub fn instance_action_begin(&self, a: &InstanceAction) -> Result<()> {
        self.execute(
            "INSERT INTO instance_actions (server_id, request_id, action, event, user_id,
                 project_id, start_time, finish_time, result, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                a.server_id.to_string(),
                a.request_id,
                a.action,
                a.event,
                a.user_id,
                a.project_id,
                a.start_time,
                a.finish_time,
                a.result,
                a.message
            ],
        )?;
        Ok(())
    }

    /// Finishes the server's open action: `Success`, or `Error` with why.
    pub fn instance_action_finish(
        &self,
        server_id: Uuid,
        failure: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "UPDATE instance_actions SET finish_time = ?2, result = ?3, message = ?4
              WHERE server_id = ?1 AND finish_time IS NULL",
            params![
                server_id.to_string(),
                at,
                if failure.is_some() {
                    "Error"
                } else {
                    "Success"
                },
                failure
            ],
        )?;
        Ok(())
    }
}
