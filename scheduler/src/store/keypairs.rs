//! Key pair queries: SSH public keys, each owned by a user and named uniquely per user.

use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, Tx};
use crate::model::KeyPair;

fn keypair(r: &Row) -> rusqlite::Result<KeyPair> {
    Ok(KeyPair {
        id: r.get("id")?,
        name: r.get("name")?,
        user_id: r.get("user_id")?,
        public_key: r.get("public_key")?,
        fingerprint: r.get("fingerprint")?,
        kind: r.get("kind")?,
        created_at: r.get("created_at")?,
    })
}

impl Db<'_> {
    pub fn keypair_get(&self, user_id: &str, name: &str) -> Result<Option<KeyPair>> {
        Ok(self
            .query_row(
                "SELECT * FROM keypairs WHERE user_id = ?1 AND name = ?2",
                [user_id, name],
                keypair,
            )
            .optional()?)
    }

    /// A user's key pairs, by name.
    pub fn keypairs_list(&self, user_id: &str) -> Result<Vec<KeyPair>> {
        let mut stmt = self.prepare("SELECT * FROM keypairs WHERE user_id = ?1 ORDER BY name")?;
        let rows = stmt.query_map([user_id], keypair)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many key pairs a user holds (what the key_pairs quota counts).
    pub fn keypair_count(&self, user_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM keypairs WHERE user_id = ?1",
            [user_id],
            |r| r.get(0),
        )?)
    }
}

impl Tx<'_> {
    /// Stores a key pair and returns its integer id; a taken name is a duplicate.
    pub fn keypair_insert(&self, k: &KeyPair) -> Result<i64> {
        self.execute(
            "INSERT INTO keypairs (user_id, name, public_key, fingerprint, kind, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                k.user_id,
                k.name,
                k.public_key,
                k.fingerprint,
                k.kind,
                k.created_at
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// False when the user has no key pair of that name.
    pub fn keypair_delete(&self, user_id: &str, name: &str) -> Result<bool> {
        Ok(self.execute(
            "DELETE FROM keypairs WHERE user_id = ?1 AND name = ?2",
            [user_id, name],
        )? == 1)
    }
}
