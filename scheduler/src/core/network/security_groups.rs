//! Security groups and their rules (Neutron, B.3.5), and the groups of ports and
//! servers. A project's `default` group is made on first use — listing groups, making a
//! port, booting a server — inside that use's own transaction, so exactly once.

use chrono::Utc;

use super::cidr::{format_ip, parse_ip};
use super::{
    ListScope, QuotaResource, check_quota, check_text, list_scope, owner_project, page_limit,
};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{Access, authorize};
use crate::model::{Caller, PortFilter, SecurityGroup, SecurityGroupRule};
use crate::store::{RuleFilter, Tx};

pub const DEFAULT_GROUP: &str = "default";

#[derive(Debug, Clone, Default)]
pub struct SecurityGroupCreate {
    pub project_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SecurityGroupUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SecurityGroupQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub project_id: Option<String>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SecurityGroupPage {
    pub groups: Vec<SecurityGroup>,
    pub more: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RuleCreate {
    pub security_group_id: String,
    pub project_id: Option<String>,
    pub direction: String,
    pub ethertype: Option<String>,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RuleQuery {
    pub security_group_id: Option<String>,
    pub project_id: Option<String>,
    pub direction: Option<String>,
    pub ethertype: Option<String>,
    pub protocol: Option<String>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RulePage {
    pub rules: Vec<SecurityGroupRule>,
    pub more: bool,
}

pub(crate) fn security_group_not_found(id: &str) -> Error {
    Error::NotFound(format!("Security group {id} could not be found."))
}

fn rule_not_found(id: &str) -> Error {
    Error::NotFound(format!("Security group rule {id} could not be found."))
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("Invalid input for {field}. Reason: {reason}."))
}

/// IP protocols by the names Neutron accepts, with their numbers.
const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// Protocols whose rules take a port range, and those whose take ICMP type and code.
const PORT_PROTOCOLS: &[u8] = &[6, 17, 33, 132, 136];
const ICMP_PROTOCOLS: &[u8] = &[1, 58];

/// A rule's protocol as stored (lower-case name, or the number as given) with its
/// number; `None` for any protocol.
fn protocol(given: Option<&str>) -> Result<Option<(String, u8)>> {
    let Some(text) = given
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "any")
    else {
        return Ok(None);
    };
    let lower = text.to_ascii_lowercase();
    if let Some((name, number)) = PROTOCOLS.iter().find(|(name, _)| *name == lower) {
        return Ok(Some((name.to_string(), *number)));
    }
    match lower.parse::<u8>() {
        Ok(number) => Ok(Some((number.to_string(), number))),
        Err(_) => Err(invalid(
            "protocol",
            format!(
                "protocol {text} is not supported; give a name (tcp, udp, icmp, ipv6-icmp, \
                 sctp, …) or a number from 0 to 255"
            ),
        )),
    }
}

/// The rules a new group comes with: egress anywhere, for IPv4 and IPv6; a `default`
/// group also lets in whatever comes from its own members.
fn initial_rules(group: &SecurityGroup) -> Vec<SecurityGroupRule> {
    let mut rules = Vec::new();
    for ethertype in ["IPv4", "IPv6"] {
        if group.is_default {
            rules.push(new_rule(
                group,
                "ingress",
                ethertype,
                Some(group.id.clone()),
            ));
        }
        rules.push(new_rule(group, "egress", ethertype, None));
    }
    rules
}

fn new_rule(
    group: &SecurityGroup,
    direction: &str,
    ethertype: &str,
    remote_group_id: Option<String>,
) -> SecurityGroupRule {
    SecurityGroupRule {
        id: uuid::Uuid::new_v4().to_string(),
        security_group_id: group.id.clone(),
        project_id: group.project_id.clone(),
        direction: direction.into(),
        ethertype: ethertype.into(),
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id,
        description: String::new(),
        revision_number: 0,
        created_at: group.created_at,
        updated_at: group.created_at,
    }
}

/// The project's `default` group, made now if it was not yet (inside the caller's
/// transaction, which the writer runs alone, so exactly once).
pub(crate) fn default_group(tx: &Tx, project_id: &str) -> Result<String> {
    if let Some(id) = tx.security_group_default(project_id)? {
        return Ok(id);
    }
    let now = Utc::now();
    let mut group = SecurityGroup {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project_id.to_string(),
        name: DEFAULT_GROUP.into(),
        description: "Default security group".into(),
        is_default: true,
        revision_number: 1,
        created_at: now,
        updated_at: now,
        rules: Vec::new(),
    };
    group.rules = initial_rules(&group);
    tx.security_group_insert(&group)?;
    tracing::info!(project = %project_id, group = %group.id, "default security group made");
    Ok(group.id)
}

/// The groups a port of `project_id` gets: those `asked` (ids; with `by_name`, names
/// too, as Nova's server create gives them), each existing and the project's own unless
/// an administrator asks; else, with port security on, the project's `default`.
pub(crate) fn port_groups(
    tx: &Tx,
    requester: Option<&Caller>,
    project_id: &str,
    port_security: bool,
    asked: Option<&[String]>,
    by_name: bool,
) -> Result<Vec<String>> {
    let Some(asked) = asked else {
        return Ok(if port_security {
            vec![default_group(tx, project_id)?]
        } else {
            Vec::new()
        });
    };
    let admin = requester.is_some_and(Caller::is_admin);
    let mut ids: Vec<String> = Vec::with_capacity(asked.len());
    for entry in asked {
        let id = if by_name {
            // Nova's 400 for a server create that names a group the project lacks.
            group_by_name_or_id(tx, admin, project_id, entry)?.ok_or_else(|| {
                Error::BadRequest(format!(
                    "Security group {entry} not found for project {project_id}."
                ))
            })?
        } else {
            match tx.security_group_get(entry)? {
                Some(g) if admin || g.project_id == project_id => g.id,
                _ => return Err(security_group_not_found(entry)),
            }
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// A group as Nova names one: its id (the project's own unless an administrator asks),
/// or its name in the project — `default` made on first use; `None` when there is none,
/// a 409 when the name is ambiguous.
fn group_by_name_or_id(
    tx: &Tx,
    admin: bool,
    project_id: &str,
    entry: &str,
) -> Result<Option<String>> {
    match tx.security_group_get(entry)? {
        Some(g) if admin || g.project_id == project_id => Ok(Some(g.id)),
        _ if entry == DEFAULT_GROUP => default_group(tx, project_id).map(Some),
        _ => match tx.security_groups_named(project_id, entry)?.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => Err(Error::Conflict(format!(
                "Multiple security groups named {entry} exist in project {project_id}; give \
                 the group's id instead."
            ))),
        },
    }
}

/// Checks a rule as asked and builds it for `group`.
fn rule_from(
    tx: &Tx,
    caller: &Caller,
    group: &SecurityGroup,
    input: RuleCreate,
) -> Result<SecurityGroupRule> {
    let direction = match input.direction.as_str() {
        "ingress" | "egress" => input.direction.clone(),
        other => {
            return Err(invalid(
                "direction",
                format!("{other} is not in valid_values [ingress, egress]"),
            ));
        }
    };
    let ethertype = match input.ethertype.as_deref().map(str::to_ascii_lowercase) {
        None => "IPv4",
        Some(e) if e == "ipv4" => "IPv4",
        Some(e) if e == "ipv6" => "IPv6",
        Some(e) => {
            return Err(invalid(
                "ethertype",
                format!("{e} is not in valid_values [IPv4, IPv6]"),
            ));
        }
    };
    let protocol = protocol(input.protocol.as_deref())?;
    if protocol.as_ref().is_some_and(|(_, n)| *n == 58) && ethertype == "IPv4" {
        return Err(invalid(
            "protocol",
            "ICMPv6 rules are for ethertype IPv6; use icmp for IPv4",
        ));
    }
    let (min, max) = (input.port_range_min, input.port_range_max);
    let number = protocol.as_ref().map(|(_, n)| *n);
    let (min, max) = match number {
        _ if min.is_none() && max.is_none() => (None, None),
        Some(n) if PORT_PROTOCOLS.contains(&n) => {
            let (lo, hi) = (min.or(max), max.or(min));
            for (field, v) in [("port_range_min", lo), ("port_range_max", hi)] {
                if v.is_some_and(|v| !(1..=65535).contains(&v)) {
                    return Err(invalid(field, "a port must be from 1 to 65535"));
                }
            }
            if lo > hi {
                return Err(Error::BadRequest(
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max.".into(),
                ));
            }
            (lo, hi)
        }
        Some(n) if ICMP_PROTOCOLS.contains(&n) => {
            for (field, v) in [("port_range_min", min), ("port_range_max", max)] {
                if v.is_some_and(|v| !(0..=255).contains(&v)) {
                    return Err(invalid(
                        field,
                        "for ICMP, port_range_min is the type and port_range_max the code, each \
                         from 0 to 255",
                    ));
                }
            }
            if min.is_none() {
                return Err(invalid(
                    "port_range_max",
                    "an ICMP code (port_range_max) needs a type (port_range_min)",
                ));
            }
            (min, max)
        }
        _ => {
            return Err(Error::BadRequest(
                "Invalid input: port_range_min and port_range_max need a protocol that has \
                 ports (tcp, udp, sctp, udplite, dccp) or ICMP type and code (icmp, \
                 ipv6-icmp)."
                    .into(),
            ));
        }
    };
    if input.remote_ip_prefix.is_some() && input.remote_group_id.is_some() {
        return Err(Error::BadRequest(
            "Only remote_ip_prefix or remote_group_id may be provided.".into(),
        ));
    }
    let remote_ip_prefix = match input.remote_ip_prefix.as_deref() {
        None => None,
        Some(text) => {
            let (version, prefix) = network_prefix(text)?;
            let family = if version == 4 { "IPv4" } else { "IPv6" };
            if family != ethertype {
                return Err(Error::BadRequest(format!(
                    "Conflicting value ethertype {ethertype} for CIDR {text}: give ethertype \
                     {family} or a prefix of the other family."
                )));
            }
            Some(prefix)
        }
    };
    if let Some(remote) = &input.remote_group_id {
        tx.security_group_get(remote)?
            .filter(|g| caller.is_admin() || g.project_id == group.project_id)
            .ok_or_else(|| security_group_not_found(remote))?;
    }
    let description = input.description.unwrap_or_default();
    check_text("description", &description, 255)?;
    let now = Utc::now();
    Ok(SecurityGroupRule {
        id: uuid::Uuid::new_v4().to_string(),
        security_group_id: group.id.clone(),
        project_id: group.project_id.clone(),
        direction,
        ethertype: ethertype.into(),
        protocol: protocol.map(|(name, _)| name),
        port_range_min: min,
        port_range_max: max,
        remote_ip_prefix,
        remote_group_id: input.remote_group_id,
        description,
        revision_number: 0,
        created_at: now,
        updated_at: now,
    })
}

/// A remote prefix as Neutron keeps it: the network address of `addr/len` (a bare
/// address is one host), with its IP version.
fn network_prefix(text: &str) -> Result<(u8, String)> {
    let bad = || {
        invalid(
            "remote_ip_prefix",
            format!("'{text}' is not an IP address or CIDR, such as 10.0.0.0/24 or fd00::/64"),
        )
    };
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let (version, ip) = parse_ip(addr).ok_or_else(bad)?;
    let width: u32 = if version == 4 { 32 } else { 128 };
    let len = match len {
        None => width,
        Some(l) => l.parse().ok().filter(|l| *l <= width).ok_or_else(bad)?,
    };
    let host_bits = width - len;
    let mask = if host_bits >= 128 {
        0
    } else {
        !((1u128 << host_bits) - 1)
    };
    Ok((version, format!("{}/{len}", format_ip(version, ip & mask))))
}

/// Whether two rules let the same traffic through (Neutron's duplicate test).
fn same_rule(a: &SecurityGroupRule, b: &SecurityGroupRule) -> bool {
    a.direction == b.direction
        && a.ethertype == b.ethertype
        && a.protocol == b.protocol
        && a.port_range_min == b.port_range_min
        && a.port_range_max == b.port_range_max
        && a.remote_ip_prefix == b.remote_ip_prefix
        && a.remote_group_id == b.remote_group_id
}

impl Core {
    /// Makes the caller's project's `default` group if it has none yet.
    async fn default_group_ensure(&self, caller: &Caller) -> Result<()> {
        let Some(project) = caller.project_id().map(str::to_string) else {
            return Ok(());
        };
        let key = project.clone();
        let exists = self
            .store
            .read(move |db| db.security_group_default(&key))
            .await?
            .is_some();
        if !exists {
            self.store
                .write(move |tx| default_group(tx, &project).map(|_| ()))
                .await?;
        }
        Ok(())
    }

    /// `POST /v2.0/security-groups`: with its two egress rules.
    pub async fn security_group_create(
        &self,
        caller: &Caller,
        input: SecurityGroupCreate,
    ) -> Result<SecurityGroup> {
        let project_id = owner_project(caller, input.project_id)?;
        authorize(
            caller,
            &project_id,
            Access::Write,
            "security groups of the project",
        )?;
        let name = input.name.unwrap_or_default();
        let description = input.description.unwrap_or_default();
        check_text("name", &name, 255)?;
        check_text("description", &description, 255)?;
        if name == DEFAULT_GROUP {
            return Err(Error::Conflict(
                "Default security group already exists: every project has one named \
                 default; choose another name."
                    .into(),
            ));
        }
        let now = Utc::now();
        let mut group = SecurityGroup {
            id: uuid::Uuid::new_v4().to_string(),
            project_id,
            name,
            description,
            is_default: false,
            revision_number: 1,
            created_at: now,
            updated_at: now,
            rules: Vec::new(),
        };
        group.rules = initial_rules(&group);
        let defaults = self.config.network.default_quota;
        let group = self
            .store
            .write(move |tx| {
                default_group(tx, &group.project_id)?;
                check_quota(
                    tx,
                    &defaults,
                    &group.project_id,
                    QuotaResource::SecurityGroup,
                )?;
                tx.security_group_insert(&group)?;
                Ok::<_, Error>(group)
            })
            .await?;
        tracing::info!(group = %group.id, "security group created");
        Ok(group)
    }

    /// A group the caller may see: its project's, or any for an administrator.
    pub async fn security_group_get(&self, caller: &Caller, id: &str) -> Result<SecurityGroup> {
        let key = id.to_string();
        self.store
            .read(move |db| db.security_group_get(&key))
            .await?
            .filter(|g| caller.is_admin() || caller.project_id() == Some(g.project_id.as_str()))
            .ok_or_else(|| security_group_not_found(id))
    }

    async fn security_group_for_change(&self, caller: &Caller, id: &str) -> Result<SecurityGroup> {
        let group = self.security_group_get(caller, id).await?;
        authorize(
            caller,
            &group.project_id,
            Access::Write,
            &format!("security group {id}"),
        )?;
        Ok(group)
    }

    /// `GET /v2.0/security-groups`: the project's (its `default` made if need be).
    pub async fn security_groups_list(
        &self,
        caller: &Caller,
        query: SecurityGroupQuery,
    ) -> Result<SecurityGroupPage> {
        self.default_group_ensure(caller).await?;
        let scope = match list_scope(caller, query.project_id)? {
            ListScope::Project(scope) => scope,
            ListScope::Nothing => {
                return Ok(SecurityGroupPage {
                    groups: Vec::new(),
                    more: false,
                });
            }
        };
        let limit = page_limit(query.limit);
        let mut groups = self
            .store
            .read(move |db| {
                db.security_groups_list(
                    scope.as_deref(),
                    query.name.as_deref(),
                    query.id.as_deref(),
                    query.marker.as_deref(),
                    limit.map(|l| l + 1),
                )
            })
            .await?;
        let more = limit.is_some_and(|l| groups.len() > l);
        if let Some(l) = limit {
            groups.truncate(l);
        }
        Ok(SecurityGroupPage { groups, more })
    }

    /// `PUT /v2.0/security-groups/{id}`: name and description.
    pub async fn security_group_update(
        &self,
        caller: &Caller,
        id: &str,
        change: SecurityGroupUpdate,
    ) -> Result<SecurityGroup> {
        let mut group = self.security_group_for_change(caller, id).await?;
        if let Some(name) = change.name {
            check_text("name", &name, 255)?;
            if group.is_default && name != DEFAULT_GROUP {
                return Err(Error::Conflict(
                    "Updating default security group not allowed: its name stays default.".into(),
                ));
            }
            if !group.is_default && name == DEFAULT_GROUP {
                return Err(Error::Conflict(
                    "Default security group already exists: choose another name.".into(),
                ));
            }
            group.name = name;
        }
        if let Some(description) = change.description {
            check_text("description", &description, 255)?;
            group.description = description;
        }
        group.revision_number += 1;
        group.updated_at = Utc::now();
        let row = group.clone();
        self.store
            .write(move |tx| Ok::<_, Error>(tx.security_group_update(&row)?))
            .await?;
        Ok(group)
    }

    /// `DELETE /v2.0/security-groups/{id}`: not while a port uses it, nor a project's
    /// `default` (but by an administrator).
    pub async fn security_group_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let group = self.security_group_for_change(caller, id).await?;
        if group.is_default && !caller.is_admin() {
            return Err(Error::Conflict(
                "Insufficient rights for removing default security group: every project \
                 keeps its default group."
                    .into(),
            ));
        }
        let nodes = self
            .store
            .write(move |tx| {
                let users = tx.security_group_ports(&group.id)?;
                if users > 0 {
                    return Err(Error::Conflict(format!(
                        "Security Group {} in use: {users} port(s) still use it; remove it \
                         from them first (openstack server remove security group, or PUT \
                         /v2.0/ports/{{id}} with other security_groups).",
                        group.id
                    )));
                }
                // Rules of other groups naming it go with it: their nodes re-render.
                let nodes = tx.security_group_nodes(&group.id)?;
                tx.security_group_delete(&group.id)?;
                Ok(nodes)
            })
            .await?;
        tracing::info!(group = %id, "security group deleted");
        nodes.iter().for_each(|n| self.network_dirty(n));
        Ok(())
    }

    /// `POST /v2.0/security-group-rules`.
    pub async fn security_group_rule_create(
        &self,
        caller: &Caller,
        input: RuleCreate,
    ) -> Result<SecurityGroupRule> {
        let group = self
            .security_group_for_change(caller, &input.security_group_id)
            .await
            .map_err(|e| match e {
                // The group named in the body: Neutron's 404 names it.
                Error::NotFound(_) => security_group_not_found(&input.security_group_id),
                e => e,
            })?;
        if let Some(asked) = &input.project_id
            && *asked != group.project_id
        {
            return Err(Error::BadRequest(format!(
                "A rule belongs to its group's project ({}); leave project_id out.",
                group.project_id
            )));
        }
        let defaults = self.config.network.default_quota;
        let caller = caller.clone();
        let rule = self
            .store
            .write(move |tx| {
                let group = tx
                    .security_group_get(&group.id)?
                    .ok_or_else(|| security_group_not_found(&group.id))?;
                let rule = rule_from(tx, &caller, &group, input)?;
                if let Some(existing) = group.rules.iter().find(|r| same_rule(r, &rule)) {
                    return Err(Error::Conflict(format!(
                        "Security group rule already exists. Rule id is {}.",
                        existing.id
                    )));
                }
                check_quota(
                    tx,
                    &defaults,
                    &group.project_id,
                    QuotaResource::SecurityGroupRule,
                )?;
                tx.security_group_rule_insert(&rule)?;
                tx.security_group_touch(&group.id, rule.created_at)?;
                Ok(rule)
            })
            .await?;
        tracing::info!(rule = %rule.id, group = %rule.security_group_id, "security group rule created");
        self.security_groups_dirty(vec![rule.security_group_id.clone()]);
        Ok(rule)
    }

    pub async fn security_group_rule_get(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<SecurityGroupRule> {
        let key = id.to_string();
        self.store
            .read(move |db| db.security_group_rule_get(&key))
            .await?
            .filter(|r| caller.is_admin() || caller.project_id() == Some(r.project_id.as_str()))
            .ok_or_else(|| rule_not_found(id))
    }

    /// `GET /v2.0/security-group-rules`.
    pub async fn security_group_rules_list(
        &self,
        caller: &Caller,
        query: RuleQuery,
    ) -> Result<RulePage> {
        self.default_group_ensure(caller).await?;
        let scope = match list_scope(caller, query.project_id)? {
            ListScope::Project(scope) => scope,
            ListScope::Nothing => {
                return Ok(RulePage {
                    rules: Vec::new(),
                    more: false,
                });
            }
        };
        let limit = page_limit(query.limit);
        let protocol = protocol(query.protocol.as_deref())?.map(|(name, _)| name);
        let mut rules = self
            .store
            .read(move |db| {
                db.security_group_rules_list(&RuleFilter {
                    project_id: scope.as_deref(),
                    security_group_id: query.security_group_id.as_deref(),
                    direction: query.direction.as_deref(),
                    ethertype: query.ethertype.as_deref(),
                    protocol: protocol.as_deref(),
                    marker: query.marker.as_deref(),
                    limit: limit.map(|l| l + 1),
                })
            })
            .await?;
        let more = limit.is_some_and(|l| rules.len() > l);
        if let Some(l) = limit {
            rules.truncate(l);
        }
        Ok(RulePage { rules, more })
    }

    /// `DELETE /v2.0/security-group-rules/{id}`.
    pub async fn security_group_rule_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let rule = self.security_group_rule_get(caller, id).await?;
        authorize(
            caller,
            &rule.project_id,
            Access::Write,
            &format!("security group rule {id}"),
        )?;
        let group = rule.security_group_id.clone();
        self.store
            .write(move |tx| {
                tx.security_group_rule_delete(&rule.id)?;
                tx.security_group_touch(&rule.security_group_id, Utc::now())?;
                Ok::<_, Error>(())
            })
            .await?;
        self.security_groups_dirty(vec![group]);
        Ok(())
    }

    /// Nova's `addSecurityGroup` / `removeSecurityGroup`: the group (by name, or id) is
    /// added to or removed from every port of the server, and its Nova record.
    pub async fn server_security_group_change(
        &self,
        caller: &Caller,
        server_id: &str,
        group: &str,
        add: bool,
    ) -> Result<()> {
        let record = self.server_get(caller, server_id, Access::Read).await?;
        authorize(
            caller,
            &record.project_id,
            Access::Write,
            &format!("Instance {server_id}"),
        )?;
        let (server, project, wanted) = (
            record.id.to_string(),
            record.project_id.clone(),
            group.to_string(),
        );
        let caller = caller.clone();
        let hosts = self
            .store
            .write(move |tx| {
                let id = group_by_name_or_id(tx, caller.is_admin(), &project, &wanted)?
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "Security group {wanted} not found for project {project}."
                        ))
                    })?;
                let ports = tx.ports_list(&PortFilter {
                    device_id: Some(server.clone()),
                    ..PortFilter::default()
                })?;
                let has = ports.iter().any(|p| p.security_groups.contains(&id));
                if !add && !has {
                    return Err(Error::BadRequest(format!(
                        "Security group {wanted} not associated with the instance {server}."
                    )));
                }
                if add && ports.iter().any(|p| !p.port_security_enabled) {
                    return Err(Error::BadRequest(format!(
                        "Cannot add security group {wanted} to server {server}: a port of it \
                         has port security disabled."
                    )));
                }
                let mut hosts = Vec::new();
                for mut port in ports {
                    let before = port.security_groups.len();
                    if add {
                        if !port.security_groups.contains(&id) {
                            port.security_groups.push(id.clone());
                        }
                    } else {
                        port.security_groups.retain(|g| *g != id);
                    }
                    if port.security_groups.len() != before {
                        port.revision_number += 1;
                        port.updated_at = Utc::now();
                        tx.port_update(&port)?;
                        hosts.push(port.binding_host_id);
                    }
                }
                let record = uuid::Uuid::parse_str(&server)
                    .ok()
                    .map(|id| tx.server_get(id))
                    .transpose()?
                    .flatten();
                let Some(mut record) = record else {
                    hosts.extend(tx.security_group_nodes(&id)?);
                    return Ok(hosts);
                };
                let name = tx
                    .security_group_get(&id)?
                    .map_or_else(|| wanted.clone(), |g| g.name);
                if add {
                    if !record.security_groups.contains(&name) {
                        record.security_groups.push(name);
                    }
                } else {
                    record.security_groups.retain(|n| *n != name);
                }
                tx.server_update(&record)?;
                // Peers whose rules name the group see the server's addresses come or go.
                hosts.extend(tx.security_group_nodes(&id)?);
                Ok(hosts)
            })
            .await?;
        for host in hosts {
            self.network_dirty(&host);
        }
        Ok(())
    }

    /// `GET /servers/{id}/os-security-groups`: the groups of the server's ports.
    pub async fn server_security_groups(
        &self,
        caller: &Caller,
        server_id: &str,
    ) -> Result<Vec<SecurityGroup>> {
        let server = self
            .server_get(caller, server_id, Access::Read)
            .await?
            .id
            .to_string();
        Ok(self
            .store
            .read(move |db| {
                let mut ids: Vec<String> = Vec::new();
                for port in db.ports_list(&PortFilter {
                    device_id: Some(server),
                    ..PortFilter::default()
                })? {
                    for g in port.security_groups {
                        if !ids.contains(&g) {
                            ids.push(g);
                        }
                    }
                }
                let mut groups = Vec::with_capacity(ids.len());
                for id in ids {
                    groups.extend(db.security_group_get(&id)?);
                }
                Ok(groups)
            })
            .await?)
    }
}
