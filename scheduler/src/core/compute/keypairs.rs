//! Key pairs: SSH public keys a user keeps for their servers, imported or generated
//! here (the private key is returned once and never stored). They count against the
//! key_pairs quota of the caller's project.

use chrono::Utc;
use md5::{Digest, Md5};
use ssh_key::{LineEnding, PrivateKey, PublicKey};

use crate::core::Core;
use crate::core::error::{Error, OrConflict, Result};
use crate::core::policy::{require_admin, require_project};
use crate::model::{Caller, KeyPair};

/// The comment on keys generated here.
const GENERATED_BY: &str = "Generated-by-yunji";

/// A key pair just created, with its private key when the cloud generated it.
#[derive(Debug, Clone)]
pub struct KeyPairCreated {
    pub keypair: KeyPair,
    pub private_key: Option<String>,
}

fn invalid(reason: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("Keypair data is invalid: {reason}"))
}

/// Nova's rule for key pair names at 2.1: letters, digits, '_', '-' and spaces.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(invalid(
            "Keypair name must be string and between 1 and 255 characters long",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '))
    {
        return Err(invalid(format!(
            "Keypair name {name:?} contains unsafe characters; use letters, digits, '_', '-' and spaces"
        )));
    }
    Ok(())
}

/// Nova's fingerprint: the MD5 of the key blob, as colon-separated hex pairs.
fn fingerprint(key: &PublicKey) -> Result<String> {
    let blob = key.to_bytes().map_err(Error::internal)?;
    let digest = Md5::digest(&blob);
    Ok(digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Parses an OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
fn parse_public_key(text: &str) -> Result<PublicKey> {
    let line = text.trim();
    PublicKey::from_openssh(line).map_err(|e| {
        invalid(format!(
            "failed to generate fingerprint: the public key is not an OpenSSH public key \
             ({e}); give one line such as the contents of ~/.ssh/id_ed25519.pub"
        ))
    })
}

/// A new ed25519 key pair: (public key line, private key in OpenSSH format).
fn generate() -> Result<(PublicKey, String)> {
    let seed: [u8; 32] = rand::random();
    let keypair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let mut private = PrivateKey::from(keypair);
    private.set_comment(GENERATED_BY);
    let pem = private
        .to_openssh(LineEnding::LF)
        .map_err(Error::internal)?;
    let mut public = private.public_key().clone();
    public.set_comment(GENERATED_BY);
    Ok((public, pem.to_string()))
}

/// Whose key pairs a request is about: the caller's own, or (administrators, with
/// 2.10's `user_id`) another user's.
fn target_user(caller: &Caller, user_id: Option<&str>) -> Result<String> {
    match user_id {
        None => Ok(caller.user_id.clone()),
        Some(u) if u == caller.user_id => Ok(u.to_string()),
        Some(u) => {
            require_admin(caller, "acting on another user's key pairs")?;
            Ok(u.to_string())
        }
    }
}

fn not_found(name: &str, user_id: &str) -> Error {
    Error::NotFound(format!(
        "Keypair {name} not found for user {user_id}; list the key pairs with GET /os-keypairs."
    ))
}

/// A new key pair, as a user asks for it.
#[derive(Debug, Clone, Default)]
pub struct KeyPairCreate {
    pub name: String,
    /// An OpenSSH public key line to import; `None` generates a key pair.
    pub public_key: Option<String>,
    /// `ssh` (the default) or `x509` (2.2).
    pub kind: Option<String>,
    /// Another user to create it for (administrators, 2.10).
    pub user_id: Option<String>,
}

impl Core {
    /// `POST /os-keypairs`: imports `public_key`, or generates a key pair when it is
    /// absent.
    pub async fn keypair_create(
        &self,
        caller: &Caller,
        input: KeyPairCreate,
    ) -> Result<KeyPairCreated> {
        let project = require_project(caller)?.to_string();
        let owner = target_user(caller, input.user_id.as_deref())?;
        let name = input.name.as_str();
        let public_key = input.public_key.as_deref();
        check_name(name)?;
        match input.kind.as_deref() {
            None | Some("ssh") => {}
            Some("x509") => {
                return Err(invalid(
                    "x509 key pairs are not offered by this cloud; use an SSH key pair (type ssh)",
                ));
            }
            Some(other) => {
                return Err(invalid(format!(
                    "type {other:?} is not a key pair type; use ssh"
                )));
            }
        }
        if owner != caller.user_id {
            let user = owner.clone();
            if self
                .store
                .read(move |db| db.user_get(&user))
                .await?
                .is_none()
            {
                return Err(Error::BadRequest(format!(
                    "user_id {owner} is not a user of this cloud; give an id from GET /identity/v3/users"
                )));
            }
        }
        let (key, private_key) = match public_key {
            Some(text) => (parse_public_key(text)?, None),
            None => {
                let (key, private) = generate()?;
                (key, Some(private))
            }
        };
        let public_text = match public_key {
            Some(text) => text.trim().to_string(),
            None => key.to_openssh().map_err(Error::internal)?,
        };
        let mut keypair = KeyPair {
            id: 0,
            name: name.to_string(),
            user_id: owner.clone(),
            public_key: public_text,
            fingerprint: fingerprint(&key)?,
            kind: "ssh".into(),
            created_at: Utc::now(),
        };
        let defaults = self.config.compute.default_quota;
        let row = keypair.clone();
        keypair.id = self
            .store
            .write(move |tx| {
                let limit = tx.compute_quota(&project, &defaults)?.key_pairs;
                let used = tx.keypair_count(&row.user_id)?;
                if limit >= 0 && used + 1 > limit {
                    return Err(Error::OverQuota(format!(
                        "Quota exceeded, too many key pairs: you have {used} of {limit}. Delete \
                         key pairs you no longer use, or ask an administrator to raise key_pairs."
                    )));
                }
                tx.keypair_insert(&row)
                    .or_conflict(|| format!("Key pair '{}' already exists.", row.name))
            })
            .await?;
        tracing::info!(user = %owner, name, generated = private_key.is_some(), "key pair created");
        Ok(KeyPairCreated {
            keypair,
            private_key,
        })
    }

    /// `GET /os-keypairs[?user_id=]`: the caller's own key pairs, or (administrators)
    /// another user's.
    pub async fn keypairs_list(
        &self,
        caller: &Caller,
        user_id: Option<&str>,
    ) -> Result<Vec<KeyPair>> {
        let user = target_user(caller, user_id)?;
        Ok(self.store.read(move |db| db.keypairs_list(&user)).await?)
    }

    /// `GET /os-keypairs/{name}`: one of the caller's key pairs (another user's is 404,
    /// unless an administrator names the user).
    pub async fn keypair_get(
        &self,
        caller: &Caller,
        name: &str,
        user_id: Option<&str>,
    ) -> Result<KeyPair> {
        let user = target_user(caller, user_id)?;
        self.keypair_of_user(&user, name)
            .await?
            .ok_or_else(|| not_found(name, &user))
    }

    /// `DELETE /os-keypairs/{name}[?user_id=]`.
    pub async fn keypair_delete(
        &self,
        caller: &Caller,
        name: &str,
        user_id: Option<&str>,
    ) -> Result<()> {
        let user = target_user(caller, user_id)?;
        let (owner, key) = (user.clone(), name.to_string());
        if !self
            .store
            .write(move |tx| tx.keypair_delete(&owner, &key))
            .await?
        {
            return Err(not_found(name, &user));
        }
        tracing::info!(%user, name, "key pair deleted");
        Ok(())
    }

    /// A user's key pair by name, without policy (for building servers).
    pub async fn keypair_of_user(&self, user_id: &str, name: &str) -> Result<Option<KeyPair>> {
        let (user, key) = (user_id.to_string(), name.to_string());
        Ok(self
            .store
            .read(move |db| db.keypair_get(&user, &key))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_with_the_same_fingerprint() {
        let (key, private) = generate().unwrap();
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let line = key.to_openssh().unwrap();
        let parsed = parse_public_key(&format!("{line}\n")).unwrap();
        assert_eq!(fingerprint(&parsed).unwrap(), fingerprint(&key).unwrap());
    }

    #[test]
    fn fingerprint_is_novas_md5_of_the_blob() {
        // What `ssh-keygen -l -E md5` prints for these keys (and Nova shows).
        let cases = [
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICwSr2J8LHqGdYjEiNITg+rUvJM+yU1+wpYP/M1/9yDE test",
                "28:04:5f:2d:a1:d6:cc:66:10:ff:9f:cc:cc:c6:fd:a2",
            ),
            (
                "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCvyNoCHSxl34sUhxCWTVxXAMNzU3lYbdVZ+Qu1Sb+1pORUHVhAAlGYz46ri3eQVIDdIzFeivTC5s1cQ3M2SOihJFM+CpiWG/fqP2PvW/J6dWUkIs5hPDwKLQR5+vEn7kM96rBVKvGyBPh1DCjFqtTi3HDhtCIbHa420ep4hCdTe13OliGNx5RK2yes/xrHzyVJCLf8Gk04KpczY//0qp7zCmIPsypctk26OAn9t45GWH7jRwLBCxbqEGRq4aEo1jL9IiS7ZLSqW8P1u4PfVNfn+uHBEP6x9320ZJ7bX5gxcZnrlE08iEsH7ZMS5reLwY4CzHtBf1ogNPWEYyCyNHj9 rsatest",
                "7b:bd:29:c3:93:30:df:1b:52:41:1a:02:af:70:ed:9a",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(
                fingerprint(&parse_public_key(line).unwrap()).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn unsafe_names_and_garbage_keys_are_bad_requests() {
        assert!(matches!(check_name("a/b"), Err(Error::BadRequest(_))));
        assert!(matches!(check_name(""), Err(Error::BadRequest(_))));
        assert!(check_name("my key_1-a").is_ok());
        assert!(matches!(
            parse_public_key("ssh-rsa notbase64"),
            Err(Error::BadRequest(_))
        ));
    }
}
