//! Keystone v3 (clause B.1.1, B.1.2): tokens, the catalog, and identity administration.

use chrono::{DateTime, Utc};
use http::{HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::discovery::{identity_v3, identity_versions};
use super::{ApiError, ApiRequest, ApiResult, bytes_response, empty, json_response};
use crate::core::Core;
use crate::core::identity::{
    AppCredentialCreate, Credentials, DomainLocator, ProjectLocator, ProjectUpdate, ScopeRequest,
    UserCreate, UserLocator, UserUpdate,
};
use crate::core::tokens::format_time;
use crate::model::{
    AppCredential, AssignmentFilter, Domain, Project, Region, Role, RoleAssignment, RoleRef, Scope,
    User,
};

pub async fn route(core: &Core, req: ApiRequest) -> ApiResult {
    use Method as M;
    let segs: Vec<String> = req.segments[1..].to_vec();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method.clone();
    match (&m, s.as_slice()) {
        (&M::GET, []) => identity_versions(core),
        (&M::GET, ["v3"]) => Ok(json_response(
            StatusCode::OK,
            &json!({"version": identity_v3(core)}),
        )),

        (&M::POST, ["v3", "auth", "tokens"]) => token_issue(core, req).await,
        (&M::GET | &M::HEAD, ["v3", "auth", "tokens"]) => token_check(core, req).await,
        (&M::DELETE, ["v3", "auth", "tokens"]) => token_revoke(core, req).await,
        (&M::GET, ["v3", "auth", "catalog"]) => auth_catalog(core, req).await,
        (&M::GET, ["v3", "auth", "projects"]) => auth_projects(core, req).await,
        (&M::GET, ["v3", "auth", "domains"]) => auth_domains(core, req).await,

        (&M::GET, ["v3", "services"]) => services(core, req).await,
        (&M::GET, ["v3", "endpoints"]) => endpoints(core, req).await,

        (&M::GET, ["v3", "domains"]) => domains_list(core, req).await,
        (&M::POST, ["v3", "domains"]) => domain_create(core, req).await,
        (&M::GET, ["v3", "domains", id]) => domain_show(core, req, id).await,
        (&M::PATCH, ["v3", "domains", id]) => domain_update(core, req, id).await,
        (&M::DELETE, ["v3", "domains", id]) => domain_delete(core, req, id).await,

        (&M::GET, ["v3", "projects"]) => projects_list(core, req).await,
        (&M::POST, ["v3", "projects"]) => project_create(core, req).await,
        (&M::GET, ["v3", "projects", id]) => project_show(core, req, id).await,
        (&M::PATCH, ["v3", "projects", id]) => project_update(core, req, id).await,
        (&M::DELETE, ["v3", "projects", id]) => project_delete(core, req, id).await,

        (&M::GET, ["v3", "users"]) => users_list(core, req).await,
        (&M::POST, ["v3", "users"]) => user_create(core, req).await,
        (&M::GET, ["v3", "users", id]) => user_show(core, req, id).await,
        (&M::PATCH, ["v3", "users", id]) => user_update(core, req, id).await,
        (&M::DELETE, ["v3", "users", id]) => user_delete(core, req, id).await,
        (&M::POST, ["v3", "users", id, "password"]) => user_password(core, req, id).await,
        (&M::GET, ["v3", "users", id, "projects"]) => user_projects(core, req, id).await,
        (&M::GET, ["v3", "users", id, "application_credentials"]) => {
            app_creds_list(core, req, id).await
        }
        (&M::POST, ["v3", "users", id, "application_credentials"]) => {
            app_cred_create(core, req, id).await
        }
        (&M::GET, ["v3", "users", uid, "application_credentials", id]) => {
            app_cred_show(core, req, uid, id).await
        }
        (&M::DELETE, ["v3", "users", uid, "application_credentials", id]) => {
            app_cred_delete(core, req, uid, id).await
        }

        (&M::GET, ["v3", "roles"]) => roles_list(core, req).await,
        (&M::POST, ["v3", "roles"]) => role_create(core, req).await,
        (&M::GET, ["v3", "roles", id]) => role_show(core, req, id).await,
        (&M::PATCH, ["v3", "roles", id]) => role_update(core, req, id).await,
        (&M::DELETE, ["v3", "roles", id]) => role_delete(core, req, id).await,

        (
            &M::GET,
            [
                "v3",
                kind @ ("projects" | "domains"),
                target,
                "users",
                user,
                "roles",
            ],
        ) => grants_list(core, req, scope(kind, target), user).await,
        (
            _,
            [
                "v3",
                kind @ ("projects" | "domains"),
                target,
                "users",
                user,
                "roles",
                role,
            ],
        ) => {
            let a = RoleAssignment {
                user_id: user.to_string(),
                role_id: role.to_string(),
                scope: scope(kind, target),
            };
            grant(core, req, a).await
        }
        (&M::GET, ["v3", "role_assignments"]) => assignments_list(core, req).await,

        (&M::GET, ["v3", "regions"]) => regions_list(core, req).await,
        (&M::POST, ["v3", "regions"]) => region_create(core, req, None).await,
        (&M::PUT, ["v3", "regions", id]) => region_create(core, req, Some(id.to_string())).await,
        (&M::GET, ["v3", "regions", id]) => region_show(core, req, id).await,
        (&M::PATCH, ["v3", "regions", id]) => region_update(core, req, id).await,
        (&M::DELETE, ["v3", "regions", id]) => region_delete(core, req, id).await,
        _ => Err(ApiError::unrouted(&req)),
    }
}

fn scope(kind: &str, target: &str) -> Scope {
    if kind == "projects" {
        Scope::Project(target.to_string())
    } else {
        Scope::Domain(target.to_string())
    }
}

fn self_link(core: &Core, path: &str) -> Value {
    json!({"self": format!("{}/identity/v3/{path}", core.public_url())})
}

fn list_links(core: &Core, req: &ApiRequest) -> Value {
    let query = if req.query.is_empty() {
        String::new()
    } else {
        format!("?{}", req.query)
    };
    json!({
        "self": format!("{}{}{query}", core.public_url(), req.path),
        "previous": null,
        "next": null,
    })
}

fn created(body: Value) -> ApiResult {
    Ok(json_response(StatusCode::CREATED, &body))
}

fn ok(body: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, &body))
}

