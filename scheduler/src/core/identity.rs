//! Identity (Keystone v3, clause B.1.1 and B.1.2): authentication and tokens, and the
//! administration of domains, projects, users, roles, assignments, regions and
//! application credentials.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde_json::{Value, json};

use super::Core;
use super::error::{Error, OrConflict, Result};
use super::policy::{require_admin, require_self_or_admin};
use super::tokens::{Token, format_time, hash, new_token_id};
use crate::model::{
    AppCredential, AssignmentFilter, Caller, DEFAULT_DOMAIN_ID, Domain, Project, ProjectRef,
    Region, Role, RoleAssignment, RoleRef, Scope, User, new_id,
};
use crate::store::{NameFilter, TokenSelector};

/// How a request names a domain.
#[derive(Debug, Clone)]
pub enum DomainLocator {
    Id(String),
    Name(String),
}

/// How a request names a user.
#[derive(Debug, Clone)]
pub enum UserLocator {
    Id(String),
    Name { name: String, domain: DomainLocator },
}

/// How a request names a project.
#[derive(Debug, Clone)]
pub enum ProjectLocator {
    Id(String),
    Name { name: String, domain: DomainLocator },
}

/// One authentication method with its credentials.
#[derive(Debug, Clone)]
pub enum Credentials {
    Password {
        user: UserLocator,
        password: String,
    },
    /// The standard's AK/SK: an application credential's id (or name + user) and secret.
    AppCredential {
        id: Option<String>,
        name: Option<String>,
        user: Option<UserLocator>,
        secret: String,
    },
    /// An existing token, to rescope.
    Token {
        id: String,
    },
}

#[derive(Debug, Clone)]
pub enum ScopeRequest {
    Unscoped,
    Project(ProjectLocator),
}

/// A domain by id and name, as listings show it.
#[derive(Debug, Clone)]
pub struct DomainRef {
    pub id: String,
    pub name: String,
}

/// The names behind a role assignment's ids (`include_names`).
#[derive(Debug, Clone)]
pub struct AssignmentNames {
    pub user: String,
    pub user_domain: Option<DomainRef>,
    pub role: String,
    pub target: String,
    /// The project's domain (a domain target has none).
    pub target_domain: Option<DomainRef>,
}

/// A token just issued: its id (returned once, in `X-Subject-Token`) and its body.
#[derive(Debug)]
pub struct Issued {
    pub id: String,
    pub token: Arc<Token>,
}

const BAD_CREDENTIALS: &str = "The request you have made requires authentication: \
     the user name, password or credential is wrong, or the user is disabled.";

fn validate_name(kind: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Err(Error::BadRequest(format!(
            "{kind} name must be 1 to 255 characters"
        )));
    }
    Ok(())
}

/// Fields a project update may change.
#[derive(Debug, Default)]
pub struct ProjectUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A new user.
#[derive(Debug)]
pub struct UserCreate {
    pub name: String,
    pub domain_id: Option<String>,
    pub password: Option<String>,
    pub enabled: bool,
    pub description: String,
    pub email: Option<String>,
    pub default_project_id: Option<String>,
}

/// Fields a user update may change.
#[derive(Debug, Default)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub password: Option<String>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
    pub email: Option<Option<String>>,
    pub default_project_id: Option<Option<String>>,
}

/// A new application credential.
#[derive(Debug)]
pub struct AppCredentialCreate {
    pub name: String,
    pub description: String,
    pub secret: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Role names or ids; empty means all of the token's roles.
    pub roles: Vec<String>,
    pub unrestricted: bool,
}

impl Core {
    // ---- authentication ----

