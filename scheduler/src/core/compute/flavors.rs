//! Flavors (clause B.2.2): the sizes servers come in. Everyone lists the public ones and
//! the private ones their project was given; only administrators create, delete, share
//! and describe them (extra specs).

use std::collections::BTreeMap;

use crate::core::Core;
use crate::core::error::{Error, OrConflict, Result};
use crate::core::policy::require_admin;
use crate::model::{Caller, Flavor, FlavorFilter, FlavorSort};
use crate::store::Db;

/// The largest value Nova stores for a flavor's sizes (a signed 32-bit integer).
const MAX_INT: i64 = i32::MAX as i64;
/// The most flavors one page holds (Nova's `max_limit`).
pub const MAX_PAGE: usize = 1000;

/// A new flavor, as an administrator asks for it.
#[derive(Debug, Clone)]
pub struct FlavorCreate {
    /// `None` (or `auto`): a new UUID.
    pub id: Option<String>,
    pub name: String,
    pub vcpus: i64,
    pub ram_mb: i64,
    pub disk_gb: i64,
    pub ephemeral_gb: i64,
    pub swap_mb: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub description: Option<String>,
}

/// Which public/private flavors a list asks for (`is_public`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PublicFilter {
    /// Not given: public flavors, and the private ones the caller's project may use.
    #[default]
    Default,
    /// `is_public=none`: every flavor (administrators only; others get the default).
    All,
    Only(bool),
}

/// A flavor list request: filters, order and page.
#[derive(Debug, Clone, Default)]
pub struct FlavorQuery {
    pub min_ram_mb: Option<u64>,
    pub min_disk_gb: Option<u64>,
    pub is_public: PublicFilter,
    pub sort: FlavorSort,
    pub descending: bool,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

/// One page of flavors, and whether more follow it.
#[derive(Debug, Clone)]
pub struct FlavorPage {
    pub flavors: Vec<Flavor>,
    pub more: bool,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "Flavor {id} could not be found. List flavors (GET /flavors) to find a flavor's id."
    ))
}

/// The characters Nova allows in a flavor id; `detail` would be unreachable
/// (`GET /flavors/detail` is the list).
fn valid_flavor_id(id: &str) -> bool {
    id != "detail"
        && !id.is_empty()
        && id.len() <= 255
        && !id.starts_with(' ')
        && !id.ends_with(' ')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ' ' | '_' | '-'))
}

fn check_range(field: &str, value: i64, min: i64) -> Result<()> {
    if value < min || value > MAX_INT {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {field}: {value} must be an integer from {min} to {MAX_INT}."
        )));
    }
    Ok(())
}

/// Nova's extra spec keys: letters, digits, and `-_:. `, up to 255 characters.
fn check_spec(key: &str, value: &str) -> Result<()> {
    let key_ok = !key.is_empty()
        && key.len() <= 255
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '));
    if !key_ok {
        return Err(Error::BadRequest(format!(
            "extra spec key {key:?} is invalid: use 1 to 255 letters, digits, '-', '_', ':', '.' or spaces"
        )));
    }
    if value.chars().count() > 255 {
        return Err(Error::BadRequest(format!(
            "the value of extra spec {key} is longer than 255 characters"
        )));
    }
    Ok(())
}

impl FlavorCreate {
    /// Checks every field as Nova 2.1 does and builds the flavor.
    fn into_flavor(self) -> Result<Flavor> {
        let name = self.name;
        if name.is_empty() || name.chars().count() > 255 {
            return Err(Error::BadRequest(
                "a flavor's name must be 1 to 255 characters long".into(),
            ));
        }
        if name.trim() != name || name.chars().any(char::is_control) {
            return Err(Error::BadRequest(format!(
                "flavor name {name:?} has leading or trailing whitespace or control characters; remove them"
            )));
        }
        let id = match self.id {
            None => uuid::Uuid::new_v4().to_string(),
            Some(id) if id == "auto" => uuid::Uuid::new_v4().to_string(),
            Some(id) if valid_flavor_id(&id) => id,
            Some(id) => {
                return Err(Error::BadRequest(format!(
                    "flavor id {id:?} is invalid: use 1 to 255 letters, digits, '.', '_', '-' or \
                     inner spaces, or leave it out (or \"auto\") for a UUID"
                )));
            }
        };
        check_range("vcpus", self.vcpus, 1)?;
        check_range("ram", self.ram_mb, 1)?;
        check_range("disk", self.disk_gb, 0)?;
        check_range("OS-FLV-EXT-DATA:ephemeral", self.ephemeral_gb, 0)?;
        check_range("swap", self.swap_mb, 0)?;
        if !(self.rxtx_factor > 0.0 && self.rxtx_factor <= 3.40282e38) {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute rxtx_factor: {} must be a number greater than 0.",
                self.rxtx_factor
            )));
        }
        check_description(self.description.as_deref())?;
        // The ranges were checked just above, so these conversions cannot fail.
        let unsigned = |v: i64| u64::try_from(v).unwrap_or_default();
        Ok(Flavor {
            id,
            name,
            vcpus: u32::try_from(self.vcpus).unwrap_or_default(),
            ram_mb: unsigned(self.ram_mb),
            disk_gb: unsigned(self.disk_gb),
            ephemeral_gb: unsigned(self.ephemeral_gb),
            swap_mb: unsigned(self.swap_mb),
            rxtx_factor: self.rxtx_factor,
            is_public: self.is_public,
            description: self.description,
            extra_specs: BTreeMap::new(),
        })
    }
}

