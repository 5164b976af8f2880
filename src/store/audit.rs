//! The audit log: append-only (triggers refuse UPDATE and DELETE) and hash-chained (each
//! entry's `hash` = SHA-256 of the previous hash and the entry), written with
//! `synchronous=FULL` so that it survives a crash. It never holds keys or raw identifiers.

use super::{Store, StoreError};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

/// One audited request.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub key_id: Option<String>,
    pub organisation: Option<String>,
    pub tier: String,
    pub method: String,
    pub route: String,
    pub dataset: Option<String>,
    pub query: String,
    pub status: u16,
    pub rows_returned: Option<i64>,
    pub cells_suppressed: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
}

fn chain_hash(prev: &str, e: &AuditEntry, seq: i64) -> String {
    let text = serde_json::json!([
        prev,
        seq,
        e.at,
        e.key_id,
        e.organisation,
        e.tier,
        e.method,
        e.route,
        e.dataset,
        e.query,
        e.status,
        e.rows_returned,
        e.cells_suppressed
    ])
    .to_string();
    hex::encode(Sha256::digest(text.as_bytes()))
}

const GENESIS: &str = "genesis";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: r.get(1)?,
        key_id: r.get(2)?,
        organisation: r.get(3)?,
        tier: r.get(4)?,
        method: r.get(5)?,
        route: r.get(6)?,
        dataset: r.get(7)?,
        query: r.get(8)?,
        status: r.get(9)?,
        rows_returned: r.get(10)?,
        cells_suppressed: r.get(11)?,
        prev_hash: r.get(12)?,
        hash: r.get(13)?,
    })
}

const COLS: &str = "seq, at, key_id, organisation, tier, method, route, dataset, query, status, \
                    rows_returned, cells_suppressed, prev_hash, hash";

impl Store {
    /// Appends an entry (its `seq`, `prev_hash` and `hash` are assigned here).
    pub fn append_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let mut c = self.audit_conn()?;
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, prev) = last.map_or((1, GENESIS.to_owned()), |(s, h)| (s + 1, h));
        let hash = chain_hash(&prev, e, seq);
        tx.execute(
            &format!("INSERT INTO audit({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
            params![seq, e.at, e.key_id, e.organisation, e.tier, e.method, e.route, e.dataset, e.query, e.status,
                    e.rows_returned, e.cells_suppressed, prev, hash],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Entries after `after_seq`, oldest first, optionally only about the given datasets.
    pub fn audit_entries(
        &self,
        datasets: Option<&[String]>,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM audit WHERE seq > ?1 ORDER BY seq"
            ))?;
            let mut out = Vec::new();
            let mut rows = st.query([after_seq])?;
            while let Some(r) = rows.next()? {
                let e = from_row(r)?;
                if datasets.is_none_or(|d| e.dataset.as_ref().is_some_and(|x| d.contains(x))) {
                    out.push(e);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    /// Recomputes the hash chain: `Ok(None)` when intact, else the first broken `seq`.
    pub fn verify_audit_chain(&self) -> Result<Option<i64>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {COLS} FROM audit ORDER BY seq"))?;
            let mut prev = GENESIS.to_owned();
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let e = from_row(r)?;
                if e.prev_hash != prev || chain_hash(&prev, &e, e.seq) != e.hash {
                    return Ok(Some(e.seq));
                }
                prev = e.hash;
            }
            Ok(None)
        })
    }
}
