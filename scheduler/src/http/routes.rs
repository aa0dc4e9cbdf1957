//! Every endpoint of the API, in one table. The table is what admits a request:
//! [`admit`] answers 404 for a path it does not list and 405 (with `Allow`) for a listed
//! path and another method, before any service router runs. The OpenAPI document
//! (`openapi.rs`) is rendered from the same table, so an endpoint cannot be served
//! without being documented; a test reaches every listed route through the real router,
//! so nothing is documented that is not served.
//!
//! Paths are the canonical ones. Requests may also use the legacy `/{project_id}` after
//! `/compute/v2.1` (and leave it out after `/volume/v3`), `/load-balancer/v2.0` for `v2`,
//! and `.json` after a network path; [`canonical`] folds those before matching.

use std::sync::LazyLock;

use http::{HeaderValue, Method, StatusCode};

use yunji_common::openapi::template_matches;

use super::ApiError;

/// One endpoint.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// Path template; `{name}` matches one segment.
    pub path: &'static str,
    pub summary: &'static str,
    /// The clauses of the standard (Annex B) this endpoint implements.
    pub clauses: &'static [&'static str],
    /// The statuses of success, the usual one first.
    pub statuses: &'static [StatusCode],
    /// The JSON request body, when the endpoint takes one.
    pub body: Option<Body>,
    /// Served without a token (discovery, token issue, agent join).
    pub public: bool,
}

/// A request body: the schema of the type its handler parses, inside an optional
/// envelope (`{"server": {...}}`).
#[derive(Debug)]
pub struct Body {
    pub envelope: Option<&'static str>,
    pub schema: yunji_common::openapi::SchemaFn,
}

const fn route(method: Method, path: &'static str, summary: &'static str) -> Route {
    let statuses: &[StatusCode] = match method {
        Method::DELETE => &[StatusCode::NO_CONTENT],
        _ => &[StatusCode::OK],
    };
    Route {
        method,
        path,
        summary,
        clauses: &[],
        statuses,
        body: None,
        public: false,
    }
}

const fn get(path: &'static str, summary: &'static str) -> Route {
    route(Method::GET, path, summary)
}
const fn head(path: &'static str, summary: &'static str) -> Route {
    route(Method::HEAD, path, summary)
}
const fn post(path: &'static str, summary: &'static str) -> Route {
    route(Method::POST, path, summary)
}
const fn put(path: &'static str, summary: &'static str) -> Route {
    route(Method::PUT, path, summary)
}
const fn patch(path: &'static str, summary: &'static str) -> Route {
    route(Method::PATCH, path, summary)
}
const fn delete(path: &'static str, summary: &'static str) -> Route {
    route(Method::DELETE, path, summary)
}

impl Route {
    const fn clause(mut self, clauses: &'static [&'static str]) -> Route {
        self.clauses = clauses;
        self
    }
    const fn status(mut self, statuses: &'static [StatusCode]) -> Route {
        self.statuses = statuses;
        self
    }
    const fn public(mut self) -> Route {
        self.public = true;
        self
    }
    /// The body is `{"<envelope>": T}` (or `T` itself without an envelope).
    const fn body(
        mut self,
        envelope: Option<&'static str>,
        schema: yunji_common::openapi::SchemaFn,
    ) -> Route {
        self.body = Some(Body { envelope, schema });
        self
    }
}

use StatusCode as S;
use yunji_common::openapi::schema_of as of;

