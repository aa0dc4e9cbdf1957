//! Identity queries: domains, projects, users, roles, assignments, regions, application
//! credentials and tokens.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, StoreError, Tx, flag};
use crate::model::{
    AppCredential, AssignmentFilter, Caller, Domain, Project, Region, Role, RoleAssignment, Scope,
    User,
};

fn domain(r: &Row) -> rusqlite::Result<Domain> {
    Ok(Domain {
        id: r.get("id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        enabled: r.get("enabled")?,
    })
}

fn project(r: &Row) -> rusqlite::Result<Project> {
    Ok(Project {
        id: r.get("id")?,
        name: r.get("name")?,
        domain_id: r.get("domain_id")?,
        description: r.get("description")?,
        enabled: r.get("enabled")?,
    })
}

fn user(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get("id")?,
        name: r.get("name")?,
        domain_id: r.get("domain_id")?,
        enabled: r.get("enabled")?,
        description: r.get("description")?,
        email: r.get("email")?,
        default_project_id: r.get("default_project_id")?,
        password_hash: r.get("password_hash")?,
    })
}

fn role(r: &Row) -> rusqlite::Result<Role> {
    Ok(Role {
        id: r.get("id")?,
        name: r.get("name")?,
        description: r.get("description")?,
    })
}

fn region(r: &Row) -> rusqlite::Result<Region> {
    Ok(Region {
        id: r.get("id")?,
        description: r.get("description")?,
        parent_region_id: r.get("parent_region_id")?,
    })
}

fn app_cred(r: &Row) -> rusqlite::Result<AppCredential> {
    let roles: String = r.get("role_ids")?;
    Ok(AppCredential {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        secret_hash: r.get("secret_hash")?,
        role_ids: serde_json::from_str(&roles).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })?,
        unrestricted: r.get("unrestricted")?,
        expires_at: r.get("expires_at")?,
    })
}

/// Filters for listing: each `None` matches everything.
#[derive(Debug, Default, Clone)]
pub struct NameFilter<'a> {
    pub name: Option<&'a str>,
    pub domain_id: Option<&'a str>,
}

/// A token as stored: who it stands for and the exact body issued.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub caller: Caller,
    pub body: Vec<u8>,
}

