//! Schema migrations, embedded in the binary and run in order on start, each in its own
//! transaction; `schema_migrations` records which have run.

use rusqlite::Connection;

use super::Result;

/// Every migration, in order. Append only: a released migration never changes.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_identity",
        include_str!("migrations/0001_identity.sql"),
    ),
    ("0002_nodes", include_str!("migrations/0002_nodes.sql")),
    ("0003_images", include_str!("migrations/0003_images.sql")),
    ("0004_compute", include_str!("migrations/0004_compute.sql")),
    ("0005_servers", include_str!("migrations/0005_servers.sql")),
    (
        "0006_server_groups",
        include_str!("migrations/0006_server_groups.sql"),
    ),
    (
        "0007_instance_actions",
        include_str!("migrations/0007_instance_actions.sql"),
    ),
    (
        "0008_server_migrations",
        include_str!("migrations/0008_server_migrations.sql"),
    ),
    ("0009_network", include_str!("migrations/0009_network.sql")),
    ("0010_volumes", include_str!("migrations/0010_volumes.sql")),
    ("0011_routers", include_str!("migrations/0011_routers.sql")),
    (
        "0012_ipam_cursor",
        include_str!("migrations/0012_ipam_cursor.sql"),
    ),
    (
        "0013_security_groups",
        include_str!("migrations/0013_security_groups.sql"),
    ),
    (
        "0014_load_balancers",
        include_str!("migrations/0014_load_balancers.sql"),
    ),
    (
        "0015_lb_listeners_pools",
        include_str!("migrations/0015_lb_listeners_pools.sql"),
    ),
    (
        "0016_server_create_writes",
        include_str!("migrations/0016_server_create_writes.sql"),
    ),
    (
        "0017_port_create_writes",
        include_str!("migrations/0017_port_create_writes.sql"),
    ),
    (
        "0018_server_tags",
        include_str!("migrations/0018_server_tags.sql"),
    ),
];

pub fn run(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )?;
    let done = applied(conn)?;
    for (version, (name, sql)) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![version as i64 + 1, name, chrono::Utc::now()],
        )?;
        tx.commit()?;
        tracing::info!(migration = name, "database migrated");
    }
    Ok(())
}

pub fn applied(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("SELECT count(*) FROM schema_migrations", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
}

#[cfg(test)]
/// The schema as SQLite holds it, in a stable order: what the snapshot test compares.
pub fn schema(conn: &Connection) -> Result<String> {
    let mut stmt = conn.prepare(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
         ORDER BY type DESC, name",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = String::new();
    for sql in rows {
        out.push_str(&sql?);
        out.push_str(";\n\n");
    }
    Ok(out)
}
