//! Node queries: joined agents and their last reported status.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use yunji_common::agent_api::NodeStatus;

use super::{Db, Result, StoreError, Tx};
use crate::model::{Node, NodeState};

fn node(r: &Row) -> rusqlite::Result<(Node, Option<String>)> {
    let state: String = r.get("state")?;
    Ok((
        Node {
            name: r.get("name")?,
            url: r.get("url")?,
            state: NodeState::parse(&state).unwrap_or(NodeState::Down),
            status: None,
            error: r.get("error")?,
            last_seen: r.get("last_seen")?,
            joined_at: r.get("joined_at")?,
        },
        r.get("status")?,
    ))
}

fn decode((mut node, status): (Node, Option<String>)) -> Result<Node> {
    node.status = status
        .map(|s| serde_json::from_str::<NodeStatus>(&s))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("status of node {}: {e}", node.name)))?;
    Ok(node)
}

impl Db<'_> {
    pub fn node_get(&self, name: &str) -> Result<Option<Node>> {
        self.query_row("SELECT * FROM nodes WHERE name = ?1", [name], node)
            .optional()?
            .map(decode)
            .transpose()
    }

    pub fn nodes_list(&self) -> Result<Vec<Node>> {
        let mut stmt = self.prepare("SELECT * FROM nodes ORDER BY name")?;
        let rows = stmt.query_map([], node)?;
        rows.map(|r| decode(r?)).collect()
    }
}

impl Tx<'_> {
    /// Records a join; a node that joins again keeps its name and gets the new address.
    pub fn node_join(&self, name: &str, url: &str) -> Result<()> {
        self.execute(
            "INSERT INTO nodes (name, url, state, joined_at) VALUES (?1, ?2, 'joining', ?3)
             ON CONFLICT (name) DO UPDATE SET url = excluded.url, state = 'joining',
                                              error = NULL",
            params![name, url, Utc::now()],
        )?;
        Ok(())
    }

    /// Records a successful heartbeat.
    pub fn node_seen(&self, name: &str, status: &NodeStatus, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE nodes SET state = 'up', status = ?2, error = NULL, last_seen = ?3
             WHERE name = ?1",
            params![name, serde_json::to_string(status)?, at],
        )?;
        Ok(())
    }

    /// Records a failed heartbeat, and marks the node down once it has been silent since
    /// `down_before`. Returns whether the node went down with this call.
    pub fn node_missed(&self, name: &str, error: &str, down_before: DateTime<Utc>) -> Result<bool> {
        self.execute(
            "UPDATE nodes SET error = ?2 WHERE name = ?1",
            params![name, error],
        )?;
        let n = self.execute(
            "UPDATE nodes SET state = 'down' WHERE name = ?1 AND state != 'down'
             AND coalesce(last_seen, joined_at) < ?2",
            params![name, down_before],
        )?;
        Ok(n == 1)
    }
}
