//! Schema, migrations and the row-level SQL of each layer.

use super::{Batch, Store, StoreError, WriteStats};
use crate::model::{BaselinePoint, Facility, StudyArea};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

const MIGRATIONS: &[&str] = &[
    // 1: the initial schema
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE datasets(
        id TEXT PRIMARY KEY, title TEXT NOT NULL, metric_crs TEXT, created_at TEXT NOT NULL);
     CREATE TABLE incidents(
        fid INTEGER PRIMARY KEY,
        dataset TEXT NOT NULL REFERENCES datasets(id),
        source TEXT NOT NULL, external_id TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, category TEXT NOT NULL, subject TEXT,
        lon REAL NOT NULL, lat REAL NOT NULL, x REAL NOT NULL, y REAL NOT NULL,
        cell INTEGER NOT NULL, props TEXT NOT NULL DEFAULT '{}',
        UNIQUE(dataset, source, external_id));
     CREATE TABLE facilities(
        fid INTEGER PRIMARY KEY,
        dataset TEXT NOT NULL REFERENCES datasets(id),
        id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, confidential INTEGER NOT NULL,
        lon REAL NOT NULL, lat REAL NOT NULL, x REAL NOT NULL, y REAL NOT NULL,
        props TEXT NOT NULL DEFAULT '{}',
        UNIQUE(dataset, id));
     CREATE TABLE baseline(
        fid INTEGER PRIMARY KEY,
        dataset TEXT NOT NULL REFERENCES datasets(id),
        id TEXT NOT NULL, weight REAL NOT NULL,
        lon REAL NOT NULL, lat REAL NOT NULL, x REAL NOT NULL, y REAL NOT NULL,
        UNIQUE(dataset, id));
     CREATE TABLE study_area(
        dataset TEXT PRIMARY KEY REFERENCES datasets(id),
        name TEXT NOT NULL, wgs84 TEXT NOT NULL, metric TEXT NOT NULL);
     CREATE TABLE api_keys(
        id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, organisation TEXT NOT NULL,
        tier TEXT NOT NULL, label TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
        revoked_at TEXT);",
    // 2: privacy: membership, open publication, per-dataset disclosure settings, key roles,
    //    and the append-only, hash-chained audit log
    "ALTER TABLE datasets ADD COLUMN open INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE datasets ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
     CREATE TABLE dataset_members(
        dataset TEXT NOT NULL REFERENCES datasets(id), organisation TEXT NOT NULL,
        PRIMARY KEY(dataset, organisation));
     ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'analyst';
     CREATE TABLE audit(
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, key_id TEXT, organisation TEXT,
        tier TEXT NOT NULL, method TEXT NOT NULL, route TEXT NOT NULL, dataset TEXT,
        query TEXT NOT NULL, status INTEGER NOT NULL, rows_returned INTEGER,
        cells_suppressed INTEGER, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
     CREATE INDEX audit_dataset ON audit(dataset, seq);
     CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
     CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    // 3: the per-dataset salt of the cell key method's record keys (privacy::cellkey)
    "ALTER TABLE datasets ADD COLUMN cell_key_salt BLOB;
     UPDATE datasets SET cell_key_salt = randomblob(32);",
];

/// Applies the migrations not yet applied (`PRAGMA user_version` counts them).
pub(super) fn migrate(c: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = c.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

fn count(tx: &Transaction<'_>, table: &str, ds: &str) -> Result<u64, StoreError> {
    Ok(tx.query_row(
        &format!("SELECT count(*) FROM {table} WHERE dataset = ?1"),
        [ds],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

pub(super) fn write_rows(
    tx: &Transaction<'_>,
    ds: &str,
    batch: Batch<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<WriteStats, StoreError> {
    let (table, n) = match &batch {
        Batch::Incidents(r) => ("incidents", r.len()),
        Batch::Facilities(r) => ("facilities", r.len()),
        Batch::Baseline(r) => ("baseline", r.len()),
        Batch::StudyArea(_) => ("study_area", 1),
    };
    let before = count(tx, table, ds)?;
    match batch {
        Batch::Incidents(rows) => {
            let mut st = tx.prepare_cached(
                "INSERT INTO incidents(dataset, source, external_id, occurred_at, category, subject, lon, lat, x, y, cell, props)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT(dataset, source, external_id) DO UPDATE SET
                   occurred_at = excluded.occurred_at, category = excluded.category, subject = excluded.subject,
                   lon = excluded.lon, lat = excluded.lat, x = excluded.x, y = excluded.y,
                   cell = excluded.cell, props = excluded.props",
            )?;
            for (i, r) in rows.iter().enumerate() {
                st.execute(params![
                    ds,
                    r.source,
                    r.external_id,
                    r.occurred_at,
                    r.category,
                    r.subject,
                    r.lon,
                    r.lat,
                    r.x,
                    r.y,
                    r.cell as i64,
                    r.props
                ])?;
                if i % 65536 == 65535 {
                    progress(i as u64 + 1);
                }
            }
        }
        Batch::Facilities(rows) => {
            let mut st = tx.prepare_cached(
                "INSERT INTO facilities(dataset, id, name, kind, confidential, lon, lat, x, y, props)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(dataset, id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                   confidential = excluded.confidential, lon = excluded.lon, lat = excluded.lat,
                   x = excluded.x, y = excluded.y, props = excluded.props",
            )?;
            for r in rows {
                st.execute(params![
                    ds,
                    r.id,
                    r.name,
                    r.kind,
                    r.confidential,
                    r.lon,
                    r.lat,
                    r.x,
                    r.y,
                    r.props
                ])?;
            }
        }
        Batch::Baseline(rows) => {
            let mut st = tx.prepare_cached(
                "INSERT INTO baseline(dataset, id, weight, lon, lat, x, y) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(dataset, id) DO UPDATE SET weight = excluded.weight, lon = excluded.lon,
                   lat = excluded.lat, x = excluded.x, y = excluded.y",
            )?;
            for r in rows {
                st.execute(params![ds, r.id, r.weight, r.lon, r.lat, r.x, r.y])?;
            }
        }
        Batch::StudyArea(area) => {
            tx.execute(
                "INSERT INTO study_area(dataset, name, wgs84, metric) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(dataset) DO UPDATE SET name = excluded.name, wgs84 = excluded.wgs84, metric = excluded.metric",
                params![ds, area.name, mp_to_json(&area.wgs84), mp_to_json(&area.metric)],
            )?;
        }
    }
    progress(n as u64);
    let after = count(tx, table, ds)?;
    let inserted = after - before;
    Ok(WriteStats {
        inserted,
        updated: n as u64 - inserted.min(n as u64),
    })
}

pub(super) fn load_facilities(store: &Store, ds: &str) -> Result<Vec<(i64, Facility)>, StoreError> {
    store.read(|c| {
        let mut st = c.prepare(
            "SELECT fid, id, name, kind, confidential, lon, lat, x, y, props FROM facilities WHERE dataset = ?1 ORDER BY fid",
        )?;
        let rows = st.query_map([ds], |r| {
            Ok((
                r.get(0)?,
                Facility {
                    id: r.get(1)?,
                    name: r.get(2)?,
                    kind: r.get(3)?,
                    confidential: r.get(4)?,
                    lon: r.get(5)?,
                    lat: r.get(6)?,
                    x: r.get(7)?,
                    y: r.get(8)?,
                    props: r.get(9)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
}

pub(super) fn load_baseline(
    store: &Store,
    ds: &str,
) -> Result<Vec<(i64, BaselinePoint)>, StoreError> {
    store.read(|c| {
        let mut st = c.prepare(
            "SELECT fid, id, weight, lon, lat, x, y FROM baseline WHERE dataset = ?1 ORDER BY fid",
        )?;
        let rows = st.query_map([ds], |r| {
            Ok((
                r.get(0)?,
                BaselinePoint {
                    id: r.get(1)?,
                    weight: r.get(2)?,
                    lon: r.get(3)?,
                    lat: r.get(4)?,
                    x: r.get(5)?,
                    y: r.get(6)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
}

pub(super) fn load_study_area(store: &Store, ds: &str) -> Result<Option<StudyArea>, StoreError> {
    let row: Option<(String, String, String)> = store.read(|c| {
        Ok(c.query_row(
            "SELECT name, wgs84, metric FROM study_area WHERE dataset = ?1",
            [ds],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
    })?;
    row.map(|(name, w, m)| {
        Ok(StudyArea {
            name,
            wgs84: mp_from_json(&w)?,
            metric: mp_from_json(&m)?,
        })
    })
    .transpose()
}

type Rings = Vec<Vec<Vec<[f64; 2]>>>;

/// A multipolygon as nested coordinate arrays (`[[[[x, y], ...]]]`, GeoJSON's layout).
pub fn mp_to_json(mp: &geo::MultiPolygon<f64>) -> String {
    let v: Rings =
        mp.0.iter()
            .map(|p| {
                std::iter::once(p.exterior())
                    .chain(p.interiors())
                    .map(|r| r.0.iter().map(|c| [c.x, c.y]).collect())
                    .collect()
            })
            .collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}

/// Inverse of [`mp_to_json`].
pub fn mp_from_json(s: &str) -> Result<geo::MultiPolygon<f64>, StoreError> {
    let v: Rings = serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let ring = |r: &Vec<[f64; 2]>| {
        geo::LineString::from(r.iter().map(|c| (c[0], c[1])).collect::<Vec<_>>())
    };
    Ok(geo::MultiPolygon(
        v.iter()
            .filter(|p| !p.is_empty())
            .map(|p| geo::Polygon::new(ring(&p[0]), p[1..].iter().map(ring).collect()))
            .collect(),
    ))
}
