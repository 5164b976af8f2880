//! Shared by the analysis benchmarks: the data directory of one size (generated and ingested
//! once, then reused), the in-process server every timed request goes through, and the
//! runner of the Python peers.

use crate::util::{quantile, timed};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hotspots::api::{AppState, Settings, router};
use hotspots::app::{App, IngestRequest, NewDataset};
use hotspots::crs::Crs;
use hotspots::ingest::{Format, csv::CsvOptions};
use hotspots::model::{DatasetId, Layer, Tier};
use hotspots::privacy::Principal;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tower::ServiceExt;

pub const DATASET: &str = "bench";
/// The organisation whose private-tier key runs the requests.
pub const MEMBER: &str = "bench-org";

/// The directory of size `n` under `root`; the service's data dir is `<dir>/data`.
pub fn size_dir(root: &Path, n: usize) -> PathBuf {
    root.join(format!("n{n}"))
}

/// Generates the files of size `n` and ingests incidents and facilities into `<dir>/data`,
/// unless a previous run left the marker `<dir>/ready`. Returns timings of what it did.
pub fn setup(dir: &Path, n: usize) -> Value {
    let ready = dir.join("ready");
    if ready.exists() {
        return json!({"reused": true});
    }
    let _ = std::fs::remove_dir_all(dir);
    let (gen_s, r) = timed(|| crate::data::write(dir, n));
    r.expect("write data");
    let app = App::open(&dir.join("data"), None).expect("open store");
    app.create_dataset(NewDataset {
        id: DATASET,
        title: "analysis benchmark",
        members: vec![MEMBER.to_owned()],
        ..NewDataset::default()
    })
    .expect("create dataset");
    let ds = DatasetId::new(DATASET).expect("id");
    let ingest = |layer: Layer, file: &str| {
        let body = std::fs::read(dir.join(file)).expect("read");
        let req = IngestRequest {
            layer,
            format: Format::Csv,
            body: &body,
            crs: Crs::WGS84,
            csv: CsvOptions::default(),
            strict: true,
        };
        let (s, out) = timed(|| app.ingest(&Principal::admin(), &ds, req, |_| {}));
        assert_eq!(
            out.expect("ingest").rejected.len(),
            0,
            "{file}: rows rejected"
        );
        s
    };
    let fac_s = ingest(Layer::Facilities, "facilities.csv");
    let inc_s = ingest(Layer::Incidents, "incidents.csv");
    std::fs::write(&ready, "ok").expect("marker");
    json!({"reused": false, "generate_s": gen_s, "ingest_incidents_s": inc_s,
           "ingest_facilities_s": fac_s})
}

/// The service on a size's data dir, driven in process through the whole router
/// (authentication, audit log append, parameter parsing, disclosure filter, analysis on the
/// blocking pool, GeoJSON serialisation), with a private-tier key of the dataset's member.
pub struct Server {
    pub rt: tokio::runtime::Runtime,
    pub router: axum::Router,
    pub state: AppState,
    pub key: String,
}

impl Server {
    /// `cache`: whether analysis answers are cached (off to time the computation).
    pub fn open(dir: &Path, cache: bool) -> Server {
        let app = App::open(&dir.join("data"), None).expect("open");
        let (key, _) = app
            .create_key(MEMBER, Tier::Private, "bench", false)
            .expect("key");
        let settings = Settings {
            rate_limit_per_minute: 0,
            cache_entries: if cache { 256 } else { 0 },
            request_timeout: std::time::Duration::from_secs(3600),
            ..Settings::default()
        };
        let state = AppState::new(app, settings);
        let router = router(state.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        Server {
            rt,
            router,
            state,
            key,
        }
    }

    /// One GET: seconds until the whole body is read, the status, the body.
    pub fn get(&self, uri: &str) -> (f64, StatusCode, Vec<u8>) {
        let req = Request::get(uri)
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .body(Body::empty())
            .expect("request");
        self.rt.block_on(async {
            let t = std::time::Instant::now();
            let resp = self.router.clone().oneshot(req).await.expect("infallible");
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .expect("body");
            (t.elapsed().as_secs_f64(), status, bytes.to_vec())
        })
    }

    /// GETs `uri` `warmup + reps` times, panicking on a non-2xx answer; returns the seconds
    /// of the timed ones and the JSON of the last answer.
    pub fn time(&self, uri: &str, warmup: usize, reps: usize) -> (Vec<f64>, Value) {
        let mut secs = Vec::with_capacity(reps);
        let mut last = Vec::new();
        for i in 0..warmup + reps {
            let (s, status, body) = self.get(uri);
            assert!(
                status.is_success(),
                "{uri}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            if i >= warmup {
                secs.push(s);
            }
            last = body;
        }
        let v = serde_json::from_slice(&last).unwrap_or(Value::Null);
        (secs, v)
    }
}

/// Median, p95 and max of `secs`, in milliseconds, with the number of samples.
pub fn summary_ms(secs: &[f64]) -> Value {
    json!({"n": secs.len(), "median_ms": quantile(secs, 0.5) * 1e3,
           "p95_ms": quantile(secs, 0.95) * 1e3, "max_ms": quantile(secs, 1.0) * 1e3})
}

/// Runs `benches/peers/<script>` with `args` under python3; its last stdout line is JSON.
/// `None` when `HOTSPOTS_BENCH_NO_PEER=1` or when python fails (the error is printed).
pub fn peer(script: &str, args: &[&str]) -> Option<Value> {
    if std::env::var("HOTSPOTS_BENCH_NO_PEER").is_ok_and(|v| v == "1") {
        return None;
    }
    let path = format!("{}/benches/peers/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .stderr(Stdio::inherit())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            serde_json::from_str(text.lines().last().unwrap_or("null")).ok()
        }
        Ok(o) => {
            eprintln!("peer {script} failed: {}", o.status);
            None
        }
        Err(e) => {
            eprintln!("peer {script}: {e}");
            None
        }
    }
}

/// `a / b` as a ratio string (`12.3x`), `-` when either is missing.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}x", a / b),
        _ => "-".into(),
    }
}
