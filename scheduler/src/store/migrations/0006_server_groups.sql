-- Server groups: a policy for where a group's servers run relative to each other
-- (affinity: one node; anti-affinity: all different; soft-: preferred, not required).

CREATE TABLE server_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    policy     TEXT NOT NULL CHECK (policy IN
                   ('affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity')),
    created_at TEXT NOT NULL
);
CREATE INDEX server_groups_project ON server_groups(project_id, created_at, id);

-- A server belongs to at most one group, from its create on; deleted servers are not
-- members (the queries join on servers.deleted).
CREATE TABLE server_group_members (
    group_id  TEXT NOT NULL REFERENCES server_groups(id) ON DELETE CASCADE,
    server_id TEXT NOT NULL UNIQUE REFERENCES servers(id),
    PRIMARY KEY (group_id, server_id)
);