    /// `POST /v3/auth/tokens`.
    pub async fn token_issue(
        &self,
        credentials: Credentials,
        scope: ScopeRequest,
    ) -> Result<Issued> {
        let now = Utc::now();
        let ttl = Duration::seconds(self.config.identity.token_ttl_secs as i64);
        let (user, mut methods, expires_at, app_cred) = match credentials {
            Credentials::Password { user, password } => {
                let found = self.user_locate(user).await?;
                let hash = found.as_ref().and_then(|u| u.password_hash.clone());
                let ok = self.passwords.verify(password, hash).await?;
                match found {
                    Some(user) if ok => (user, vec!["password".to_string()], now + ttl, None),
                    _ => return Err(Error::Unauthorized(BAD_CREDENTIALS.into())),
                }
            }
            Credentials::AppCredential {
                id,
                name,
                user,
                secret,
            } => {
                let cred = self.app_cred_locate(id, name, user).await?;
                let hash = cred.as_ref().map(|c| c.secret_hash.clone());
                let ok = self.passwords.verify(secret, hash).await?;
                let cred = match cred {
                    Some(c) if ok => c,
                    _ => return Err(Error::Unauthorized(BAD_CREDENTIALS.into())),
                };
                if cred.expires_at.is_some_and(|t| t <= now) {
                    return Err(Error::Unauthorized(
                        "the application credential has expired; create a new one".into(),
                    ));
                }
                let user_id = cred.user_id.clone();
                let user = self
                    .store
                    .read(move |db| db.user_get(&user_id))
                    .await?
                    .ok_or_else(|| Error::Unauthorized(BAD_CREDENTIALS.into()))?;
                let expires = cred.expires_at.map_or(now + ttl, |t| t.min(now + ttl));
                (
                    user,
                    vec!["application_credential".to_string()],
                    expires,
                    Some(cred),
                )
            }
            Credentials::Token { id } => {
                let old = self.token_validate(&id).await?;
                if old.caller.app_cred_id.is_some() {
                    return Err(Error::Forbidden(
                        "a token from an application credential cannot be rescoped".into(),
                    ));
                }
                let user_id = old.caller.user_id.clone();
                let user = self
                    .store
                    .read(move |db| db.user_get(&user_id))
                    .await?
                    .ok_or_else(|| Error::Unauthorized(BAD_CREDENTIALS.into()))?;
                let mut methods = vec!["token".to_string()];
                methods.extend(old.caller.methods.iter().filter(|m| *m != "token").cloned());
                (user, methods, old.caller.expires_at, None)
            }
        };
        methods.dedup();
        if !user.enabled {
            return Err(Error::Unauthorized(BAD_CREDENTIALS.into()));
        }
        let domain_id = user.domain_id.clone();
        let domain = self
            .store
            .read(move |db| db.domain_get(&domain_id))
            .await?
            .filter(|d| d.enabled)
            .ok_or_else(|| Error::Unauthorized(BAD_CREDENTIALS.into()))?;

        // Scope: an application credential is bound to its project.
        let scope = match (&app_cred, scope) {
            (Some(cred), ScopeRequest::Unscoped) => {
                ScopeRequest::Project(ProjectLocator::Id(cred.project_id.clone()))
            }
            (_, scope) => scope,
        };
        let (project, roles) = match scope {
            ScopeRequest::Unscoped => (None, Vec::new()),
            ScopeRequest::Project(locator) => {
                let project = self.project_locate(locator).await?.ok_or_else(|| {
                    Error::Unauthorized(
                        "the project to scope to does not exist or is disabled".into(),
                    )
                })?;
                if !project.enabled {
                    return Err(Error::Unauthorized(
                        "the project to scope to does not exist or is disabled".into(),
                    ));
                }
                if let Some(cred) = &app_cred
                    && cred.project_id != project.id
                {
                    return Err(Error::Unauthorized(
                        "an application credential can only be scoped to its own project".into(),
                    ));
                }
                let roles = self
                    .token_roles(&user.id, &project.id, app_cred.as_ref())
                    .await?;
                if roles.is_empty() {
                    return Err(Error::Unauthorized(format!(
                        "user {} has no role on project {}; ask an administrator for one",
                        user.name, project.name
                    )));
                }
                let project_domain_id = project.domain_id.clone();
                let project_domain = self
                    .store
                    .read(move |db| db.domain_get(&project_domain_id))
                    .await?
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("project without domain")))?;
                (
                    Some(ProjectRef {
                        id: project.id,
                        name: project.name,
                        domain_id: project_domain.id,
                        domain_name: project_domain.name,
                    }),
                    roles,
                )
            }
        };

        let mut audit = [0u8; 16];
        rand::rng().fill_bytes(&mut audit);
        let caller = Caller {
            user_id: user.id,
            user_name: user.name,
            user_domain_id: domain.id,
            user_domain_name: domain.name,
            project,
            roles,
            methods,
            app_cred_id: app_cred.as_ref().map(|c| c.id.clone()),
            audit_id: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(audit),
            issued_at: now,
            expires_at,
        };
        let body = self.token_body(&caller, app_cred.as_ref());
        let id = new_token_id();
        let token_hash = hash(&id);
        let stored_caller = caller.clone();
        let stored_body = body.clone();
        self.store
            .write(move |tx| tx.token_insert(&token_hash, &stored_caller, &stored_body))
            .await?;
        let token = Arc::new(Token { caller, body });
        self.tokens.insert(token_hash, token.clone());
        Ok(Issued { id, token })
    }

    /// The caller's roles on a project; for an application credential, only the roles
    /// it was given that the user still holds.
    async fn token_roles(
        &self,
        user_id: &str,
        project_id: &str,
        app_cred: Option<&AppCredential>,
    ) -> Result<Vec<RoleRef>> {
        let (user_id, project_id) = (user_id.to_string(), project_id.to_string());
        let granted = app_cred.map(|c| c.role_ids.clone());
        let roles = self
            .store
            .read(move |db| {
                let held = db.effective_project_roles(&user_id, &project_id)?;
                Ok(match granted {
                    None => held,
                    Some(ids) => {
                        let allowed = db.roles_closure(&ids)?;
                        held.into_iter().filter(|r| allowed.contains(r)).collect()
                    }
                })
            })
            .await?;
        Ok(roles
            .into_iter()
            .map(|r| RoleRef {
                id: r.id,
                name: r.name,
            })
            .collect())
    }

    fn token_body(&self, caller: &Caller, app_cred: Option<&AppCredential>) -> Bytes {
        let mut token = json!({
            "methods": caller.methods,
            "user": {
                "id": caller.user_id,
                "name": caller.user_name,
                "domain": {"id": caller.user_domain_id, "name": caller.user_domain_name},
                "password_expires_at": null,
            },
            "audit_ids": [caller.audit_id],
            "issued_at": format_time(caller.issued_at),
            "expires_at": format_time(caller.expires_at),
        });
        if let Some(p) = &caller.project {
            token["project"] = json!({
                "id": p.id,
                "name": p.name,
                "domain": {"id": p.domain_id, "name": p.domain_name},
            });
            token["is_domain"] = Value::Bool(false);
            token["roles"] = json!(caller.roles);
            token["catalog"] = self.catalog.clone();
        }
        if let Some(c) = app_cred {
            token["application_credential"] = json!({
                "id": c.id,
                "name": c.name,
                "restricted": !c.unrestricted,
            });
        }
        Bytes::from(json!({ "token": token }).to_string())
    }

    /// Validates a token id; the answer for every authenticated API call.
    pub async fn token_validate(&self, id: &str) -> Result<Arc<Token>> {
        let now = Utc::now();
        let token_hash = hash(id);
        if let Some(token) = self.tokens.get(&token_hash, now) {
            return Ok(token);
        }
        // Not in memory (e.g. issued before a restart): the store has it, or nobody does.
        let stored = self
            .store
            .read(move |db| db.token_get(&token_hash, now))
            .await?
            .ok_or_else(|| {
                Error::Unauthorized(
                    "The token is not valid: it has expired, was revoked, or never existed. \
                     Authenticate again to get a new one."
                        .into(),
                )
            })?;
        let token = Arc::new(Token {
            caller: stored.caller,
            body: Bytes::from(stored.body),
        });
        self.tokens.insert(token_hash, token.clone());
        Ok(token)
    }

    /// `GET`/`HEAD /v3/auth/tokens`: the subject token, for its owner or an admin.
    pub async fn token_check(&self, caller: &Caller, subject: &str) -> Result<Arc<Token>> {
        let token = self.token_validate(subject).await.map_err(|e| match e {
            Error::Unauthorized(m) => Error::NotFound(m),
            other => other,
        })?;
        require_self_or_admin(
            caller,
            &token.caller.user_id,
            "validating another user's token",
        )?;
        Ok(token)
    }

    /// `DELETE /v3/auth/tokens`: revokes the subject token.
    pub async fn token_revoke(&self, caller: &Caller, subject: &str) -> Result<()> {
        self.token_check(caller, subject).await?;
        self.revoke(TokenSelector::Hash(hash(subject).to_vec()))
            .await
    }

    pub(super) async fn revoke(&self, which: TokenSelector) -> Result<()> {
        let hashes = self.store.write(move |tx| tx.tokens_revoke(which)).await?;
        self.tokens.remove_all(&hashes);
        Ok(())
    }

    /// Drops expired tokens from memory and the store.
    pub async fn tokens_sweep(&self) -> Result<()> {
        let now = Utc::now();
        self.tokens.sweep(now);
        self.store
            .write(move |tx| tx.tokens_revoke(TokenSelector::ExpiredBy(now)))
            .await?;
        Ok(())
    }

    /// The catalog of every service.
    pub fn catalog(&self) -> &Value {
        &self.catalog
    }

    /// `GET /v3/auth/projects`: the enabled projects the caller holds a role on.
    pub async fn auth_projects(&self, caller: &Caller) -> Result<Vec<Project>> {
        let user_id = caller.user_id.clone();
        let projects = self
            .store
            .read(move |db| db.projects_of_user(&user_id))
            .await?;
        Ok(projects.into_iter().filter(|p| p.enabled).collect())
    }

    // ---- lookups ----

    async fn domain_locate(&self, locator: DomainLocator) -> Result<Option<Domain>> {
        Ok(self
            .store
            .read(move |db| match &locator {
                DomainLocator::Id(id) => db.domain_get(id),
                DomainLocator::Name(name) => db.domain_by_name(name),
            })
            .await?)
    }

    async fn user_locate(&self, locator: UserLocator) -> Result<Option<User>> {
        match locator {
            UserLocator::Id(id) => Ok(self.store.read(move |db| db.user_get(&id)).await?),
            UserLocator::Name { name, domain } => {
                let Some(domain) = self.domain_locate(domain).await? else {
                    return Ok(None);
                };
                Ok(self
                    .store
                    .read(move |db| db.user_by_name(&domain.id, &name))
                    .await?)
            }
        }
    }

    async fn project_locate(&self, locator: ProjectLocator) -> Result<Option<Project>> {
        match locator {
            ProjectLocator::Id(id) => Ok(self.store.read(move |db| db.project_get(&id)).await?),
            ProjectLocator::Name { name, domain } => {
                let Some(domain) = self.domain_locate(domain).await? else {
                    return Ok(None);
                };
                Ok(self
                    .store
                    .read(move |db| db.project_by_name(&domain.id, &name))
                    .await?)
            }
        }
    }

    async fn app_cred_locate(
        &self,
        id: Option<String>,
        name: Option<String>,
        user: Option<UserLocator>,
    ) -> Result<Option<AppCredential>> {
        match (id, name, user) {
            (Some(id), _, _) => Ok(self.store.read(move |db| db.app_cred_get(&id)).await?),
            (None, Some(name), Some(user)) => {
                let Some(user) = self.user_locate(user).await? else {
                    return Ok(None);
                };
                Ok(self
                    .store
                    .read(move |db| db.app_cred_by_name(&user.id, &name))
                    .await?)
            }
            _ => Err(Error::BadRequest(
                "an application credential is named by its id, or by its name and its user".into(),
            )),
        }
    }

    // ---- domains ----

    pub async fn domains_list(&self, caller: &Caller, name: Option<String>) -> Result<Vec<Domain>> {
        require_admin(caller, "listing domains")?;
        Ok(self
            .store
            .read(move |db| db.domains_list(name.as_deref()))
            .await?)
    }

    pub async fn domain_get(&self, caller: &Caller, id: &str) -> Result<Domain> {
        if caller.user_domain_id != id {
            require_admin(caller, "reading a domain")?;
        }
        let id = id.to_string();
        let missing = format!("domain {id} could not be found");
        self.store
            .read(move |db| db.domain_get(&id))
            .await?
            .ok_or(Error::NotFound(missing))
    }

    pub async fn domain_create(&self, caller: &Caller, mut domain: Domain) -> Result<Domain> {
        require_admin(caller, "creating a domain")?;
        validate_name("domain", &domain.name)?;
        domain.id = new_id();
        let d = domain.clone();
        let name = domain.name.clone();
        self.store
            .write(move |tx| {
                tx.domain_insert(&d)
                    .or_conflict(|| format!("a domain named {name} already exists"))
            })
            .await?;
        Ok(domain)
    }

    pub async fn domain_update(
        &self,
        caller: &Caller,
        id: &str,
        update: ProjectUpdate,
    ) -> Result<Domain> {
        require_admin(caller, "updating a domain")?;
        let mut domain = self.domain_get(caller, id).await?;
        if let Some(name) = update.name {
            validate_name("domain", &name)?;
            domain.name = name;
        }
        if let Some(d) = update.description {
            domain.description = d;
        }
        if let Some(e) = update.enabled {
            if !e && domain.id == DEFAULT_DOMAIN_ID {
                return Err(Error::Forbidden(
                    "the default domain cannot be disabled".into(),
                ));
            }
            domain.enabled = e;
        }
        let d = domain.clone();
        self.store
            .write(move |tx| {
                tx.domain_update(&d)
                    .or_conflict(|| format!("a domain named {} already exists", d.name))
            })
            .await?;
        Ok(domain)
    }

    pub async fn domain_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        require_admin(caller, "deleting a domain")?;
        let domain = self.domain_get(caller, id).await?;
        if domain.enabled {
            return Err(Error::Forbidden(
                "a domain must be disabled (enabled=false) before it is deleted".into(),
            ));
        }
        let id = id.to_string();
        self.store
            .write(move |tx| {
                tx.domain_delete(&id).map_err(|e| match e {
                    crate::store::StoreError::Constraint(_) => Error::Conflict(
                        "the domain still holds projects or users; delete them first".into(),
                    ),
                    other => other.into(),
                })
            })
            .await?;
        Ok(())
    }

    // ---- projects ----

    pub async fn projects_list(
        &self,
        caller: &Caller,
        name: Option<String>,
        domain_id: Option<String>,
    ) -> Result<Vec<Project>> {
        require_admin(caller, "listing projects")?;
        Ok(self
            .store
            .read(move |db| {
                db.projects_list(&NameFilter {
                    name: name.as_deref(),
                    domain_id: domain_id.as_deref(),
                })
            })
            .await?)
    }

    pub async fn project_get(&self, caller: &Caller, id: &str) -> Result<Project> {
        let missing = || Error::NotFound(format!("project {id} could not be found"));
        if !caller.is_admin() && caller.project_id() != Some(id) {
            return Err(missing());
        }
        let key = id.to_string();
        self.store
            .read(move |db| db.project_get(&key))
            .await?
            .ok_or_else(missing)
    }

    pub async fn project_create(
        &self,
        caller: &Caller,
        name: String,
        domain_id: Option<String>,
        description: String,
        enabled: bool,
    ) -> Result<Project> {
        require_admin(caller, "creating a project")?;
        validate_name("project", &name)?;
        let domain_id = domain_id.unwrap_or_else(|| caller.user_domain_id.clone());
        let project = Project {
            id: new_id(),
            name,
            domain_id,
            description,
            enabled,
        };
        let p = project.clone();
        self.store
            .write(move |tx| {
                if tx.domain_get(&p.domain_id)?.is_none() {
                    return Err(Error::BadRequest(format!(
                        "domain {} does not exist",
                        p.domain_id
                    )));
                }
                tx.project_insert(&p).or_conflict(|| {
                    format!(
                        "a project named {} already exists in domain {}",
                        p.name, p.domain_id
                    )
                })
            })
            .await?;
        Ok(project)
    }

    pub async fn project_update(
        &self,
        caller: &Caller,
        id: &str,
        update: ProjectUpdate,
    ) -> Result<Project> {
        require_admin(caller, "updating a project")?;
        let mut project = self.project_get(caller, id).await?;
        if let Some(name) = update.name {
            validate_name("project", &name)?;
            project.name = name;
        }
        if let Some(d) = update.description {
            project.description = d;
        }
        if let Some(e) = update.enabled {
            project.enabled = e;
        }
        let p = project.clone();
        self.store
            .write(move |tx| {
                tx.project_update(&p).or_conflict(|| {
                    format!(
                        "a project named {} already exists in domain {}",
                        p.name, p.domain_id
                    )
                })
            })
            .await?;
        if !project.enabled {
            self.revoke(TokenSelector::Project(project.id.clone()))
                .await?;
        }
        Ok(project)
    }

    pub async fn project_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        require_admin(caller, "deleting a project")?;
        let project = self.project_get(caller, id).await?;
        if caller.project_id() == Some(project.id.as_str()) {
            return Err(Error::Forbidden(
                "a project cannot be deleted with a token scoped to it".into(),
            ));
        }
        let key = project.id.clone();
        self.store.write(move |tx| tx.project_delete(&key)).await?;
        self.revoke(TokenSelector::Project(project.id.clone()))
            .await
    }

    // ---- users ----

    pub async fn users_list(
        &self,
        caller: &Caller,
        name: Option<String>,
        domain_id: Option<String>,
    ) -> Result<Vec<User>> {
        require_admin(caller, "listing users")?;
        Ok(self
            .store
            .read(move |db| {
                db.users_list(&NameFilter {
                    name: name.as_deref(),
                    domain_id: domain_id.as_deref(),
                })
            })
            .await?)
    }

    pub async fn user_get(&self, caller: &Caller, id: &str) -> Result<User> {
        require_self_or_admin(caller, id, "reading a user")?;
        let key = id.to_string();
        self.store
            .read(move |db| db.user_get(&key))
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {id} could not be found")))
    }

    pub async fn user_create(&self, caller: &Caller, input: UserCreate) -> Result<User> {
        require_admin(caller, "creating a user")?;
        validate_name("user", &input.name)?;
        let password_hash = match input.password {
            Some(p) => Some(self.passwords.hash(p).await?),
            None => None,
        };
        let user = User {
            id: new_id(),
            name: input.name,
            domain_id: input
                .domain_id
                .unwrap_or_else(|| caller.user_domain_id.clone()),
            enabled: input.enabled,
            description: input.description,
            email: input.email,
            default_project_id: input.default_project_id,
            password_hash,
        };
        let u = user.clone();
        self.store
            .write(move |tx| {
                if tx.domain_get(&u.domain_id)?.is_none() {
                    return Err(Error::BadRequest(format!(
                        "domain {} does not exist",
                        u.domain_id
                    )));
                }
                if let Some(p) = &u.default_project_id
                    && tx.project_get(p)?.is_none()
                {
                    return Err(Error::BadRequest(format!("project {p} does not exist")));
                }
                tx.user_insert(&u).or_conflict(|| {
                    format!(
                        "a user named {} already exists in domain {}",
                        u.name, u.domain_id
                    )
                })
            })
            .await?;
        Ok(user)
    }

    pub async fn user_update(&self, caller: &Caller, id: &str, update: UserUpdate) -> Result<User> {
        require_admin(caller, "updating a user")?;
        let mut user = self.user_get(caller, id).await?;
        let mut revoke = false;
        if let Some(name) = update.name {
            validate_name("user", &name)?;
            user.name = name;
        }
        if let Some(p) = update.password {
            user.password_hash = Some(self.passwords.hash(p).await?);
            revoke = true;
        }
        if let Some(e) = update.enabled {
            revoke |= !e;
            user.enabled = e;
        }
        if let Some(d) = update.description {
            user.description = d;
        }
        if let Some(e) = update.email {
            user.email = e;
        }
        if let Some(p) = update.default_project_id {
            user.default_project_id = p;
        }
        let u = user.clone();
        self.store
            .write(move |tx| {
                tx.user_update(&u).or_conflict(|| {
                    format!(
                        "a user named {} already exists in domain {}",
                        u.name, u.domain_id
                    )
                })
            })
            .await?;
        if revoke {
            self.revoke(TokenSelector::User(user.id.clone())).await?;
        }
        Ok(user)
    }

    /// `POST /v3/users/{id}/password`: a user changes their own password.
    pub async fn user_change_password(
        &self,
        caller: &Caller,
        id: &str,
        original: String,
        password: String,
    ) -> Result<()> {
        if caller.user_id != id {
            return Err(Error::Forbidden(
                "users change only their own password".into(),
            ));
        }
        let mut user = self.user_get(caller, id).await?;
        if !self
            .passwords
            .verify(original, user.password_hash.clone())
            .await?
        {
            return Err(Error::Unauthorized("the original password is wrong".into()));
        }
        user.password_hash = Some(self.passwords.hash(password).await?);
        let u = user.clone();
        self.store.write(move |tx| tx.user_update(&u)).await?;
        self.revoke(TokenSelector::User(user.id.clone())).await
    }

    pub async fn user_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        require_admin(caller, "deleting a user")?;
        if caller.user_id == id {
            return Err(Error::Forbidden("a user cannot delete themself".into()));
        }
        let user = self.user_get(caller, id).await?;
        let key = user.id.clone();
        self.store.write(move |tx| tx.user_delete(&key)).await?;
        self.revoke(TokenSelector::User(user.id.clone())).await
    }

    pub async fn user_projects(&self, caller: &Caller, id: &str) -> Result<Vec<Project>> {
        require_self_or_admin(caller, id, "listing a user's projects")?;
        let key = id.to_string();
        Ok(self.store.read(move |db| db.projects_of_user(&key)).await?)
    }

    // ---- roles and assignments ----

    pub async fn roles_list(&self, caller: &Caller, name: Option<String>) -> Result<Vec<Role>> {
        require_admin(caller, "listing roles")?;
        Ok(self
            .store
            .read(move |db| db.roles_list(name.as_deref()))
            .await?)
    }

    pub async fn role_get(&self, caller: &Caller, id: &str) -> Result<Role> {
        require_admin(caller, "reading a role")?;
        let key = id.to_string();
        self.store
            .read(move |db| db.role_get(&key))
            .await?
            .ok_or_else(|| Error::NotFound(format!("role {id} could not be found")))
    }

    pub async fn role_create(
        &self,
        caller: &Caller,
        name: String,
        description: String,
    ) -> Result<Role> {
        require_admin(caller, "creating a role")?;
        validate_name("role", &name)?;
        let role = Role {
            id: new_id(),
            name,
            description,
        };
        let r = role.clone();
        self.store
            .write(move |tx| {
                tx.role_insert(&r)
                    .or_conflict(|| format!("a role named {} already exists", r.name))
            })
            .await?;
        Ok(role)
    }

    pub async fn role_update(
        &self,
        caller: &Caller,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Role> {
        let mut role = self.role_get(caller, id).await?;
        if let Some(n) = name {
            validate_name("role", &n)?;
            if crate::model::Level::from_name(&role.name).is_some() {
                return Err(Error::Forbidden(format!(
                    "the built-in role {} cannot be renamed",
                    role.name
                )));
            }
            role.name = n;
        }
        if let Some(d) = description {
            role.description = d;
        }
        let r = role.clone();
        self.store
            .write(move |tx| {
                tx.role_update(&r)
                    .or_conflict(|| format!("a role named {} already exists", r.name))
            })
            .await?;
        Ok(role)
    }

    pub async fn role_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let role = self.role_get(caller, id).await?;
        if crate::model::Level::from_name(&role.name).is_some() {
            return Err(Error::Forbidden(format!(
                "the built-in role {} cannot be deleted",
                role.name
            )));
        }
        let key = role.id.clone();
        self.store.write(move |tx| tx.role_delete(&key)).await?;
        Ok(())
    }

    /// Checks that the user, role and target of an assignment exist.
    async fn assignment_check(&self, a: &RoleAssignment) -> Result<()> {
        let a = a.clone();
        self.store
            .read(move |db| {
                if db.user_get(&a.user_id)?.is_none() {
                    return Ok(Err(format!("user {} could not be found", a.user_id)));
                }
                if db.role_get(&a.role_id)?.is_none() {
                    return Ok(Err(format!("role {} could not be found", a.role_id)));
                }
                let target = match &a.scope {
                    Scope::Project(p) => db
                        .project_get(p)?
                        .map(|_| ())
                        .ok_or(format!("project {p} could not be found")),
                    Scope::Domain(d) => db
                        .domain_get(d)?
                        .map(|_| ())
                        .ok_or(format!("domain {d} could not be found")),
                };
                Ok(target)
            })
            .await?
            .map_err(Error::NotFound)
    }

    pub async fn assignment_grant(&self, caller: &Caller, a: RoleAssignment) -> Result<()> {
        require_admin(caller, "granting a role")?;
        self.assignment_check(&a).await?;
        self.store.write(move |tx| tx.assignment_grant(&a)).await?;
        Ok(())
    }

    /// Whether the user holds exactly this assignment (`HEAD`/`GET` of the grant).
    pub async fn assignment_exists(&self, caller: &Caller, a: RoleAssignment) -> Result<bool> {
        require_admin(caller, "checking a role grant")?;
        self.assignment_check(&a).await?;
        let filter = filter_of(&a);
        let list = self
            .store
            .read(move |db| db.assignments_list(&filter))
            .await?;
        Ok(!list.is_empty())
    }

    pub async fn assignment_revoke(&self, caller: &Caller, a: RoleAssignment) -> Result<()> {
        require_admin(caller, "revoking a role")?;
        self.assignment_check(&a).await?;
        let key = a.clone();
        if !self
            .store
            .write(move |tx| tx.assignment_revoke(&key))
            .await?
        {
            return Err(Error::NotFound(
                "the user does not hold that role there".into(),
            ));
        }
        match &a.scope {
            Scope::Project(p) => {
                self.revoke(TokenSelector::UserOnProject(a.user_id.clone(), p.clone()))
                    .await
            }
            Scope::Domain(_) => Ok(()),
        }
    }

    pub async fn assignments_list(
        &self,
        caller: &Caller,
        filter: AssignmentFilter,
    ) -> Result<Vec<RoleAssignment>> {
        let own = filter.user_id.as_deref() == Some(caller.user_id.as_str());
        if !own {
            require_admin(caller, "listing role assignments")?;
        }
        Ok(self
            .store
            .read(move |db| db.assignments_list(&filter))
            .await?)
    }

    /// Names for ids, for `include_names` in assignment listings.
    pub async fn names_of(&self, assignments: &[RoleAssignment]) -> Result<Vec<AssignmentNames>> {
        let list = assignments.to_vec();
        Ok(self
            .store
            .read(move |db| {
                let domain = |id: &str| -> crate::store::Result<DomainRef> {
                    let name = db.domain_get(id)?.map(|d| d.name).unwrap_or_default();
                    Ok(DomainRef {
                        id: id.to_string(),
                        name,
                    })
                };
                list.iter()
                    .map(|a| {
                        let user = db.user_get(&a.user_id)?;
                        let role = db.role_get(&a.role_id)?.map(|r| r.name).unwrap_or_default();
                        let (target, target_domain) = match &a.scope {
                            Scope::Project(p) => match db.project_get(p)? {
                                Some(p) => (p.name, Some(domain(&p.domain_id)?)),
                                None => (String::new(), None),
                            },
                            Scope::Domain(d) => {
                                (db.domain_get(d)?.map(|d| d.name).unwrap_or_default(), None)
                            }
                        };
                        Ok(AssignmentNames {
                            user_domain: user.as_ref().map(|u| domain(&u.domain_id)).transpose()?,
                            user: user.map(|u| u.name).unwrap_or_default(),
                            role,
                            target,
                            target_domain,
                        })
                    })
                    .collect()
            })
            .await?)
    }

    // ---- regions (data centres, B.1.2) ----

    /// Every authenticated user may list the data centres.
    pub async fn regions_list(&self, _caller: &Caller) -> Result<Vec<Region>> {
        Ok(self.store.read(|db| db.regions_list()).await?)
    }

    pub async fn region_get(&self, _caller: &Caller, id: &str) -> Result<Region> {
        let key = id.to_string();
        self.store
            .read(move |db| db.region_get(&key))
            .await?
            .ok_or_else(|| Error::NotFound(format!("region {id} could not be found")))
    }

    pub async fn region_create(&self, caller: &Caller, mut region: Region) -> Result<Region> {
        require_admin(caller, "creating a region")?;
        if region.id.is_empty() {
            region.id = new_id();
        }
        validate_name("region", &region.id)?;
        let r = region.clone();
        self.store
            .write(move |tx| {
                if let Some(parent) = &r.parent_region_id
                    && tx.region_get(parent)?.is_none()
                {
                    return Err(Error::BadRequest(format!(
                        "parent region {parent} does not exist"
                    )));
                }
                tx.region_insert(&r)
                    .or_conflict(|| format!("region {} already exists", r.id))
            })
            .await?;
        Ok(region)
    }

    pub async fn region_update(
        &self,
        caller: &Caller,
        id: &str,
        description: Option<String>,
        parent: Option<Option<String>>,
    ) -> Result<Region> {
        require_admin(caller, "updating a region")?;
        let mut region = self.region_get(caller, id).await?;
        if let Some(d) = description {
            region.description = d;
        }
        if let Some(p) = parent {
            if p.as_deref() == Some(id) {
                return Err(Error::BadRequest(
                    "a region cannot be its own parent".into(),
                ));
            }
            region.parent_region_id = p;
        }
        let r = region.clone();
        self.store.write(move |tx| tx.region_update(&r)).await?;
        Ok(region)
    }

    pub async fn region_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        require_admin(caller, "deleting a region")?;
        if id == self.config.identity.region {
            return Err(Error::Conflict(format!(
                "region {id} holds this cloud's endpoints and cannot be deleted"
            )));
        }
        let key = id.to_string();
        let deleted = self
            .store
            .write(move |tx| {
                tx.region_delete(&key).map_err(|e| match e {
                    crate::store::StoreError::Constraint(_) => {
                        Error::Conflict("the region has child regions; delete them first".into())
                    }
                    other => other.into(),
                })
            })
            .await?;
        if !deleted {
            return Err(Error::NotFound(format!("region {id} could not be found")));
        }
        Ok(())
    }

    // ---- application credentials (AK/SK) ----

    /// Creates an application credential for the caller's current project; the secret is
    /// returned this once and only its hash is kept.
    pub async fn app_cred_create(
        &self,
        caller: &Caller,
        user_id: &str,
        input: AppCredentialCreate,
    ) -> Result<(AppCredential, String, Vec<RoleRef>)> {
        if caller.user_id != user_id {
            return Err(Error::Forbidden(
                "application credentials are created by their own user".into(),
            ));
        }
        if caller.app_cred_id.is_some() {
            return Err(Error::Forbidden(
                "an application credential cannot create another one".into(),
            ));
        }
        let project = caller.project.as_ref().ok_or_else(|| {
            Error::Forbidden("an application credential needs a project-scoped token".into())
        })?;
        validate_name("application credential", &input.name)?;
        if input.expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(Error::BadRequest("expires_at is in the past".into()));
        }
        let roles: Vec<RoleRef> = if input.roles.is_empty() {
            caller.roles.clone()
        } else {
            input
                .roles
                .iter()
                .map(|wanted| {
                    caller
                        .roles
                        .iter()
                        .find(|r| &r.id == wanted || &r.name == wanted)
                        .cloned()
                        .ok_or_else(|| {
                            Error::BadRequest(format!(
                                "role {wanted} is not one the current token holds"
                            ))
                        })
                })
                .collect::<Result<_>>()?
        };
        let secret = input.secret.unwrap_or_else(|| {
            let mut raw = [0u8; 48];
            rand::rng().fill_bytes(&mut raw);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        });
        let cred = AppCredential {
            id: new_id(),
            user_id: user_id.to_string(),
            project_id: project.id.clone(),
            name: input.name,
            description: input.description,
            secret_hash: self.passwords.hash(secret.clone()).await?,
            role_ids: roles.iter().map(|r| r.id.clone()).collect(),
            unrestricted: input.unrestricted,
            expires_at: input.expires_at,
        };
        let c = cred.clone();
        self.store
            .write(move |tx| {
                tx.app_cred_insert(&c).or_conflict(|| {
                    format!("an application credential named {} already exists", c.name)
                })
            })
            .await?;
        Ok((cred, secret, roles))
    }

    pub async fn app_creds_list(
        &self,
        caller: &Caller,
        user_id: &str,
        name: Option<String>,
    ) -> Result<Vec<(AppCredential, Vec<RoleRef>)>> {
        require_self_or_admin(caller, user_id, "listing application credentials")?;
        let key = user_id.to_string();
        Ok(self
            .store
            .read(move |db| {
                db.app_creds_of_user(&key, name.as_deref())?
                    .into_iter()
                    .map(|c| {
                        let roles = c
                            .role_ids
                            .iter()
                            .filter_map(|id| db.role_get(id).transpose())
                            .map(|r| {
                                r.map(|r| RoleRef {
                                    id: r.id,
                                    name: r.name,
                                })
                            })
                            .collect::<crate::store::Result<Vec<_>>>()?;
                        Ok((c, roles))
                    })
                    .collect::<crate::store::Result<Vec<_>>>()
            })
            .await?)
    }

    pub async fn app_cred_get(
        &self,
        caller: &Caller,
        user_id: &str,
        id: &str,
    ) -> Result<(AppCredential, Vec<RoleRef>)> {
        self.app_creds_list(caller, user_id, None)
            .await?
            .into_iter()
            .find(|(c, _)| c.id == id)
            .ok_or_else(|| {
                Error::NotFound(format!("application credential {id} could not be found"))
            })
    }

    pub async fn app_cred_delete(&self, caller: &Caller, user_id: &str, id: &str) -> Result<()> {
        let (cred, _) = self.app_cred_get(caller, user_id, id).await?;
        let key = cred.id.clone();
        self.store.write(move |tx| tx.app_cred_delete(&key)).await?;
        self.revoke(TokenSelector::AppCred(cred.id.clone())).await
    }
}

fn filter_of(a: &RoleAssignment) -> AssignmentFilter {
    AssignmentFilter {
        user_id: Some(a.user_id.clone()),
        role_id: Some(a.role_id.clone()),
        project_id: match &a.scope {
            Scope::Project(p) => Some(p.clone()),
            Scope::Domain(_) => None,
        },
        domain_id: match &a.scope {
            Scope::Domain(d) => Some(d.clone()),
            Scope::Project(_) => None,
        },
    }
}
