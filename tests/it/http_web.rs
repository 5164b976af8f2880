//! Web-client behaviour over HTTP (in-process router): CORS, compression, ETag revalidation.

use crate::support::*;
use axum::http::Method;
use hotspots::api::Settings;
use serde_json::json;

fn preflight(uri: &str, origin: &str) -> Req {
    Req {
        method: Method::OPTIONS,
        ..get(uri)
    }
    .header("origin", origin)
    .header("access-control-request-method", "GET")
    .header("access-control-request-headers", "authorization")
}

#[tokio::test]
async fn cors_any_origin_and_configured_origins() {
    let app = TestApp::new();
    app.load_zaandam("zd").await;
    let r = app
        .call(preflight(
            "/collections/zd.incidents/items",
            "http://map.example",
        ))
        .await;
    assert!(r.status.is_success(), "preflight: {}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let methods = r.header("access-control-allow-methods").unwrap_or("");
    assert!(methods.contains("GET"), "{methods}");
    let headers = r
        .header("access-control-allow-headers")
        .unwrap_or("")
        .to_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    // a simple cross-origin GET exposes the ETag and Content-Crs to scripts
    let g = app
        .call(
            get("/collections/zd.incidents/items?limit=1")
                .admin()
                .header("origin", "http://map.example"),
        )
        .await
        .expect(200);
    assert_eq!(g.header("access-control-allow-origin"), Some("*"));
    let exposed = g
        .header("access-control-expose-headers")
        .unwrap_or("")
        .to_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("content-crs"),
        "{exposed}"
    );

    let app = TestApp::with_settings(Settings {
        cors_origins: "http://map.example, https://viewer.example".into(),
        ..test_settings()
    });
    let ok = app
        .call(preflight("/collections", "https://viewer.example"))
        .await;
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://viewer.example")
    );
    let no = app
        .call(preflight("/collections", "http://evil.example"))
        .await;
    assert_eq!(
        no.header("access-control-allow-origin"),
        None,
        "unlisted origin"
    );
}

#[tokio::test]
async fn gzip_and_brotli_compression() {
    let app = TestApp::new();
    app.load_zaandam("zd").await;
    let uri = "/collections/zd.incidents/items?limit=2000";
    let plain = app.call(get(uri).admin()).await.expect(200);
    assert_eq!(plain.header("content-encoding"), None);
    let gz = app
        .call(get(uri).admin().header("accept-encoding", "gzip"))
        .await
        .expect(200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(&gz.body[..2], &[0x1f, 0x8b], "gzip magic number");
    assert!(
        gz.body.len() * 3 < plain.body.len(),
        "compressed {} vs {}",
        gz.body.len(),
        plain.body.len()
    );
    let br = app
        .call(get(uri).admin().header("accept-encoding", "br"))
        .await
        .expect(200);
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert!(br.body.len() * 3 < plain.body.len());
}

#[tokio::test]
async fn etag_revalidation_and_change_after_ingest() {
    let app = TestApp::new();
    app.load_zaandam("zd").await;
    let uri = "/collections/zd.incidents/items?limit=10&source=ggd";
    let r = app.call(get(uri).admin()).await.expect(200);
    let tag = r.header("etag").expect("ETag").to_owned();
    let again = app.call(get(uri).admin()).await.expect(200);
    assert_eq!(
        again.header("etag"),
        Some(tag.as_str()),
        "stable per snapshot"
    );
    let nm = app
        .call(get(uri).admin().header("if-none-match", &tag))
        .await
        .expect(304);
    assert!(nm.body.is_empty());
    assert_eq!(nm.header("etag"), Some(tag.as_str()));
    // another query or another caller tier: another tag
    let other = app
        .call(get(format!("{uri}&offset=10")).admin())
        .await
        .expect(200);
    assert_ne!(other.header("etag"), Some(tag.as_str()));
    // single features have tags too
    let fid = r.json()["features"][0]["id"].as_i64().expect("fid");
    let one = app
        .call(get(format!("/collections/zd.incidents/items/{fid}")).admin())
        .await
        .expect(200);
    let one_tag = one.header("etag").expect("ETag").to_owned();
    app.call(
        get(format!("/collections/zd.incidents/items/{fid}"))
            .admin()
            .header("if-none-match", &one_tag),
    )
    .await
    .expect(304);
    // an ingest swaps in a new snapshot: the tag changes and the old one no longer matches
    app.ingest(
        "zd",
        "incidents",
        "text/csv",
        "",
        generated_incidents("E", 3, "ggd"),
    )
    .await
    .expect(200);
    let after = app
        .call(get(uri).admin().header("if-none-match", &tag))
        .await
        .expect(200);
    let new_tag = after.header("etag").expect("ETag");
    assert_ne!(new_tag, tag);
    assert_eq!(after.json()["numberMatched"], serde_json::json!(713));
}

#[tokio::test]
async fn slow_requests_time_out_with_503() {
    let setup = TestApp::new();
    setup.create_dataset("slow", Some("EPSG:28992")).await;
    let TestApp { dir, .. } = setup;
    let app = TestApp::open(
        dir,
        Settings {
            request_timeout: std::time::Duration::from_millis(5),
            ..test_settings()
        },
    );
    // 20,000 rows take longer than 5 ms (parse, PROJ, fsync, index)
    let r = app
        .ingest(
            "slow",
            "incidents",
            "text/csv",
            "",
            generated_incidents("T", 20_000, "ggd"),
        )
        .await;
    r.problem(503, "timeout");
    // the service still answers quick requests
    app.call(get("/health")).await.expect(200);
}

/// Reads `uri` with `key` again and again while a 150,000-row batch is ingested; returns
/// (reads during the ingest, slowest read, ingest time). `check` sees every answer given
/// before the ingest finished.
async fn read_during_ingest(
    uri: &str,
    key: Option<&str>,
    check: impl Fn(&serde_json::Value),
) -> (usize, std::time::Duration, std::time::Duration) {
    let app = std::sync::Arc::new(TestApp::new());
    app.load_zaandam("zd").await;
    let body = generated_incidents("W", 150_000, "gemeente");
    let a2 = app.clone();
    let writer = tokio::spawn(async move {
        let t0 = std::time::Instant::now();
        a2.ingest("zd", "incidents", "text/csv", "", body)
            .await
            .expect(200);
        t0.elapsed()
    });
    let (mut during, mut worst) = (0, std::time::Duration::ZERO);
    while !writer.is_finished() {
        let t0 = std::time::Instant::now();
        let mut r = get(uri);
        if let Some(k) = key {
            r = r.key(k);
        }
        let v = app.call(r).await.expect(200).json();
        let dt = t0.elapsed();
        if !writer.is_finished() {
            check(&v);
            during += 1;
            worst = worst.max(dt);
        }
    }
    let write_time = writer.await.expect("writer");
    assert_eq!(app.matched("zd.incidents", "").await, 155_000);
    (during, worst, write_time)
}

/// Readers never wait for writers: while a large batch is parsed, written and indexed, the
/// catalogue keeps answering from the current snapshot (never a half-written state).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_do_not_wait_for_a_large_ingest() {
    let (during, worst, write_time) = read_during_ingest("/collections/zd.incidents", None, |v| {
        // the old snapshot, or the new one once swapped in: never a partial state
        let n = &v["numberOfFeatures"];
        assert!(*n == json!(5000) || *n == json!(155_000), "{n}");
    })
    .await;
    assert!(
        during >= 3,
        "only {during} reads during a {write_time:?} ingest"
    );
    assert!(
        worst * 3 < write_time,
        "a read took {worst:?} during a {write_time:?} ingest"
    );
}

