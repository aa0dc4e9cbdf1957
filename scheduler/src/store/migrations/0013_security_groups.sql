-- Security groups and their rules (Neutron, B.3.5). Each project has one `default`
-- group, made on first use; the partial unique index keeps it to exactly one.
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
CREATE INDEX security_groups_project ON security_groups(project_id, name);
CREATE UNIQUE INDEX security_groups_default ON security_groups(project_id) WHERE is_default = 1;

-- A rule referring to a group (`remote_group_id`) goes with that group, as in Neutron.
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
CREATE INDEX security_group_rules_group ON security_group_rules(security_group_id, seq);
CREATE INDEX security_group_rules_project ON security_group_rules(project_id);
CREATE INDEX security_group_rules_remote ON security_group_rules(remote_group_id);
