//! Listeners, pools, members and health monitors, and the standard's nodes extension
//! (the members of the load balancer's default pool). Every change is made in one
//! transaction that also checks the load balancer is not PENDING_* and puts it in
//! PENDING_UPDATE; the background apply brings it back to ACTIVE.

use chrono::Utc;

use super::{PENDING_UPDATE, load_balancer_not_found, require_mutable};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::network::check_text;
use crate::core::network::cidr::{Cidr, format_ip, parse_ip};
use crate::core::policy::{Access, authorize, require_project};
use crate::model::{Caller, HealthMonitor, Listener, LoadBalancer, Member, Pool, PortFilter};
use crate::store::{LbChild, Tx};

const PROTOCOLS: &[&str] = &["TCP", "HTTP"];
const ALGORITHMS: &[&str] = &["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"];
const MONITOR_TYPES: &[&str] = &["TCP", "HTTP", "PING"];

#[derive(Debug, Clone, Default)]
pub struct ListenerCreate {
    pub loadbalancer_id: String,
    pub protocol: String,
    pub protocol_port: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub connection_limit: Option<i64>,
    pub default_pool_id: Option<String>,
    pub admin_state_up: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct PoolCreate {
    pub listener_id: Option<String>,
    pub loadbalancer_id: Option<String>,
    pub protocol: String,
    pub lb_algorithm: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct MemberCreate {
    pub address: String,
    pub protocol_port: i64,
    pub weight: Option<i64>,
    pub subnet_id: Option<String>,
    pub name: Option<String>,
    pub admin_state_up: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct HealthMonitorCreate {
    pub pool_id: String,
    pub kind: String,
    pub delay: i64,
    pub timeout: i64,
    pub max_retries: i64,
    pub max_retries_down: Option<i64>,
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
    pub name: Option<String>,
    pub admin_state_up: Option<bool>,
}

/// The changes an update may make to any of the four (each takes what applies to it).
#[derive(Debug, Clone, Default)]
pub struct ChildUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub connection_limit: Option<i64>,
    pub lb_algorithm: Option<String>,
    pub weight: Option<i64>,
    pub delay: Option<i64>,
    pub timeout: Option<i64>,
    pub max_retries: Option<i64>,
}

/// One node of the standard's nodes extension: a member of the default pool.
#[derive(Debug, Clone)]
pub struct LbNode {
    pub server_id: Option<String>,
    pub name: String,
    pub address: String,
    pub protocol_port: i64,
}

/// A node to add: a server (its address on the load balancer's network) or an address.
#[derive(Debug, Clone)]
pub struct NodeAdd {
    pub server_id: Option<String>,
    pub address: Option<String>,
    pub protocol_port: i64,
}

#[derive(Debug, Clone)]
pub struct NodeRemove {
    pub server_id: Option<String>,
    pub address: Option<String>,
}

/// What a load balancer's view lists beside its own fields.
#[derive(Debug, Clone, Default)]
pub struct LbRelations {
    pub listeners: Vec<String>,
    pub pools: Vec<String>,
    pub nodes: Vec<LbNode>,
}

fn not_found(kind: &str, id: &str) -> Error {
    Error::NotFound(format!("{kind} {id} not found."))
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<String> {
    let upper = value.to_ascii_uppercase();
    if allowed.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: '{value}'. Value must be one of \
             {allowed:?}."
        )))
    }
}

fn in_range(field: &str, value: i64, lo: i64, hi: i64) -> Result<()> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: '{value}'. Value must be from \
             {lo} to {hi}."
        )))
    }
}

/// The default pool of the load balancer's first listener: where nodes live.
fn default_pool(tx: &Tx, lb: &LoadBalancer) -> Result<Pool> {
    let listener = tx
        .listeners_list(Some(&lb.id), None)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::Conflict(format!(
                "Load balancer {} has no listener yet, so it has no nodes: create a listener \
                 first (openstack loadbalancer listener create, or POST /v2/lbaas/listeners), \
                 then a pool for it.",
                lb.id
            ))
        })?;
    let pool_id = listener.default_pool_id.clone().ok_or_else(|| {
        Error::Conflict(format!(
            "Listener {} of load balancer {} has no default pool yet: create one (openstack \
             loadbalancer pool create --listener {}, or POST /v2/lbaas/pools with listener_id).",
            listener.id, lb.id, listener.id
        ))
    })?;
    tx.pool_get(&pool_id)?
        .ok_or_else(|| not_found("Pool", &pool_id))
}

