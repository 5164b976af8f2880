//! Items query latency through the whole router (in-process `oneshot`, a private-tier key,
//! so each request also appends to the audit log; the per-key rate limit is switched off):
//! `GET /collections/bench.incidents/items?bbox=<lon/lat>&limit=1000` over many different
//! boxes sized to hold about 1,100 incidents, so each answer carries 1,000 features. Then the
//! same boxes stage by stage (filter parse, point-index select, SQLite details, features, JSON).

use crate::child::{DATASET, MEMBER};
use crate::data::BOX_RD;
use crate::util::{quantile, timed};
use axum::body::Body;
use axum::http::{Request, header};
use hotspots::api::extract::Query;
use hotspots::api::{AppState, Settings, features, filters, router};
use hotspots::app::App;
use hotspots::crs::{Crs, Transformer};
use hotspots::model::{DatasetId, Layer, Tier};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::Path;
use tower::ServiceExt;

const LIMIT: usize = 1000;
const WARMUP: usize = 20;

/// RD squares that hold `expect` incidents on average, and the lon/lat box around each.
fn boxes(n: usize, expect: f64, count: usize) -> Vec<([f64; 4], [f64; 4])> {
    let area = (BOX_RD[2] - BOX_RD[0]) * (BOX_RD[3] - BOX_RD[1]);
    let half = (expect / n as f64 * area).sqrt() / 2.0;
    let t = Transformer::new(Crs::RD_NEW, Crs::WGS84).expect("transformer");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    (0..count)
        .map(|_| {
            let cx = rng.random_range(BOX_RD[0] + half..BOX_RD[2] - half);
            let cy = rng.random_range(BOX_RD[1] + half..BOX_RD[3] - half);
            let (w, s) = t.point(cx - half, cy - half).expect("corner");
            let (e, n) = t.point(cx + half, cy + half).expect("corner");
            ([cx - half, cy - half, cx + half, cy + half], [w, s, e, n])
        })
        .collect()
}

fn bbox_param(b: &[f64; 4]) -> String {
    format!("{:.7},{:.7},{:.7},{:.7}", b[0], b[1], b[2], b[3])
}

/// Times every request; returns the seconds and the numberReturned of each. With `rd` the
/// box is sent in RD New (`bbox-crs=EPSG:28992`), a path on which the handler calls no PROJ.
async fn run(
    app: axum::Router,
    key: &str,
    bbs: &[([f64; 4], [f64; 4])],
    gzip: bool,
    rd: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (mut secs, mut returned) = (Vec::new(), Vec::new());
    for (i, (b_rd, b_ll)) in bbs.iter().enumerate() {
        let bbox = if rd {
            format!(
                "{:.3},{:.3},{:.3},{:.3}&bbox-crs=EPSG:28992",
                b_rd[0], b_rd[1], b_rd[2], b_rd[3]
            )
        } else {
            bbox_param(b_ll)
        };
        let uri = format!("/collections/{DATASET}.incidents/items?bbox={bbox}&limit={LIMIT}");
        let mut req = Request::get(uri)
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {key}"));
        if gzip {
            req = req.header(header::ACCEPT_ENCODING, "gzip");
        }
        let req = req.body(Body::empty()).expect("request");
        let t = std::time::Instant::now();
        let resp = app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let dt = t.elapsed().as_secs_f64();
        assert!(status.is_success(), "status {status}");
        if i >= WARMUP {
            secs.push(dt);
            if !gzip && !rd {
                let v: Value = serde_json::from_slice(&bytes).expect("json");
                returned.push(v["numberReturned"].as_f64().unwrap_or(0.0));
            }
        }
    }
    (secs, returned)
}

