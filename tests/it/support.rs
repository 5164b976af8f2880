//! Shared helpers of the HTTP tests: an in-process router on a temporary data directory
//! (driven with `tower::ServiceExt::oneshot`), request/response helpers, the Zaandam fixture
//! loader, and a real `hotspots` server process on port 0.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hotspots::api::{self, AppState, Settings};
use hotspots::app::App;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tower::ServiceExt;

/// The committed fixtures.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
/// The admin key every test app is opened with.
pub const ADMIN: &str = "test-admin-key-0123456789";
/// Organisations made members of every test dataset.
pub const MEMBERS: [&str; 7] = [
    "gemeente",
    "politie",
    "woningcorporatie",
    "ggd",
    "zorgaanbieder",
    "buurtapp",
    "x",
];
/// The OGC URI of RD New.
pub const RD_URI: &str = "http://www.opengis.net/def/crs/EPSG/0/28992";
/// The OGC URI of CRS84.
pub const CRS84_URI: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

/// The default settings without rate limits (the tests of the limits set them): the
/// in-process router sees no peer address, so all anonymous requests of a test would share
/// one budget, and a test reading in a loop would run out of its key's.
pub fn test_settings() -> Settings {
    Settings {
        rate_limit_per_minute: 0,
        anonymous_rate_limit_per_minute: 0,
        ..Settings::default()
    }
}

pub fn read_fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

pub fn manifest() -> Value {
    serde_json::from_slice(&read_fixture("zaandam/manifest.json")).expect("manifest.json")
}

/// A request to send to the router.
pub struct Req {
    pub method: Method,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn get(uri: impl Into<String>) -> Req {
    Req {
        method: Method::GET,
        uri: uri.into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

pub fn delete(uri: impl Into<String>) -> Req {
    Req {
        method: Method::DELETE,
        ..get(uri)
    }
}

pub fn post(uri: impl Into<String>, content_type: &str, body: impl Into<Vec<u8>>) -> Req {
    Req {
        method: Method::POST,
        uri: uri.into(),
        headers: vec![("content-type".into(), content_type.into())],
        body: body.into(),
    }
}

pub fn post_json(uri: impl Into<String>, v: &Value) -> Req {
    post(uri, "application/json", v.to_string())
}

impl Req {
    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.into(), v.into()));
        self
    }
    /// `Authorization: Bearer <key>`.
    pub fn key(self, key: &str) -> Req {
        self.header("authorization", &format!("Bearer {key}"))
    }
    pub fn admin(self) -> Req {
        self.key(ADMIN)
    }
}

/// A response, body collected.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }
    /// Asserts the status, returning self for chaining.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }
    /// Asserts the status is not `status`.
    #[track_caller]
    pub fn expect_not(self, status: u16) -> Resp {
        assert_ne!(self.status.as_u16(), status, "body: {}", self.text());
        self
    }
    /// Asserts an `application/problem+json` answer with this status and `code`.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "errors are problem+json"
        );
        let v = self.json();
        assert_eq!(v["status"], json!(status), "problem status member: {v}");
        assert_eq!(v["code"], json!(code), "problem code: {v}");
        assert!(
            v["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "problem has a detail: {v}"
        );
        v
    }
}

