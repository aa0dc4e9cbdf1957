-- Block storage: volume types, volumes on nodes, their attachments to servers, their
-- snapshots, and per-project volume quotas. A deleted volume or snapshot leaves no row.
-- `counted` says whether the row holds quota (a failed build gives it back).

CREATE TABLE volume_types (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    is_public   INTEGER NOT NULL DEFAULT 1,
    extra_specs TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);
-- The two types the standard names; `[volume] default_type` picks the default.
INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at) VALUES
    ('5b1e0f2e-9a55-4c57-8d0e-3f7d2f4c9a01', 'SATA', 'Capacity disks', 1,
     '{"volume_backend_name":"sata","disk:read_bytes_sec":"209715200","disk:write_bytes_sec":"104857600"}',
     '2026-11-28T00:00:00Z'),
    ('8c3a6b7d-1e24-4f08-b6a9-2d5c7e8f0b02', 'SSD', 'Low-latency disks', 1,
     '{"volume_backend_name":"ssd","disk:total_iops_sec":"20000"}',
     '2026-11-28T00:00:00Z');

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
CREATE INDEX volumes_project ON volumes(project_id, created_at, id);
-- Covers the quota usage sum, which runs in every create's transaction.
CREATE INDEX volumes_usage ON volumes(project_id, counted, size_gb);
-- Covers the per-node sums placement reads.
CREATE INDEX volumes_host ON volumes(host, size_gb);
CREATE INDEX volumes_type ON volumes(type_id);

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
CREATE INDEX volume_snapshots_project ON volume_snapshots(project_id, created_at, id);
CREATE INDEX volume_snapshots_volume ON volume_snapshots(volume_id);

CREATE TABLE volume_quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);