// ---- tokens ----

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthRequest)]
pub(crate) struct AuthBody {
    auth: Auth,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = Auth)]
pub(crate) struct Auth {
    identity: AuthIdentity,
    #[serde(default)]
    scope: Option<Value>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthIdentity)]
pub(crate) struct AuthIdentity {
    methods: Vec<String>,
    #[serde(default)]
    password: Option<PasswordMethod>,
    #[serde(default)]
    application_credential: Option<AppCredMethod>,
    #[serde(default)]
    token: Option<TokenMethod>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PasswordMethod)]
pub(crate) struct PasswordMethod {
    user: UserIn,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthUser)]
pub(crate) struct UserIn {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<NamedRef>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NamedRef)]
pub(crate) struct NamedRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    #[schema(no_recursion)]
    domain: Option<Box<NamedRef>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationCredentialMethod)]
pub(crate) struct AppCredMethod {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    user: Option<UserIn>,
    secret: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TokenMethod)]
pub(crate) struct TokenMethod {
    id: String,
}

fn domain_locator(d: Option<&NamedRef>, what: &str) -> Result<DomainLocator, ApiError> {
    match d {
        Some(NamedRef { id: Some(id), .. }) => Ok(DomainLocator::Id(id.clone())),
        Some(NamedRef { name: Some(n), .. }) => Ok(DomainLocator::Name(n.clone())),
        _ => Err(ApiError::bad_request(format!(
            "{what} is named by name, so its domain is needed (domain id or name)"
        ))),
    }
}

fn user_locator(u: &UserIn) -> Result<UserLocator, ApiError> {
    match (&u.id, &u.name) {
        (Some(id), _) => Ok(UserLocator::Id(id.clone())),
        (None, Some(name)) => Ok(UserLocator::Name {
            name: name.clone(),
            domain: domain_locator(u.domain.as_ref(), "the user")?,
        }),
        (None, None) => Err(ApiError::bad_request(
            "the user needs an id, or a name and domain",
        )),
    }
}

