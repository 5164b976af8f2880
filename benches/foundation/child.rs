//! The measurements that run in a fresh child process each (so that resident memory and
//! allocator state of one do not leak into the next): ingest, ingest split into its stages,
//! and reload. Each prints one JSON object on stdout.

use crate::util::{rss, timed};
use hotspots::app::{App, IngestRequest, NewDataset};
use hotspots::crs::{Crs, Transformer};
use hotspots::index::PointIndex;
use hotspots::ingest::{self, Format, csv::CsvOptions, validate};
use hotspots::model::{DatasetId, FINE_RES, Layer};
use hotspots::privacy::Principal;
use hotspots::store::{Batch, Store};
use serde_json::{Value, json};
use std::hint::black_box;
use std::path::Path;

pub const DATASET: &str = "bench";
/// The organisation whose private-tier key runs the queries.
pub const MEMBER: &str = "bench-org";

fn dataset() -> DatasetId {
    DatasetId::new(DATASET).expect("valid dataset id")
}

fn crs_arg(s: &str) -> Crs {
    Crs::parse(s).expect("a known CRS")
}

/// A new data dir with an empty dataset `bench` (metric CRS decided by the first ingest,
/// `bench-org` its member).
fn fresh(dir: &Path) -> App {
    let app = App::open(dir, None).expect("open store");
    app.create_dataset(NewDataset {
        id: DATASET,
        title: "benchmark",
        members: vec![MEMBER.to_owned()],
        ..NewDataset::default()
    })
    .expect("create dataset");
    app
}

/// `App::ingest` of the whole file as one batch: parse, validate, transform, durable write,
/// snapshot rebuild.
pub fn ingest(file: &Path, dir: &Path, crs: &str) -> Value {
    let (read_s, body) = timed(|| std::fs::read(file).expect("read CSV"));
    let app = fresh(dir);
    let (rss0, _) = rss();
    let req = IngestRequest {
        layer: Layer::Incidents,
        format: Format::Csv,
        body: &body,
        crs: crs_arg(crs),
        csv: CsvOptions::default(),
        strict: false,
    };
    let (ingest_s, out) = timed(|| app.ingest(&Principal::admin(), &dataset(), req, |_| {}));
    let out = out.expect("ingest");
    let (rss1, hwm) = rss();
    let snap = app.catalog.get(&dataset()).expect("snapshot");
    json!({
        "read_s": read_s, "ingest_s": ingest_s, "accepted": out.accepted,
        "rejected": out.rejected.len(), "metric_crs": out.metric_crs,
        "heap_bytes": snap.incidents.heap_bytes(), "rss_delta": rss1.saturating_sub(rss0),
        "hwm": hwm, "body_bytes": body.len(),
    })
}

/// The stages of `App::ingest` run one by one on the public functions it calls, plus the
/// PROJ transform and the H3 cell computation on their own.
pub fn split(file: &Path, dir: &Path, crs: &str) -> Value {
    let body = std::fs::read(file).expect("read CSV");
    let app = fresh(dir);
    let ds = dataset();
    let meta = app.store.get_dataset(&ds).expect("get").expect("exists");
    let (parse_s, parsed) = timed(|| ingest::parse(Format::Csv, &body, &CsvOptions::default()));
    let parsed = parsed.expect("parse");
    let n = parsed.records.len();
    let ctx = validate::Context {
        dataset: &meta,
        layer: Layer::Incidents,
        input_crs: crs_arg(crs),
        caller_org: None,
        subject_key: [7; 32],
    };
    let (prepare_s, prepared) = timed(|| validate::prepare(parsed, &ctx));
    let prepared = prepared.expect("prepare");
    let validate::Records::Incidents(records) = &prepared.records else {
        panic!("incident records expected");
    };
    let fix = prepared.fix_metric_crs.then(|| prepared.metric_crs.epsg());
    let (write_s, stats) = timed(|| {
        app.store
            .write_batch(&ds, fix.as_deref(), Batch::Incidents(records), |_| {})
    });
    stats.expect("write");
    let (snapshot_s, r) = timed(|| app.catalog.refresh(&app.store, &ds));
    r.expect("refresh");
    let pts: Vec<(f64, f64)> = records.iter().map(|r| (r.lon, r.lat)).collect();
    let (proj_s, _) = timed(|| {
        let mut v = pts.clone();
        let t = Transformer::new(Crs::WGS84, Crs::RD_NEW).expect("transformer");
        t.points(&mut v);
        black_box(v)
    });
    let res = h3o::Resolution::try_from(FINE_RES).expect("resolution");
    let (h3_s, _) = timed(|| {
        pts.iter()
            .filter_map(|&(lon, lat)| h3o::LatLng::new(lat, lon).ok())
            .map(|ll| u64::from(ll.to_cell(res)))
            .fold(0u64, |a, c| a ^ black_box(c))
    });
    json!({
        "rows": n, "parse_s": parse_s, "prepare_s": prepare_s, "write_s": write_s,
        "snapshot_s": snapshot_s, "proj_one_transform_s": proj_s, "h3_s": h3_s,
    })
}

/// Bytes of the column vectors (capacity) and dictionaries, without the point index.
fn column_bytes(inc: &hotspots::index::Incidents) -> usize {
    let strings = |v: &Vec<String>| v.iter().map(|s| s.capacity() + 24).sum::<usize>();
    inc.fid.capacity() * 8
        + (inc.lon.capacity() + inc.lat.capacity() + inc.x.capacity() + inc.y.capacity()) * 8
        + inc.t.capacity() * 8
        + (inc.cat.capacity() + inc.src.capacity()) * 2
        + inc.subject.capacity() * 4
        + inc.cell.capacity() * 8
        + strings(&inc.categories)
        + strings(&inc.sources)
        + strings(&inc.subjects)
}

/// `App::open` of an existing data dir, with the resident memory it added; then the stages of
/// the snapshot load on their own (SQLite scan, point index build).
pub fn reload(dir: &Path) -> Value {
    let (rss0, _) = rss();
    let (open_s, app) = timed(|| App::open(dir, None).expect("reopen"));
    let (rss1, hwm) = rss();
    let snap = app.catalog.get(&dataset()).expect("snapshot");
    let inc = &snap.incidents;
    let n = inc.len();
    let store = Store::open(dir).expect("store");
    let (scan_s, _) = timed(|| {
        let mut acc = 0.0;
        store
            .for_each_incident(&dataset(), |r| acc += r.x + r.occurred_at as f64)
            .expect("scan");
        black_box(acc)
    });
    let (rtree_s, points) = timed(|| PointIndex::build(&inc.x, &inc.y));
    black_box(points.len());
    json!({
        "rows": n, "open_s": open_s, "heap_bytes": inc.heap_bytes(),
        "column_bytes": column_bytes(inc), "tree_bytes": inc.points.heap_bytes(),
        "rss_delta": rss1.saturating_sub(rss0), "rss_after": rss1, "hwm": hwm,
        "scan_s": scan_s, "rtree_s": rtree_s,
    })
}
