//! Usage (`os-simple-tenant-usage`): what each project's servers consumed over a
//! period, in hours of vCPUs, memory and disk — the standard's data-centre accounting.

use chrono::{DateTime, Utc};

use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::require_admin;
use crate::model::{Caller, Server, VmState};

/// One server's part of a project's usage.
#[derive(Debug, Clone)]
pub struct ServerUsage {
    pub server: Server,
    /// Hours it ran inside the period.
    pub hours: f64,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A project's usage over a period.
#[derive(Debug, Clone)]
pub struct ProjectUsage {
    pub project_id: String,
    pub start: DateTime<Utc>,
    pub stop: DateTime<Utc>,
    pub servers: Vec<ServerUsage>,
}

impl ProjectUsage {
    pub fn total_hours(&self) -> f64 {
        self.servers.iter().map(|s| s.hours).sum()
    }

    /// Σ hours × `per_hour(server)`.
    pub fn total(&self, per_hour: impl Fn(&Server) -> f64) -> f64 {
        self.servers
            .iter()
            .map(|s| s.hours * per_hour(&s.server))
            .sum()
    }
}

/// The hours a server ran inside [`start`, `stop`): from its launch to its deletion.
fn hours_in(
    launched: Option<DateTime<Utc>>,
    deleted: Option<DateTime<Utc>>,
    start: DateTime<Utc>,
    stop: DateTime<Utc>,
) -> f64 {
    let Some(launched) = launched else {
        return 0.0;
    };
    let from = launched.max(start);
    let to = deleted.unwrap_or(stop).min(stop);
    ((to - from).num_milliseconds().max(0) as f64) / 3_600_000.0
}

impl Core {
    /// `GET /os-simple-tenant-usage[/{project_id}]`: every project's (admins), or one
    /// project's (its members or admins), over [`start`, `end`).
    pub async fn usage(
        &self,
        caller: &Caller,
        project_id: Option<&str>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<ProjectUsage>> {
        match project_id {
            None => require_admin(caller, "reading every project's usage")?,
            Some(p) if !caller.is_admin() && caller.project_id() != Some(p) => {
                return Err(Error::Forbidden(format!(
                    "reading project {p}'s usage needs the admin role or a token scoped to it"
                )));
            }
            Some(_) => {}
        }
        if end < start {
            return Err(Error::BadRequest(
                "Invalid start time: start must be before end".into(),
            ));
        }
        let project = project_id.map(str::to_string);
        let servers = self
            .store
            .read(move |db| db.servers_launched_in(project.as_deref(), start, end))
            .await?;
        let mut out: Vec<ProjectUsage> = Vec::new();
        for server in servers {
            let hours = hours_in(server.launched_at, server.deleted_at, start, end);
            let usage = ServerUsage {
                started_at: server.launched_at.unwrap_or(server.created_at),
                ended_at: server
                    .deleted_at
                    .filter(|_| server.vm_state == VmState::Deleted),
                hours,
                server,
            };
            match out.last_mut() {
                Some(p) if p.project_id == usage.server.project_id => p.servers.push(usage),
                _ => out.push(ProjectUsage {
                    project_id: usage.server.project_id.clone(),
                    start,
                    stop: end,
                    servers: vec![usage],
                }),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_count_only_the_overlap_with_the_period() {
        let t = |h: i64| Some(DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(h));
        let at = |h: i64| t(h).unwrap();
        assert_eq!(hours_in(t(2), t(5), at(0), at(10)), 3.0);
        assert_eq!(hours_in(t(2), t(5), at(3), at(4)), 1.0);
        assert_eq!(hours_in(t(2), t(5), at(6), at(8)), 0.0);
        assert_eq!(hours_in(t(2), None, at(0), at(10)), 8.0);
        assert_eq!(hours_in(None, None, at(0), at(10)), 0.0);
    }
}