/// An in-process service on a temporary data directory.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub router: axum::Router,
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with_settings(test_settings())
    }

    pub fn with_settings(settings: Settings) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        TestApp::open(dir, settings)
    }

    /// Opens the service on an existing directory (e.g. after the `import` command).
    pub fn open(dir: tempfile::TempDir, settings: Settings) -> TestApp {
        let app = App::open(dir.path(), Some(ADMIN.to_owned())).expect("App::open");
        let state = AppState::new(app, settings);
        let router = api::router(state.clone());
        TestApp { dir, state, router }
    }

    pub async fn call(&self, r: Req) -> Resp {
        let mut b = Request::builder().method(r.method).uri(r.uri);
        for (k, v) in &r.headers {
            b = b.header(k, v);
        }
        let req = b.body(Body::from(r.body)).expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes().to_vec();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Creates a dataset as admin (201 asserted).
    pub async fn create_dataset(&self, id: &str, metric_crs: Option<&str>) -> Value {
        // open data (anonymous callers may know it) with every organisation the tests use
        // as a member, so that access is decided by tiers and sources alone
        let mut body = json!({"id": id, "title": format!("test {id}"), "open": true,
                              "members": MEMBERS});
        if let Some(m) = metric_crs {
            body["metric_crs"] = json!(m);
        }
        self.call(post_json("/datasets", &body).admin())
            .await
            .expect(201)
            .json()
    }

    /// Posts a body to a layer as admin; returns the raw response.
    pub async fn ingest(
        &self,
        ds: &str,
        layer: &str,
        content_type: &str,
        query: &str,
        body: impl Into<Vec<u8>>,
    ) -> Resp {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        self.call(post(format!("/datasets/{ds}/{layer}{q}"), content_type, body).admin())
            .await
    }

    /// Creates `ds` (metric RD New) and loads the Zaandam incidents from the RD `;`-CSV.
    pub async fn load_zaandam(&self, ds: &str) -> Value {
        self.create_dataset(ds, Some("EPSG:28992")).await;
        let out = self
            .ingest(
                ds,
                "incidents",
                "text/csv",
                "crs=EPSG:28992",
                read_fixture("zaandam/incidents_rd.csv"),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(out["accepted"], json!(5000), "{out}");
        out
    }

    /// Loads the other Zaandam layers (study area, facilities, baseline) into `ds`.
    pub async fn load_zaandam_layers(&self, ds: &str) {
        for (file, layer, ct, crs) in [
            (
                "zaandam/study_area.geojson",
                "study_area",
                "application/geo+json",
                "EPSG:4326",
            ),
            (
                "zaandam/facilities.geojson",
                "facilities",
                "application/geo+json",
                "EPSG:4326",
            ),
            ("zaandam/baseline.csv", "baseline", "text/csv", "EPSG:28992"),
        ] {
            let out = self
                .ingest(ds, layer, ct, &format!("crs={crs}"), read_fixture(file))
                .await
                .expect(200)
                .json();
            assert!(
                out["rejected"].as_array().is_some_and(Vec::is_empty),
                "{file}: {out}"
            );
        }
    }

    /// Creates an API key through the admin route; returns (key, key id).
    pub async fn key(&self, organisation: &str, tier: &str) -> (String, String) {
        let v = self
            .call(
                post_json(
                    "/admin/keys",
                    &json!({"organisation": organisation, "tier": tier, "label": "test"}),
                )
                .admin(),
            )
            .await
            .expect(201)
            .json();
        (
            v["key"].as_str().expect("key").to_owned(),
            v["id"].as_str().expect("id").to_owned(),
        )
    }

    /// Items of a collection as the admin, all pages of up to 10,000 (following `next`).
    pub async fn all_items(&self, cid: &str, extra_query: &str) -> Vec<Value> {
        let mut url = format!("/collections/{cid}/items?limit=10000{extra_query}");
        let mut out = Vec::new();
        loop {
            let v = self.call(get(&url).admin()).await.expect(200).json();
            out.extend(v["features"].as_array().expect("features").iter().cloned());
            match next_link(&v) {
                Some(n) => url = n,
                None => return out,
            }
        }
    }

    /// `numberMatched` of an items query as the admin.
    pub async fn matched(&self, cid: &str, query: &str) -> u64 {
        let v = self
            .call(get(format!("/collections/{cid}/items?limit=1&{query}")).admin())
            .await
            .expect(200)
            .json();
        v["numberMatched"].as_u64().expect("numberMatched")
    }
}

/// The `rel=next` link of an items page as a path (the base URL stripped).
pub fn next_link(page: &Value) -> Option<String> {
    page["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == "next")
        .and_then(|l| l["href"].as_str())
        .map(strip_base)
}

/// `http://host/path?q` -> `/path?q`.
pub fn strip_base(href: &str) -> String {
    let rest = href
        .strip_prefix("http://")
        .or_else(|| href.strip_prefix("https://"))
        .unwrap_or(href);
    match rest.find('/') {
        Some(i) => rest[i..].to_owned(),
        None => "/".to_owned(),
    }
}

/// Incidents as a comma CSV with dot decimals: `external_id,occurred_at,category,source,subject,lon,lat`.
pub fn incidents_csv(rows: &[(String, &str, &str, &str, &str, f64, f64)]) -> String {
    let mut s = String::from("external_id,occurred_at,category,source,subject,lon,lat\n");
    for (id, t, cat, src, subj, lon, lat) in rows {
        s.push_str(&format!("{id},{t},{cat},{src},{subj},{lon:.7},{lat:.7}\n"));
    }
    s
}

/// `n` generated incidents inside the Zaandam study area with ids `{prefix}-{i:05}`.
pub fn generated_incidents(prefix: &str, n: usize, source: &str) -> String {
    let mut s = String::with_capacity(n * 80);
    s.push_str("external_id,occurred_at,category,source,lon,lat\n");
    for i in 0..n {
        // a deterministic scatter over about 3 x 3 km around Zaandam's centre
        let u = (i as f64 * 0.618_033_988_75).fract();
        let v = (i as f64 * 0.754_877_666_25).fract();
        let lon = 4.800 + 0.045 * u;
        let lat = 52.425 + 0.030 * v;
        let day = 1 + i % 28;
        let cat = ["geluidsoverlast", "jeugdoverlast", "burenruzie"][i % 3];
        s.push_str(&format!(
            "{prefix}-{i:05},2024-05-{day:02}T12:00:00Z,{cat},{source},{lon:.7},{lat:.7}\n"
        ));
    }
    s
}

/// Parses a `;`-separated fixture table with a header into maps.
pub fn read_table(rel: &str, delimiter: u8) -> Vec<std::collections::HashMap<String, String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(BufReader::new(
            std::fs::File::open(fixture(rel)).expect("open"),
        ));
    let headers: Vec<String> = rdr
        .headers()
        .expect("header")
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    rdr.records()
        .map(|r| {
            let r = r.expect("row");
            headers
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// Metres between two lon/lat points that are close together (GRS80 radii of curvature).
pub fn lonlat_distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    const A: f64 = 6_378_137.0;
    const E2: f64 = 0.006_694_380_022_90;
    let phi = ((a.1 + b.1) / 2.0).to_radians();
    let w = (1.0 - E2 * phi.sin().powi(2)).sqrt();
    let m = A * (1.0 - E2) / w.powi(3);
    let n = A / w;
    let dy = m * (a.1 - b.1).to_radians();
    let dx = n * phi.cos() * (a.0 - b.0).to_radians();
    (dx * dx + dy * dy).sqrt()
}

/// A real `hotspots` process.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub addr: std::net::SocketAddr,
    /// stdout lines printed before the listening line.
    pub banner: Vec<String>,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_hotspots");

impl Server {
    /// Starts `hotspots serve --listen 127.0.0.1:0 --data-dir <dir> <extra>` and waits for the
    /// "hotspots listening on http://..." line (no sleeping).
    pub fn start(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env_remove("HOTSPOTS_ADMIN_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn hotspots");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let base = loop {
            match lines.next() {
                Some(Ok(l)) => match l.strip_prefix("hotspots listening on ") {
                    Some(u) => break u.trim().to_owned(),
                    None => banner.push(l),
                },
                other => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!("server ended before listening: {other:?} {status:?} {banner:?}");
                }
            }
        };
        // keep draining stdout so the child never blocks on a full pipe
        std::thread::spawn(move || for _ in lines {});
        let addr = base
            .trim_start_matches("http://")
            .parse()
            .expect("listening address");
        Server {
            child,
            base,
            addr,
            banner,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a signal with the `kill` command.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// Waits for the process to end, at most `secs` seconds.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let t0 = std::time::Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                t0.elapsed().as_secs() < secs,
                "server did not exit within {secs} s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends raw bytes on a new connection and returns what the server answered until it closed
/// the connection or `timeout` passed.
pub fn raw_http(
    addr: std::net::SocketAddr,
    request: &[u8],
    timeout: std::time::Duration,
) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(timeout)).expect("timeout");
    s.write_all(request).expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}
