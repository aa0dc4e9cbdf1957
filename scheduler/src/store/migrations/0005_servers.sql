-- Servers: what was asked for (desired state) and what the node last observed.
-- vcpus/ram_mb/disk_gb hold what the server occupies on its host now (during an
-- unconfirmed resize, the larger of the two flavors); `counted` says whether it holds
-- quota (a failed build gives it back).

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
);
CREATE INDEX servers_project ON servers(project_id, deleted, created_at, id);
-- Covers the quota usage sum, which runs in every create's transaction.
CREATE INDEX servers_usage ON servers(project_id, deleted, counted, vcpus, ram_mb);
-- Covers the per-node allocation sums placement reads.
CREATE INDEX servers_host ON servers(deleted, host, vcpus, ram_mb, disk_gb);
