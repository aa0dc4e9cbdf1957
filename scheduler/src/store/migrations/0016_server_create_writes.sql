-- Fewer pages written by every server create (each is a WAL frame in its commit).

-- Instance action ids need to be unique and ordered, not never-reused: without
-- AUTOINCREMENT an insert no longer updates sqlite_sequence.
CREATE TABLE instance_actions_rowid (
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
INSERT INTO instance_actions_rowid SELECT * FROM instance_actions;
DROP TABLE instance_actions;
ALTER TABLE instance_actions_rowid RENAME TO instance_actions;
CREATE INDEX instance_actions_server ON instance_actions(server_id, id);
CREATE INDEX instance_actions_open ON instance_actions(server_id) WHERE finish_time IS NULL;
DELETE FROM sqlite_sequence WHERE name = 'instance_actions';

-- Quota and placement sums read only the servers that hold something: indexes of those
-- alone stay small as deleted servers accumulate, and a server that holds nothing
-- (deleted, or in ERROR before it was placed) has no entry to write. The columns the
-- WHERE fixes stay in the key: they keep each index covering and the planner's choice.
DROP INDEX servers_usage;
CREATE INDEX servers_usage ON servers(project_id, deleted, counted, vcpus, ram_mb)
    WHERE deleted = 0 AND counted = 1;
DROP INDEX servers_host;
CREATE INDEX servers_host ON servers(deleted, host, vcpus, ram_mb, disk_gb)
    WHERE deleted = 0 AND host IS NOT NULL;
