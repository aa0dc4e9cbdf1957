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
    (
        "0019_port_children_keyed",
        include_str!("migrations/0019_port_children_keyed.sql"),
    ),
    (
        "0020_port_children_by_seq",
        include_str!("migrations/0020_port_children_by_seq.sql"),
    ),
];

pub fn run(conn: &mut Connection) -> Result<()> {
    run_first(conn, MIGRATIONS.len())
}

/// Runs the first `count` migrations (those not run yet).
fn run_first(conn: &mut Connection, count: usize) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )?;
    let done = applied(conn)?;
    for (version, (name, sql)) in MIGRATIONS.iter().enumerate().take(count).skip(done) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 0019 moves ports' addresses and groups into keyed tables, 0020 has them name
    /// their port by its row number: a port made before both keeps its addresses and
    /// groups, in their order, and deleting it still takes them along.
    #[test]
    fn port_children_keep_their_port_and_order_through_0019_and_0020() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("yunji.db")).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        run_first(&mut conn, 18).unwrap();
        conn.execute_batch(
            "INSERT INTO networks (id, project_id, mtu, vni, created_at, updated_at)
                 VALUES ('n', 'p', 1450, 7, 't', 't');
             INSERT INTO subnets (id, network_id, project_id, ip_version, cidr, created_at,
                     updated_at)
                 VALUES ('s4', 'n', 'p', 4, '10.0.0.0/24', 't', 't'),
                        ('s6', 'n', 'p', 6, 'fd00::/64', 't', 't');
             INSERT INTO ports (id, network_id, project_id, mac_address, created_at, updated_at)
                 VALUES ('other', 'n', 'p', 'fa:16:3e:00:00:02', 't', 't'),
                        ('port', 'n', 'p', 'fa:16:3e:00:00:01', 't', 't');
             INSERT INTO port_fixed_ips (subnet_id, ip_address, port_id)
                 VALUES ('s6', 'fd00::5', 'port'), ('s4', '10.0.0.9', 'port'),
                        ('s4', '10.0.0.3', 'other');
             INSERT INTO port_security_groups (port_id, security_group_id)
                 VALUES ('port', 'web'), ('port', 'default'), ('other', 'default');",
        )
        .unwrap();
        run(&mut conn).unwrap();
        let column = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(
            column(
                "SELECT f.ip_address FROM ports p JOIN port_fixed_ips f ON f.port_seq = p.seq
                  WHERE p.id = 'port' ORDER BY f.position"
            ),
            ["fd00::5", "10.0.0.9"]
        );
        assert_eq!(
            column(
                "SELECT g.security_group_id
                   FROM ports p JOIN port_security_groups g ON g.port_seq = p.seq
                  WHERE p.id = 'port' ORDER BY g.position"
            ),
            ["web", "default"]
        );
        assert!(column("PRAGMA foreign_key_check").is_empty());
        conn.execute("DELETE FROM ports WHERE id = 'port'", [])
            .unwrap();
        assert_eq!(
            column("SELECT ip_address FROM port_fixed_ips"),
            ["10.0.0.3"]
        );
        assert_eq!(
            column("SELECT security_group_id FROM port_security_groups"),
            ["default"]
        );
    }
}
