CREATE TRIGGER nodes_hypervisor_id AFTER INSERT ON nodes
BEGIN
    INSERT OR IGNORE INTO hypervisors (node_name) VALUES (NEW.name);
END;

CREATE TRIGGER ports_delete_disassociates_floating_ips AFTER DELETE ON ports
BEGIN
    UPDATE floating_ips
       SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL, status = 'DOWN'
     WHERE port_id = OLD.id;
END;

CREATE TABLE application_credentials (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    secret_hash  TEXT NOT NULL,
    role_ids     TEXT NOT NULL,
    unrestricted INTEGER NOT NULL DEFAULT 0,
    expires_at   TEXT,
    created_at   TEXT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE compute_quotas (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL CHECK (hard_limit >= -1),
    PRIMARY KEY (project_id, resource)
);

CREATE TABLE domain_role_assignments (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    role_id   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, domain_id, role_id)
);

CREATE TABLE domains (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL
);

CREATE TABLE flavor_access (
    flavor_id  TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    PRIMARY KEY (flavor_id, project_id)
);

CREATE TABLE flavor_extra_specs (
    flavor_id TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (flavor_id, key)
);

CREATE TABLE flavors (
    -- Creation order: Nova's internal integer id (sort_key=id, created_at).
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL UNIQUE,
    vcpus        INTEGER NOT NULL CHECK (vcpus > 0),
    ram_mb       INTEGER NOT NULL CHECK (ram_mb > 0),
    disk_gb      INTEGER NOT NULL CHECK (disk_gb >= 0),
    ephemeral_gb INTEGER NOT NULL DEFAULT 0 CHECK (ephemeral_gb >= 0),
    swap_mb      INTEGER NOT NULL DEFAULT 0 CHECK (swap_mb >= 0),
    rxtx_factor  REAL NOT NULL DEFAULT 1.0 CHECK (rxtx_factor > 0),
    is_public    INTEGER NOT NULL DEFAULT 1,
    disabled     INTEGER NOT NULL DEFAULT 0,
    description  TEXT,
    created_at   TEXT NOT NULL
);

CREATE TABLE floating_ips (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    project_id          TEXT NOT NULL,
    floating_network_id TEXT NOT NULL REFERENCES networks(id),
    floating_ip_address TEXT NOT NULL,
    port_id             TEXT,
    fixed_ip_address    TEXT,
    router_id           TEXT,
    status              TEXT NOT NULL DEFAULT 'DOWN',
    description         TEXT NOT NULL DEFAULT '',
    -- The public IP's name (the `publicips` view); '' for plain floating IPs.
    name                TEXT NOT NULL DEFAULT '',
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    -- A fixed address has at most one floating IP.
    UNIQUE (port_id, fixed_ip_address)
);

CREATE TABLE hypervisors (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    node_name TEXT NOT NULL UNIQUE REFERENCES nodes(name) ON DELETE CASCADE
);

CREATE TABLE image_members (
    image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    member_id  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member_id)
);

CREATE TABLE image_tasks (
    id         TEXT PRIMARY KEY,
    image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    owner      TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('processing', 'success', 'failure')),
    method     TEXT NOT NULL,
    uri        TEXT NOT NULL,
    message    TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE images (
    id               TEXT PRIMARY KEY,
    name             TEXT,
    owner            TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('queued', 'saving', 'importing', 'active', 'deactivated')),
    visibility       TEXT NOT NULL
                     CHECK (visibility IN ('public', 'private', 'shared', 'community')),
    protected        INTEGER NOT NULL DEFAULT 0,
    os_hidden        INTEGER NOT NULL DEFAULT 0,
    disk_format      TEXT,
    container_format TEXT,
    min_ram          INTEGER NOT NULL DEFAULT 0 CHECK (min_ram >= 0),
    min_disk         INTEGER NOT NULL DEFAULT 0 CHECK (min_disk >= 0),
    size             INTEGER,
    virtual_size     INTEGER,
    checksum         TEXT,
    os_hash_algo     TEXT,
    os_hash_value    TEXT,
    architecture     TEXT,
    -- JSON array of strings, in the order added.
    tags             TEXT NOT NULL DEFAULT '[]',
    -- JSON object of string values: the additional properties.
    properties       TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE "instance_actions" (
    id          INTEGER PRIMARY KEY,
    server_id   TEXT NOT NULL REFERENCES servers(id),
    request_id  TEXT NOT NULL,
    action      TEXT NOT NULL,
    event       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    start_time  TEXT NOT NULL,
    finish_time TEXT,
    result      TEXT CHECK (result IN ('Success', 'Error')),
    message     TEXT
);