impl Db<'_> {
    pub fn domain_get(&self, id: &str) -> Result<Option<Domain>> {
        Ok(self
            .query_row("SELECT * FROM domains WHERE id = ?1", [id], domain)
            .optional()?)
    }

    pub fn domain_by_name(&self, name: &str) -> Result<Option<Domain>> {
        Ok(self
            .query_row("SELECT * FROM domains WHERE name = ?1", [name], domain)
            .optional()?)
    }

    pub fn domains_list(&self, name: Option<&str>) -> Result<Vec<Domain>> {
        let mut stmt =
            self.prepare("SELECT * FROM domains WHERE ?1 IS NULL OR name = ?1 ORDER BY name")?;
        let rows = stmt.query_map([name], domain)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn project_get(&self, id: &str) -> Result<Option<Project>> {
        Ok(self
            .query_row("SELECT * FROM projects WHERE id = ?1", [id], project)
            .optional()?)
    }

    pub fn project_by_name(&self, domain_id: &str, name: &str) -> Result<Option<Project>> {
        Ok(self
            .query_row(
                "SELECT * FROM projects WHERE domain_id = ?1 AND name = ?2",
                [domain_id, name],
                project,
            )
            .optional()?)
    }

    pub fn projects_list(&self, filter: &NameFilter) -> Result<Vec<Project>> {
        let mut stmt = self.prepare(
            "SELECT * FROM projects WHERE (?1 IS NULL OR name = ?1)
             AND (?2 IS NULL OR domain_id = ?2) ORDER BY name",
        )?;
        let rows = stmt.query_map(params![filter.name, filter.domain_id], project)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Projects on which the user holds any role.
    pub fn projects_of_user(&self, user_id: &str) -> Result<Vec<Project>> {
        let mut stmt = self.prepare(
            "SELECT DISTINCT p.* FROM projects p
             JOIN project_role_assignments a ON a.project_id = p.id
             WHERE a.user_id = ?1 ORDER BY p.name",
        )?;
        let rows = stmt.query_map([user_id], project)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn user_get(&self, id: &str) -> Result<Option<User>> {
        Ok(self
            .query_row("SELECT * FROM users WHERE id = ?1", [id], user)
            .optional()?)
    }

    pub fn user_by_name(&self, domain_id: &str, name: &str) -> Result<Option<User>> {
        Ok(self
            .query_row(
                "SELECT * FROM users WHERE domain_id = ?1 AND name = ?2",
                [domain_id, name],
                user,
            )
            .optional()?)
    }

    pub fn users_list(&self, filter: &NameFilter) -> Result<Vec<User>> {
        let mut stmt = self.prepare(
            "SELECT * FROM users WHERE (?1 IS NULL OR name = ?1)
             AND (?2 IS NULL OR domain_id = ?2) ORDER BY name",
        )?;
        let rows = stmt.query_map(params![filter.name, filter.domain_id], user)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn role_get(&self, id: &str) -> Result<Option<Role>> {
        Ok(self
            .query_row("SELECT * FROM roles WHERE id = ?1", [id], role)
            .optional()?)
    }

    pub fn role_by_name(&self, name: &str) -> Result<Option<Role>> {
        Ok(self
            .query_row("SELECT * FROM roles WHERE name = ?1", [name], role)
            .optional()?)
    }

    pub fn roles_list(&self, name: Option<&str>) -> Result<Vec<Role>> {
        let mut stmt =
            self.prepare("SELECT * FROM roles WHERE ?1 IS NULL OR name = ?1 ORDER BY name")?;
        let rows = stmt.query_map([name], role)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Roles the user holds on the project, with every role they imply, transitively.
    pub fn effective_project_roles(&self, user_id: &str, project_id: &str) -> Result<Vec<Role>> {
        self.effective(
            "SELECT role_id FROM project_role_assignments WHERE user_id = ?1 AND project_id = ?2",
            [user_id, project_id],
        )
    }

    /// Roles implied by a given set of role ids (an application credential's), closed.
    pub fn roles_closure(&self, role_ids: &[String]) -> Result<Vec<Role>> {
        let json = serde_json::to_string(role_ids)?;
        self.effective("SELECT value FROM json_each(?1)", [json])
    }

    fn effective<P: rusqlite::Params>(&self, seed: &str, params: P) -> Result<Vec<Role>> {
        let sql = format!(
            "WITH RECURSIVE held(id) AS ({seed}
                 UNION SELECT i.implied_role_id FROM role_implications i JOIN held h
                 ON i.prior_role_id = h.id)
             SELECT r.* FROM roles r JOIN held h ON h.id = r.id ORDER BY r.name"
        );
        let mut stmt = self.prepare(&sql)?;
        let rows = stmt.query_map(params, role)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn assignments_list(&self, f: &AssignmentFilter) -> Result<Vec<RoleAssignment>> {
        let mut stmt = self.prepare(
            "SELECT user_id, role_id, project_id AS target, 'project' AS kind
               FROM project_role_assignments
              WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR role_id = ?2)
                AND (?3 IS NULL OR project_id = ?3) AND ?4 IS NULL
             UNION ALL
             SELECT user_id, role_id, domain_id, 'domain' FROM domain_role_assignments
              WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR role_id = ?2)
                AND (?4 IS NULL OR domain_id = ?4) AND ?3 IS NULL
             ORDER BY 1, 3, 2",
        )?;
        let rows = stmt.query_map(
            params![f.user_id, f.role_id, f.project_id, f.domain_id],
            |r| {
                let target: String = r.get(2)?;
                let kind: String = r.get(3)?;
                Ok(RoleAssignment {
                    user_id: r.get(0)?,
                    role_id: r.get(1)?,
                    scope: if kind == "project" {
                        Scope::Project(target)
                    } else {
                        Scope::Domain(target)
                    },
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn region_get(&self, id: &str) -> Result<Option<Region>> {
        Ok(self
            .query_row("SELECT * FROM regions WHERE id = ?1", [id], region)
            .optional()?)
    }

    pub fn regions_list(&self) -> Result<Vec<Region>> {
        let mut stmt = self.prepare("SELECT * FROM regions ORDER BY id")?;
        let rows = stmt.query_map([], region)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn app_cred_get(&self, id: &str) -> Result<Option<AppCredential>> {
        Ok(self
            .query_row(
                "SELECT * FROM application_credentials WHERE id = ?1",
                [id],
                app_cred,
            )
            .optional()?)
    }

    pub fn app_cred_by_name(&self, user_id: &str, name: &str) -> Result<Option<AppCredential>> {
        Ok(self
            .query_row(
                "SELECT * FROM application_credentials WHERE user_id = ?1 AND name = ?2",
                [user_id, name],
                app_cred,
            )
            .optional()?)
    }

    pub fn app_creds_of_user(
        &self,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<Vec<AppCredential>> {
        let mut stmt = self.prepare(
            "SELECT * FROM application_credentials WHERE user_id = ?1
             AND (?2 IS NULL OR name = ?2) ORDER BY name",
        )?;
        let rows = stmt.query_map(params![user_id, name], app_cred)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A token that exists and has not expired at `now`.
    pub fn token_get(&self, hash: &[u8], now: DateTime<Utc>) -> Result<Option<StoredToken>> {
        let row = self
            .query_row(
                "SELECT caller, body FROM tokens WHERE hash = ?1 AND expires_at > ?2",
                params![hash, now],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?;
        row.map(|(caller, body)| {
            Ok(StoredToken {
                caller: serde_json::from_str(&caller)?,
                body,
            })
        })
        .transpose()
    }
}

fn one_row(changed: usize, what: &str) -> Result<bool> {
    match changed {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(StoreError::Corrupt(format!(
            "{n} rows changed for one {what}"
        ))),
    }
}

impl Tx<'_> {
    pub fn domain_insert(&self, d: &Domain) -> Result<()> {
        self.execute(
            "INSERT INTO domains (id, name, description, enabled, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![d.id, d.name, d.description, flag(d.enabled), Utc::now()],
        )?;
        Ok(())
    }

    pub fn domain_update(&self, d: &Domain) -> Result<bool> {
        let n = self.execute(
            "UPDATE domains SET name = ?2, description = ?3, enabled = ?4 WHERE id = ?1",
            params![d.id, d.name, d.description, flag(d.enabled)],
        )?;
        one_row(n, "domain")
    }

    pub fn domain_delete(&self, id: &str) -> Result<bool> {
        let n = self.execute("DELETE FROM domains WHERE id = ?1", [id])?;
        one_row(n, "domain")
    }

    pub fn project_insert(&self, p: &Project) -> Result<()> {
        self.execute(
            "INSERT INTO projects (id, name, domain_id, description, enabled, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                p.id,
                p.name,
                p.domain_id,
                p.description,
                flag(p.enabled),
                Utc::now()
            ],
        )?;
        Ok(())
    }

    pub fn project_update(&self, p: &Project) -> Result<bool> {
        let n = self.execute(
            "UPDATE projects SET name = ?2, description = ?3, enabled = ?4 WHERE id = ?1",
            params![p.id, p.name, p.description, flag(p.enabled)],
        )?;
        one_row(n, "project")
    }

    pub fn project_delete(&self, id: &str) -> Result<bool> {
        let n = self.execute("DELETE FROM projects WHERE id = ?1", [id])?;
        one_row(n, "project")
    }

    pub fn user_insert(&self, u: &User) -> Result<()> {
        self.execute(
            "INSERT INTO users (id, name, domain_id, password_hash, enabled, description,
                                email, default_project_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                u.id,
                u.name,
                u.domain_id,
                u.password_hash,
                flag(u.enabled),
                u.description,
                u.email,
                u.default_project_id,
                Utc::now()
            ],
        )?;
        Ok(())
    }

    pub fn user_update(&self, u: &User) -> Result<bool> {
        let n = self.execute(
            "UPDATE users SET name = ?2, password_hash = ?3, enabled = ?4, description = ?5,
                              email = ?6, default_project_id = ?7 WHERE id = ?1",
            params![
                u.id,
                u.name,
                u.password_hash,
                flag(u.enabled),
                u.description,
                u.email,
                u.default_project_id
            ],
        )?;
        one_row(n, "user")
    }

    pub fn user_delete(&self, id: &str) -> Result<bool> {
        let n = self.execute("DELETE FROM users WHERE id = ?1", [id])?;
        one_row(n, "user")
    }

    pub fn role_insert(&self, r: &Role) -> Result<()> {
        self.execute(
            "INSERT INTO roles (id, name, description) VALUES (?1, ?2, ?3)",
            params![r.id, r.name, r.description],
        )?;
        Ok(())
    }

    pub fn role_update(&self, r: &Role) -> Result<bool> {
        let n = self.execute(
            "UPDATE roles SET name = ?2, description = ?3 WHERE id = ?1",
            params![r.id, r.name, r.description],
        )?;
        one_row(n, "role")
    }

    pub fn role_delete(&self, id: &str) -> Result<bool> {
        let n = self.execute("DELETE FROM roles WHERE id = ?1", [id])?;
        one_row(n, "role")
    }

    pub fn role_imply(&self, prior: &str, implied: &str) -> Result<()> {
        self.execute(
            "INSERT OR IGNORE INTO role_implications (prior_role_id, implied_role_id)
             VALUES (?1, ?2)",
            [prior, implied],
        )?;
        Ok(())
    }

    /// Grants a role; granting one already held changes nothing.
    pub fn assignment_grant(&self, a: &RoleAssignment) -> Result<()> {
        match &a.scope {
            Scope::Project(p) => self.execute(
                "INSERT OR IGNORE INTO project_role_assignments (user_id, project_id, role_id)
                 VALUES (?1, ?2, ?3)",
                [&a.user_id, p, &a.role_id],
            )?,
            Scope::Domain(d) => self.execute(
                "INSERT OR IGNORE INTO domain_role_assignments (user_id, domain_id, role_id)
                 VALUES (?1, ?2, ?3)",
                [&a.user_id, d, &a.role_id],
            )?,
        };
        Ok(())
    }

    /// Revokes a role; `false` if it was not held.
    pub fn assignment_revoke(&self, a: &RoleAssignment) -> Result<bool> {
        let n = match &a.scope {
            Scope::Project(p) => self.execute(
                "DELETE FROM project_role_assignments
                 WHERE user_id = ?1 AND project_id = ?2 AND role_id = ?3",
                [&a.user_id, p, &a.role_id],
            )?,
            Scope::Domain(d) => self.execute(
                "DELETE FROM domain_role_assignments
                 WHERE user_id = ?1 AND domain_id = ?2 AND role_id = ?3",
                [&a.user_id, d, &a.role_id],
            )?,
        };
        one_row(n, "role assignment")
    }

    pub fn region_insert(&self, r: &Region) -> Result<()> {
        self.execute(
            "INSERT INTO regions (id, description, parent_region_id) VALUES (?1, ?2, ?3)",
            params![r.id, r.description, r.parent_region_id],
        )?;
        Ok(())
    }

    pub fn region_update(&self, r: &Region) -> Result<bool> {
        let n = self.execute(
            "UPDATE regions SET description = ?2, parent_region_id = ?3 WHERE id = ?1",
            params![r.id, r.description, r.parent_region_id],
        )?;
        one_row(n, "region")
    }

    pub fn region_delete(&self, id: &str) -> Result<bool> {
        let n = self.execute("DELETE FROM regions WHERE id = ?1", [id])?;
        one_row(n, "region")
    }

    pub fn app_cred_insert(&self, c: &AppCredential) -> Result<()> {
        self.execute(
            "INSERT INTO application_credentials (id, user_id, project_id, name, description,
                 secret_hash, role_ids, unrestricted, expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                c.id,
                c.user_id,
                c.project_id,
                c.name,
                c.description,
                c.secret_hash,
                serde_json::to_string(&c.role_ids)?,
                flag(c.unrestricted),
                c.expires_at,
                Utc::now()
            ],
        )?;
        Ok(())
    }

    pub fn app_cred_delete(&self, id: &str) -> Result<bool> {
        let n = self.execute("DELETE FROM application_credentials WHERE id = ?1", [id])?;
        one_row(n, "application credential")
    }

    pub fn token_insert(&self, hash: &[u8], caller: &Caller, body: &[u8]) -> Result<()> {
        self.execute(
            "INSERT INTO tokens (hash, user_id, project_id, app_cred_id, expires_at, caller, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                hash,
                caller.user_id,
                caller.project_id(),
                caller.app_cred_id,
                caller.expires_at,
                serde_json::to_string(caller)?,
                body
            ],
        )?;
        Ok(())
    }

    /// Deletes the tokens matching `which`; returns their hashes so caches can drop them.
    pub fn tokens_revoke(&self, which: TokenSelector) -> Result<Vec<Vec<u8>>> {
        let (sql, arg): (&str, Box<dyn rusqlite::ToSql>) = match which {
            TokenSelector::Hash(h) => ("hash = ?1", Box::new(h)),
            TokenSelector::User(u) => ("user_id = ?1", Box::new(u)),
            TokenSelector::Project(p) => ("project_id = ?1", Box::new(p)),
            TokenSelector::AppCred(c) => ("app_cred_id = ?1", Box::new(c)),
            TokenSelector::ExpiredBy(t) => ("expires_at <= ?1", Box::new(t)),
            TokenSelector::UserOnProject(u, p) => {
                let mut stmt = self.prepare(
                    "DELETE FROM tokens WHERE user_id = ?1 AND project_id = ?2 RETURNING hash",
                )?;
                let rows = stmt.query_map([u, p], |r| r.get(0))?;
                return Ok(rows.collect::<rusqlite::Result<_>>()?);
            }
        };
        let mut stmt = self.prepare(&format!("DELETE FROM tokens WHERE {sql} RETURNING hash"))?;
        let rows = stmt.query_map([arg.as_ref()], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Which tokens to revoke.
#[derive(Debug, Clone)]
pub enum TokenSelector {
    Hash(Vec<u8>),
    User(String),
    Project(String),
    AppCred(String),
    UserOnProject(String, String),
    ExpiredBy(DateTime<Utc>),
}