fn scope_request(scope: Option<Value>) -> Result<ScopeRequest, ApiError> {
    let Some(scope) = scope else {
        return Ok(ScopeRequest::Unscoped);
    };
    if scope == Value::String("unscoped".into()) {
        return Ok(ScopeRequest::Unscoped);
    }
    #[derive(Deserialize)]
    struct ScopeIn {
        #[serde(default)]
        project: Option<NamedRef>,
        #[serde(default)]
        domain: Option<NamedRef>,
        #[serde(default)]
        system: Option<Value>,
    }
    let scope: ScopeIn = serde_json::from_value(scope)
        .map_err(|e| ApiError::bad_request(format!("auth.scope is invalid: {e}")))?;
    match (scope.project, scope.domain, scope.system) {
        (Some(p), None, None) => match (&p.id, &p.name) {
            (Some(id), _) => Ok(ScopeRequest::Project(ProjectLocator::Id(id.clone()))),
            (None, Some(name)) => Ok(ScopeRequest::Project(ProjectLocator::Name {
                name: name.clone(),
                domain: domain_locator(p.domain.as_deref(), "the project")?,
            })),
            _ => Err(ApiError::bad_request(
                "scope.project needs an id, or a name and domain",
            )),
        },
        (None, Some(_), None) | (None, None, Some(_)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "domain- and system-scoped tokens are not offered here; scope to a project",
        )),
        _ => Err(ApiError::bad_request(
            "auth.scope names exactly one of project, domain, system",
        )),
    }
}

fn credentials(identity: AuthIdentity) -> Result<Credentials, ApiError> {
    let method = match identity.methods.as_slice() {
        [one] => one.as_str(),
        [] => return Err(ApiError::bad_request("auth.identity.methods is empty")),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "only one authentication method per request is supported",
            ));
        }
    };
    let missing = |m: &str| {
        ApiError::bad_request(format!(
            "method {m} is listed but auth.identity.{m} is missing"
        ))
    };
    match method {
        "password" => {
            let p = identity.password.ok_or_else(|| missing("password"))?;
            let password = p.user.password.clone().ok_or_else(|| {
                ApiError::bad_request("auth.identity.password.user.password is missing")
            })?;
            Ok(Credentials::Password {
                user: user_locator(&p.user)?,
                password,
            })
        }
        "application_credential" => {
            let c = identity
                .application_credential
                .ok_or_else(|| missing("application_credential"))?;
            let user = c.user.as_ref().map(user_locator).transpose()?;
            Ok(Credentials::AppCredential {
                id: c.id,
                name: c.name,
                user,
                secret: c.secret,
            })
        }
        "token" => {
            let t = identity.token.ok_or_else(|| missing("token"))?;
            Ok(Credentials::Token { id: t.id })
        }
        other => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "authentication method {other:?} is not supported; use password, application_credential or token"
            ),
        )),
    }
}

/// Removes the catalog for `?nocatalog`.
fn without_catalog(body: &bytes::Bytes) -> bytes::Bytes {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            if let Some(t) = v.get_mut("token").and_then(Value::as_object_mut) {
                t.remove("catalog");
            }
            bytes::Bytes::from(v.to_string())
        }
        Err(_) => body.clone(),
    }
}

fn subject_header(id: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(id)
        .map_err(|_| ApiError::bad_request("token contains invalid characters"))
}

async fn token_issue(core: &Core, mut req: ApiRequest) -> ApiResult {
    let body: AuthBody = req.json().await?;
    let creds = credentials(body.auth.identity)?;
    let scope = scope_request(body.auth.scope)?;
    let issued = core.token_issue(creds, scope).await?;
    let payload = if req.query_flag("nocatalog") {
        without_catalog(&issued.token.body)
    } else {
        issued.token.body.clone()
    };
    let mut response = bytes_response(StatusCode::CREATED, payload);
    response
        .headers_mut()
        .insert("x-subject-token", subject_header(&issued.id)?);
    Ok(response)
}

fn subject(req: &ApiRequest) -> Result<String, ApiError> {
    req.header("x-subject-token")
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("X-Subject-Token names the token to act on"))
}

