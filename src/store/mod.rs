//! The durable store: one SQLite database (`<data-dir>/hotspots.sqlite`, WAL,
//! `synchronous=FULL`). The only module that writes to disk.
//!
//! A batch is written in one transaction: when [`Store::write_batch`] returns `Ok`, every row
//! is on disk; when it returns `Err`, nothing of the batch is.

mod audit;
mod datasets;
mod keys;
mod schema;

pub use audit::AuditEntry;
pub use keys::KeyRecord;

use crate::model::{BaselinePoint, DatasetId, Facility, Incident, StudyArea};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (disk full, corruption, locked for too long...).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory could not be created or opened.
    #[error("cannot use data directory {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A dataset with this id exists already.
    #[error("dataset {0} exists already")]
    DatasetExists(String),
    /// No dataset with this id.
    #[error("dataset {0} not found")]
    DatasetNotFound(String),
    /// A stored value could not be decoded (a bug or a hand-edited database).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Rows of one layer to write in one transaction.
pub enum Batch<'a> {
    Incidents(&'a [Incident]),
    Facilities(&'a [Facility]),
    Baseline(&'a [BaselinePoint]),
    StudyArea(&'a StudyArea),
}

/// What a batch write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteStats {
    pub inserted: u64,
    pub updated: u64,
}

/// The SQLite store. Writes are serialised by one writer connection; reads use a small pool
/// and never wait for writers (WAL).
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// The audit log's own writer, so audit entries do not queue behind a large ingest's
    /// statement preparation (SQLite still serialises the commits).
    audit: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(c)
}

impl Store {
    /// Opens (and creates or migrates) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(dir.to_owned(), e))?;
        let path = dir.join("hotspots.sqlite");
        let mut writer = open_conn(&path)?;
        schema::migrate(&mut writer)?;
        let audit = open_conn(&path)?;
        Ok(Store {
            path,
            writer: Mutex::new(writer),
            audit: Mutex::new(audit),
            readers: Mutex::new(Vec::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The audit log's connection.
    pub(crate) fn audit_conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        Ok(self.audit.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `f` on a pooled read connection.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_conn(&self.path)?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    /// `PRAGMA integrity_check`: `"ok"` when the database is sound.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
    }

    /// Writes one batch atomically. `fix_metric_crs` sets the dataset's metric CRS in the same
    /// transaction when it was not set yet (the first ingest decides it).
    pub fn write_batch(
        &self,
        ds: &DatasetId,
        fix_metric_crs: Option<&str>,
        batch: Batch<'_>,
        mut progress: impl FnMut(u64),
    ) -> Result<WriteStats, StoreError> {
        let mut c = self.writer();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row(
                "SELECT 1 FROM datasets WHERE id = ?1",
                [ds.as_str()],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if !exists {
            return Err(StoreError::DatasetNotFound(ds.to_string()));
        }
        if let Some(crs) = fix_metric_crs {
            tx.execute(
                "UPDATE datasets SET metric_crs = ?1 WHERE id = ?2 AND metric_crs IS NULL",
                params![crs, ds.as_str()],
            )?;
        }
        let stats = schema::write_rows(&tx, ds.as_str(), batch, &mut progress)?;
        tx.commit()?;
        Ok(stats)
    }

    /// Calls `f` for each stored incident of a dataset, in fid order.
    pub fn for_each_incident(
        &self,
        ds: &DatasetId,
        mut f: impl FnMut(StoredIncident<'_>),
    ) -> Result<(), StoreError> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT fid, source, occurred_at, category, subject, lon, lat, x, y, cell \
                 FROM incidents NOT INDEXED WHERE dataset = ?1 ORDER BY fid",
            )?;
            let mut rows = st.query([ds.as_str()])?;
            while let Some(r) = rows.next()? {
                f(StoredIncident {
                    fid: r.get(0)?,
                    source: r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?,
                    occurred_at: r.get(2)?,
                    category: r.get_ref(3)?.as_str().map_err(rusqlite::Error::from)?,
                    subject: r
                        .get_ref(4)?
                        .as_str_or_null()
                        .map_err(rusqlite::Error::from)?,
                    lon: r.get(5)?,
                    lat: r.get(6)?,
                    x: r.get(7)?,
                    y: r.get(8)?,
                    cell: r.get::<_, i64>(9)? as u64,
                });
            }
            Ok(())
        })
    }

    /// External id and free properties of the given incidents (for the items of one page).
    pub fn incident_details(
        &self,
        ds: &DatasetId,
        fids: &[i64],
    ) -> Result<std::collections::HashMap<i64, (String, String)>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT external_id, props FROM incidents WHERE fid = ?1 AND dataset = ?2",
            )?;
            let mut out = std::collections::HashMap::with_capacity(fids.len());
            for &fid in fids {
                if let Some(v) = st
                    .query_row(params![fid, ds.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?
                {
                    out.insert(fid, v);
                }
            }
            Ok(out)
        })
    }

    pub fn load_facilities(&self, ds: &DatasetId) -> Result<Vec<(i64, Facility)>, StoreError> {
        schema::load_facilities(self, ds.as_str())
    }

    pub fn load_baseline(&self, ds: &DatasetId) -> Result<Vec<(i64, BaselinePoint)>, StoreError> {
        schema::load_baseline(self, ds.as_str())
    }

    pub fn load_study_area(&self, ds: &DatasetId) -> Result<Option<StudyArea>, StoreError> {
        schema::load_study_area(self, ds.as_str())
    }

    pub fn count_incidents(&self, ds: &DatasetId) -> Result<u64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM incidents WHERE dataset = ?1",
                [ds.as_str()],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }

    /// Reads a value from the `meta` table (service-wide settings).
    pub fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    /// Sets a value in the `meta` table.
    pub fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.writer().execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

/// One incident as loaded for the index (strings borrowed from the row).
pub struct StoredIncident<'a> {
    pub fid: i64,
    pub source: &'a str,
    pub occurred_at: i64,
    pub category: &'a str,
    pub subject: Option<&'a str>,
    pub lon: f64,
    pub lat: f64,
    pub x: f64,
    pub y: f64,
    pub cell: u64,
}
