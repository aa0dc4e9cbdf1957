//! Password and secret hashing: argon2id with the configured (OWASP) parameters, always
//! on the blocking pool — a hash costs tens of milliseconds of CPU.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::error::{Error, Result};

#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of nothing in particular, verified against when the user does not exist so
    /// that a wrong user name costs as long as a wrong password.
    decoy: String,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Passwords> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| Error::internal(anyhow::anyhow!("argon2 parameters: {e}")))?;
        let decoy = hash_with(&params, "yunji decoy password")?;
        Ok(Passwords { params, decoy })
    }

    /// Hashes a secret into a PHC string.
    pub async fn hash(&self, secret: String) -> Result<String> {
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_with(&params, &secret))
            .await
            .map_err(Error::internal)?
    }

    /// Verifies `secret` against `hash` (or against the decoy when there is no hash).
    pub async fn verify(&self, secret: String, hash: Option<String>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.clone());
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(secret.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(Error::internal)?;
        Ok(ok && known)
    }
}

fn hash_with(params: &Params, secret: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("argon2: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_secret_only() {
        let p = Passwords::new(1024, 1).unwrap();
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(
            p.verify("correct horse".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!p.verify("wrong".into(), Some(h)).await.unwrap());
        assert!(!p.verify("yunji decoy password".into(), None).await.unwrap());
    }
}