async fn token_check(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let subject = subject(&req)?;
    let token = core.token_check(&caller, &subject).await?;
    let status = StatusCode::OK;
    let mut response = if req.method == Method::HEAD {
        empty(status)
    } else if req.query_flag("nocatalog") {
        bytes_response(status, without_catalog(&token.body))
    } else {
        bytes_response(status, token.body.clone())
    };
    response
        .headers_mut()
        .insert("x-subject-token", subject_header(&subject)?);
    Ok(response)
}

async fn token_revoke(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    core.token_revoke(&caller, &subject(&req)?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn auth_catalog(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    if caller.project.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "an unscoped token has no catalog; scope it to a project",
        ));
    }
    ok(json!({"catalog": core.catalog(), "links": list_links(core, &req)}))
}

async fn auth_projects(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let projects = core.auth_projects(&caller).await?;
    ok(json!({
        "projects": projects.iter().map(|p| project_view(core, p)).collect::<Vec<_>>(),
        "links": list_links(core, &req),
    }))
}

async fn auth_domains(core: &Core, req: ApiRequest) -> ApiResult {
    req.caller(core).await?;
    ok(json!({"domains": [], "links": list_links(core, &req)}))
}

async fn services(core: &Core, req: ApiRequest) -> ApiResult {
    req.caller(core).await?;
    ok(json!({"services": core.services(), "links": list_links(core, &req)}))
}

async fn endpoints(core: &Core, req: ApiRequest) -> ApiResult {
    req.caller(core).await?;
    ok(json!({"endpoints": core.endpoints(), "links": list_links(core, &req)}))
}

// ---- domains ----

fn domain_view(core: &Core, d: &Domain) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "enabled": d.enabled,
        "tags": [],
        "options": {},
        "links": self_link(core, &format!("domains/{}", d.id)),
    })
}

#[derive(Deserialize)]
struct DomainBody {
    domain: DomainIn,
}

#[derive(Deserialize)]
struct DomainIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn domains_list(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let list = core.domains_list(&caller, req.query_param("name")).await?;
    ok(json!({
        "domains": list.iter().map(|d| domain_view(core, d)).collect::<Vec<_>>(),
        "links": list_links(core, &req),
    }))
}

async fn domain_create(core: &Core, mut req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: DomainBody = req.json().await?;
    let domain = core
        .domain_create(
            &caller,
            Domain {
                id: String::new(),
                name: body
                    .domain
                    .name
                    .ok_or_else(|| ApiError::bad_request("domain.name is required"))?,
                description: body.domain.description.unwrap_or_default(),
                enabled: body.domain.enabled.unwrap_or(true),
            },
        )
        .await?;
    created(json!({"domain": domain_view(core, &domain)}))
}

async fn domain_show(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let d = core.domain_get(&caller, id).await?;
    ok(json!({"domain": domain_view(core, &d)}))
}

async fn domain_update(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: DomainBody = req.json().await?;
    let d = core
        .domain_update(
            &caller,
            id,
            ProjectUpdate {
                name: body.domain.name,
                description: body.domain.description,
                enabled: body.domain.enabled,
            },
        )
        .await?;
    ok(json!({"domain": domain_view(core, &d)}))
}

async fn domain_delete(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.domain_delete(&caller, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

// ---- projects ----

fn project_view(core: &Core, p: &Project) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "parent_id": p.domain_id,
        "is_domain": false,
        "tags": [],
        "options": {},
        "links": self_link(core, &format!("projects/{}", p.id)),
    })
}

#[derive(Deserialize)]
struct ProjectBody {
    project: ProjectIn,
}

#[derive(Deserialize)]
struct ProjectIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    is_domain: Option<bool>,
}

async fn projects_list(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let list = core
        .projects_list(
            &caller,
            req.query_param("name"),
            req.query_param("domain_id"),
        )
        .await?;
    ok(json!({
        "projects": list.iter().map(|p| project_view(core, p)).collect::<Vec<_>>(),
        "links": list_links(core, &req),
    }))
}