/// Nova's bound on a flavor's description.
fn check_description(description: Option<&str>) -> Result<()> {
    if description.is_some_and(|d| d.chars().count() > 65535) {
        return Err(Error::BadRequest(
            "a flavor's description is at most 65535 characters".into(),
        ));
    }
    Ok(())
}

impl Core {
    /// `POST /flavors` (admin).
    pub async fn flavor_create(&self, caller: &Caller, input: FlavorCreate) -> Result<Flavor> {
        require_admin(caller, "creating a flavor")?;
        let flavor = input.into_flavor()?;
        let row = flavor.clone();
        self.store
            .write(move |tx| {
                if tx.flavor_get(&row.id)?.is_some() {
                    return Err(Error::Conflict(format!(
                        "Flavor with ID {} already exists.",
                        row.id
                    )));
                }
                if tx.flavor_name_taken(&row.name)? {
                    return Err(Error::Conflict(format!(
                        "Flavor with name {} already exists.",
                        row.name
                    )));
                }
                tx.flavor_insert(&row)
                    .or_conflict(|| format!("Flavor {} already exists.", row.id))
            })
            .await?;
        tracing::info!(flavor = %flavor.id, name = %flavor.name, "flavor created");
        Ok(flavor)
    }

    /// `PUT /flavors/{id}` (admin, 2.55): a flavor's description is the one thing about
    /// it that may change.
    pub async fn flavor_description_set(
        &self,
        caller: &Caller,
        id: &str,
        description: Option<String>,
    ) -> Result<Flavor> {
        require_admin(caller, "changing a flavor's description")?;
        check_description(description.as_deref())?;
        let key = id.to_string();
        self.store
            .write(move |tx| {
                if !tx.flavor_description_set(&key, description.as_deref())? {
                    return Err(not_found(&key));
                }
                tx.flavor_get(&key)?.ok_or_else(|| not_found(&key))
            })
            .await
    }

