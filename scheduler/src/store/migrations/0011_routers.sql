-- Neutron routers. Their gateway and interfaces are rows of `ports` with the router
-- as `device_id`, so IPAM, subnet-in-use and node pushes treat them as any port.

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
CREATE INDEX routers_project ON routers(project_id, seq);
CREATE INDEX routers_host ON routers(host);

-- Floating IPs. The external address is held by a port of the floating IP's own
-- (`device_owner` 'network:floatingip', `device_id` the floating IP), so IPAM guards it.
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
CREATE INDEX floating_ips_project ON floating_ips(project_id, seq);
CREATE INDEX floating_ips_router ON floating_ips(router_id);

-- Whatever deletes a port (the port API, a server's deletion, its network's) leaves
-- its floating IPs disassociated rather than pointing at nothing.
CREATE TRIGGER ports_delete_disassociates_floating_ips AFTER DELETE ON ports
BEGIN
    UPDATE floating_ips
       SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL, status = 'DOWN'
     WHERE port_id = OLD.id;
END;