async fn project_create(core: &Core, mut req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: ProjectBody = req.json().await?;
    if body.project.is_domain == Some(true) {
        return Err(ApiError::bad_request(
            "projects acting as domains are not offered; create a domain",
        ));
    }
    let name = body
        .project
        .name
        .ok_or_else(|| ApiError::bad_request("project.name is required"))?;
    let p = core
        .project_create(
            &caller,
            name,
            body.project.domain_id,
            body.project.description.unwrap_or_default(),
            body.project.enabled.unwrap_or(true),
        )
        .await?;
    created(json!({"project": project_view(core, &p)}))
}

async fn project_show(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let p = core.project_get(&caller, id).await?;
    ok(json!({"project": project_view(core, &p)}))
}

async fn project_update(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: ProjectBody = req.json().await?;
    let p = core
        .project_update(
            &caller,
            id,
            ProjectUpdate {
                name: body.project.name,
                description: body.project.description,
                enabled: body.project.enabled,
            },
        )
        .await?;
    ok(json!({"project": project_view(core, &p)}))
}

async fn project_delete(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.project_delete(&caller, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

// ---- users ----

fn user_view(core: &Core, u: &User) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "description": u.description,
        "password_expires_at": null,
        "options": {},
        "links": self_link(core, &format!("users/{}", u.id)),
    });
    if let Some(e) = &u.email {
        v["email"] = json!(e);
    }
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    v
}

#[derive(Deserialize)]
struct UserBody {
    user: UserFields,
}

/// Distinguishes a field set to `null` from one that is absent.
fn some_nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct UserFields {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "some_nullable")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_nullable")]
    default_project_id: Option<Option<String>>,
}

async fn users_list(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let list = core
        .users_list(
            &caller,
            req.query_param("name"),
            req.query_param("domain_id"),
        )
        .await?;
    ok(json!({
        "users": list.iter().map(|u| user_view(core, u)).collect::<Vec<_>>(),
        "links": list_links(core, &req),
    }))
}

async fn user_create(core: &Core, mut req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: UserBody = req.json().await?;
    let f = body.user;
    let u = core
        .user_create(
            &caller,
            UserCreate {
                name: f
                    .name
                    .ok_or_else(|| ApiError::bad_request("user.name is required"))?,
                domain_id: f.domain_id,
                password: f.password,
                enabled: f.enabled.unwrap_or(true),
                description: f.description.unwrap_or_default(),
                email: f.email.flatten(),
                default_project_id: f.default_project_id.flatten(),
            },
        )
        .await?;
    created(json!({"user": user_view(core, &u)}))
}

async fn user_show(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let u = core.user_get(&caller, id).await?;
    ok(json!({"user": user_view(core, &u)}))
}

async fn user_update(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: UserBody = req.json().await?;
    let f = body.user;
    let u = core
        .user_update(
            &caller,
            id,
            UserUpdate {
                name: f.name,
                password: f.password,
                enabled: f.enabled,
                description: f.description,
                email: f.email,
                default_project_id: f.default_project_id,
            },
        )
        .await?;
    ok(json!({"user": user_view(core, &u)}))
}

async fn user_delete(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.user_delete(&caller, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn user_password(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    #[derive(Deserialize)]
    struct Body {
        user: Change,
    }
    #[derive(Deserialize)]
    struct Change {
        password: String,
        original_password: String,
    }
    let caller = req.caller(core).await?;
    let body: Body = req.json().await?;
    core.user_change_password(&caller, id, body.user.original_password, body.user.password)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn user_projects(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let list = core.user_projects(&caller, id).await?;
    ok(json!({
        "projects": list.iter().map(|p| project_view(core, p)).collect::<Vec<_>>(),
        "links": list_links(core, &req),
    }))
}

// ---- application credentials ----

fn app_cred_view(core: &Core, c: &AppCredential, roles: &[RoleRef]) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "roles": roles,
        "unrestricted": c.unrestricted,
        "expires_at": c.expires_at.map(format_time),
        "access_rules": [],
        "links": self_link(core, &format!("users/{}/application_credentials/{}", c.user_id, c.id)),
    })
}

