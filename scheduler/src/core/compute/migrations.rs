//! Migrations (`os-migrations`, `servers/{id}/migrations`): the record of every live
//! migration and resize, for administrators.

use uuid::Uuid;

use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::require_admin;
use crate::model::{Caller, MigrationFilter, ServerMigration};

impl Core {
    /// `GET /os-migrations`.
    pub async fn migrations_list(
        &self,
        caller: &Caller,
        filter: MigrationFilter,
    ) -> Result<Vec<ServerMigration>> {
        require_admin(caller, "listing migrations")?;
        Ok(self
            .store
            .read(move |db| db.server_migrations_list(&filter))
            .await?)
    }

    /// `GET /servers/{id}/migrations`: the server's live migrations under way.
    pub async fn server_migrations(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Vec<ServerMigration>> {
        require_admin(caller, "listing a server's migrations")?;
        let server = self
            .server_get(caller, id, crate::core::policy::Access::Read)
            .await?;
        let filter = MigrationFilter {
            server_id: Some(server.id.to_string()),
            kind: Some("live-migration".into()),
            ..MigrationFilter::default()
        };
        let all = self
            .store
            .read(move |db| db.server_migrations_list(&filter))
            .await?;
        Ok(all
            .into_iter()
            .filter(ServerMigration::in_progress)
            .collect())
    }

    /// `GET /servers/{id}/migrations/{migration_id}`: one live migration under way.
    pub async fn server_migration_get(
        &self,
        caller: &Caller,
        id: &str,
        migration_id: &str,
    ) -> Result<ServerMigration> {
        require_admin(caller, "showing a server's migration")?;
        let server = self
            .server_get(caller, id, crate::core::policy::Access::Read)
            .await?;
        let missing = || {
            Error::NotFound(format!(
                "Migration {migration_id} for instance {id} could not be found; GET /servers/{id}/migrations lists the ones under way."
            ))
        };
        let mid: i64 = migration_id.parse().map_err(|_| missing())?;
        let sid: Uuid = server.id;
        self.store
            .read(move |db| db.server_migration_get(sid, mid))
            .await?
            .filter(|m| m.kind == "live-migration" && m.in_progress())
            .ok_or_else(missing)
    }

    /// `force_complete` (2.22) and `DELETE` (abort, 2.24) of a live migration. This
    /// cloud's live migrations copy to completion without being paused or cancelled,
    /// so a running one is a 409 that says so, and anything else the 400 Nova answers.
    pub async fn server_migration_intervene(
        &self,
        caller: &Caller,
        id: &str,
        migration_id: &str,
        what: &str,
    ) -> Result<std::convert::Infallible> {
        require_admin(caller, "intervening in a live migration")?;
        match self.server_migration_get(caller, id, migration_id).await {
            Ok(m) => Err(Error::Conflict(format!(
                "Migration {} of instance {id} is {}: this cloud cannot {what} a live migration once it runs; it completes or fails on its own and the server stays on {} if it fails.",
                m.id, m.status, m.source_node
            ))),
            Err(Error::NotFound(_)) => Err(Error::BadRequest(format!(
                "Migration {migration_id} of instance {id} is not a live migration in progress; only a running one could be asked to {what}."
            ))),
            Err(e) => Err(e),
        }
    }
}
