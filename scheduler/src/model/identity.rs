//! Identity: domains, projects, users, roles, assignments, regions, application
//! credentials, and the caller a token stands for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The domain every cloud starts with, with Keystone's well-known id.
pub const DEFAULT_DOMAIN_ID: &str = "default";

#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub description: String,
    pub email: Option<String>,
    pub default_project_id: Option<String>,
    /// argon2id PHC string; `None` for a user who cannot log in with a password.
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: String,
}

/// Where a role is granted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Project(String),
    Domain(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleAssignment {
    pub user_id: String,
    pub role_id: String,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppCredential {
    pub id: String,
    pub user_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub secret_hash: String,
    pub role_ids: Vec<String>,
    pub unrestricted: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The three built-in roles, each implying the next: admin ⊃ member ⊃ reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Reader,
    Member,
    Admin,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Admin, Level::Member, Level::Reader];

    pub fn name(self) -> &'static str {
        match self {
            Level::Reader => "reader",
            Level::Member => "member",
            Level::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// A role as a token lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRef {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub domain_name: String,
}

/// Who is calling: what a valid token stands for. Policy decides on this alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caller {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    /// The project the token is scoped to; `None` for an unscoped token.
    pub project: Option<ProjectRef>,
    /// Effective roles on that project (implied roles included).
    pub roles: Vec<RoleRef>,
    pub methods: Vec<String>,
    /// Set when the token came from an application credential.
    pub app_cred_id: Option<String>,
    pub audit_id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Caller {
    /// The highest built-in role the caller holds on its project.
    pub fn level(&self) -> Option<Level> {
        self.roles
            .iter()
            .filter_map(|r| Level::from_name(&r.name))
            .max()
    }

    pub fn is_admin(&self) -> bool {
        self.level() == Some(Level::Admin)
    }

    pub fn project_id(&self) -> Option<&str> {
        self.project.as_ref().map(|p| p.id.as_str())
    }
}

/// Which role assignments to list; each `None` matches everything.
#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter {
    pub user_id: Option<String>,
    pub role_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
}

/// A caller for unit tests: a user scoped to `project` holding `roles` (by name).
#[cfg(test)]
pub fn test_caller(project: &str, roles: &[&str]) -> Caller {
    Caller {
        user_id: "u".into(),
        user_name: "u".into(),
        user_domain_id: "default".into(),
        user_domain_name: "Default".into(),
        project: Some(ProjectRef {
            id: project.into(),
            name: project.into(),
            domain_id: "default".into(),
            domain_name: "Default".into(),
        }),
        roles: roles
            .iter()
            .map(|r| RoleRef {
                id: (*r).into(),
                name: (*r).into(),
            })
            .collect(),
        methods: vec!["password".into()],
        app_cred_id: None,
        audit_id: "a".into(),
        issued_at: chrono::Utc::now(),
        expires_at: chrono::Utc::now(),
    }
}