async fn app_cred_create(core: &Core, mut req: ApiRequest, user_id: &str) -> ApiResult {
    #[derive(Deserialize)]
    struct Body {
        application_credential: In,
    }
    #[derive(Deserialize)]
    struct In {
        name: String,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        secret: Option<String>,
        #[serde(default)]
        expires_at: Option<String>,
        #[serde(default)]
        roles: Vec<NamedRef>,
        #[serde(default)]
        unrestricted: Option<bool>,
    }
    let caller = req.caller(core).await?;
    let body: Body = req.json().await?;
    let input = body.application_credential;
    let expires_at = input.expires_at.map(|t| parse_time(&t)).transpose()?;
    let roles = input
        .roles
        .iter()
        .map(|r| {
            r.id.clone()
                .or_else(|| r.name.clone())
                .ok_or_else(|| ApiError::bad_request("each role needs an id or a name"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (cred, secret, roles) = core
        .app_cred_create(
            &caller,
            user_id,
            AppCredentialCreate {
                name: input.name,
                description: input.description.unwrap_or_default(),
                secret: input.secret,
                expires_at,
                roles,
                unrestricted: input.unrestricted.unwrap_or(false),
            },
        )
        .await?;
    let mut view = app_cred_view(core, &cred, &roles);
    view["secret"] = json!(secret);
    created(json!({"application_credential": view}))
}

fn parse_time(t: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map_err(|_| {
            ApiError::bad_request(format!("{t:?} is not a time like 2030-01-01T00:00:00Z"))
        })
}

async fn app_creds_list(core: &Core, req: ApiRequest, user_id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let list = core
        .app_creds_list(&caller, user_id, req.query_param("name"))
        .await?;
    ok(json!({
        "application_credentials": list.iter().map(|(c, r)| app_cred_view(core, c, r)).collect::<Vec<_>>(),
        "links": list_links(core, &req),
    }))
}

async fn app_cred_show(core: &Core, req: ApiRequest, user_id: &str, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let (c, r) = core.app_cred_get(&caller, user_id, id).await?;
    ok(json!({"application_credential": app_cred_view(core, &c, &r)}))
}

async fn app_cred_delete(core: &Core, req: ApiRequest, user_id: &str, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.app_cred_delete(&caller, user_id, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

// ---- roles and assignments ----

fn role_view(core: &Core, r: &Role) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "domain_id": null,
        "options": {},
        "links": self_link(core, &format!("roles/{}", r.id)),
    })
}

#[derive(Deserialize)]
struct RoleBody {
    role: RoleIn,
}

#[derive(Deserialize)]
struct RoleIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn roles_list(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let list = core.roles_list(&caller, req.query_param("name")).await?;
    ok(json!({
        "roles": list.iter().map(|r| role_view(core, r)).collect::<Vec<_>>(),
        "links": list_links(core, &req),
    }))
}

async fn role_create(core: &Core, mut req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: RoleBody = req.json().await?;
    let name = body
        .role
        .name
        .ok_or_else(|| ApiError::bad_request("role.name is required"))?;
    let r = core
        .role_create(&caller, name, body.role.description.unwrap_or_default())
        .await?;
    created(json!({"role": role_view(core, &r)}))
}

async fn role_show(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let r = core.role_get(&caller, id).await?;
    ok(json!({"role": role_view(core, &r)}))
}

async fn role_update(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: RoleBody = req.json().await?;
    let r = core
        .role_update(&caller, id, body.role.name, body.role.description)
        .await?;
    ok(json!({"role": role_view(core, &r)}))
}

async fn role_delete(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.role_delete(&caller, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn grant(core: &Core, req: ApiRequest, a: RoleAssignment) -> ApiResult {
    let caller = req.caller(core).await?;
    match req.method {
        Method::PUT => {
            core.assignment_grant(&caller, a).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        Method::HEAD | Method::GET => {
            if core.assignment_exists(&caller, a).await? {
                Ok(empty(StatusCode::NO_CONTENT))
            } else {
                Err(ApiError::not_found(
                    "the user does not hold that role there",
                ))
            }
        }
        Method::DELETE => {
            core.assignment_revoke(&caller, a).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

async fn grants_list(core: &Core, req: ApiRequest, scope: Scope, user_id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let (project_id, domain_id) = match scope {
        Scope::Project(p) => (Some(p), None),
        Scope::Domain(d) => (None, Some(d)),
    };
    let list = core
        .assignments_list(
            &caller,
            AssignmentFilter {
                user_id: Some(user_id.to_string()),
                role_id: None,
                project_id,
                domain_id,
            },
        )
        .await?;
    let mut roles = Vec::new();
    for a in &list {
        roles.push(role_view(core, &core.role_get(&caller, &a.role_id).await?));
    }
    ok(json!({"roles": roles, "links": list_links(core, &req)}))
}

async fn assignments_list(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let filter = AssignmentFilter {
        user_id: req.query_param("user.id"),
        role_id: req.query_param("role.id"),
        project_id: req.query_param("scope.project.id"),
        domain_id: req.query_param("scope.domain.id"),
    };
    let list = core.assignments_list(&caller, filter).await?;
    let names = if req.query_flag("include_names") {
        Some(core.names_of(&list).await?)
    } else {
        None
    };
    let base = format!("{}/identity/v3", core.public_url());
    let items: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (kind, target) = match &a.scope {
                Scope::Project(p) => ("project", p),
                Scope::Domain(d) => ("domain", d),
            };
            let mut v = json!({
                "role": {"id": a.role_id},
                "user": {"id": a.user_id},
                "scope": {kind: {"id": target}},
                "links": {"assignment": format!("{base}/{kind}s/{target}/users/{}/roles/{}", a.user_id, a.role_id)},
            });
            if let Some(names) = &names {
                let n = &names[i];
                v["user"]["name"] = json!(n.user);
                v["role"]["name"] = json!(n.role);
                v["scope"][kind]["name"] = json!(n.target);
                if let Some(d) = &n.user_domain {
                    v["user"]["domain"] = json!({"id": d.id, "name": d.name});
                }
                if let Some(d) = &n.target_domain {
                    v["scope"][kind]["domain"] = json!({"id": d.id, "name": d.name});
                }
            }
            v
        })
        .collect();
    ok(json!({"role_assignments": items, "links": list_links(core, &req)}))
}

// ---- regions (data centres) ----

fn region_view(core: &Core, r: &Region) -> Value {
    json!({
        "id": r.id,
        "name": r.id,
        "description": r.description,
        "parent_region_id": r.parent_region_id,
        "links": self_link(core, &format!("regions/{}", r.id)),
    })
}

#[derive(Deserialize)]
struct RegionBody {
    region: RegionIn,
}

#[derive(Deserialize)]
struct RegionIn {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "some_nullable")]
    parent_region_id: Option<Option<String>>,
}

async fn regions_list(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let list = core.regions_list(&caller).await?;
    let parent = req.query_param("parent_region_id");
    ok(json!({
        "regions": list
            .iter()
            .filter(|r| parent.is_none() || r.parent_region_id == parent)
            .map(|r| region_view(core, r))
            .collect::<Vec<_>>(),
        "links": list_links(core, &req),
    }))
}

async fn region_create(core: &Core, mut req: ApiRequest, id: Option<String>) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: RegionBody = req.json().await?;
    if let (Some(path_id), Some(body_id)) = (&id, &body.region.id)
        && path_id != body_id
    {
        return Err(ApiError::bad_request(
            "the region id in the path and the body differ",
        ));
    }
    let r = core
        .region_create(
            &caller,
            Region {
                id: id.or(body.region.id).unwrap_or_default(),
                description: body.region.description.unwrap_or_default(),
                parent_region_id: body.region.parent_region_id.flatten(),
            },
        )
        .await?;
    created(json!({"region": region_view(core, &r)}))
}

async fn region_show(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let r = core.region_get(&caller, id).await?;
    ok(json!({"region": region_view(core, &r)}))
}

async fn region_update(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: RegionBody = req.json().await?;
    let r = core
        .region_update(
            &caller,
            id,
            body.region.description,
            body.region.parent_region_id,
        )
        .await?;
    ok(json!({"region": region_view(core, &r)}))
}

async fn region_delete(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.region_delete(&caller, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