/// The nodes of a load balancer (none without a listener or default pool).
fn nodes_of(db: &crate::store::Db, lb_id: &str) -> crate::store::Result<Vec<LbNode>> {
    let Some(listener) = db.listeners_list(Some(lb_id), None)?.into_iter().next() else {
        return Ok(Vec::new());
    };
    let Some(pool) = listener.default_pool_id else {
        return Ok(Vec::new());
    };
    Ok(db
        .members_list(&pool)?
        .into_iter()
        .map(|m| LbNode {
            server_id: m.server_id,
            name: m.name,
            address: m.address,
            protocol_port: m.protocol_port,
        })
        .collect())
}

impl Core {
    /// Runs `change` in one transaction with the load balancer `lb_id` (the caller's,
    /// writable, not PENDING_*), leaving it PENDING_UPDATE; applies it afterwards.
    async fn lb_change<T: Send + 'static>(
        &self,
        caller: &Caller,
        lb_id: &str,
        change: impl FnOnce(&Tx, &LoadBalancer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let lb = self.load_balancer_get(caller, lb_id).await?;
        authorize(
            caller,
            &lb.project_id,
            Access::Write,
            &format!("load balancer {lb_id}"),
        )?;
        let id = lb.id.clone();
        let out = self
            .store
            .write(move |tx| {
                let mut lb = tx
                    .load_balancer_get(&id)?
                    .ok_or_else(|| load_balancer_not_found(&id))?;
                require_mutable(&lb)?;
                let out = change(tx, &lb)?;
                lb.provisioning_status = PENDING_UPDATE.into();
                lb.updated_at = Utc::now();
                tx.load_balancer_update(&lb)?;
                Ok::<_, Error>(out)
            })
            .await?;
        self.load_balancer_apply_later(&lb.id)?;
        Ok(out)
    }

    /// The listener ids, pool ids and nodes a load balancer's view lists.
    pub async fn load_balancer_relations(&self, lb_id: &str) -> Result<LbRelations> {
        let id = lb_id.to_string();
        Ok(self
            .store
            .read(move |db| {
                Ok(LbRelations {
                    listeners: db
                        .listeners_list(Some(&id), None)?
                        .into_iter()
                        .map(|l| l.id)
                        .collect(),
                    pools: db
                        .pools_list(Some(&id), None)?
                        .into_iter()
                        .map(|p| p.id)
                        .collect(),
                    nodes: nodes_of(db, &id)?,
                })
            })
            .await?)
    }

    /// The project a list is scoped to: the caller's own, or all for an administrator.
    fn lb_scope(caller: &Caller) -> Result<Option<String>> {
        Ok(if caller.is_admin() {
            None
        } else {
            Some(require_project(caller)?.to_string())
        })
    }

    fn lb_visible(caller: &Caller, project_id: &str) -> bool {
        caller.is_admin() || caller.project_id() == Some(project_id)
    }

    // ---- listeners ----

    pub async fn listener_create(
        &self,
        caller: &Caller,
        input: ListenerCreate,
    ) -> Result<Listener> {
        let protocol = one_of("protocol", &input.protocol, PROTOCOLS)?;
        in_range("protocol_port", input.protocol_port, 1, 65535)?;
        let name = input.name.unwrap_or_default();
        let description = input.description.unwrap_or_default();
        check_text("name", &name, 255)?;
        check_text("description", &description, 255)?;
        let connection_limit = input.connection_limit.unwrap_or(-1);
        if connection_limit < -1 {
            return Err(Error::BadRequest(
                "connection_limit must be -1 (unlimited) or a positive number".into(),
            ));
        }
        let lb_id = input.loadbalancer_id.clone();
        self.lb_change(caller, &lb_id, move |tx, lb| {
            if tx
                .listeners_list(Some(&lb.id), None)?
                .iter()
                .any(|l| l.protocol_port == input.protocol_port)
            {
                return Err(Error::Conflict(format!(
                    "Another Listener on this Load Balancer is already using protocol_port {}",
                    input.protocol_port
                )));
            }
            if let Some(pool) = &input.default_pool_id {
                tx.pool_get(pool)?
                    .filter(|p| p.load_balancer_id == lb.id)
                    .ok_or_else(|| not_found("Pool", pool))?;
            }
            let now = Utc::now();
            let listener = Listener {
                id: uuid::Uuid::new_v4().to_string(),
                load_balancer_id: lb.id.clone(),
                project_id: lb.project_id.clone(),
                name,
                description,
                protocol,
                protocol_port: input.protocol_port,
                default_pool_id: input.default_pool_id,
                connection_limit,
                admin_state_up: input.admin_state_up.unwrap_or(true),
                created_at: now,
                updated_at: now,
            };
            tx.listener_write(&listener)?;
            Ok(listener)
        })
        .await
    }