CREATE TABLE keypairs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'ssh',
    created_at  TEXT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE lb_health_monitors (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    pool_id          TEXT NOT NULL UNIQUE REFERENCES lb_pools(id) ON DELETE CASCADE,
    project_id       TEXT NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    kind             TEXT NOT NULL,
    delay            INTEGER NOT NULL,
    timeout          INTEGER NOT NULL,
    max_retries      INTEGER NOT NULL,
    max_retries_down INTEGER NOT NULL,
    http_method      TEXT,
    url_path         TEXT,
    expected_codes   TEXT,
    admin_state_up   INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE lb_listeners (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    load_balancer_id TEXT NOT NULL REFERENCES load_balancers(id) ON DELETE CASCADE,
    project_id       TEXT NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    description      TEXT NOT NULL DEFAULT '',
    protocol         TEXT NOT NULL,
    protocol_port    INTEGER NOT NULL CHECK (protocol_port BETWEEN 1 AND 65535),
    default_pool_id  TEXT,
    connection_limit INTEGER NOT NULL DEFAULT -1,
    admin_state_up   INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (load_balancer_id, protocol_port)
);

CREATE TABLE lb_members (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    pool_id        TEXT NOT NULL REFERENCES lb_pools(id) ON DELETE CASCADE,
    project_id     TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    address        TEXT NOT NULL,
    protocol_port  INTEGER NOT NULL CHECK (protocol_port BETWEEN 1 AND 65535),
    weight         INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 256),
    subnet_id      TEXT,
    -- The server the standard's nodes extension added it for, if any.
    server_id      TEXT,
    admin_state_up INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (pool_id, address, protocol_port)
);

CREATE TABLE lb_pools (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    load_balancer_id TEXT NOT NULL REFERENCES load_balancers(id) ON DELETE CASCADE,
    listener_id      TEXT REFERENCES lb_listeners(id) ON DELETE SET NULL,
    project_id       TEXT NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    description      TEXT NOT NULL DEFAULT '',
    protocol         TEXT NOT NULL,
    lb_algorithm     TEXT NOT NULL,
    admin_state_up   INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE load_balancers (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    project_id          TEXT NOT NULL,
    name                TEXT NOT NULL DEFAULT '',
    description         TEXT NOT NULL DEFAULT '',
    vip_port_id         TEXT NOT NULL,
    vip_network_id      TEXT NOT NULL,
    vip_subnet_id       TEXT NOT NULL,
    vip_address         TEXT NOT NULL,
    provisioning_status TEXT NOT NULL,
    operating_status    TEXT NOT NULL,
    admin_state_up      INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE TABLE network_quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL CHECK (hard_limit >= -1),
    PRIMARY KEY (project_id, resource)
);

CREATE TABLE networks (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    id                    TEXT NOT NULL UNIQUE,
    project_id            TEXT NOT NULL,
    name                  TEXT NOT NULL DEFAULT '',
    description           TEXT NOT NULL DEFAULT '',
    admin_state_up        INTEGER NOT NULL DEFAULT 1,
    shared                INTEGER NOT NULL DEFAULT 0,
    external              INTEGER NOT NULL DEFAULT 0,
    mtu                   INTEGER NOT NULL,
    port_security_enabled INTEGER NOT NULL DEFAULT 1,
    -- The VXLAN network identifier: one per network, cloud-wide.
    vni                   INTEGER NOT NULL UNIQUE CHECK (vni BETWEEN 1 AND 16777215),
    status                TEXT NOT NULL DEFAULT 'ACTIVE',
    revision_number       INTEGER NOT NULL DEFAULT 0,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);

CREATE TABLE nodes (
    name      TEXT PRIMARY KEY,
    url       TEXT NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('joining', 'up', 'down')),
    status    TEXT,
    error     TEXT,
    last_seen TEXT,
    joined_at TEXT NOT NULL
);