/// The stages of the items handler on the same boxes, outside HTTP. The filters are parsed in
/// a first pass: parsing builds and drops a PROJ context, which evicts the caches and made the
/// index select that follows it look 50x slower than it is.
fn stages(st: &AppState, bbs: &[([f64; 4], [f64; 4])]) -> Value {
    let ds = DatasetId::new(DATASET).expect("id");
    let snap = st.app.catalog.get(&ds).expect("snapshot");
    let mut t = [const { Vec::new() }; 6];
    let mut filters = Vec::new();
    for (_, b) in bbs {
        let q = Query(vec![("bbox".into(), bbox_param(b))]);
        let (s, f) = timed(|| filters::parse_filter(&q, &snap).expect("filter"));
        t[0].push(s);
        filters.push(f);
    }
    for f in &filters {
        let (s1, rows) = timed(|| snap.incidents.select(f));
        let page: Vec<u32> = rows.iter().take(LIMIT).copied().collect();
        let fids: Vec<i64> = page
            .iter()
            .map(|&r| snap.incidents.fid[r as usize])
            .collect();
        let (s2, det) = timed(|| st.app.store.incident_details(&ds, &fids).expect("details"));
        let (s3, feats) = timed(|| {
            page.iter()
                .map(|&r| {
                    let d = det.get(&snap.incidents.fid[r as usize]);
                    features::feature(&snap, Layer::Incidents, r as usize, Crs::WGS84, d)
                })
                .collect::<Vec<_>>()
        });
        let (s4, body) = timed(|| {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), "FeatureCollection".into());
            m.insert("features".into(), Value::Array(feats));
            serde_json::to_vec(&m).expect("json")
        });
        std::hint::black_box(body);
        let entry = hotspots::store::AuditEntry {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            tier: "private".into(),
            method: "GET".into(),
            route: format!("/collections/{DATASET}.incidents/items"),
            status: 200,
            ..Default::default()
        };
        let (s5, r) = timed(|| st.app.store.append_audit(&entry));
        r.expect("audit");
        for (v, s) in t[1..].iter_mut().zip([s1, s2, s3, s4, s5]) {
            v.push(s);
        }
    }
    let med: Vec<f64> = t.iter().map(|v| quantile(v, 0.5) * 1e3).collect();
    json!({"filter_ms": med[0], "select_ms": med[1], "details_ms": med[2],
           "features_ms": med[3], "serialize_ms": med[4], "audit_write_ms": med[5]})
}

/// Opens `dir` (holding `n` incidents), makes a private key and runs `count` queries.
pub fn query(dir: &Path, n: usize, count: usize) -> Value {
    let app = App::open(dir, None).expect("open");
    let (key, _) = app
        .create_key(MEMBER, Tier::Private, "bench", false)
        .expect("key");
    // the per-key rate limit (600/min by default) would answer 429 to a benchmark
    let settings = Settings {
        rate_limit_per_minute: 0,
        ..Settings::default()
    };
    let st = AppState::new(app, settings);
    let r = router(st.clone());
    let bbs = boxes(n, 1100.0, count + WARMUP);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (plain, returned) = rt.block_on(run(r.clone(), &key, &bbs, false, false));
    let (gz, _) = rt.block_on(run(r.clone(), &key, &bbs, true, false));
    let (rd, _) = rt.block_on(run(r, &key, &bbs, false, true));
    let ms = |v: &[f64], q: f64| quantile(v, q) * 1e3;
    json!({
        "requests": plain.len(),
        "returned_min": returned.iter().copied().fold(f64::INFINITY, f64::min),
        "returned_mean": returned.iter().sum::<f64>() / returned.len().max(1) as f64,
        "median_ms": ms(&plain, 0.5), "p95_ms": ms(&plain, 0.95), "max_ms": ms(&plain, 1.0),
        "gzip_median_ms": ms(&gz, 0.5), "gzip_p95_ms": ms(&gz, 0.95),
        "rd_bbox_median_ms": ms(&rd, 0.5), "rd_bbox_p95_ms": ms(&rd, 0.95),
        "stages": stages(&st, &bbs[WARMUP..]),
    })
}
