//! Datasets: metadata, membership, publication and disclosure settings.

use super::{Store, StoreError};
use crate::model::{DatasetId, DatasetMeta, DatasetSettings};
use rusqlite::{Connection, OptionalExtension, params};

fn members(c: &Connection, id: &str) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT organisation FROM dataset_members WHERE dataset = ?1 ORDER BY organisation",
    )?;
    Ok(st
        .query_map([id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?)
}

fn meta_from(
    c: &Connection,
    id: String,
    title: String,
    metric_crs: Option<String>,
    created_at: String,
    open: bool,
    settings: String,
) -> Result<DatasetMeta, StoreError> {
    let settings: DatasetSettings =
        serde_json::from_str(&settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let members = members(c, &id)?;
    let id = DatasetId::new(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(DatasetMeta {
        id,
        title,
        metric_crs,
        created_at,
        members,
        open,
        settings,
    })
}

const COLS: &str = "id, title, metric_crs, created_at, open, settings";

type Row = (String, String, Option<String>, String, bool, String);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

impl Store {
    /// Creates a dataset with its members; `DatasetExists` when the id is taken.
    pub fn create_dataset(&self, meta: &DatasetMeta) -> Result<(), StoreError> {
        let mut c = self.writer();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let settings = serde_json::to_string(&meta.settings)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = tx.execute(
            "INSERT INTO datasets(id, title, metric_crs, created_at, open, settings, cell_key_salt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, randomblob(32))
             ON CONFLICT(id) DO NOTHING",
            params![
                meta.id.as_str(),
                meta.title,
                meta.metric_crs,
                meta.created_at,
                meta.open,
                settings
            ],
        )?;
        if n == 0 {
            return Err(StoreError::DatasetExists(meta.id.to_string()));
        }
        for m in &meta.members {
            tx.execute(
                "INSERT OR IGNORE INTO dataset_members(dataset, organisation) VALUES (?1, ?2)",
                params![meta.id.as_str(), m],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn list_datasets(&self) -> Result<Vec<DatasetMeta>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {COLS} FROM datasets ORDER BY id"))?;
            let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(a, b, m, d, o, s)| meta_from(c, a, b, m, d, o, s))
                .collect()
        })
    }

    /// The salt of the dataset's cell-key record keys (`privacy::cellkey`); never shown.
    pub fn cell_key_salt(&self, id: &DatasetId) -> Result<Vec<u8>, StoreError> {
        self.read(|c| {
            let salt: Option<Vec<u8>> = c.query_row(
                "SELECT cell_key_salt FROM datasets WHERE id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )?;
            salt.filter(|s| s.len() == 32)
                .ok_or_else(|| StoreError::Corrupt(format!("dataset {id}: no cell key salt")))
        })
    }

    pub fn get_dataset(&self, id: &DatasetId) -> Result<Option<DatasetMeta>, StoreError> {
        self.read(|c| {
            let r = c
                .query_row(
                    &format!("SELECT {COLS} FROM datasets WHERE id = ?1"),
                    [id.as_str()],
                    row,
                )
                .optional()?;
            r.map(|(a, b, m, d, o, s)| meta_from(c, a, b, m, d, o, s))
                .transpose()
        })
    }

    /// Sets publication and disclosure settings; `false` when the dataset does not exist.
    pub fn update_dataset(
        &self,
        id: &DatasetId,
        title: &str,
        open: bool,
        settings: &DatasetSettings,
    ) -> Result<bool, StoreError> {
        let settings =
            serde_json::to_string(settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(self.writer().execute(
            "UPDATE datasets SET title = ?2, open = ?3, settings = ?4 WHERE id = ?1",
            params![id.as_str(), title, open, settings],
        )? > 0)
    }

    /// Adds (`true`) or removes (`false`) a member organisation; returns whether anything changed.
    pub fn set_member(
        &self,
        id: &DatasetId,
        organisation: &str,
        member: bool,
    ) -> Result<bool, StoreError> {
        let c = self.writer();
        let n = if member {
            c.execute(
                "INSERT OR IGNORE INTO dataset_members(dataset, organisation) VALUES (?1, ?2)",
                params![id.as_str(), organisation],
            )?
        } else {
            c.execute(
                "DELETE FROM dataset_members WHERE dataset = ?1 AND organisation = ?2",
                params![id.as_str(), organisation],
            )?
        };
        Ok(n > 0)
    }

    /// Deletes a dataset and all its layers in one transaction; `false` when it did not exist.
    /// Its audit entries stay (the audit log is append-only).
    pub fn delete_dataset(&self, id: &DatasetId) -> Result<bool, StoreError> {
        let mut c = self.writer();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for table in [
            "incidents",
            "facilities",
            "baseline",
            "study_area",
            "dataset_members",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE dataset = ?1"),
                [id.as_str()],
            )?;
        }
        let n = tx.execute("DELETE FROM datasets WHERE id = ?1", [id.as_str()])?;
        tx.commit()?;
        Ok(n > 0)
    }
}
