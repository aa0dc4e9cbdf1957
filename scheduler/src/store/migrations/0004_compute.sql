-- Compute: flavors (with their access lists and extra specs), key pairs, per-project
-- compute quotas, and the stable integer ids Nova gives hypervisors (one per node).

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

-- Projects that may use a private flavor.
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

-- SSH key pairs belong to a user, unique by name per user; `id` is Nova's integer id.
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

-- Limits an administrator set for a project; a resource without a row has the
-- configured default. -1 is unlimited.
CREATE TABLE compute_quotas (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL CHECK (hard_limit >= -1),
    PRIMARY KEY (project_id, resource)
);

-- Nova's integer hypervisor (and compute service) ids: one per node, never reused.
CREATE TABLE hypervisors (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    node_name TEXT NOT NULL UNIQUE REFERENCES nodes(name) ON DELETE CASCADE
);

INSERT INTO hypervisors (node_name) SELECT name FROM nodes ORDER BY joined_at, name;

CREATE TRIGGER nodes_hypervisor_id AFTER INSERT ON nodes
BEGIN
    INSERT OR IGNORE INTO hypervisors (node_name) VALUES (NEW.name);
END;

-- The flavors every OpenStack cloud starts with.
INSERT INTO flavors (id, name, vcpus, ram_mb, disk_gb, created_at) VALUES
    ('1', 'm1.tiny',   1,   512,   1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    ('2', 'm1.small',  1,  2048,  20, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    ('3', 'm1.medium', 2,  4096,  40, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    ('4', 'm1.large',  4,  8192,  80, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    ('5', 'm1.xlarge', 8, 16384, 160, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'));
