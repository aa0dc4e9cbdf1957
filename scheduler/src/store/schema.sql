CREATE TABLE application_credentials (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    secret_hash  TEXT NOT NULL,
    role_ids     TEXT NOT NULL,
    unrestricted INTEGER NOT NULL DEFAULT 0,
    expires_at   TEXT,
    created_at   TEXT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE domain_role_assignments (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    role_id   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, domain_id, role_id)
);

CREATE TABLE domains (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL
);

CREATE TABLE nodes (
    name      TEXT PRIMARY KEY,
    url       TEXT NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('joining', 'up', 'down')),
    status    TEXT,
    error     TEXT,
    last_seen TEXT,
    joined_at TEXT NOT NULL
);

CREATE TABLE project_role_assignments (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id, role_id)
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL REFERENCES domains(id),
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE regions (
    id               TEXT PRIMARY KEY,
    description      TEXT NOT NULL DEFAULT '',
    parent_region_id TEXT REFERENCES regions(id)
);

CREATE TABLE role_implications (
    prior_role_id   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    implied_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (prior_role_id, implied_role_id)
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         );

CREATE TABLE tokens (
    hash        BLOB PRIMARY KEY,
    user_id     TEXT NOT NULL,
    project_id  TEXT,
    app_cred_id TEXT,
    expires_at  TEXT NOT NULL,
    caller      TEXT NOT NULL,
    body        BLOB NOT NULL
);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    domain_id          TEXT NOT NULL REFERENCES domains(id),
    password_hash      TEXT,
    enabled            INTEGER NOT NULL DEFAULT 1,
    description        TEXT NOT NULL DEFAULT '',
    email              TEXT,
    default_project_id TEXT REFERENCES projects(id) ON DELETE SET NULL,
    created_at         TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE INDEX project_role_assignments_project ON project_role_assignments(project_id);

CREATE INDEX tokens_expires ON tokens(expires_at);

CREATE INDEX tokens_user ON tokens(user_id);

