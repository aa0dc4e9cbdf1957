//! First start: the default domain, the built-in roles and their implications, the admin
//! project and user, and the region. Later starts only make sure the region exists.

use super::Core;
use super::error::Result;
use crate::model::{
    DEFAULT_DOMAIN_ID, Domain, Level, Project, Region, Role, RoleAssignment, Scope, User, new_id,
};

/// What bootstrapping did.
#[derive(Debug)]
pub enum Bootstrapped {
    /// A new cloud: the admin user was created with this password.
    Created { admin_password: String },
    /// The cloud existed already.
    Existing,
}

impl Core {
    /// Makes the cloud's first objects if they do not exist. `admin_password` is the
    /// operator's choice, or one is generated.
    pub async fn bootstrap(&self, admin_password: Option<String>) -> Result<Bootstrapped> {
        let region = Region {
            id: self.config.identity.region.clone(),
            description: "the data centre this scheduler serves".into(),
            parent_region_id: None,
        };
        let exists = self
            .store
            .read(|db| Ok(db.domain_get(DEFAULT_DOMAIN_ID)?.is_some()))
            .await?;
        if exists {
            self.store
                .write(move |tx| {
                    if tx.region_get(&region.id)?.is_none() {
                        tx.region_insert(&region)?;
                    }
                    Ok::<_, crate::store::StoreError>(())
                })
                .await?;
            return Ok(Bootstrapped::Existing);
        }
        let password = admin_password.unwrap_or_else(super::tokens::new_token_id);
        let hash = self.passwords.hash(password.clone()).await?;
        self.store
            .write(move |tx| {
                tx.domain_insert(&Domain {
                    id: DEFAULT_DOMAIN_ID.into(),
                    name: "Default".into(),
                    description: "The default domain".into(),
                    enabled: true,
                })?;
                let mut roles = Vec::new();
                for level in Level::ALL {
                    let role = Role {
                        id: new_id(),
                        name: level.name().into(),
                        description: format!("built-in {} role", level.name()),
                    };
                    tx.role_insert(&role)?;
                    roles.push(role);
                }
                // ALL is admin, member, reader: each implies the next.
                for pair in roles.windows(2) {
                    tx.role_imply(&pair[0].id, &pair[1].id)?;
                }
                let project = Project {
                    id: new_id(),
                    name: "admin".into(),
                    domain_id: DEFAULT_DOMAIN_ID.into(),
                    description: "Bootstrap project for the cloud's administrators".into(),
                    enabled: true,
                };
                tx.project_insert(&project)?;
                let user = User {
                    id: new_id(),
                    name: "admin".into(),
                    domain_id: DEFAULT_DOMAIN_ID.into(),
                    enabled: true,
                    description: "The cloud's first administrator".into(),
                    email: None,
                    default_project_id: Some(project.id.clone()),
                    password_hash: Some(hash),
                };
                tx.user_insert(&user)?;
                tx.assignment_grant(&RoleAssignment {
                    user_id: user.id,
                    role_id: roles[0].id.clone(),
                    scope: Scope::Project(project.id),
                })?;
                tx.region_insert(&region)?;
                Ok::<_, crate::store::StoreError>(())
            })
            .await?;
        Ok(Bootstrapped::Created {
            admin_password: password,
        })
    }
}
