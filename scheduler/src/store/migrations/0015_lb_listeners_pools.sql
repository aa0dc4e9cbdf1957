-- Octavia listeners, pools, members and health monitors. They go with their load
-- balancer (cascade delete is a row delete); their provisioning follows the load
-- balancer's, which every change puts back to PENDING_UPDATE.
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
CREATE INDEX lb_pools_load_balancer ON lb_pools(load_balancer_id, seq);

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
