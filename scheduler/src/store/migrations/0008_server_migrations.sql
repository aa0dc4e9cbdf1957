-- Server migrations (os-migrations): each live migration and resize, from the request
-- that started it to how it ended. `kind` is Nova's migration_type.

CREATE TABLE server_migrations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id     TEXT NOT NULL REFERENCES servers(id),
    kind          TEXT NOT NULL CHECK (kind IN ('live-migration', 'resize')),
    source_node   TEXT NOT NULL,
    dest_node     TEXT NOT NULL,
    status        TEXT NOT NULL,
    old_flavor_id TEXT NOT NULL,
    new_flavor_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX server_migrations_server ON server_migrations(server_id, id);