    pub async fn listener_get(&self, caller: &Caller, id: &str) -> Result<Listener> {
        let key = id.to_string();
        self.store
            .read(move |db| db.listener_get(&key))
            .await?
            .filter(|l| Self::lb_visible(caller, &l.project_id))
            .ok_or_else(|| not_found("Listener", id))
    }

    pub async fn listeners_list(&self, caller: &Caller) -> Result<Vec<Listener>> {
        let scope = Self::lb_scope(caller)?;
        Ok(self
            .store
            .read(move |db| db.listeners_list(None, scope.as_deref()))
            .await?)
    }

    pub async fn listener_update(
        &self,
        caller: &Caller,
        id: &str,
        change: ChildUpdate,
    ) -> Result<Listener> {
        let found = self.listener_get(caller, id).await?;
        self.lb_change(caller, &found.load_balancer_id, move |tx, _| {
            let mut l = tx
                .listener_get(&found.id)?
                .ok_or_else(|| not_found("Listener", &found.id))?;
            if let Some(name) = change.name {
                check_text("name", &name, 255)?;
                l.name = name;
            }
            if let Some(d) = change.description {
                check_text("description", &d, 255)?;
                l.description = d;
            }
            l.admin_state_up = change.admin_state_up.unwrap_or(l.admin_state_up);
            l.connection_limit = change.connection_limit.unwrap_or(l.connection_limit);
            l.updated_at = Utc::now();
            tx.listener_write(&l)?;
            Ok(l)
        })
        .await
    }

