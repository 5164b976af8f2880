//! The real binary: `serve` on port 0 (health, graceful SIGTERM), `serve --demo` with working
//! demo keys, the 1 GB `Content-Length` answered with 413 from the header alone, and the
//! `import` command.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

async fn get_json(url: &str, key: Option<&str>) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut r = c.get(url);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let resp = r.send().await.expect("request");
    let status = resp.status().as_u16();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, v)
}

#[tokio::test]
async fn serve_health_and_graceful_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = Server::start(dir.path(), &[], &[]);
    let (st, v) = get_json(&s.url("/health"), None).await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], json!("ok"));
    let (st, v) = get_json(&s.url("/"), None).await;
    assert_eq!(st, 200);
    assert!(v["links"].is_array());
    s.signal("TERM");
    let status = s.wait_exit(20);
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    // the store was left sound
    assert!(dir.path().join("hotspots.sqlite").exists());
}

#[tokio::test]
async fn serve_demo_writes_working_keys() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &["--demo", "--fixtures-dir", FIXTURES], &[]);
    assert!(
        s.banner.iter().any(|l| l.contains("5000 incidents")),
        "{:?}",
        s.banner
    );
    let keys: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("demo-keys.json")).expect("demo-keys.json"),
    )
    .expect("json");
    let key = |t: &str| {
        keys[t]
            .as_str()
            .unwrap_or_else(|| panic!("{t} key"))
            .to_owned()
    };
    let (open, closed, private) = (key("open"), key("closed"), key("private"));
    // the printed keys are the stored ones
    for k in [&open, &closed, &private] {
        assert!(
            s.banner.iter().any(|l| l.contains(k.as_str())),
            "key printed"
        );
    }
    let items = s.url("/collections/overlast-zaandam.incidents/items?limit=1");
    let (st, v) = get_json(&items, Some(&private)).await;
    assert_eq!(st, 200);
    assert_eq!(v["numberMatched"], json!(5000));
    for k in [&open, &closed] {
        let (st, v) = get_json(&items, Some(k)).await;
        assert_eq!(st, 403, "{v}");
    }
    let (st, v) = get_json(
        &s.url("/collections/overlast-zaandam.study_area/items"),
        Some(&open),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = get_json(
        &s.url("/collections/overlast-zaandam.facilities"),
        Some(&open),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["numberOfFeatures"], json!(36));
    let (st, _) = get_json(&items, Some("hs_not-a-key")).await;
    assert_eq!(st, 401);
    drop(s);
    // a restart reuses the dataset and the keys
    let s = Server::start(dir.path(), &["--demo", "--fixtures-dir", FIXTURES], &[]);
    let (st, v) = get_json(
        &s.url("/collections/overlast-zaandam.incidents/items?limit=1"),
        Some(&private),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["numberMatched"], json!(5000), "no duplicate demo load");
}

#[tokio::test]
async fn claimed_gigabyte_is_refused_from_the_header() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(
        dir.path(),
        &["--max-body-mb", "1"],
        &[("HOTSPOTS_ADMIN_KEY", ADMIN)],
    );
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/datasets"))
        .bearer_auth(ADMIN)
        .json(&json!({"id": "big"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status().as_u16(), 201);
    let host = s.addr;
    let head = format!(
        "POST /datasets/big/incidents HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: text/csv\r\nContent-Length: 1073741824\r\n\r\nexternal_id,occurred_at\r\n"
    );
    let answer = tokio::task::spawn_blocking(move || {
        raw_http(host, head.as_bytes(), Duration::from_secs(10))
    })
    .await
    .expect("join");
    let status_line = answer.lines().next().unwrap_or("");
    assert!(
        status_line.starts_with("HTTP/1.1 413"),
        "413 from the Content-Length header alone, got {status_line:?}"
    );
    // a body without a length (chunked) is cut off at the limit: 413, nothing written
    let host = s.addr;
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut t = std::net::TcpStream::connect(host).expect("connect");
        t.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let head = format!(
            "POST /datasets/big/incidents HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        t.write_all(head.as_bytes()).expect("head");
        let body = generated_incidents("C", 30_000, "gemeente");
        assert!(body.len() > 1 << 20);
        for chunk in body.as_bytes().chunks(65_536) {
            let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
            c.extend_from_slice(chunk);
            c.extend_from_slice(b"\r\n");
            if t.write_all(&c).is_err() {
                break; // the server may close the connection once it has answered
            }
        }
        let _ = t.write_all(b"0\r\n\r\n");
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut t, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .expect("join");
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    assert!(answer.contains("body_too_large"), "{answer}");
    // the server stays responsive and nothing was written
    let (st, _) = get_json(&s.url("/health"), None).await;
    assert_eq!(st, 200);
    let (st, v) = get_json(
        &s.url("/collections/big.incidents/items?limit=1"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["numberMatched"], json!(0));
}

#[tokio::test]
async fn import_command_loads_a_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(BIN)
        .args(["import"])
        .arg(fixture("zaandam/incidents_rd.csv"))
        .args([
            "--dataset",
            "x",
            "--create",
            "--crs",
            "EPSG:28992",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("HOTSPOTS_ADMIN_KEY")
        .output()
        .expect("run import");
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("import prints JSON");
    assert_eq!(report["accepted"], json!(5000));
    // a second import without --create into a missing dataset fails cleanly
    let bad = std::process::Command::new(BIN)
        .args(["import"])
        .arg(fixture("zaandam/incidents_rd.csv"))
        .args(["--dataset", "y", "--crs", "EPSG:28992", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run import");
    assert!(!bad.status.success());
    // served afterwards
    let app = TestApp::open(dir, hotspots::api::Settings::default());
    assert_eq!(app.matched("x.incidents", "").await, 5000);
    let v = app
        .call(get("/collections/x.incidents/items?limit=1&crs=EPSG:28992").admin())
        .await
        .expect(200)
        .json();
    assert_eq!(
        v["features"][0]["properties"]["external_id"],
        json!("GEM-000001")
    );
    assert_eq!(
        v["features"][0]["geometry"]["coordinates"],
        json!([118169.274, 495794.454])
    );
}

#[tokio::test]
async fn streamed_chunked_body_of_many_megabytes() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[], &[("HOTSPOTS_ADMIN_KEY", ADMIN)]);
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/datasets"))
        .bearer_auth(ADMIN)
        .json(&json!({"id": "stream"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status().as_u16(), 201);
    const N: usize = 120_000;
    let body = generated_incidents("S", N, "gemeente");
    assert!(body.len() > 8 << 20, "{} bytes", body.len());
    let addr = s.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut t = std::net::TcpStream::connect(addr).expect("connect");
        t.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        let head = format!(
            "POST /datasets/stream/incidents HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        t.write_all(head.as_bytes()).expect("head");
        // 64 KiB chunks, cut anywhere (also inside rows and numbers)
        for chunk in body.as_bytes().chunks(65_536) {
            t.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).expect("size");
            t.write_all(chunk).expect("chunk");
            t.write_all(b"\r\n").expect("crlf");
        }
        t.write_all(b"0\r\n\r\n").expect("end");
        let mut out = Vec::new();
        t.read_to_end(&mut out).expect("read answer");
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .expect("join");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    let json_start = answer.find('{').expect("json body");
    let v: Value = serde_json::from_str(answer[json_start..].trim_end()).expect("answer JSON");
    assert_eq!(v["accepted"], json!(N), "{v}");
    let (st, v) = get_json(
        &s.url("/collections/stream.incidents/items?limit=1"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["numberMatched"], json!(N));
}
