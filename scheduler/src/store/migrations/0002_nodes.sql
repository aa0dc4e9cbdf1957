-- Nodes: every agent that joined, where to reach it, and what it last reported.

CREATE TABLE nodes (
    name      TEXT PRIMARY KEY,
    url       TEXT NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('joining', 'up', 'down')),
    status    TEXT,
    error     TEXT,
    last_seen TEXT,
    joined_at TEXT NOT NULL
);
