//! API keys at rest: only their SHA-256 hash is stored (keys are 256-bit random, so a plain
//! hash cannot be reversed by search).

use super::{Store, StoreError};
use rusqlite::{OptionalExtension, params};

/// A stored API key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyRecord {
    /// Public key id (the first characters of the key), to list and revoke it.
    pub id: String,
    #[serde(skip)]
    pub hash: String,
    pub organisation: String,
    pub tier: String,
    pub label: String,
    /// `analyst` or `privacy_officer` (may read the audit entries of its datasets).
    pub role: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecord> {
    Ok(KeyRecord {
        id: r.get(0)?,
        hash: r.get(1)?,
        organisation: r.get(2)?,
        tier: r.get(3)?,
        label: r.get(4)?,
        created_at: r.get(5)?,
        revoked_at: r.get(6)?,
        role: r.get(7)?,
    })
}

const COLS: &str = "id, hash, organisation, tier, label, created_at, revoked_at, role";

impl Store {
    pub fn insert_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
        self.writer().execute(
            "INSERT INTO api_keys(id, hash, organisation, tier, label, created_at, role) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![k.id, k.hash, k.organisation, k.tier, k.label, k.created_at, k.role],
        )?;
        Ok(())
    }

    /// The active (not revoked) key with this hash.
    pub fn find_key(&self, hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLS} FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL"),
                [hash],
                from_row,
            )
            .optional()?)
        })
    }

    pub fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM api_keys ORDER BY created_at, id"
            ))?;
            Ok(st.query_map([], from_row)?.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Revokes a key; `false` when no active key has this id.
    pub fn revoke_key(&self, id: &str, now: &str) -> Result<bool, StoreError> {
        Ok(self.writer().execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )? > 0)
    }

    /// Replaces the active key `old_id` by `new` in one transaction: the old key is revoked
    /// and the new one inserted, or neither (`false` when no active key has that id).
    pub fn rotate_key(&self, old_id: &str, new: &KeyRecord) -> Result<bool, StoreError> {
        let mut c = self.writer();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![old_id, new.created_at],
        )?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO api_keys(id, hash, organisation, tier, label, created_at, role) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![new.id, new.hash, new.organisation, new.tier, new.label, new.created_at, new.role],
        )?;
        tx.commit()?;
        Ok(true)
    }
}
