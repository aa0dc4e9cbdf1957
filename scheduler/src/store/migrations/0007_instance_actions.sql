-- Instance actions (os-instance-actions): what was done to each server, by whom, in
-- which request, and how it ended. Each action has the one event the cloud reports
-- for it; it stays open (finish_time NULL) while the server's task runs.

CREATE TABLE instance_actions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE INDEX instance_actions_server ON instance_actions(server_id, id);
CREATE INDEX instance_actions_open ON instance_actions(server_id) WHERE finish_time IS NULL;
