-- Octavia load balancers. The VIP is a row of `ports` (device_owner 'Octavia',
-- device_id the load balancer), made and removed in the same transaction as this row.
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
CREATE INDEX load_balancers_project ON load_balancers(project_id, seq);
