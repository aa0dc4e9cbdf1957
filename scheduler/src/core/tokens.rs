//! Tokens: opaque random strings; the store keeps them by SHA-256 together with the caller
//! they stand for and the exact body issued, and this cache keeps the hot ones in memory
//! so that validating a token — done on every API call — costs a hash and a map lookup.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::model::Caller;

/// A valid token: who it stands for and the body returned on issue and validation.
#[derive(Debug)]
pub struct Token {
    pub caller: Caller,
    pub body: Bytes,
}

pub type TokenHash = [u8; 32];

pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// A new token id: 32 random bytes, URL-safe base64, beginning with a letter. One id in
/// 64 began with `-`, which command-line tools read as an option (`openstack --os-token
/// -Xy…` fails): the first byte's top bit is cleared, so the first character is one of
/// `A`–`Z`, `a`–`f`, and 255 random bits remain.
pub fn new_token_id() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    raw[0] &= 0x7f;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Keystone's time format: `2015-08-27T09:49:58.000000Z`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[derive(Debug, Default)]
pub struct TokenCache {
    map: RwLock<HashMap<TokenHash, Arc<Token>>>,
}

impl TokenCache {
    /// A cached token that has not expired at `now`.
    pub fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Option<Arc<Token>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(hash).filter(|t| t.caller.expires_at > now).cloned()
    }

    pub fn insert(&self, hash: TokenHash, token: Arc<Token>) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, token);
    }

    /// Drops revoked tokens (hashes as the store returns them).
    pub fn remove_all(&self, hashes: &[Vec<u8>]) {
        if hashes.is_empty() {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        for h in hashes {
            if let Ok(h) = <TokenHash>::try_from(h.as_slice()) {
                map.remove(&h);
            }
        }
    }

    /// Drops every token expired at `now`.
    pub fn sweep(&self, now: DateTime<Utc>) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, t| t.caller.expires_at > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_use_keystone_format() {
        let t = DateTime::parse_from_rfc3339("2015-08-27T09:49:58Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_time(t), "2015-08-27T09:49:58.000000Z");
    }

    #[test]
    fn token_ids_are_distinct_and_url_safe() {
        let a = new_token_id();
        assert_ne!(a, new_token_id());
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    /// Without the rule about 30 of 2,000 ids would begin with `-` or `_`.
    #[test]
    fn token_ids_begin_with_a_letter() {
        for _ in 0..2_000 {
            let id = new_token_id();
            assert!(id.as_bytes()[0].is_ascii_alphabetic(), "{id}");
        }
    }
}