    /// `DELETE /flavors/{id}` (admin). Servers keep the copy of the flavor they were
    /// built with.
    pub async fn flavor_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        require_admin(caller, "deleting a flavor")?;
        let key = id.to_string();
        if !self.store.write(move |tx| tx.flavor_delete(&key)).await? {
            return Err(not_found(id));
        }
        tracing::info!(flavor = %id, "flavor deleted");
        Ok(())
    }

    /// A flavor the caller may see: an administrator sees every one; others the public
    /// ones and those shared with their project.
    /// The flavor a server is built or resized with: see [`usable_flavor`].
    pub async fn flavor_for_server(&self, caller: &Caller, id: &str) -> Result<Flavor> {
        let (key, caller) = (id.to_string(), caller.clone());
        self.store
            .read_as(move |db| usable_flavor(db, &caller, &key))
            .await
    }

    pub async fn flavor_get(&self, caller: &Caller, id: &str) -> Result<Flavor> {
        let (key, caller_) = (id.to_string(), caller.clone());
        let found = self
            .store
            .read_as(move |db| flavor_visible(db, &caller_, &key))
            .await?;
        found.ok_or_else(|| not_found(id))
    }

    /// A flavor by id, without policy (for views).
    pub async fn flavor_get_any(&self, id: &str) -> Result<Option<Flavor>> {
        let key = id.to_string();
        Ok(self.store.read(move |db| db.flavor_get(&key)).await?)
    }

    /// `GET /flavors[/detail]`: filtered, ordered and paged as Nova does.
    pub async fn flavors_list(&self, caller: &Caller, query: FlavorQuery) -> Result<FlavorPage> {
        let project_id = caller.project_id().map(str::to_string);
        let is_public = if caller.is_admin() {
            match query.is_public {
                PublicFilter::Default => Some(true),
                PublicFilter::All => None,
                PublicFilter::Only(v) => Some(v),
            }
        } else {
            // Non-administrators see public flavors and the ones shared with them.
            Some(true)
        };
        let filter = FlavorFilter {
            min_ram_mb: query.min_ram_mb,
            min_disk_gb: query.min_disk_gb,
            is_public,
            project_id,
            sort: query.sort,
            descending: query.descending,
        };
        let all = self.store.read(move |db| db.flavors_list(&filter)).await?;
        let start = match &query.marker {
            None => 0,
            Some(marker) => {
                all.iter().position(|f| &f.id == marker).ok_or_else(|| {
                    Error::BadRequest(format!(
                        "marker [{marker}] not found: page with the id of the last flavor of \
                             the previous page"
                    ))
                })? + 1
            }
        };
        let limit = match query.limit {
            Some(0) | None => MAX_PAGE,
            Some(n) => n.min(MAX_PAGE),
        };
        let rest = all.len().saturating_sub(start);
        let flavors: Vec<Flavor> = all.into_iter().skip(start).take(limit).collect();
        Ok(FlavorPage {
            more: rest > flavors.len(),
            flavors,
        })
    }

    /// `GET /flavors/{id}/os-flavor-access` (admin): the projects a private flavor is
    /// shared with.
    pub async fn flavor_access_list(&self, caller: &Caller, id: &str) -> Result<Vec<String>> {
        require_admin(caller, "listing a flavor's access")?;
        let flavor = self.flavor_get(caller, id).await?;
        if flavor.is_public {
            return Err(Error::NotFound(format!(
                "Access list not available for public flavors: flavor {id} is public, every project may use it."
            )));
        }
        let key = id.to_string();
        Ok(self
            .store
            .read(move |db| db.flavor_access_list(&key))
            .await?)
    }

    /// `addTenantAccess` (admin): shares a private flavor with a project.
    pub async fn flavor_access_add(
        &self,
        caller: &Caller,
        id: &str,
        project_id: &str,
    ) -> Result<Vec<String>> {
        require_admin(caller, "sharing a flavor")?;
        let flavor = self.flavor_get(caller, id).await?;
        if flavor.is_public {
            return Err(Error::Conflict(format!(
                "Can not add access to a public flavor: flavor {id} is already usable by every project."
            )));
        }
        let (key, project) = (id.to_string(), project_id.to_string());
        self.store
            .write(move |tx| {
                if tx.project_get(&project)?.is_none() {
                    return Err(Error::BadRequest(format!(
                        "Project ID {project} is not a valid project; give a project id from \
                         GET /identity/v3/projects."
                    )));
                }
                tx.flavor_access_add(&key, &project).or_conflict(|| {
                    format!(
                        "Flavor access already exists for flavor {key} and project {project} combination."
                    )
                })?;
                Ok(tx.flavor_access_list(&key)?)
            })
            .await
    }

    /// `removeTenantAccess` (admin).
    pub async fn flavor_access_remove(
        &self,
        caller: &Caller,
        id: &str,
        project_id: &str,
    ) -> Result<Vec<String>> {
        require_admin(caller, "unsharing a flavor")?;
        self.flavor_get(caller, id).await?;
        let (key, project) = (id.to_string(), project_id.to_string());
        self.store
            .write(move |tx| {
                if !tx.flavor_access_remove(&key, &project)? {
                    return Err(Error::NotFound(format!(
                        "Flavor access not found for {key} / {project} combination."
                    )));
                }
                Ok(tx.flavor_access_list(&key)?)
            })
            .await
    }

    /// `GET /flavors/{id}/os-extra_specs`: anyone who may see the flavor.
    pub async fn flavor_extra_specs(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<BTreeMap<String, String>> {
        Ok(self.flavor_get(caller, id).await?.extra_specs)
    }

    /// `GET /flavors/{id}/os-extra_specs/{key}`.
    pub async fn flavor_extra_spec(&self, caller: &Caller, id: &str, key: &str) -> Result<String> {
        self.flavor_get(caller, id)
            .await?
            .extra_specs
            .remove(key)
            .ok_or_else(|| {
                Error::NotFound(format!("Flavor {id} has no extra specs with key {key}."))
            })
    }

    /// `POST …/os-extra_specs` and `PUT …/os-extra_specs/{key}` (admin): sets the given
    /// specs, keeping the others.
    pub async fn flavor_extra_specs_set(
        &self,
        caller: &Caller,
        id: &str,
        specs: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        require_admin(caller, "changing a flavor's extra specs")?;
        for (key, value) in &specs {
            check_spec(key, value)?;
        }
        let key = id.to_string();
        let set = specs.clone();
        let found = self
            .store
            .write(move |tx| {
                if tx.flavor_get(&key)?.is_none() {
                    return Ok(false);
                }
                tx.flavor_extra_specs_set(&key, &set)?;
                Ok::<_, Error>(true)
            })
            .await?;
        if !found {
            return Err(not_found(id));
        }
        Ok(specs)
    }

    /// `DELETE …/os-extra_specs/{key}` (admin).
    pub async fn flavor_extra_spec_delete(
        &self,
        caller: &Caller,
        id: &str,
        key: &str,
    ) -> Result<()> {
        require_admin(caller, "changing a flavor's extra specs")?;
        self.flavor_get(caller, id).await?;
        let (flavor, spec) = (id.to_string(), key.to_string());
        if !self
            .store
            .write(move |tx| tx.flavor_extra_spec_delete(&flavor, &spec))
            .await?
        {
            return Err(Error::NotFound(format!(
                "Flavor {id} has no extra specs with key {key}."
            )));
        }
        Ok(())
    }
}

