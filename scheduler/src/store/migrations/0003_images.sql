-- Images (Glance v2): the records, the projects they are shared with, and import tasks.
-- The data itself lives in files under the data directory, named by image id.

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
CREATE INDEX images_owner ON images(owner);
CREATE INDEX images_created ON images(created_at, id);

CREATE TABLE image_members (
    image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    member_id  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member_id)
);
CREATE INDEX image_members_member ON image_members(member_id);

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
CREATE INDEX image_tasks_image ON image_tasks(image_id);
