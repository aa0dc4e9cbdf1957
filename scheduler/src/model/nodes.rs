//! Nodes: the agents that joined, and what they report.

use chrono::{DateTime, Utc};
use yunji_common::agent_api::NodeStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Joined, not yet heard from over mutual TLS.
    Joining,
    Up,
    /// Has not answered within the configured time.
    Down,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Joining => "joining",
            NodeState::Up => "up",
            NodeState::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Option<NodeState> {
        match s {
            "joining" => Some(NodeState::Joining),
            "up" => Some(NodeState::Up),
            "down" => Some(NodeState::Down),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub url: String,
    pub state: NodeState,
    /// The last status the agent reported.
    pub status: Option<NodeStatus>,
    /// Why the last heartbeat failed, for the operator.
    pub error: Option<String>,
    pub last_seen: Option<DateTime<Utc>>,
    pub joined_at: DateTime<Utc>,
}