CREATE TABLE "port_fixed_ips" (
    subnet_id  TEXT NOT NULL REFERENCES subnets(id),
    ip_address TEXT NOT NULL,
    port_seq   INTEGER NOT NULL REFERENCES ports(seq) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    PRIMARY KEY (subnet_id, ip_address)
) WITHOUT ROWID;

CREATE TABLE "port_security_groups" (
    port_seq          INTEGER NOT NULL REFERENCES ports(seq) ON DELETE CASCADE,
    security_group_id TEXT NOT NULL,
    position          INTEGER NOT NULL,
    PRIMARY KEY (port_seq, security_group_id)
) WITHOUT ROWID;

CREATE TABLE ports (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    id                    TEXT NOT NULL UNIQUE,
    network_id            TEXT NOT NULL REFERENCES networks(id),
    project_id            TEXT NOT NULL,
    name                  TEXT NOT NULL DEFAULT '',
    description           TEXT NOT NULL DEFAULT '',
    mac_address           TEXT NOT NULL,
    admin_state_up        INTEGER NOT NULL DEFAULT 1,
    status                TEXT NOT NULL DEFAULT 'DOWN',
    device_id             TEXT NOT NULL DEFAULT '',
    device_owner          TEXT NOT NULL DEFAULT '',
    port_security_enabled INTEGER NOT NULL DEFAULT 1,
    binding_host_id       TEXT NOT NULL DEFAULT '',
    -- JSON array of {ip_address, mac_address}.
    allowed_address_pairs TEXT NOT NULL DEFAULT '[]',
    revision_number       INTEGER NOT NULL DEFAULT 0,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    UNIQUE (network_id, mac_address)
);

CREATE TABLE project_role_assignments (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id, role_id)
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL REFERENCES domains(id),
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE regions (
    id               TEXT PRIMARY KEY,
    description      TEXT NOT NULL DEFAULT '',
    parent_region_id TEXT REFERENCES regions(id)
);