    pub async fn listener_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let found = self.listener_get(caller, id).await?;
        self.lb_change(caller, &found.load_balancer_id, move |tx, _| {
            Ok(tx.lb_child_delete(LbChild::Listener, &found.id)?)
        })
        .await
    }

    // ---- pools ----

    pub async fn pool_create(&self, caller: &Caller, input: PoolCreate) -> Result<Pool> {
        let protocol = one_of("protocol", &input.protocol, PROTOCOLS)?;
        let lb_algorithm = one_of("lb_algorithm", &input.lb_algorithm, ALGORITHMS)?;
        let name = input.name.unwrap_or_default();
        let description = input.description.unwrap_or_default();
        check_text("name", &name, 255)?;
        check_text("description", &description, 255)?;
        let lb_id = match (&input.listener_id, &input.loadbalancer_id) {
            (Some(listener), _) => self.listener_get(caller, listener).await?.load_balancer_id,
            (None, Some(lb)) => lb.clone(),
            (None, None) => {
                return Err(Error::BadRequest(
                    "Validation failure: a pool needs listener_id (it becomes that listener's \
                     default pool) or loadbalancer_id."
                        .into(),
                ));
            }
        };
        self.lb_change(caller, &lb_id, move |tx, lb| {
            let now = Utc::now();
            let pool = Pool {
                id: uuid::Uuid::new_v4().to_string(),
                load_balancer_id: lb.id.clone(),
                listener_id: input.listener_id.clone(),
                project_id: lb.project_id.clone(),
                name,
                description,
                protocol,
                lb_algorithm,
                admin_state_up: input.admin_state_up.unwrap_or(true),
                created_at: now,
                updated_at: now,
            };
            tx.pool_write(&pool)?;
            if let Some(listener_id) = &input.listener_id {
                let mut listener = tx
                    .listener_get(listener_id)?
                    .ok_or_else(|| not_found("Listener", listener_id))?;
                if let Some(existing) = &listener.default_pool_id {
                    return Err(Error::Conflict(format!(
                        "Listener {listener_id} already has default pool {existing}; create \
                         the pool with loadbalancer_id instead, or delete that pool first."
                    )));
                }
                if listener.protocol != pool.protocol {
                    return Err(Error::BadRequest(format!(
                        "Validation failure: pool protocol {} does not match listener \
                         protocol {}.",
                        pool.protocol, listener.protocol
                    )));
                }
                listener.default_pool_id = Some(pool.id.clone());
                tx.listener_write(&listener)?;
            }
            Ok(pool)
        })
        .await
    }

    pub async fn pool_get(&self, caller: &Caller, id: &str) -> Result<Pool> {
        let key = id.to_string();
        self.store
            .read(move |db| db.pool_get(&key))
            .await?
            .filter(|p| Self::lb_visible(caller, &p.project_id))
            .ok_or_else(|| not_found("Pool", id))
    }

    pub async fn pools_list(&self, caller: &Caller) -> Result<Vec<Pool>> {
        let scope = Self::lb_scope(caller)?;
        Ok(self
            .store
            .read(move |db| db.pools_list(None, scope.as_deref()))
            .await?)
    }

    /// A pool's member ids and health monitor, for its view.
    pub async fn pool_relations(&self, id: &str) -> Result<(Vec<String>, Option<String>)> {
        let key = id.to_string();
        Ok(self
            .store
            .read(move |db| {
                Ok((
                    db.members_list(&key)?.into_iter().map(|m| m.id).collect(),
                    db.health_monitor_of_pool(&key)?.map(|h| h.id),
                ))
            })
            .await?)
    }

    pub async fn pool_update(
        &self,
        caller: &Caller,
        id: &str,
        change: ChildUpdate,
    ) -> Result<Pool> {
        let found = self.pool_get(caller, id).await?;
        let algorithm = change
            .lb_algorithm
            .as_deref()
            .map(|a| one_of("lb_algorithm", a, ALGORITHMS))
            .transpose()?;
        self.lb_change(caller, &found.load_balancer_id, move |tx, _| {
            let mut p = tx
                .pool_get(&found.id)?
                .ok_or_else(|| not_found("Pool", &found.id))?;
            if let Some(name) = change.name {
                check_text("name", &name, 255)?;
                p.name = name;
            }
            if let Some(d) = change.description {
                check_text("description", &d, 255)?;
                p.description = d;
            }
            p.lb_algorithm = algorithm.unwrap_or(p.lb_algorithm);
            p.admin_state_up = change.admin_state_up.unwrap_or(p.admin_state_up);
            p.updated_at = Utc::now();
            tx.pool_write(&p)?;
            Ok(p)
        })
        .await
    }

    /// Deletes a pool with its members and health monitor; a listener it was the
    /// default pool of keeps no dangling reference.
    pub async fn pool_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let found = self.pool_get(caller, id).await?;
        self.lb_change(caller, &found.load_balancer_id, move |tx, lb| {
            for mut l in tx.listeners_list(Some(&lb.id), None)? {
                if l.default_pool_id.as_deref() == Some(found.id.as_str()) {
                    l.default_pool_id = None;
                    tx.listener_write(&l)?;
                }
            }
            Ok(tx.lb_child_delete(LbChild::Pool, &found.id)?)
        })
        .await
    }

    // ---- members ----

    pub async fn member_create(
        &self,
        caller: &Caller,
        pool_id: &str,
        input: MemberCreate,
    ) -> Result<Member> {
        let pool = self.pool_get(caller, pool_id).await?;
        let (version, ip) = parse_ip(&input.address).ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid input for field/attribute address. Value: '{}'. Value should be an \
                 IPv4 or IPv6 address.",
                input.address
            ))
        })?;
        in_range("protocol_port", input.protocol_port, 1, 65535)?;
        let weight = input.weight.unwrap_or(1);
        in_range("weight", weight, 0, 256)?;
        let name = input.name.unwrap_or_default();
        check_text("name", &name, 255)?;
        let address = format_ip(version, ip);
        let admin_state_up = input.admin_state_up.unwrap_or(true);
        let (subnet_id, port) = (input.subnet_id, input.protocol_port);
        let lb_id = pool.load_balancer_id.clone();
        self.lb_change(caller, &lb_id, move |tx, lb| {
            let member = new_member(
                tx,
                lb,
                &pool,
                &address,
                port,
                weight,
                subnet_id,
                None,
                name,
                admin_state_up,
            )?;
            tx.member_write(&member)?;
            Ok(member)
        })
        .await
    }

    pub async fn member_get(&self, caller: &Caller, pool_id: &str, id: &str) -> Result<Member> {
        let key = id.to_string();
        self.store
            .read(move |db| db.member_get(&key))
            .await?
            .filter(|m| m.pool_id == pool_id && Self::lb_visible(caller, &m.project_id))
            .ok_or_else(|| not_found("Member", id))
    }

    pub async fn members_list(&self, caller: &Caller, pool_id: &str) -> Result<Vec<Member>> {
        let pool = self.pool_get(caller, pool_id).await?;
        Ok(self.store.read(move |db| db.members_list(&pool.id)).await?)
    }

    pub async fn member_update(
        &self,
        caller: &Caller,
        pool_id: &str,
        id: &str,
        change: ChildUpdate,
    ) -> Result<Member> {
        let found = self.member_get(caller, pool_id, id).await?;
        if let Some(w) = change.weight {
            in_range("weight", w, 0, 256)?;
        }
        let pool = self.pool_get(caller, pool_id).await?;
        self.lb_change(caller, &pool.load_balancer_id, move |tx, _| {
            let mut m = tx
                .member_get(&found.id)?
                .ok_or_else(|| not_found("Member", &found.id))?;
            if let Some(name) = change.name {
                check_text("name", &name, 255)?;
                m.name = name;
            }
            m.weight = change.weight.unwrap_or(m.weight);
            m.admin_state_up = change.admin_state_up.unwrap_or(m.admin_state_up);
            m.updated_at = Utc::now();
            tx.member_write(&m)?;
            Ok(m)
        })
        .await
    }

    pub async fn member_delete(&self, caller: &Caller, pool_id: &str, id: &str) -> Result<()> {
        let found = self.member_get(caller, pool_id, id).await?;
        let pool = self.pool_get(caller, pool_id).await?;
        self.lb_change(caller, &pool.load_balancer_id, move |tx, _| {
            Ok(tx.lb_child_delete(LbChild::Member, &found.id)?)
        })
        .await
    }

    // ---- health monitors ----

    pub async fn health_monitor_create(
        &self,
        caller: &Caller,
        input: HealthMonitorCreate,
    ) -> Result<HealthMonitor> {
        let pool = self.pool_get(caller, &input.pool_id).await?;
        let kind = one_of("type", &input.kind, MONITOR_TYPES)?;
        in_range("delay", input.delay, 1, 86_400)?;
        in_range("timeout", input.timeout, 1, 86_400)?;
        in_range("max_retries", input.max_retries, 1, 10)?;
        let max_retries_down = input.max_retries_down.unwrap_or(3);
        in_range("max_retries_down", max_retries_down, 1, 10)?;
        if input.timeout > input.delay {
            return Err(Error::BadRequest(
                "Validation failure: the timeout of a health monitor must not be greater than \
                 its delay."
                    .into(),
            ));
        }
        let http = kind == "HTTP";
        if !http
            && (input.http_method.is_some()
                || input.url_path.is_some()
                || input.expected_codes.is_some())
        {
            return Err(Error::BadRequest(format!(
                "Validation failure: http_method, url_path and expected_codes are for HTTP \
                 health monitors, not {kind}."
            )));
        }
        let name = input.name.unwrap_or_default();
        check_text("name", &name, 255)?;
        let now = Utc::now();
        let monitor = HealthMonitor {
            id: uuid::Uuid::new_v4().to_string(),
            pool_id: pool.id.clone(),
            project_id: pool.project_id.clone(),
            name,
            kind,
            delay: input.delay,
            timeout: input.timeout,
            max_retries: input.max_retries,
            max_retries_down,
            http_method: http.then(|| input.http_method.unwrap_or_else(|| "GET".into())),
            url_path: http.then(|| input.url_path.unwrap_or_else(|| "/".into())),
            expected_codes: http.then(|| input.expected_codes.unwrap_or_else(|| "200".into())),
            admin_state_up: input.admin_state_up.unwrap_or(true),
            created_at: now,
            updated_at: now,
        };
        self.lb_change(caller, &pool.load_balancer_id, move |tx, _| {
            if let Some(existing) = tx.health_monitor_of_pool(&monitor.pool_id)? {
                return Err(Error::Conflict(format!(
                    "Pool {} already has health monitor {}; a pool has at most one.",
                    monitor.pool_id, existing.id
                )));
            }
            tx.health_monitor_write(&monitor)?;
            Ok(monitor)
        })
        .await
    }

    pub async fn health_monitor_get(&self, caller: &Caller, id: &str) -> Result<HealthMonitor> {
        let key = id.to_string();
        self.store
            .read(move |db| db.health_monitor_get(&key))
            .await?
            .filter(|h| Self::lb_visible(caller, &h.project_id))
            .ok_or_else(|| not_found("Health Monitor", id))
    }

    pub async fn health_monitors_list(&self, caller: &Caller) -> Result<Vec<HealthMonitor>> {
        let scope = Self::lb_scope(caller)?;
        Ok(self
            .store
            .read(move |db| db.health_monitors_list(scope.as_deref()))
            .await?)
    }

    pub async fn health_monitor_update(
        &self,
        caller: &Caller,
        id: &str,
        change: ChildUpdate,
    ) -> Result<HealthMonitor> {
        let found = self.health_monitor_get(caller, id).await?;
        let pool = self.pool_get(caller, &found.pool_id).await?;
        self.lb_change(caller, &pool.load_balancer_id, move |tx, _| {
            let mut h = tx
                .health_monitor_get(&found.id)?
                .ok_or_else(|| not_found("Health Monitor", &found.id))?;
            h.delay = change.delay.unwrap_or(h.delay);
            h.timeout = change.timeout.unwrap_or(h.timeout);
            h.max_retries = change.max_retries.unwrap_or(h.max_retries);
            in_range("max_retries", h.max_retries, 1, 10)?;
            if h.timeout > h.delay || h.delay < 1 || h.timeout < 1 {
                return Err(Error::BadRequest(
                    "Validation failure: delay and timeout must be positive, and the timeout \
                     not greater than the delay."
                        .into(),
                ));
            }
            if let Some(name) = change.name {
                check_text("name", &name, 255)?;
                h.name = name;
            }
            h.admin_state_up = change.admin_state_up.unwrap_or(h.admin_state_up);
            h.updated_at = Utc::now();
            tx.health_monitor_write(&h)?;
            Ok(h)
        })
        .await
    }

    pub async fn health_monitor_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let found = self.health_monitor_get(caller, id).await?;
        let pool = self.pool_get(caller, &found.pool_id).await?;
        self.lb_change(caller, &pool.load_balancer_id, move |tx, _| {
            Ok(tx.lb_child_delete(LbChild::HealthMonitor, &found.id)?)
        })
        .await
    }

    // ---- the standard's nodes extension ----

    /// `PATCH …/loadbalancers/{id}/nodes`: adds and removes members of the default pool,
    /// by server (its address on the load balancer's network) or by address.
    pub async fn load_balancer_nodes_change(
        &self,
        caller: &Caller,
        lb_id: &str,
        add: Vec<NodeAdd>,
        remove: Vec<NodeRemove>,
    ) -> Result<()> {
        // Servers are looked up with the caller's rights first: 404 for another's.
        let mut servers = Vec::new();
        for node in add.iter().filter_map(|n| n.server_id.as_ref()) {
            let server = self.server_get(caller, node, Access::Read).await?;
            servers.push((node.clone(), server.name));
        }
        let lb = self.load_balancer_get(caller, lb_id).await?;
        for node in &add {
            in_range("protocol_port", node.protocol_port, 1, 65535)?;
            if node.server_id.is_some() == node.address.is_some() {
                return Err(Error::BadRequest(
                    "Each node to add needs exactly one of server_id and address, and a \
                     protocol_port."
                        .into(),
                ));
            }
        }
        for node in &remove {
            if node.server_id.is_some() == node.address.is_some() {
                return Err(Error::BadRequest(
                    "Each node to remove needs exactly one of server_id and address.".into(),
                ));
            }
        }
        let network = lb.vip_network_id.clone();
        self.lb_change(caller, lb_id, move |tx, lb| {
            let pool = default_pool(tx, lb)?;
            let members = tx.members_list(&pool.id)?;
            for node in &remove {
                let gone: Vec<&Member> = members
                    .iter()
                    .filter(|m| match (&node.server_id, &node.address) {
                        (Some(s), _) => m.server_id.as_deref() == Some(s.as_str()),
                        (None, Some(a)) => {
                            parse_ip(a).map(|(v, ip)| format_ip(v, ip)).as_deref()
                                == Some(m.address.as_str())
                        }
                        (None, None) => false,
                    })
                    .collect();
                if gone.is_empty() {
                    return Err(Error::BadRequest(format!(
                        "{} is not a node of load balancer {}; GET the load balancer to see \
                         its nodes.",
                        node.server_id
                            .as_deref()
                            .or(node.address.as_deref())
                            .unwrap_or_default(),
                        lb.id
                    )));
                }
                for m in gone {
                    tx.lb_child_delete(LbChild::Member, &m.id)?;
                }
            }
            for node in add {
                let (address, server_id, name) = match (&node.server_id, &node.address) {
                    (Some(server), _) => {
                        let address = tx
                            .ports_list(&PortFilter {
                                device_id: Some(server.clone()),
                                ..PortFilter::default()
                            })?
                            .into_iter()
                            .filter(|p| p.network_id == network)
                            .find_map(|p| p.fixed_ips.into_iter().next())
                            .map(|f| f.ip_address)
                            .ok_or_else(|| {
                                Error::BadRequest(format!(
                                    "Server {server} has no address on network {network}, the \
                                     load balancer's; attach it to that network first, or add \
                                     the node by address."
                                ))
                            })?;
                        let name = servers
                            .iter()
                            .find(|(id, _)| id == server)
                            .map(|(_, n)| n.clone())
                            .unwrap_or_default();
                        (address, Some(server.clone()), name)
                    }
                    (None, Some(address)) => (address.clone(), None, String::new()),
                    (None, None) => unreachable!("checked above"),
                };
                let (version, ip) = parse_ip(&address).ok_or_else(|| {
                    Error::BadRequest(format!("'{address}' is not an IP address"))
                })?;
                let member = new_member(
                    tx,
                    lb,
                    &pool,
                    &format_ip(version, ip),
                    node.protocol_port,
                    1,
                    None,
                    server_id,
                    name,
                    true,
                )?;
                tx.member_write(&member)?;
            }
            Ok(())
        })
        .await
    }
}

