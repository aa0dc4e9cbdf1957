//! Policy: the one place that decides who may do what, for every service.
//!
//! Roles nest, admin ⊃ member ⊃ reader. The rules a caller can observe:
//! - another project's resource does not exist for you (404), unless you are admin;
//! - a resource you can see but your role may not change is a 403;
//! - cloud-wide administration (identity, flavors, hosts, quotas) needs admin (403).

use super::error::{Error, Result};
use crate::model::{Caller, Level};

/// What the caller wants to do with a project's resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Checks access to a resource owned by `owner_project`; `what` names it for messages
/// ("server 1234…").
pub fn authorize(caller: &Caller, owner_project: &str, access: Access, what: &str) -> Result<()> {
    if caller.is_admin() {
        return Ok(());
    }
    if caller.project_id() != Some(owner_project) {
        return Err(Error::NotFound(format!("{what} could not be found")));
    }
    let needed = match access {
        Access::Read => Level::Reader,
        Access::Write => Level::Member,
    };
    match caller.level() {
        Some(level) if level >= needed => Ok(()),
        _ => Err(Error::Forbidden(format!(
            "the {} role may not change {what}; it needs the {} role on the project",
            caller.level().map_or("current", Level::name),
            needed.name()
        ))),
    }
}

/// Cloud-wide administration.
pub fn require_admin(caller: &Caller, action: &str) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "{action} requires the admin role; ask an administrator"
        )))
    }
}

/// Acting on a user: the user themself, or an admin.
pub fn require_self_or_admin(caller: &Caller, user_id: &str, action: &str) -> Result<()> {
    if caller.user_id == user_id || caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "{action} is allowed to the user themself or an administrator"
        )))
    }
}

/// A scoped token is needed for project resources.
pub fn require_project(caller: &Caller) -> Result<&str> {
    caller.project_id().ok_or_else(|| {
        Error::Forbidden(
            "this token is not scoped to a project; authenticate with a project scope".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(project: &str, roles: &[&str]) -> Caller {
        crate::model::test_caller(project, roles)
    }

    #[test]
    fn another_projects_resource_is_not_found() {
        let err = authorize(
            &caller("p1", &["member", "reader"]),
            "p2",
            Access::Read,
            "server x",
        );
        assert!(matches!(err, Err(Error::NotFound(_))));
    }

    #[test]
    fn a_reader_may_look_but_not_change() {
        let reader = caller("p1", &["reader"]);
        assert!(authorize(&reader, "p1", Access::Read, "server x").is_ok());
        assert!(matches!(
            authorize(&reader, "p1", Access::Write, "server x"),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn admin_reaches_every_project() {
        let admin = caller("p1", &["admin", "member", "reader"]);
        assert!(authorize(&admin, "p2", Access::Write, "server x").is_ok());
        assert!(require_admin(&admin, "creating a flavor").is_ok());
        assert!(require_admin(&caller("p1", &["member"]), "creating a flavor").is_err());
    }
}