/// The whole API, by service.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    // ── Discovery ──
    get("/", "List the identity API versions").status(&[S::MULTIPLE_CHOICES]).public(),
    get("/identity", "List the identity API versions").status(&[S::MULTIPLE_CHOICES]).public(),
    get("/identity/v3", "Show identity v3").public(),
    get("/compute", "List the compute API versions").public(),
    get("/compute/v2.1", "Show compute v2.1 and its microversion range").public(),
    get("/image", "List the image API versions").status(&[S::MULTIPLE_CHOICES]).public(),
    head("/image", "List the image API versions").status(&[S::MULTIPLE_CHOICES]).public(),
    get("/network", "List the network API versions").public(),
    get("/network/v2.0", "List the network v2.0 resources").public(),
    get("/volume", "List the block-storage API versions").status(&[S::MULTIPLE_CHOICES]).public(),
    get("/volume/v3", "Show block-storage v3 and its microversion range").public(),
    get("/load-balancer", "List the load-balancer API versions").public(),
    get("/openapi.json", "This document").public(),
    // ── Identity: Keystone v3 (B.1.1, B.1.2) ──
    post("/identity/v3/auth/tokens", "Issue a token (password, token or application credential)").clause(&["B.1.1"]).status(&[S::CREATED]).public().body(None, of::<super::identity::AuthBody>),
    get("/identity/v3/auth/tokens", "Validate the token in X-Subject-Token"),
    head("/identity/v3/auth/tokens", "Check the token in X-Subject-Token").status(&[S::OK]),
    delete("/identity/v3/auth/tokens", "Revoke the token in X-Subject-Token"),
    get("/identity/v3/auth/catalog", "The service catalog of the caller's token"),
    get("/identity/v3/auth/projects", "Projects the caller can scope to"),
    get("/identity/v3/auth/domains", "Domains the caller can scope to"),
    get("/identity/v3/services", "List services"),
    get("/identity/v3/endpoints", "List endpoints"),
    get("/identity/v3/domains", "List domains"),
    post("/identity/v3/domains", "Create a domain").status(&[S::CREATED]),
    get("/identity/v3/domains/{domain_id}", "Show a domain"),
    patch("/identity/v3/domains/{domain_id}", "Update a domain"),
    delete("/identity/v3/domains/{domain_id}", "Delete a (disabled) domain"),
    get("/identity/v3/projects", "List projects"),
    post("/identity/v3/projects", "Create a project").status(&[S::CREATED]),
    get("/identity/v3/projects/{project_id}", "Show a project"),
    patch("/identity/v3/projects/{project_id}", "Update a project"),
    delete("/identity/v3/projects/{project_id}", "Delete a project"),
    get("/identity/v3/users", "List users"),
    post("/identity/v3/users", "Create a user").status(&[S::CREATED]),
    get("/identity/v3/users/{user_id}", "Show a user"),
    patch("/identity/v3/users/{user_id}", "Update a user"),
    delete("/identity/v3/users/{user_id}", "Delete a user"),
    post("/identity/v3/users/{user_id}/password", "Change one's own password").status(&[S::NO_CONTENT]),
    get("/identity/v3/users/{user_id}/projects", "Projects a user has a role on"),
    get("/identity/v3/users/{user_id}/application_credentials", "List application credentials"),
    post("/identity/v3/users/{user_id}/application_credentials", "Create an application credential").status(&[S::CREATED]),
    get("/identity/v3/users/{user_id}/application_credentials/{application_credential_id}", "Show an application credential"),
    delete("/identity/v3/users/{user_id}/application_credentials/{application_credential_id}", "Delete an application credential"),
    get("/identity/v3/roles", "List roles"),
    post("/identity/v3/roles", "Create a role").status(&[S::CREATED]),
    get("/identity/v3/roles/{role_id}", "Show a role"),
    patch("/identity/v3/roles/{role_id}", "Update a role"),
    delete("/identity/v3/roles/{role_id}", "Delete a role"),
    get("/identity/v3/projects/{project_id}/users/{user_id}/roles", "A user's roles on a project"),
    put("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "Grant a role on a project").status(&[S::NO_CONTENT]),
    get("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "Check a role on a project").status(&[S::NO_CONTENT]),
    head("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "Check a role on a project").status(&[S::NO_CONTENT]),
    delete("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", "Revoke a role on a project"),
    get("/identity/v3/domains/{domain_id}/users/{user_id}/roles", "A user's roles on a domain"),
    put("/identity/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "Grant a role on a domain").status(&[S::NO_CONTENT]),
    get("/identity/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "Check a role on a domain").status(&[S::NO_CONTENT]),
    head("/identity/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "Check a role on a domain").status(&[S::NO_CONTENT]),
    delete("/identity/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}", "Revoke a role on a domain"),
    get("/identity/v3/role_assignments", "List role assignments"),
    get("/identity/v3/regions", "List regions (the standard's data centres)").clause(&["B.1.2"]),
    post("/identity/v3/regions", "Create a region").status(&[S::CREATED]),
    put("/identity/v3/regions/{region_id}", "Create a region with a given id").status(&[S::CREATED]),
    get("/identity/v3/regions/{region_id}", "Show a region").clause(&["B.1.2"]),
    patch("/identity/v3/regions/{region_id}", "Update a region"),
    delete("/identity/v3/regions/{region_id}", "Delete a region"),
    // ── Compute: Nova 2.1 (B.1.2, B.1.3.1, B.2.1, B.2.2, B.2.3.1, B.4.1.4–5) ──
    get("/compute/v2.1/servers", "List servers").clause(&["B.2.1.8"]),
    get("/compute/v2.1/servers/detail", "List servers with details").clause(&["B.2.1.8"]),
    post("/compute/v2.1/servers", "Create a server").clause(&["B.2.1.1"]).status(&[S::ACCEPTED]).body(None, of::<super::compute::servers::CreateBody>),
    get("/compute/v2.1/servers/{server_id}", "Show a server").clause(&["B.2.1.3"]),
    put("/compute/v2.1/servers/{server_id}", "Update a server's name or description").clause(&["B.2.1.4"]),
    delete("/compute/v2.1/servers/{server_id}", "Delete a server").clause(&["B.2.1.2"]),
    post("/compute/v2.1/servers/{server_id}/action", "Act on a server: os-start, os-stop, reboot, os-migrateLive, resize, confirmResize, \
         revertResize, createImage, os-getConsoleOutput, addSecurityGroup, removeSecurityGroup, \
         lock, unlock").clause(&[ "B.2.1.5", "B.2.1.6", "B.2.1.7", "B.2.1.9", "B.2.1.10", "B.2.3.1", ]).status(&[S::ACCEPTED, S::OK]),
    get("/compute/v2.1/servers/{server_id}/ips", "A server's addresses by network"),
    get("/compute/v2.1/servers/{server_id}/ips/{network_label}", "A server's addresses on one network"),
    get("/compute/v2.1/servers/{server_id}/os-security-groups", "A server's security groups"),
    get("/compute/v2.1/servers/{server_id}/tags", "A server's tags (2.26)"),
    put("/compute/v2.1/servers/{server_id}/tags", "Replace a server's tags (2.26)"),
    delete("/compute/v2.1/servers/{server_id}/tags", "Delete every tag of a server (2.26)").status(&[S::NO_CONTENT]),
    get("/compute/v2.1/servers/{server_id}/tags/{tag}", "Whether a server has a tag: 204 or 404 (2.26)").status(&[S::NO_CONTENT]),
    put("/compute/v2.1/servers/{server_id}/tags/{tag}", "Add a tag to a server: 201, or 204 if it had it (2.26)").status(&[S::CREATED, S::NO_CONTENT]),
    delete("/compute/v2.1/servers/{server_id}/tags/{tag}", "Delete a server's tag (2.26)").status(&[S::NO_CONTENT]),
    get("/compute/v2.1/servers/{server_id}/metadata", "A server's metadata"),
    put("/compute/v2.1/servers/{server_id}/metadata", "Replace a server's metadata"),
    post("/compute/v2.1/servers/{server_id}/metadata", "Add to a server's metadata"),
    get("/compute/v2.1/servers/{server_id}/metadata/{key}", "One metadata item"),
    put("/compute/v2.1/servers/{server_id}/metadata/{key}", "Set one metadata item"),
    delete("/compute/v2.1/servers/{server_id}/metadata/{key}", "Delete one metadata item"),
    get("/compute/v2.1/servers/{server_id}/os-instance-actions", "A server's actions"),
    get("/compute/v2.1/servers/{server_id}/os-instance-actions/{request_id}", "One action of a server"),
    post("/compute/v2.1/servers/{server_id}/remote-consoles", "Remote consoles (none are offered: 400)"),
    get("/compute/v2.1/servers/{server_id}/migrations", "A server's live migrations under way (2.23)"),
    get("/compute/v2.1/servers/{server_id}/migrations/{migration_id}", "One live migration (2.23)"),
    delete("/compute/v2.1/servers/{server_id}/migrations/{migration_id}", "Abort a live migration (2.24)").status(&[S::ACCEPTED]),
    post("/compute/v2.1/servers/{server_id}/migrations/{migration_id}/action", "Force a live migration to complete (2.22)").status(&[S::ACCEPTED]),
    get("/compute/v2.1/servers/{server_id}/os-volume_attachments", "A server's volume attachments"),
    post("/compute/v2.1/servers/{server_id}/os-volume_attachments", "Attach a volume").clause(&["B.4.1.4"]),
    get("/compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", "One volume attachment"),
    delete("/compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", "Detach a volume").clause(&["B.4.1.5"]).status(&[S::ACCEPTED]),
    get("/compute/v2.1/flavors", "List flavors"),
    get("/compute/v2.1/flavors/detail", "List flavors with details").clause(&["B.2.2.4"]),
    post("/compute/v2.1/flavors", "Create a flavor").clause(&["B.2.2.1"]),
    get("/compute/v2.1/flavors/{flavor_id}", "Show a flavor").clause(&["B.2.2.3"]),
    put("/compute/v2.1/flavors/{flavor_id}", "Change a flavor's description (admin, 2.55)"),
    delete("/compute/v2.1/flavors/{flavor_id}", "Delete a flavor").clause(&["B.2.2.2"]).status(&[S::ACCEPTED]),
    get("/compute/v2.1/flavors/{flavor_id}/os-flavor-access", "Projects with access to a private flavor"),
    post("/compute/v2.1/flavors/{flavor_id}/action", "addTenantAccess or removeTenantAccess"),
    get("/compute/v2.1/flavors/{flavor_id}/os-extra_specs", "A flavor's extra specs"),
    post("/compute/v2.1/flavors/{flavor_id}/os-extra_specs", "Add extra specs"),
    get("/compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "One extra spec"),
    put("/compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "Set one extra spec"),
    delete("/compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "Delete one extra spec").status(&[S::ACCEPTED]),
    get("/compute/v2.1/os-keypairs", "List key pairs"),
    post("/compute/v2.1/os-keypairs", "Create or import a key pair (200 before 2.2)").status(&[S::CREATED, S::OK]),
    get("/compute/v2.1/os-keypairs/{keypair_name}", "Show a key pair"),
    delete("/compute/v2.1/os-keypairs/{keypair_name}", "Delete a key pair (202 before 2.2)").status(&[S::NO_CONTENT, S::ACCEPTED]),
    get("/compute/v2.1/os-server-groups", "List server groups"),
    post("/compute/v2.1/os-server-groups", "Create a server group"),
    get("/compute/v2.1/os-server-groups/{server_group_id}", "Show a server group"),
    delete("/compute/v2.1/os-server-groups/{server_group_id}", "Delete a server group"),
    get("/compute/v2.1/os-migrations", "List migrations (admin)"),
    get("/compute/v2.1/os-simple-tenant-usage", "Usage of every project (admin)"),
    get("/compute/v2.1/os-simple-tenant-usage/{project_id}", "Usage of one project"),
    get("/compute/v2.1/limits", "The caller's compute limits and usage (the standard's quota)").clause(&["B.1.3.1"]),
    get("/compute/v2.1/os-quota-sets/{project_id}", "A project's compute quotas"),
    get("/compute/v2.1/os-quota-sets/{project_id}/defaults", "The default compute quotas"),
    get("/compute/v2.1/os-quota-sets/{project_id}/detail", "A project's compute quotas with usage"),
    put("/compute/v2.1/os-quota-sets/{project_id}", "Set a project's compute quotas (admin)"),
    delete("/compute/v2.1/os-quota-sets/{project_id}", "Reset a project's compute quotas (admin)").status(&[S::ACCEPTED]),
    get("/compute/v2.1/os-hypervisors", "List hypervisors (the nodes)"),
    get("/compute/v2.1/os-hypervisors/detail", "List hypervisors with capacity and use"),
    get("/compute/v2.1/os-hypervisors/statistics", "Capacity and use of the whole data centre").clause(&["B.1.3.1"]),
    get("/compute/v2.1/os-hypervisors/{hypervisor_id}", "Show a hypervisor"),
    get("/compute/v2.1/os-hypervisors/{hypervisor_hostname_pattern}/search", "Find hypervisors by name"),
    get("/compute/v2.1/os-hypervisors/{hypervisor_id}/uptime", "A hypervisor's uptime"),
    get("/compute/v2.1/os-aggregates", "List host aggregates"),
    get("/compute/v2.1/os-services", "List compute services (one per node)"),
    get("/compute/v2.1/os-availability-zone", "List availability zones").clause(&["B.1.2"]),
    get("/compute/v2.1/os-availability-zone/detail", "List availability zones with their hosts").clause(&["B.1.2"]),
    // ── Image: Glance v2 (B.2.3) ──
    get("/image/v2/images", "List images").clause(&["B.2.3.6"]),
    post("/image/v2/images", "Create an image record").clause(&["B.2.3.1"]).status(&[S::CREATED]),
    get("/image/v2/images/{image_id}", "Show an image").clause(&["B.2.3.4"]),
    patch("/image/v2/images/{image_id}", "Update an image (JSON patch)").clause(&["B.2.3.5"]),
    delete("/image/v2/images/{image_id}", "Delete an image").clause(&["B.2.3.3"]),
    put("/image/v2/images/{image_id}/file", "Upload an image's data").clause(&["B.2.3.2"]).status(&[S::NO_CONTENT]),
    get("/image/v2/images/{image_id}/file", "Download an image's data (204 when it has none)").status(&[S::OK, S::NO_CONTENT]),
    post("/image/v2/images/{image_id}/import", "Import an image's data (web-download, glance-direct)").status(&[S::ACCEPTED]),
    get("/image/v2/images/{image_id}/tasks", "An image's import tasks"),
    put("/image/v2/images/{image_id}/tags/{tag}", "Add a tag").status(&[S::NO_CONTENT]),
    delete("/image/v2/images/{image_id}/tags/{tag}", "Remove a tag"),
    get("/image/v2/images/{image_id}/members", "List an image's members"),
    post("/image/v2/images/{image_id}/members", "Share an image with a project"),
    get("/image/v2/images/{image_id}/members/{member_id}", "Show an image member"),
    put("/image/v2/images/{image_id}/members/{member_id}", "Accept or reject a shared image"),
    delete("/image/v2/images/{image_id}/members/{member_id}", "Stop sharing an image"),
    post("/image/v2/images/{image_id}/actions/deactivate", "Deactivate an image").status(&[S::NO_CONTENT]),
    post("/image/v2/images/{image_id}/actions/reactivate", "Reactivate an image").status(&[S::NO_CONTENT]),
    get("/image/v2/tasks", "List tasks"),
    get("/image/v2/tasks/{task_id}", "Show a task"),
    get("/image/v2/info/import", "The import methods offered"),
    get("/image/v2/schemas/image", "The image schema"),
    get("/image/v2/schemas/images", "The images schema"),
    get("/image/v2/schemas/member", "The member schema"),
    get("/image/v2/schemas/members", "The members schema"),
    // ── Network: Neutron v2.0 (B.3.1, B.3.2, B.3.3, B.3.5) ──
    get("/network/v2.0/extensions", "List extensions (publicips among them)"),
    get("/network/v2.0/extensions/{alias}", "Show an extension"),
    get("/network/v2.0/networks", "List networks (with subnet_details)").clause(&["B.3.1.1"]),
    post("/network/v2.0/networks", "Create a network").status(&[S::CREATED]).body(Some("network"), of::<super::network::networks::CreateBody>),
    get("/network/v2.0/networks/{network_id}", "Show a network").clause(&["B.3.1.1"]),
    put("/network/v2.0/networks/{network_id}", "Update a network").body(Some("network"), of::<super::network::networks::UpdateBody>),
    delete("/network/v2.0/networks/{network_id}", "Delete a network"),
    get("/network/v2.0/subnets", "List subnets").clause(&["B.3.1.1"]),
    post("/network/v2.0/subnets", "Create a subnet").status(&[S::CREATED]).body(Some("subnet"), of::<super::network::subnets::CreateBody>),
    get("/network/v2.0/subnets/{subnet_id}", "Show a subnet").clause(&["B.3.1.1"]),
    put("/network/v2.0/subnets/{subnet_id}", "Update a subnet").body(Some("subnet"), of::<super::network::subnets::UpdateBody>),
    delete("/network/v2.0/subnets/{subnet_id}", "Delete a subnet"),
    get("/network/v2.0/ports", "List ports"),
    post("/network/v2.0/ports", "Create a port").status(&[S::CREATED]).body(Some("port"), of::<super::network::ports::CreateBody>),
    get("/network/v2.0/ports/{port_id}", "Show a port"),
    put("/network/v2.0/ports/{port_id}", "Update a port").body(Some("port"), of::<super::network::ports::UpdateBody>),
    delete("/network/v2.0/ports/{port_id}", "Delete a port"),
    get("/network/v2.0/routers", "List routers"),
    post("/network/v2.0/routers", "Create a router").status(&[S::CREATED]).body(Some("router"), of::<super::network::routers::CreateBody>),
    get("/network/v2.0/routers/{router_id}", "Show a router"),
    put("/network/v2.0/routers/{router_id}", "Update a router (external gateway, routes)").body(Some("router"), of::<super::network::routers::UpdateBody>),
    delete("/network/v2.0/routers/{router_id}", "Delete a router"),
    put("/network/v2.0/routers/{router_id}/add_router_interface", "Add a subnet or port to a router").body(None, of::<super::network::routers::InterfaceBody>),
    put("/network/v2.0/routers/{router_id}/remove_router_interface", "Remove a subnet or port from a router").body(None, of::<super::network::routers::InterfaceBody>),
    get("/network/v2.0/floatingips", "List floating IPs"),
    post("/network/v2.0/floatingips", "Create a floating IP").clause(&["B.3.2.1"]).status(&[S::CREATED]).body(Some("floatingip"), of::<super::network::floating_ips::CreateBody>),
    get("/network/v2.0/floatingips/{floatingip_id}", "Show a floating IP"),
    put("/network/v2.0/floatingips/{floatingip_id}", "Associate or disassociate a floating IP").clause(&["B.3.2.1"]).body(Some("floatingip"), of::<super::network::floating_ips::UpdateBody>),
    delete("/network/v2.0/floatingips/{floatingip_id}", "Delete a floating IP").clause(&["B.3.2.2"]),
    get("/network/v2.0/publicips", "List public IPs (extension)"),
    post("/network/v2.0/publicips", "Create a public IP (extension)").clause(&["B.3.3.1"]).status(&[S::CREATED]).body(Some("publicip"), of::<super::network::public_ips::CreateBody>),
    get("/network/v2.0/publicips/{publicip_id}", "Show a public IP (extension)").clause(&["B.3.3.4"]),
    delete("/network/v2.0/publicips/{publicip_id}", "Delete a public IP (extension)").clause(&["B.3.3.5"]),
    post("/network/v2.0/publicips/{publicip_id}/bind", "Bind a public IP to a server or private IP (extension)").clause(&["B.3.3.2"]).body(None, of::<super::network::public_ips::BindBody>),
    post("/network/v2.0/publicips/{publicip_id}/unbind", "Unbind a public IP (extension)").clause(&["B.3.3.3"]),
    get("/network/v2.0/security-groups", "List security groups"),
    post("/network/v2.0/security-groups", "Create a security group").clause(&["B.3.5.1"]).status(&[S::CREATED]).body(Some("security_group"), of::<super::network::security_groups::GroupBody>),
    get("/network/v2.0/security-groups/{security_group_id}", "Show a security group").clause(&["B.3.5.3"]),
    put("/network/v2.0/security-groups/{security_group_id}", "Update a security group").body(Some("security_group"), of::<super::network::security_groups::GroupBody>),
    delete("/network/v2.0/security-groups/{security_group_id}", "Delete a security group").clause(&["B.3.5.2"]),
    get("/network/v2.0/security-group-rules", "List security group rules"),
    post("/network/v2.0/security-group-rules", "Create a security group rule").clause(&["B.3.5.4"]).status(&[S::CREATED]).body(Some("security_group_rule"), of::<super::network::security_groups::RuleBody>),
    get("/network/v2.0/security-group-rules/{security_group_rule_id}", "Show a security group rule"),
    delete("/network/v2.0/security-group-rules/{security_group_rule_id}", "Delete a security group rule").clause(&["B.3.5.5"]),
    get("/network/v2.0/quotas", "List projects' network quotas (admin)"),
    get("/network/v2.0/quotas/tenant", "The caller's project id"),
    get("/network/v2.0/quotas/{project_id}", "A project's network quotas"),
    get("/network/v2.0/quotas/{project_id}/default", "The default network quotas"),
    get("/network/v2.0/quotas/{project_id}/details", "A project's network quotas with usage"),
    put("/network/v2.0/quotas/{project_id}", "Set a project's network quotas (admin)"),
    delete("/network/v2.0/quotas/{project_id}", "Reset a project's network quotas (admin)"),
    // ── Block storage: Cinder v3 (B.1.3.2, B.4.1) ──
    get("/volume/v3/{project_id}/volumes", "List volumes"),
    get("/volume/v3/{project_id}/volumes/detail", "List volumes with details"),
    get("/volume/v3/{project_id}/volumes/summary", "Count and size of the volumes (3.12)"),
    post("/volume/v3/{project_id}/volumes", "Create a volume").clause(&["B.4.1.1"]).status(&[S::ACCEPTED]),
    get("/volume/v3/{project_id}/volumes/{volume_id}", "Show a volume").clause(&["B.4.1.3"]),
    put("/volume/v3/{project_id}/volumes/{volume_id}", "Update a volume"),
    delete("/volume/v3/{project_id}/volumes/{volume_id}", "Delete a volume").clause(&["B.4.1.2"]).status(&[S::ACCEPTED]),
    post("/volume/v3/{project_id}/volumes/{volume_id}/action", "Act on a volume: os-extend, os-set_bootable, os-update_readonly_flag, os-reset_status, \
         os-attach, os-detach, os-reserve, os-unreserve, os-begin_detaching, os-roll_detaching, \
         os-initialize_connection, os-terminate_connection, os-force_delete").clause(&["B.4.1.6"]).status(&[S::ACCEPTED]),
    get("/volume/v3/{project_id}/volumes/{volume_id}/metadata", "A volume's metadata"),
    post("/volume/v3/{project_id}/volumes/{volume_id}/metadata", "Add to a volume's metadata"),
    put("/volume/v3/{project_id}/volumes/{volume_id}/metadata", "Replace a volume's metadata"),
    get("/volume/v3/{project_id}/volumes/{volume_id}/metadata/{key}", "One metadata item"),
    put("/volume/v3/{project_id}/volumes/{volume_id}/metadata/{key}", "Set one metadata item"),
    delete("/volume/v3/{project_id}/volumes/{volume_id}/metadata/{key}", "Delete one metadata item").status(&[S::OK]),
    get("/volume/v3/{project_id}/snapshots", "List snapshots"),
    get("/volume/v3/{project_id}/snapshots/detail", "List snapshots with details"),
    post("/volume/v3/{project_id}/snapshots", "Create a snapshot").status(&[S::ACCEPTED]),
    get("/volume/v3/{project_id}/snapshots/{snapshot_id}", "Show a snapshot"),
    put("/volume/v3/{project_id}/snapshots/{snapshot_id}", "Update a snapshot"),
    delete("/volume/v3/{project_id}/snapshots/{snapshot_id}", "Delete a snapshot").status(&[S::ACCEPTED]),
    get("/volume/v3/{project_id}/types", "List volume types"),
    get("/volume/v3/{project_id}/types/default", "The default volume type"),
    post("/volume/v3/{project_id}/types", "Create a volume type (admin)"),
    get("/volume/v3/{project_id}/types/{volume_type_id}", "Show a volume type"),
    put("/volume/v3/{project_id}/types/{volume_type_id}", "Update a volume type (admin)"),
    delete("/volume/v3/{project_id}/types/{volume_type_id}", "Delete a volume type (admin)").status(&[S::ACCEPTED]),
    get("/volume/v3/{project_id}/types/{volume_type_id}/extra_specs", "A volume type's extra specs"),
    post("/volume/v3/{project_id}/types/{volume_type_id}/extra_specs", "Add extra specs (admin)"),
    get("/volume/v3/{project_id}/types/{volume_type_id}/extra_specs/{key}", "One extra spec"),
    put("/volume/v3/{project_id}/types/{volume_type_id}/extra_specs/{key}", "Set one extra spec (admin)"),
    delete("/volume/v3/{project_id}/types/{volume_type_id}/extra_specs/{key}", "Delete one extra spec (admin)").status(&[S::ACCEPTED]),
    get("/volume/v3/{project_id}/limits", "The caller's block-storage limits and usage (the standard's quota)").clause(&["B.1.3.2"]),
    get("/volume/v3/{project_id}/os-quota-sets/{target_project_id}", "A project's block-storage quotas"),
    get("/volume/v3/{project_id}/os-quota-sets/{target_project_id}/defaults", "The default block-storage quotas"),
    put("/volume/v3/{project_id}/os-quota-sets/{target_project_id}", "Set a project's block-storage quotas (admin)"),
    delete("/volume/v3/{project_id}/os-quota-sets/{target_project_id}", "Reset a project's block-storage quotas (admin)").status(&[S::OK]),
    get("/volume/v3/{project_id}/scheduler-stats/get_pools", "Storage pools: each node's capacity (admin)"),
    get("/volume/v3/{project_id}/os-availability-zone", "List block-storage availability zones"),
    get("/volume/v3/{project_id}/extensions", "List extensions (none)"),
    // ── Load balancing: Octavia v2 (B.3.4) ──
    get("/load-balancer/v2/lbaas/loadbalancers", "List load balancers").clause(&["B.3.4.4"]),
    post("/load-balancer/v2/lbaas/loadbalancers", "Create a load balancer").clause(&["B.3.4.1"]).status(&[S::CREATED]).body(Some("loadbalancer"), of::<super::load_balancer::load_balancers::CreateBody>),
    get("/load-balancer/v2/lbaas/loadbalancers/{loadbalancer_id}", "Show a load balancer").clause(&["B.3.4.3"]),
    put("/load-balancer/v2/lbaas/loadbalancers/{loadbalancer_id}", "Update a load balancer").body(Some("loadbalancer"), of::<super::load_balancer::load_balancers::UpdateBody>),
    delete("/load-balancer/v2/lbaas/loadbalancers/{loadbalancer_id}", "Delete a load balancer (cascade=true for everything under it)").clause(&["B.3.4.2"]),
    patch("/load-balancer/v2/lbaas/loadbalancers/{loadbalancer_id}/nodes", "Add or remove back-end nodes: servers, as members of the default pool (extension)").clause(&["B.3.4.5", "B.3.4.6"]).body(None, of::<super::load_balancer::load_balancers::NodesBody>),
    get("/load-balancer/v2/lbaas/listeners", "List listeners"),
    post("/load-balancer/v2/lbaas/listeners", "Create a listener").status(&[S::CREATED]).body(Some("listener"), of::<super::load_balancer::children::ListenerBody>),
    get("/load-balancer/v2/lbaas/listeners/{listener_id}", "Show a listener"),
    put("/load-balancer/v2/lbaas/listeners/{listener_id}", "Update a listener"),
    delete("/load-balancer/v2/lbaas/listeners/{listener_id}", "Delete a listener"),
    get("/load-balancer/v2/lbaas/pools", "List pools"),
    post("/load-balancer/v2/lbaas/pools", "Create a pool").status(&[S::CREATED]).body(Some("pool"), of::<super::load_balancer::children::PoolBody>),
    get("/load-balancer/v2/lbaas/pools/{pool_id}", "Show a pool"),
    put("/load-balancer/v2/lbaas/pools/{pool_id}", "Update a pool"),
    delete("/load-balancer/v2/lbaas/pools/{pool_id}", "Delete a pool"),
    get("/load-balancer/v2/lbaas/pools/{pool_id}/members", "List a pool's members"),
    post("/load-balancer/v2/lbaas/pools/{pool_id}/members", "Add a member").status(&[S::CREATED]).body(Some("member"), of::<super::load_balancer::children::MemberBody>),
    get("/load-balancer/v2/lbaas/pools/{pool_id}/members/{member_id}", "Show a member"),
    put("/load-balancer/v2/lbaas/pools/{pool_id}/members/{member_id}", "Update a member"),
    delete("/load-balancer/v2/lbaas/pools/{pool_id}/members/{member_id}", "Remove a member"),
    get("/load-balancer/v2/lbaas/healthmonitors", "List health monitors"),
    post("/load-balancer/v2/lbaas/healthmonitors", "Create a health monitor").status(&[S::CREATED]).body(Some("healthmonitor"), of::<super::load_balancer::children::MonitorBody>),
    get("/load-balancer/v2/lbaas/healthmonitors/{healthmonitor_id}", "Show a health monitor"),
    put("/load-balancer/v2/lbaas/healthmonitors/{healthmonitor_id}", "Update a health monitor"),
    delete("/load-balancer/v2/lbaas/healthmonitors/{healthmonitor_id}", "Delete a health monitor"),
    // ── Nodes ──
    post(yunji_common::agent_api::JOIN_PATH, "An agent joins with the join token and a CSR").public().body(None, of::<yunji_common::agent_api::JoinRequest>),
];

/// The table's paths, split once.
static COMPILED: LazyLock<Vec<Vec<&'static str>>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .map(|r| canonical(r.path.split('/').filter(|s| !s.is_empty()).collect()))
        .collect()
});

/// Folds the legacy and alias forms of a path into the canonical one the table uses.
pub fn canonical(mut s: Vec<&str>) -> Vec<&str> {
    match s.as_slice() {
        ["compute", "v2.1", project, collection, ..]
            if !super::compute::COLLECTIONS.contains(project)
                && super::compute::COLLECTIONS.contains(collection) =>
        {
            s.remove(2);
        }
        ["volume", "v3", project, collection, ..]
            if !super::volume::COLLECTIONS.contains(project)
                && super::volume::COLLECTIONS.contains(collection) =>
        {
            s.remove(2);
        }
        ["load-balancer", "v2.0", ..] => s[1] = "v2",
        ["network", .., last] if last.ends_with(".json") => {
            let n = s.len() - 1;
            s[n] = s[n].trim_end_matches(".json");
        }
        _ => {}
    }
    s
}

/// The route a request reaches, or the 404/405 it gets instead.
pub fn admit(method: &Method, segments: &[String]) -> Result<&'static Route, ApiError> {
    let path = canonical(segments.iter().map(String::as_str).collect());
    let mut allowed: Vec<&Method> = Vec::new();
    for (route, template) in ROUTES.iter().zip(COMPILED.iter()) {
        if template_matches(template.iter().copied(), path.iter().copied()) {
            if route.method == method {
                return Ok(route);
            }
            if !allowed.contains(&&route.method) {
                allowed.push(&route.method);
            }
        }
    }
    let shown = format!("/{}", segments.join("/"));
    if allowed.is_empty() {
        return Err(ApiError::not_found(format!(
            "{shown} is not an endpoint of this cloud; GET /openapi.json lists every one"
        )));
    }
    let allow = allowed
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {shown}; it takes {allow}"),
    );
    e.allow = HeaderValue::from_str(&allow).ok();
    Err(e)
}
