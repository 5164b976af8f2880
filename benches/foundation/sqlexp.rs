//! Not part of the default run: what-if measurements behind the fixes suggested in
//! `benches/README.md`, on the store's own schema with plain rusqlite. `child-sqlexp FILE DIR`
//! inserts the validated incidents of FILE the way `store::schema::write_rows` does, then with
//! a larger page cache, then also sorted by the unique key; and scans them back with the
//! query of `Store::for_each_incident` and with the same query `NOT INDEXED`.

use crate::child::DATASET;
use crate::util::timed;
use hotspots::app::{App, NewDataset};
use hotspots::crs::Crs;
use hotspots::ingest::{self, Format, csv::CsvOptions, validate};
use hotspots::model::{DatasetId, Incident, Layer};
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use std::path::Path;

const INSERT: &str = "INSERT INTO incidents(dataset, source, external_id, occurred_at, category, subject, lon, lat, x, y, cell, props)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
 ON CONFLICT(dataset, source, external_id) DO UPDATE SET
   occurred_at = excluded.occurred_at, category = excluded.category, subject = excluded.subject,
   lon = excluded.lon, lat = excluded.lat, x = excluded.x, y = excluded.y,
   cell = excluded.cell, props = excluded.props";

/// A new store under `dir` with the empty dataset.
fn fresh(dir: &Path) -> App {
    let app = App::open(dir, None).expect("open");
    app.create_dataset(NewDataset {
        id: DATASET,
        title: "x",
        metric_crs: Some("EPSG:28992"),
        ..NewDataset::default()
    })
    .expect("dataset");
    app
}

fn records(file: &Path, dir: &Path) -> Vec<Incident> {
    let app = fresh(dir);
    let ds = DatasetId::new(DATASET).expect("id");
    let meta = app.store.get_dataset(&ds).expect("get").expect("exists");
    let body = std::fs::read(file).expect("read");
    let parsed = ingest::parse(Format::Csv, &body, &CsvOptions::default()).expect("parse");
    let ctx = validate::Context {
        dataset: &meta,
        layer: Layer::Incidents,
        input_crs: Crs::WGS84,
        caller_org: None,
        subject_key: [7; 32],
    };
    match validate::prepare(parsed, &ctx).expect("prepare").records {
        validate::Records::Incidents(v) => v,
        _ => Vec::new(),
    }
}

fn conn(dir: &Path, cache_kib: Option<i64>) -> Connection {
    let c = Connection::open(dir.join("hotspots.sqlite")).expect("sqlite");
    c.pragma_update(None, "journal_mode", "WAL").expect("wal");
    c.pragma_update(None, "synchronous", "FULL").expect("sync");
    if let Some(k) = cache_kib {
        c.pragma_update(None, "cache_size", -k).expect("cache");
    }
    c
}

/// Seconds to insert (and commit) `rows` in one transaction into a new store under `dir`.
fn insert(dir: &Path, rows: &[&Incident], cache_kib: Option<i64>) -> f64 {
    drop(fresh(dir));
    let mut c = conn(dir, cache_kib);
    let (s, _) = timed(|| {
        let tx = c.transaction().expect("tx");
        {
            let mut st = tx.prepare_cached(INSERT).expect("prepare");
            for r in rows {
                st.execute(params![
                    DATASET,
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
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
    });
    s
}

/// Seconds to read every incident back with `sql` (the columns of `for_each_incident`).
fn scan(dir: &Path, sql: &str) -> f64 {
    let c = conn(dir, None);
    let mut st = c.prepare(sql).expect("prepare");
    let (s, acc) = timed(|| {
        let mut rows = st.query([DATASET]).expect("query");
        let mut acc = 0.0f64;
        while let Some(r) = rows.next().expect("row") {
            let src = r
                .get_ref(1)
                .and_then(|v| Ok(v.as_str()?.len()))
                .unwrap_or(0);
            acc += r.get::<_, f64>(7).unwrap_or(0.0) + src as f64;
        }
        acc
    });
    std::hint::black_box(acc);
    s
}

pub fn run(file: &Path, dir: &Path) -> Value {
    let recs = records(file, &dir.join("records"));
    let as_is: Vec<&Incident> = recs.iter().collect();
    let mut sorted = as_is.clone();
    sorted.sort_by(|a, b| (&a.source, &a.external_id).cmp(&(&b.source, &b.external_id)));
    let base = insert(&dir.join("a"), &as_is, None);
    let big = insert(&dir.join("b"), &as_is, Some(256 * 1024));
    let big_sorted = insert(&dir.join("c"), &sorted, Some(256 * 1024));
    let dir = &dir.join("a");
    let count_s = timed(|| {
        conn(dir, None)
            .query_row(
                "SELECT count(*) FROM incidents WHERE dataset = ?1",
                [DATASET],
                |r| r.get::<_, i64>(0),
            )
            .expect("count")
    })
    .0;
    let cols = "fid, source, occurred_at, category, subject, lon, lat, x, y, cell";
    let q = format!("SELECT {cols} FROM incidents WHERE dataset = ?1 ORDER BY fid");
    let q_scan =
        format!("SELECT {cols} FROM incidents NOT INDEXED WHERE dataset = ?1 ORDER BY fid");
    json!({
        "rows": recs.len(), "insert_as_store_s": base, "insert_cache256m_s": big,
        "insert_cache256m_sorted_s": big_sorted, "count_s": count_s,
        "scan_as_store_s": scan(dir, &q), "scan_not_indexed_s": scan(dir, &q_scan),
    })
}
