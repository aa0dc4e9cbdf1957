-- Networking (Neutron v2.0): networks, subnets, ports with their fixed IPs, and
-- per-project network quotas. `seq` is creation order, which lists and paging follow.

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
-- Covers the quota count in every create's transaction and the project's listing.
CREATE INDEX networks_project ON networks(project_id, seq);

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
);
CREATE INDEX subnets_network ON subnets(network_id, seq);
CREATE INDEX subnets_project ON subnets(project_id, seq);

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
CREATE INDEX ports_network ON ports(network_id, device_owner);
CREATE INDEX ports_project ON ports(project_id, seq);
CREATE INDEX ports_device ON ports(device_id);
CREATE INDEX ports_host ON ports(binding_host_id);

-- The addresses IPAM handed out. The primary key is the last guard against handing
-- an address out twice; a subnet cannot go while one of its addresses is held.
CREATE TABLE port_fixed_ips (
    subnet_id  TEXT NOT NULL REFERENCES subnets(id),
    ip_address TEXT NOT NULL,
    port_id    TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX port_fixed_ips_port ON port_fixed_ips(port_id);

-- A port's security groups, as ids. A table of its own (not a JSON column) so that the
-- security-group service can reference and validate them.
CREATE TABLE port_security_groups (
    port_id           TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
    security_group_id TEXT NOT NULL,
    PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX port_security_groups_group ON port_security_groups(security_group_id);

-- Limits an administrator set for a project; a resource without a row has the
-- configured default. -1 is unlimited.
CREATE TABLE network_quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL CHECK (hard_limit >= -1),
    PRIMARY KEY (project_id, resource)
);
