//! Crash safety: SIGKILL the real server in the middle of a stream of ingest batches, restart
//! it on the same data directory, and prove that every acknowledged batch is complete, no
//! batch is half-present, and `PRAGMA integrity_check` is ok. Three rounds on one directory,
//! each killing at another moment of the batch in flight (a share of the measured time per
//! batch), so that parsing, the SQLite transaction and the snapshot rebuild all get hit.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BATCHES_PER_ROUND: usize = 40;
const ROWS: usize = 2_000;
const KILL_AFTER_ACKS: usize = 15;
/// When to kill, as a share of the mean batch time after the 15th acknowledgement.
const PHASES: [f64; 3] = [0.3, 0.65, 0.95];

/// Rows per batch prefix (`B017` -> n) in the SQLite file, opened read-only, and the result
/// of `PRAGMA integrity_check`.
fn rows_per_batch(db: &std::path::Path) -> (BTreeMap<String, i64>, String) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open read-only");
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    let mut st = c
        .prepare("SELECT substr(external_id, 1, 4), count(*) FROM incidents GROUP BY 1")
        .expect("prepare");
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    (rows, check)
}

/// What the poster saw: acknowledged batch numbers with their time, and the batches sent.
#[derive(Default)]
struct Seen {
    acked: Vec<(usize, Instant)>,
    started: Vec<usize>,
}

/// Posts batches `first..first + BATCHES_PER_ROUND` one after the other until one fails.
fn poster(
    client: reqwest::Client,
    url: String,
    first: usize,
    seen: Arc<Mutex<Seen>>,
) -> tokio::task::JoinHandle<()> {
    let bodies: Vec<(usize, String)> = (first..first + BATCHES_PER_ROUND)
        .map(|b| {
            (
                b,
                generated_incidents(&format!("B{b:03}"), ROWS, "gemeente"),
            )
        })
        .collect();
    tokio::spawn(async move {
        for (b, body) in bodies {
            seen.lock().expect("lock").started.push(b);
            let resp = client
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
            seen.lock().expect("lock").acked.push((b, Instant::now()));
        }
    })
}

/// One round: start, post, SIGKILL mid-batch; returns the acknowledged batch numbers.
async fn round(dir: &std::path::Path, first: usize, phase: f64) -> Vec<usize> {
    let mut s = Server::start(dir, &[], &[("HOTSPOTS_ADMIN_KEY", ADMIN)]);
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let task = poster(
        reqwest::Client::new(),
        s.url("/datasets/crash/incidents"),
        first,
        seen.clone(),
    );
    let t0 = Instant::now();
    let (last_ack, mean) = loop {
        {
            let g = seen.lock().expect("lock");
            if g.acked.len() >= KILL_AFTER_ACKS {
                let (a, b) = (g.acked[0].1, g.acked[g.acked.len() - 1].1);
                let mean = (b - a) / (g.acked.len() as u32 - 1);
                break (b, mean);
            }
        }
        assert!(!task.is_finished(), "poster ended early");
        assert!(t0.elapsed().as_secs() < 90, "batches too slow");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let kill_at = last_ack + mean.mul_f64(phase);
    tokio::time::sleep_until(kill_at.into()).await;
    s.child.kill().expect("SIGKILL");
    let _ = s.child.wait();
    let _ = task.await;
    let g = seen.lock().expect("lock");
    let acked: Vec<usize> = g.acked.iter().map(|a| a.0).collect();
    assert!(
        acked.len() < BATCHES_PER_ROUND,
        "killed before the end: {acked:?}"
    );
    assert!(
        g.started.len() > acked.len(),
        "a batch was in flight when the server died"
    );
    eprintln!(
        "crash round at phase {phase}: mean batch {mean:?}, {} acknowledged, {} started",
        acked.len(),
        g.started.len()
    );
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingest_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let s = Server::start(dir.path(), &[], &[("HOTSPOTS_ADMIN_KEY", ADMIN)]);
        let r = reqwest::Client::new()
            .post(s.url("/datasets"))
            .bearer_auth(ADMIN)
            .json(&json!({"id": "crash", "metric_crs": "EPSG:28992"}))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status().as_u16(), 201);
    }
    let mut all_acked = Vec::new();
    for (i, phase) in PHASES.into_iter().enumerate() {
        all_acked.extend(round(dir.path(), i * BATCHES_PER_ROUND, phase).await);
        // restart on the same directory: every acknowledged batch so far is complete
        let s = Server::start(dir.path(), &[], &[("HOTSPOTS_ADMIN_KEY", ADMIN)]);
        let (per_batch, check) = rows_per_batch(&dir.path().join("hotspots.sqlite"));
        assert_eq!(check, "ok", "PRAGMA integrity_check after round {i}");
        for b in &all_acked {
            assert_eq!(
                per_batch.get(&format!("B{b:03}")).copied(),
                Some(ROWS as i64),
                "acknowledged batch {b} is complete"
            );
        }
        for (prefix, n) in &per_batch {
            assert_eq!(*n, ROWS as i64, "batch {prefix} is all or nothing");
        }
        // at most one in-flight batch per round was committed without its acknowledgement
        assert!(per_batch.len() <= all_acked.len() + i + 1);
        eprintln!(
            "after round {i}: {} batches stored, {} acknowledged",
            per_batch.len(),
            all_acked.len()
        );
        // and the restarted server serves exactly what is stored
        let total: i64 = per_batch.values().sum();
        let v: Value = reqwest::Client::new()
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
}
