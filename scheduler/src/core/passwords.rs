//! Password and secret hashing: argon2id with the configured (OWASP) parameters, on the
//! blocking pool — a hash costs tens of milliseconds of CPU.
//!
//! At most one hash per core runs at a time (more only queue in the kernel and fault in
//! fresh memory), and each reuses a working area kept from the last: argon2 needs
//! `memory_kib` of it, and allocating that anew per call costs as much page-zeroing as a
//! third of the hash itself.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::error::{Error, Result};

#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of nothing in particular, verified against when the user does not exist so
    /// that a wrong user name costs as long as a wrong password.
    decoy: String,
    permits: Arc<Semaphore>,
    /// Working areas of `params.block_count()` blocks, one per running verification.
    areas: Arc<Mutex<Vec<Vec<Block>>>>,
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
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Passwords {
            params,
            decoy,
            permits: Arc::new(Semaphore::new(cores)),
            areas: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Hashes a secret into a PHC string.
    pub async fn hash(&self, secret: String) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_with(&params, &secret))
            .await
            .map_err(Error::internal)?
    }

    /// Verifies `secret` against `hash` (or against the decoy when there is no hash).
    pub async fn verify(&self, secret: String, hash: Option<String>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.clone());
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let (params, areas) = (self.params.clone(), self.areas.clone());
        let ok = tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            match verify_in_place(&params, &areas, secret.as_bytes(), &parsed) {
                Some(ok) => ok,
                // Hashed with other parameters: argon2's own (allocating) path.
                None => Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok(),
            }
        })
        .await
        .map_err(Error::internal)?;
        Ok(ok && known)
    }
}

/// Verifies in a pooled working area when `parsed` uses the configured parameters;
/// `None` when it does not.
fn verify_in_place(
    params: &Params,
    areas: &Mutex<Vec<Vec<Block>>>,
    secret: &[u8],
    parsed: &PasswordHash,
) -> Option<bool> {
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return None;
    }
    let stored = Params::try_from(parsed).ok()?;
    let expected = parsed.hash?;
    if (stored.m_cost(), stored.t_cost(), stored.p_cost())
        != (params.m_cost(), params.t_cost(), params.p_cost())
        || parsed.version != Some(Version::V0x13.into())
    {
        return None;
    }
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut area = areas
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .unwrap_or_else(|| vec![Block::default(); params.block_count()]);
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(Algorithm::Argon2id, Version::V0x13, stored)
        .hash_password_into_with_memory(secret, salt, &mut out, &mut area)
        .is_ok();
    areas.lock().unwrap_or_else(|p| p.into_inner()).push(area);
    Some(computed && bool::from(out.as_slice().ct_eq(expected.as_bytes())))
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

    #[tokio::test]
    async fn hashes_made_with_other_parameters_still_verify() {
        let old = Passwords::new(2048, 2).unwrap();
        let h = old.hash("s3cret".into()).await.unwrap();
        let p = Passwords::new(1024, 1).unwrap();
        assert!(p.verify("s3cret".into(), Some(h.clone())).await.unwrap());
        assert!(!p.verify("other".into(), Some(h)).await.unwrap());
    }
}