/// A member of `pool`, its address checked against its subnet (given, or the one of
/// the load balancer's network that holds it) and against the pool's other members.
#[allow(clippy::too_many_arguments)]
fn new_member(
    tx: &Tx,
    lb: &LoadBalancer,
    pool: &Pool,
    address: &str,
    protocol_port: i64,
    weight: i64,
    subnet_id: Option<String>,
    server_id: Option<String>,
    name: String,
    admin_state_up: bool,
) -> Result<Member> {
    let (version, ip) = parse_ip(address)
        .ok_or_else(|| Error::BadRequest(format!("'{address}' is not an IP address")))?;
    let contains = |cidr: &str| Cidr::parse(cidr).is_ok_and(|c| c.contains(version, ip));
    let subnet_id = match subnet_id {
        Some(id) => {
            let subnet = tx
                .subnet_get(&id)?
                .filter(|s| s.project_id == lb.project_id || s.network_id == lb.vip_network_id)
                .ok_or_else(|| not_found("Subnet", &id))?;
            if !contains(&subnet.cidr) {
                return Err(Error::BadRequest(format!(
                    "Member address {address} is not in subnet {id} ({}).",
                    subnet.cidr
                )));
            }
            Some(id)
        }
        None => Some(
            tx.network_subnet_list(&lb.vip_network_id)?
                .into_iter()
                .find(|s| contains(&s.cidr))
                .map(|s| s.id)
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Member address {address} is in no subnet of the load balancer's \
                         network {}; give the member's subnet_id.",
                        lb.vip_network_id
                    ))
                })?,
        ),
    };
    if tx
        .members_list(&pool.id)?
        .iter()
        .any(|m| m.address == address && m.protocol_port == protocol_port)
    {
        return Err(Error::Conflict(format!(
            "Another member on this pool is already using ip {address} on protocol_port \
             {protocol_port}"
        )));
    }
    let now = Utc::now();
    Ok(Member {
        id: uuid::Uuid::new_v4().to_string(),
        pool_id: pool.id.clone(),
        project_id: pool.project_id.clone(),
        name,
        address: address.to_string(),
        protocol_port,
        weight,
        subnet_id,
        server_id,
        admin_state_up,
        created_at: now,
        updated_at: now,
    })
}