/// A flavor the caller's project may see: public, shared with it, or any for admins.
fn flavor_visible(db: &Db, caller: &Caller, id: &str) -> Result<Option<Flavor>> {
    let Some(flavor) = db.flavor_get(id)? else {
        return Ok(None);
    };
    if flavor.is_public || caller.is_admin() {
        return Ok(Some(flavor));
    }
    let project = caller.project_id().unwrap_or_default();
    Ok(db.flavor_usable_by(id, project)?.then_some(flavor))
}

/// The flavor a server is built with (`flavorRef`): one the caller's project may use,
/// else the 400 Nova answers. Runs inside the server create's transaction.
pub(crate) fn usable_flavor(db: &Db, caller: &Caller, id: &str) -> Result<Flavor> {
    flavor_visible(db, caller, id)?.ok_or_else(|| {
        Error::BadRequest(format!(
            "Flavor {id} could not be found. Pick one from GET /flavors (openstack flavor list)."
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> FlavorCreate {
        FlavorCreate {
            id: None,
            name: "f".into(),
            vcpus: 1,
            ram_mb: 512,
            disk_gb: 0,
            ephemeral_gb: 0,
            swap_mb: 0,
            rxtx_factor: 1.0,
            is_public: true,
            description: None,
        }
    }

    #[test]
    fn auto_and_absent_ids_become_uuids() {
        for id in [None, Some("auto".to_string())] {
            let f = FlavorCreate { id, ..input() }.into_flavor().unwrap();
            assert!(uuid::Uuid::parse_str(&f.id).is_ok());
        }
    }

    #[test]
    fn out_of_range_sizes_are_bad_requests() {
        for bad in [
            FlavorCreate {
                vcpus: 0,
                ..input()
            },
            FlavorCreate {
                ram_mb: -1,
                ..input()
            },
            FlavorCreate {
                disk_gb: -1,
                ..input()
            },
            FlavorCreate {
                swap_mb: MAX_INT + 1,
                ..input()
            },
            FlavorCreate {
                rxtx_factor: 0.0,
                ..input()
            },
            FlavorCreate {
                name: " x".into(),
                ..input()
            },
            FlavorCreate {
                id: Some("a/b".into()),
                ..input()
            },
        ] {
            assert!(matches!(bad.into_flavor(), Err(Error::BadRequest(_))));
        }
    }

    #[test]
    fn flavor_ids_follow_novas_pattern() {
        assert!(valid_flavor_id("m1.tiny"));
        assert!(valid_flavor_id("a b_c-1"));
        assert!(!valid_flavor_id(" a"));
        assert!(!valid_flavor_id("a/b"));
        assert!(!valid_flavor_id(""));
        assert!(!valid_flavor_id("detail"));
    }
}
