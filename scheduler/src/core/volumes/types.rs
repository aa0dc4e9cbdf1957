//! Volume types: list and show for everyone (public types, and all for administrators),
//! create, update, delete and extra specs for administrators. The configured default
//! type (`[volume] default_type`) is what a volume without a type gets.

use std::collections::BTreeMap;

use crate::core::Core;
use crate::core::error::{Error, OrConflict, Result};
use crate::core::policy::require_admin;
use crate::model::{Caller, VolumeType};

/// What `POST /types` asks for.
#[derive(Debug, Clone, Default)]
pub struct VolumeTypeCreate {
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub extra_specs: BTreeMap<String, String>,
}

fn type_missing(id: &str) -> Error {
    Error::NotFound(format!("Volume type {id} could not be found."))
}

fn check_specs(specs: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in specs {
        if k.is_empty() || k.len() > 255 || v.len() > 255 {
            return Err(Error::BadRequest(
                "extra spec keys must be 1 to 255 characters and values at most 255".into(),
            ));
        }
    }
    Ok(())
}

impl Core {
    /// A type the caller may use: public, or any for an administrator (404 otherwise).
    pub async fn volume_type_get(&self, caller: &Caller, id: &str) -> Result<VolumeType> {
        let key = id.to_string();
        let found = self
            .store
            .read(move |db| db.volume_type_get(&key))
            .await?
            .filter(|t| t.is_public || caller.is_admin());
        found.ok_or_else(|| type_missing(id))
    }

    /// `GET /types`: public types; administrators see private ones too.
    pub async fn volume_types_list(&self, caller: &Caller) -> Result<Vec<VolumeType>> {
        let admin = caller.is_admin();
        let mut types = self.store.read(|db| db.volume_types_list()).await?;
        types.retain(|t| t.is_public || admin);
        Ok(types)
    }

    /// `GET /types/default`.
    pub async fn volume_type_default(&self, caller: &Caller) -> Result<VolumeType> {
        let name = self.config.volume.default_type.clone();
        self.volume_type_get(caller, &name).await.map_err(|_| {
            Error::NotFound(format!(
                "Default volume type {name} could not be found; an administrator sets \
                 [volume] default_type to an existing type."
            ))
        })
    }

    pub async fn volume_type_create(
        &self,
        caller: &Caller,
        input: VolumeTypeCreate,
    ) -> Result<VolumeType> {
        require_admin(caller, "creating a volume type")?;
        let name = input.name.trim().to_string();
        if name.is_empty() || name.len() > 255 {
            return Err(Error::BadRequest(
                "the volume type name must be 1 to 255 characters".into(),
            ));
        }
        check_specs(&input.extra_specs)?;
        let volume_type = VolumeType {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.clone(),
            description: input.description,
            is_public: input.is_public,
            extra_specs: input.extra_specs,
        };
        let row = volume_type.clone();
        self.store
            .write(move |tx| tx.volume_type_insert(&row))
            .await
            .or_conflict(|| format!("Volume Type {name} already exists."))?;
        tracing::info!(id = %volume_type.id, name = %volume_type.name, "volume type created");
        Ok(volume_type)
    }

    /// `PUT /types/{id}`: name, description, visibility.
    pub async fn volume_type_update(
        &self,
        caller: &Caller,
        id: &str,
        name: Option<String>,
        description: Option<Option<String>>,
        is_public: Option<bool>,
    ) -> Result<VolumeType> {
        require_admin(caller, "updating a volume type")?;
        let mut volume_type = self.volume_type_get(caller, id).await?;
        if let Some(n) = name {
            let n = n.trim().to_string();
            if n.is_empty() || n.len() > 255 {
                return Err(Error::BadRequest(
                    "the volume type name must be 1 to 255 characters".into(),
                ));
            }
            volume_type.name = n;
        }
        if let Some(d) = description {
            volume_type.description = d;
        }
        if let Some(p) = is_public {
            volume_type.is_public = p;
        }
        let row = volume_type.clone();
        let name = volume_type.name.clone();
        self.store
            .write(move |tx| tx.volume_type_update(&row))
            .await
            .or_conflict(|| format!("Volume Type {name} already exists."))?;
        Ok(volume_type)
    }

    /// `DELETE /types/{id}`: refused while a volume has the type, or for the default.
    pub async fn volume_type_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        require_admin(caller, "deleting a volume type")?;
        let volume_type = self.volume_type_get(caller, id).await?;
        if volume_type.name == self.config.volume.default_type {
            return Err(Error::BadRequest(format!(
                "The volume type {} is the default volume type and cannot be deleted; \
                 an administrator changes [volume] default_type first.",
                volume_type.name
            )));
        }
        let type_id = volume_type.id.clone();
        self.store
            .write(move |tx| {
                if tx.volume_type_in_use(&type_id)? {
                    return Err(Error::BadRequest(format!(
                        "Target volume type {type_id} is still in use: delete its volumes first."
                    )));
                }
                tx.volume_type_delete(&type_id)?;
                Ok(())
            })
            .await?;
        tracing::info!(id = %volume_type.id, "volume type deleted");
        Ok(())
    }

    /// Sets (merges) extra specs of a type.
    pub async fn volume_type_specs_set(
        &self,
        caller: &Caller,
        id: &str,
        specs: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        require_admin(caller, "setting extra specs of a volume type")?;
        check_specs(&specs)?;
        let mut volume_type = self.volume_type_get(caller, id).await?;
        volume_type.extra_specs.extend(specs);
        let row = volume_type.clone();
        self.store
            .write(move |tx| tx.volume_type_update(&row))
            .await?;
        Ok(volume_type.extra_specs)
    }

    pub async fn volume_type_spec_delete(
        &self,
        caller: &Caller,
        id: &str,
        key: &str,
    ) -> Result<()> {
        require_admin(caller, "deleting an extra spec of a volume type")?;
        let mut volume_type = self.volume_type_get(caller, id).await?;
        if volume_type.extra_specs.remove(key).is_none() {
            return Err(Error::NotFound(format!(
                "Volume Type {id} has no extra specs with key {key}."
            )));
        }
        self.store
            .write(move |tx| tx.volume_type_update(&volume_type))
            .await?;
        Ok(())
    }
}