CREATE TABLE role_implications (
    prior_role_id   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    implied_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (prior_role_id, implied_role_id)
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE routers (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    project_id          TEXT NOT NULL,
    name                TEXT NOT NULL DEFAULT '',
    description         TEXT NOT NULL DEFAULT '',
    admin_state_up      INTEGER NOT NULL DEFAULT 1,
    status              TEXT NOT NULL DEFAULT 'ACTIVE',
    external_network_id TEXT REFERENCES networks(id),
    enable_snat         INTEGER NOT NULL DEFAULT 1,
    -- The node carrying the router's NAT; '' when none was up.
    host                TEXT NOT NULL DEFAULT '',
    revision_number     INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE TABLE schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         );

CREATE TABLE security_group_rules (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    security_group_id TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
    project_id        TEXT NOT NULL,
    direction         TEXT NOT NULL CHECK (direction IN ('ingress', 'egress')),
    ethertype         TEXT NOT NULL CHECK (ethertype IN ('IPv4', 'IPv6')),
    -- Lower-case name or decimal number as given; NULL is any protocol.
    protocol          TEXT,
    port_range_min    INTEGER,
    port_range_max    INTEGER,
    remote_ip_prefix  TEXT,
    remote_group_id   TEXT REFERENCES security_groups(id) ON DELETE CASCADE,
    description       TEXT NOT NULL DEFAULT '',
    revision_number   INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE security_groups (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    project_id      TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    is_default      INTEGER NOT NULL DEFAULT 0,
    revision_number INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE server_group_members (
    group_id  TEXT NOT NULL REFERENCES server_groups(id) ON DELETE CASCADE,
    server_id TEXT NOT NULL UNIQUE REFERENCES servers(id),
    PRIMARY KEY (group_id, server_id)
);

CREATE TABLE server_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    policy     TEXT NOT NULL CHECK (policy IN
                   ('affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity')),
    created_at TEXT NOT NULL
);

CREATE TABLE server_migrations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id     TEXT NOT NULL REFERENCES servers(id),
    kind          TEXT NOT NULL CHECK (kind IN ('live-migration', 'resize')),
    source_node   TEXT NOT NULL,
    dest_node     TEXT NOT NULL,
    status        TEXT NOT NULL,
    old_flavor_id TEXT NOT NULL,
    new_flavor_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE servers (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    flavor            TEXT NOT NULL,
    old_flavor        TEXT,
    image_id          TEXT,
    vm_state          TEXT NOT NULL,
    task_state        TEXT,
    power_state       INTEGER NOT NULL DEFAULT 0,
    host              TEXT,
    availability_zone TEXT,
    key_name          TEXT,
    user_data         TEXT,
    metadata          TEXT NOT NULL DEFAULT '{}',
    description       TEXT,
    networks          TEXT NOT NULL DEFAULT 'null',
    block_devices     TEXT NOT NULL DEFAULT '[]',
    security_groups   TEXT NOT NULL DEFAULT '[]',
    fault             TEXT,
    counted           INTEGER NOT NULL DEFAULT 1,
    locked            INTEGER NOT NULL DEFAULT 0,
    vcpus             INTEGER NOT NULL,
    ram_mb            INTEGER NOT NULL,
    disk_gb           INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    launched_at       TEXT,
    deleted_at        TEXT,
    deleted           INTEGER NOT NULL DEFAULT 0
, tags TEXT NOT NULL DEFAULT '[]');

CREATE TABLE subnets (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    network_id        TEXT NOT NULL REFERENCES networks(id),
    project_id        TEXT NOT NULL,
    name              TEXT NOT NULL DEFAULT '',
    description       TEXT NOT NULL DEFAULT '',
    ip_version        INTEGER NOT NULL CHECK (ip_version IN (4, 6)),
    cidr              TEXT NOT NULL,
    gateway_ip        TEXT,
    enable_dhcp       INTEGER NOT NULL DEFAULT 1,
    -- JSON arrays: [address], [{destination, nexthop}], [{start, end}].
    dns_nameservers   TEXT NOT NULL DEFAULT '[]',
    host_routes       TEXT NOT NULL DEFAULT '[]',
    allocation_pools  TEXT NOT NULL DEFAULT '[]',
    ipv6_ra_mode      TEXT,
    ipv6_address_mode TEXT,
    revision_number   INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
, ipam_cursor TEXT);

CREATE TABLE tokens (
    hash        BLOB PRIMARY KEY,
    user_id     TEXT NOT NULL,
    project_id  TEXT,
    app_cred_id TEXT,
    expires_at  TEXT NOT NULL,
    caller      TEXT NOT NULL,
    body        BLOB NOT NULL
);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    domain_id          TEXT NOT NULL REFERENCES domains(id),
    password_hash      TEXT,
    enabled            INTEGER NOT NULL DEFAULT 1,
    description        TEXT NOT NULL DEFAULT '',
    email              TEXT,
    default_project_id TEXT REFERENCES projects(id) ON DELETE SET NULL,
    created_at         TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE volume_attachments (
    id          TEXT PRIMARY KEY,
    volume_id   TEXT NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,
    server_id   TEXT NOT NULL,
    device      TEXT NOT NULL,
    mode        TEXT NOT NULL DEFAULT 'rw',
    host_name   TEXT,
    status      TEXT NOT NULL,
    attached_at TEXT,
    -- Boot-from-volume: the volume goes with the server.
    delete_on_termination INTEGER NOT NULL DEFAULT 0,
    UNIQUE (volume_id, server_id),
    -- Device names are per server: no two volumes on one server share one.
    UNIQUE (server_id, device)
);

CREATE TABLE volume_quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);

CREATE TABLE volume_snapshots (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    volume_id   TEXT NOT NULL REFERENCES volumes(id),
    name        TEXT,
    description TEXT,
    size_gb     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    metadata    TEXT NOT NULL DEFAULT '{}',
    counted     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE volume_types (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    is_public   INTEGER NOT NULL DEFAULT 1,
    extra_specs TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);

CREATE TABLE volumes (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    name              TEXT,
    description       TEXT,
    size_gb           INTEGER NOT NULL CHECK (size_gb > 0),
    status            TEXT NOT NULL,
    type_id           TEXT NOT NULL REFERENCES volume_types(id),
    availability_zone TEXT NOT NULL,
    host              TEXT,
    multiattach       INTEGER NOT NULL DEFAULT 0,
    bootable          INTEGER NOT NULL DEFAULT 0,
    read_only         INTEGER NOT NULL DEFAULT 0,
    metadata          TEXT NOT NULL DEFAULT '{}',
    image_id          TEXT,
    snapshot_id       TEXT,
    counted           INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE INDEX floating_ips_project ON floating_ips(project_id, seq);

CREATE INDEX floating_ips_router ON floating_ips(router_id);

CREATE INDEX image_members_member ON image_members(member_id);

CREATE INDEX image_tasks_image ON image_tasks(image_id);

CREATE INDEX images_created ON images(created_at, id);

CREATE INDEX images_owner ON images(owner);

CREATE INDEX instance_actions_open ON instance_actions(server_id) WHERE finish_time IS NULL;

CREATE INDEX instance_actions_server ON instance_actions(server_id, id);

CREATE INDEX lb_pools_load_balancer ON lb_pools(load_balancer_id, seq);

CREATE INDEX load_balancers_project ON load_balancers(project_id, seq);

CREATE INDEX networks_project ON networks(project_id, seq);

CREATE INDEX port_fixed_ips_port ON port_fixed_ips(port_seq, position);

CREATE INDEX port_security_groups_group ON port_security_groups(security_group_id);

CREATE INDEX ports_device ON ports(device_id) WHERE device_id != '';

CREATE INDEX ports_host ON ports(binding_host_id) WHERE binding_host_id != '';

CREATE INDEX ports_project ON ports(project_id, seq);

CREATE INDEX project_role_assignments_project ON project_role_assignments(project_id);

CREATE INDEX routers_host ON routers(host);

CREATE INDEX routers_project ON routers(project_id, seq);

CREATE INDEX security_group_rules_group ON security_group_rules(security_group_id, seq);

CREATE INDEX security_group_rules_project ON security_group_rules(project_id);

CREATE INDEX security_group_rules_remote ON security_group_rules(remote_group_id);

CREATE UNIQUE INDEX security_groups_default ON security_groups(project_id) WHERE is_default = 1;

CREATE INDEX security_groups_project ON security_groups(project_id, name);

CREATE INDEX server_groups_project ON server_groups(project_id, created_at, id);

CREATE INDEX server_migrations_server ON server_migrations(server_id, id);

CREATE INDEX servers_host ON servers(deleted, host, vcpus, ram_mb, disk_gb)
    WHERE deleted = 0 AND host IS NOT NULL;

CREATE INDEX servers_project ON servers(project_id, deleted, created_at, id);

CREATE INDEX servers_usage ON servers(project_id, deleted, counted, vcpus, ram_mb)
    WHERE deleted = 0 AND counted = 1;

CREATE INDEX subnets_network ON subnets(network_id, seq);

CREATE INDEX subnets_project ON subnets(project_id, seq);

CREATE INDEX tokens_expires ON tokens(expires_at);

CREATE INDEX tokens_user ON tokens(user_id);

CREATE INDEX volume_snapshots_project ON volume_snapshots(project_id, created_at, id);

CREATE INDEX volume_snapshots_volume ON volume_snapshots(volume_id);

CREATE INDEX volumes_host ON volumes(host, size_gb);

CREATE INDEX volumes_project ON volumes(project_id, created_at, id);

CREATE INDEX volumes_type ON volumes(type_id);

CREATE INDEX volumes_usage ON volumes(project_id, counted, size_gb);