/// The same with audited reads (every admin/private request appends to the audit log): the
/// ingest must still succeed. Fails today with `500 database is locked`: `Store::write_batch`
/// opens a DEFERRED transaction that reads before it writes, so an audit entry committed in
/// between makes SQLite answer SQLITE_BUSY_SNAPSHOT at once (the busy timeout does not apply).
/// Fix: `transaction_with_behavior(TransactionBehavior::Immediate)` in src/store/mod.rs
/// `write_batch` (and the other writing transactions in src/store/datasets.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audited_reads_during_a_large_ingest() {
    let (during, _, write_time) = read_during_ingest(
        "/collections/zd.incidents/items?limit=100&source=ggd",
        Some(ADMIN),
        |v| assert_eq!(v["numberMatched"], json!(710)),
    )
    .await;
    assert!(
        during >= 3,
        "only {during} reads during a {write_time:?} ingest"
    );
}

/// Issue 5 (5.): a heavy analysis whose client goes away stops at its next checkpoint instead
/// of running to the end on the blocking pool. `/health` counts running and cancelled work.
#[tokio::test]
async fn an_analysis_stops_when_its_client_goes_away() {
    let app = std::sync::Arc::new(TestApp::new());
    app.load_zaandam("zd").await;
    app.load_zaandam_layers("zd").await;
    let work = |app: std::sync::Arc<TestApp>| async move {
        let v = app.call(get("/health")).await.expect(200).json();
        (
            v["work"]["running"].as_u64().expect("running"),
            v["work"]["cancelled"].as_u64().expect("cancelled"),
        )
    };
    assert_eq!(work(app.clone()).await, (0, 0));
    let a2 = app.clone();
    // an exact kernel density on a fine grid: 5,000 points x 10^5 cells, seconds of work
    let client = tokio::spawn(async move {
        a2.call(
            get("/datasets/zd/density?output=grid&exact=true&cell_m=20&bandwidth_m=150").admin(),
        )
        .await
    });
    let t0 = std::time::Instant::now();
    while work(app.clone()).await.0 == 0 {
        assert!(t0.elapsed().as_secs() < 20, "the analysis never started");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    client.abort(); // the client goes away: its request future is dropped
    let t1 = std::time::Instant::now();
    loop {
        let (running, cancelled) = work(app.clone()).await;
        if running == 0 {
            assert_eq!(
                cancelled, 1,
                "the work ended by cancellation, not by finishing"
            );
            break;
        }
        assert!(t1.elapsed().as_secs() < 10, "the work did not stop");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // the next request is served normally
    app.call(get("/datasets/zd/density?output=grid&cell_m=100&bandwidth_m=150").admin())
        .await
        .expect(200);
}
