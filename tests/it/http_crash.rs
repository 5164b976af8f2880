//! Crash safety: SIGKILL the real server in the middle of a stream of ingest batches, restart
//! it on the same data directory, and prove that every acknowledged batch is complete, no
//! batch is half-present, and `PRAGMA integrity_check` is ok.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const BATCHES: usize = 40;
const ROWS: usize = 2_000;
const KILL_AFTER_ACKS: usize = 15;

/// Rows per batch prefix (`B07` -> n) in the SQLite file, opened read-only.
fn rows_per_batch(db: &std::path::Path) -> (BTreeMap<String, i64>, String) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open read-only");
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    let mut st = c
        .prepare("SELECT substr(external_id, 1, 3), count(*) FROM incidents GROUP BY 1")
        .expect("prepare");
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    (rows, check)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingest_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = Server::start(dir.path(), &[], &[("HOTSPOTS_ADMIN_KEY", ADMIN)]);
    let client = reqwest::Client::new();
    let r = client
        .post(s.url("/datasets"))
        .bearer_auth(ADMIN)
        .json(&json!({"id": "crash", "metric_crs": "EPSG:28992"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status().as_u16(), 201);

    // the poster: one batch after the other, recording every acknowledgement
    let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let started: Arc<Mutex<Vec<usize>>> = Arc::default();
    let bodies: Vec<String> = (0..BATCHES)
        .map(|b| generated_incidents(&format!("B{b:02}"), ROWS, "gemeente"))
        .collect();
    let url = s.url("/datasets/crash/incidents");
    let (a2, s2, c2) = (acked.clone(), started.clone(), client.clone());
    let poster = tokio::spawn(async move {
        for (b, body) in bodies.into_iter().enumerate() {
            s2.lock().expect("lock").push(b);
            let resp = c2
                .post(&url)
                .bearer_auth(ADMIN)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await;
            let Ok(resp) = resp else { return };
            if resp.status().as_u16() != 200 {
                return;
            }
            let Ok(v) = resp.json::<Value>().await else {
                return;
            };
            assert_eq!(v["accepted"], json!(ROWS), "batch {b}: {v}");
            a2.lock().expect("lock").push(b);
        }
    });
    // kill as soon as enough batches are acknowledged (the next one is then in flight)
    let t0 = std::time::Instant::now();
    loop {
        if acked.lock().expect("lock").len() >= KILL_AFTER_ACKS {
            break;
        }
        assert!(!poster.is_finished(), "poster ended early");
        assert!(t0.elapsed().as_secs() < 90, "batches too slow");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    s.child.kill().expect("SIGKILL");
    let _ = s.child.wait();
    let _ = poster.await;
    let acked = acked.lock().expect("lock").clone();
    let started = started.lock().expect("lock").clone();
    assert!(
        acked.len() >= KILL_AFTER_ACKS && acked.len() < BATCHES,
        "{acked:?}"
    );
    assert!(
        started.len() > acked.len(),
        "a batch was in flight when the server died"
    );

    // restart on the same directory: every acknowledged batch is complete
    let s = Server::start(dir.path(), &[], &[("HOTSPOTS_ADMIN_KEY", ADMIN)]);
    let (per_batch, check) = rows_per_batch(&dir.path().join("hotspots.sqlite"));
    eprintln!(
        "crash test: {} acknowledged, {} started, stored batches {:?}",
        acked.len(),
        started.len(),
        per_batch
    );
    assert_eq!(check, "ok", "PRAGMA integrity_check");
    for b in &acked {
        assert_eq!(
            per_batch.get(&format!("B{b:02}")).copied(),
            Some(ROWS as i64),
            "acknowledged batch {b} is complete"
        );
    }
    for (prefix, n) in &per_batch {
        assert_eq!(*n, ROWS as i64, "batch {prefix} is all or nothing");
    }
    // at most the in-flight batch was committed without its acknowledgement
    assert!(per_batch.len() <= acked.len() + 1);
    // and the restarted server serves exactly what is stored
    let total: i64 = per_batch.values().sum();
    let v: Value = client
        .get(s.url("/collections/crash.incidents/items?limit=1"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("items")
        .json()
        .await
        .expect("json");
    assert_eq!(v["numberMatched"], json!(total));
}
