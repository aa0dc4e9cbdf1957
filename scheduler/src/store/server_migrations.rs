//! Server migration queries: a row per live migration or resize, its status moved on
//! in the transactions that move the server.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Db, Result, StoreError, Tx};
use crate::model::{MigrationFilter, ServerMigration};

const SELECT: &str = "SELECT m.*,
        (SELECT seq FROM flavors WHERE id = m.old_flavor_id) AS old_seq,
        (SELECT seq FROM flavors WHERE id = m.new_flavor_id) AS new_seq
   FROM server_migrations m";

fn migration(r: &Row) -> rusqlite::Result<ServerMigration> {
    let server: String = r.get("server_id")?;
    Ok(ServerMigration {
        id: r.get("id")?,
        server_id: Uuid::parse_str(&server).unwrap_or_default(),
        kind: r.get("kind")?,
        source_node: r.get("source_node")?,
        dest_node: r.get("dest_node")?,
        status: r.get("status")?,
        old_flavor_seq: r.get("old_seq")?,
        new_flavor_seq: r.get("new_seq")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl Db<'_> {
    /// Migrations, newest first.
    pub fn server_migrations_list(&self, f: &MigrationFilter) -> Result<Vec<ServerMigration>> {
        let sql = format!(
            "{SELECT} WHERE (?1 IS NULL OR m.server_id = ?1) AND (?2 IS NULL OR m.status = ?2)
               AND (?3 IS NULL OR m.source_node = ?3 OR m.dest_node = ?3)
               AND (?4 IS NULL OR m.kind = ?4)
             ORDER BY m.id DESC"
        );
        let mut stmt = self.prepare(&sql)?;
        let rows = stmt.query_map(params![f.server_id, f.status, f.host, f.kind], migration)?;
        rows.map(|r| r.map_err(StoreError::from)).collect()
    }

    pub fn server_migration_get(
        &self,
        server_id: Uuid,
        id: i64,
    ) -> Result<Option<ServerMigration>> {
        Ok(self
            .query_row(
                &format!("{SELECT} WHERE m.server_id = ?1 AND m.id = ?2"),
                params![server_id.to_string(), id],
                migration,
            )
            .optional()?)
    }
}

impl Tx<'_> {
    pub fn server_migration_begin(
        &self,
        m: &ServerMigration,
        old_flavor: &str,
        new_flavor: &str,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO server_migrations (server_id, kind, source_node, dest_node, status,
                 old_flavor_id, new_flavor_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![
                m.server_id.to_string(),
                m.kind,
                m.source_node,
                m.dest_node,
                m.status,
                old_flavor,
                new_flavor,
                m.created_at
            ],
        )?;
        Ok(())
    }

    /// Moves the server's latest migration to `status`.
    pub fn server_migration_set_status(
        &self,
        server_id: Uuid,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "UPDATE server_migrations SET status = ?2, updated_at = ?3
              WHERE id = (SELECT max(id) FROM server_migrations WHERE server_id = ?1)",
            params![server_id.to_string(), status, at],
        )?;
        Ok(())
    }
}
