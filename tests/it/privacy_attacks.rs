//! The privacy suite of issue 6, written as an attacker would: every route at every tier
//! (anonymous, open, closed and private keys, a non-member organisation), looking for counts
//! below the tier's threshold, person fields, points, confidential facilities, raw subject
//! strings, differencing between overlapping queries, existence leaks to non-members, revoked
//! keys, the audit log (append-only, hash chain, privacy officers) and the rate limit.
//!
//! The state is the demo data lab (`hotspots::demo::load_dataset` on the committed Zaandam
//! fixtures, `hotspots::demo::keys`) in a temporary directory, driven in-process with
//! `tower::ServiceExt::oneshot` through `support::TestApp`.

use crate::support::*;
use hotspots::api::Settings;
use hotspots::demo;
use hotspots::model::Tier;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

pub const DS: &str = demo::DEMO_DATASET;
/// A dataset id that does not exist.
pub const MISSING: &str = "no-such-dataset";
/// A dataset that is neither open nor has the stranger as a member.
pub const HIDDEN: &str = "politie-lab";
/// An organisation that is a member of no dataset.
pub const STRANGER: &str = "buurtapp";
/// Confidential facilities of the fixtures (shelters).
pub const CONFIDENTIAL: [&str; 3] = ["F031", "F032", "Opvanglocatie"];

/// One caller of the attack.
#[derive(Clone, Debug)]
pub struct Who {
    pub name: &'static str,
    pub key: Option<String>,
    pub tier: Tier,
    pub org: Option<&'static str>,
}

impl Who {
    pub fn req(&self, r: Req) -> Req {
        match &self.key {
            Some(k) => r.key(k),
            None => r,
        }
    }
    /// Smallest non-zero count this caller may see.
    pub fn k(&self) -> u64 {
        match self.tier {
            Tier::Open => 10,
            Tier::Closed => 5,
            Tier::Private => 1,
        }
    }
}

pub struct World {
    pub app: TestApp,
    pub anon: Who,
    pub open: Who,
    pub closed: Who,
    pub private: Who,
    pub stranger_closed: Who,
    pub stranger_private: Who,
}

impl World {
    pub fn callers(&self) -> Vec<Who> {
        vec![
            self.anon.clone(),
            self.open.clone(),
            self.closed.clone(),
            self.private.clone(),
        ]
    }
    pub async fn call(&self, who: &Who, r: Req) -> Resp {
        self.app.call(who.req(r)).await
    }
    pub fn db_path(&self) -> std::path::PathBuf {
        self.app.dir.path().join("hotspots.sqlite")
    }
}

/// The demo data lab plus a hidden dataset of the police (not open, members: politie).
pub async fn world_with(settings: Settings) -> World {
    let app = TestApp::with_settings(settings);
    let core = &app.state.app;
    let n = demo::load_dataset(core, Path::new(FIXTURES)).expect("demo dataset");
    assert_eq!(n, 5000);
    let keys = demo::keys(core, app.dir.path()).expect("demo keys");
    let mk = |org: &str, tier: Tier| core.create_key(org, tier, "attack", false).expect("key").0;
    let stranger_closed = mk(STRANGER, Tier::Closed);
    let stranger_private = mk(STRANGER, Tier::Private);
    app.call(
        post_json(
            "/datasets",
            &json!({"id": HIDDEN, "title": "police only", "metric_crs": "EPSG:28992",
                    "members": ["politie"], "open": false}),
        )
        .admin(),
    )
    .await
    .expect(201);
    let rows: String = String::from_utf8(read_fixture("zaandam/incidents_rd.csv"))
        .expect("utf8")
        .lines()
        .take(400)
        .map(|l| format!("{l}\n"))
        .collect();
    app.ingest(HIDDEN, "incidents", "text/csv", "crs=EPSG:28992", rows)
        .await
        .expect(200);
    let who = |name, key: Option<String>, tier, org| Who {
        name,
        key,
        tier,
        org,
    };
    World {
        anon: who("anonymous", None, Tier::Open, None),
        open: who("open", Some(keys.open), Tier::Open, Some("demo-public")),
        closed: who(
            "closed",
            Some(keys.closed),
            Tier::Closed,
            Some("woningcorporatie"),
        ),
        private: who(
            "private",
            Some(keys.private),
            Tier::Private,
            Some("gemeente"),
        ),
        stranger_closed: who(
            "stranger-closed",
            Some(stranger_closed),
            Tier::Closed,
            Some(STRANGER),
        ),
        stranger_private: who(
            "stranger-private",
            Some(stranger_private),
            Tier::Private,
            Some(STRANGER),
        ),
        app,
    }
}

pub async fn world() -> World {
    world_with(test_settings()).await
}

/// Every GET route about one dataset, with the parameters that exercise each output.
pub fn dataset_routes(ds: &str) -> Vec<String> {
    let mut r = vec![format!("/datasets/{ds}")];
    for layer in ["incidents", "facilities", "baseline", "study_area"] {
        r.push(format!("/collections/{ds}.{layer}"));
        r.push(format!("/collections/{ds}.{layer}/items?limit=100"));
    }
    for tail in [
        "/collections/{ds}.incidents/items?limit=100&f=csv",
        "/collections/{ds}.incidents/items/1",
        "/collections/{ds}.facilities/items/31",
        "/collections/{ds}.facilities/items/32",
        "/collections/{ds}.baseline/items/1",
        "/datasets/{ds}/hotspots",
        "/datasets/{ds}/hotspots?resolution=8&k=1",
        "/datasets/{ds}/hotspots?resolution=10&k=1",
        "/datasets/{ds}/hotspots?resolution=7&k=1&category=verward_persoon",
        "/datasets/{ds}/hotspots?resolution=8&k=1&method=local_moran&permutations=99&seed=1",
        "/datasets/{ds}/emerging?resolution=8&bin=month",
        "/datasets/{ds}/emerging?resolution=7&bin=quarter",
        "/datasets/{ds}/emerging?resolution=9&bin=week",
        "/datasets/{ds}/emerging/compare?resolution=8&split_at=2024-07-01T00:00:00Z",
        "/datasets/{ds}/emerging/compare?resolution=10&split_at=2024-07-01T00:00:00Z",
        "/datasets/{ds}/proximity?simulations=19",
        "/datasets/{ds}/proximity?kind=shelter&simulations=19",
        "/datasets/{ds}/proximity?kind=care_centre&radius_m=500&rings_m=100,250,500&simulations=19",
        "/datasets/{ds}/proximity/nearest",
        "/datasets/{ds}/concentration?by=place&resolution=8",
        "/datasets/{ds}/concentration?by=subject",
        "/datasets/{ds}/coverage?resolution=8",
        "/datasets/{ds}/clusters",
        "/datasets/{ds}/clusters?method=hdbscan",
        "/datasets/{ds}/density?output=h3&resolution=8",
        "/datasets/{ds}/density",
        "/audit?dataset={ds}",
    ] {
        r.push(tail.replace("{ds}", ds));
    }
    r
}

pub const GLOBAL_ROUTES: [&str; 6] = [
    "/",
    "/health",
    "/conformance",
    "/collections",
    "/datasets",
    "/audit",
];

/// Calls `f` on every value in `v` with its key path.
pub fn walk(v: &Value, path: &mut Vec<String>, f: &mut dyn FnMut(&[String], &Value)) {
    f(path, v);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(k.clone());
                walk(x, path, f);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                walk(x, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A key that names a count of incidents.
pub fn is_count_key(k: &str) -> bool {
    matches!(
        k,
        "count" | "total_count" | "count_before" | "count_after" | "total_before" | "total_after"
    ) || (k.starts_with("ring_") && !k.ends_with("_expected"))
        || TOTAL_KEYS.contains(&k)
}

/// Keys of totals of incidents (or of persons) in summaries: small under narrow filters.
pub const TOTAL_KEYS: [&str; 13] = [
    "incidents",
    "subjects",
    "multi_organisation_subjects",
    "n_points",
    "noise_count",
    "n_incidents",
    "incidents_total",
    "incidents_used",
    "incidents_input",
    "incidents_ignored",
    "n_units",
    "n_observations",
    "repeat_incidents",
];

/// A number in a per-category or per-source breakdown of a feature (`properties.categories.x`),
/// or in an overlap matrix (`overlap_place.i.j`).
pub fn is_breakdown(path: &[String]) -> bool {
    let n = path.len();
    (n >= 3
        && path[n - 3] == "properties"
        && matches!(path[n - 2].as_str(), "categories" | "sources"))
        || (n >= 3 && matches!(path[n - 3].as_str(), "overlap_place" | "overlap_subjects"))
}

/// Positions of `p_` + 32 lowercase hex (a pseudonym) in `text`.
pub fn pseudonyms_in(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for i in 0..b.len().saturating_sub(33) {
        if &b[i..i + 2] == b"p_"
            && b[i + 2..i + 34]
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
        {
            out.push(text[i..i + 34].to_owned());
        }
    }
    out
}

/// The raw subject strings of the fixture (column `subject` of incidents_rd.csv).
pub fn raw_subjects() -> HashSet<Vec<u8>> {
    let text = String::from_utf8(read_fixture("zaandam/incidents_rd.csv")).expect("utf8");
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .expect("header")
        .trim_start_matches('\u{feff}')
        .split(';')
        .collect();
    let col = header
        .iter()
        .position(|h| *h == "subject")
        .expect("subject");
    let set: HashSet<Vec<u8>> = lines
        .filter_map(|l| l.split(';').nth(col))
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect();
    assert!(set.len() > 800, "{} distinct subjects", set.len());
    set
}

/// Raw subjects found in `bytes` (a sliding window over every length in the set).
pub fn subjects_in(bytes: &[u8], subjects: &HashSet<Vec<u8>>) -> Vec<String> {
    let lens: HashSet<usize> = subjects.iter().map(Vec::len).collect();
    let mut out = Vec::new();
    for &l in &lens {
        for w in bytes.windows(l) {
            if subjects.contains(w) {
                out.push(String::from_utf8_lossy(w).into_owned());
            }
        }
    }
    out
}

/// What an answer may contain for this caller.
pub struct Allow<'a> {
    /// The route serves facility points (`/proximity`).
    pub facility_points: bool,
    /// The organisation whose own incidents may be points with subjects.
    pub own_org: Option<&'a str>,
}

/// Every leak in one answer below the private tier; empty when it is clean.
pub fn leaks(who: &Who, route: &str, r: &Resp, allow: &Allow<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let text = r.text();
    if who.tier == Tier::Private {
        return out;
    }
    for c in CONFIDENTIAL {
        if text.contains(c) {
            out.push(format!("confidential facility {c}"));
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
        // CSV is only for point layers: nothing of it may leave below private, except own rows
        if r.status.is_success() && allow.own_org.is_none() {
            out.push("non-JSON data answer".into());
        }
        return out;
    };
    let feature_is_own = |path: &[String]| {
        path.len() >= 2
            && path[0] == "features"
            && path[1]
                .parse::<usize>()
                .ok()
                .and_then(|i| v["features"].get(i))
                .is_some_and(|f| {
                    allow.own_org.is_some() && f["properties"]["source"].as_str() == allow.own_org
                })
    };
    let single_own = allow.own_org.is_some()
        && v["type"] == "Feature"
        && v["properties"]["source"].as_str() == allow.own_org;
    let k = who.k();
    walk(&v, &mut Vec::new(), &mut |path, x| {
        let key = path.last().map(String::as_str).unwrap_or("");
        if let Some(n) = x.as_u64()
            && (is_count_key(key) || is_breakdown(path))
            && n > 0
            && n < k
        {
            out.push(format!("{} = {n} < {k}", path.join(".")));
        }
        if key == "subject"
            && (x.is_string() || x.is_array())
            && !(feature_is_own(path) || single_own)
        {
            out.push(format!("person field {}", path.join(".")));
        }
        if let Some(t) = x.get("type").and_then(Value::as_str)
            && matches!(t, "Point" | "MultiPoint")
            && x.get("coordinates").is_some()
        {
            let at_feature = path.len() == 3 && path[0] == "features" && path[2] == "geometry";
            let ok = (at_feature && (allow.facility_points || feature_is_own(path)))
                || (single_own && path.len() == 1);
            if !ok {
                out.push(format!("point geometry at {}", path.join(".")));
            }
        }
    });
    let own_rows = allow.own_org.is_some() && (single_own || route.contains("source="));
    if !own_rows {
        for p in pseudonyms_in(&text) {
            out.push(format!("pseudonym {p}"));
        }
    }
    out.truncate(12);
    out
}

fn allow_for<'a>(who: &'a Who, route: &str) -> Allow<'a> {
    Allow {
        facility_points: route.contains("/proximity") && !route.contains("/nearest"),
        own_org: who
            .org
            .filter(|o| route.contains(&format!("source={o}")) || route.contains("/items/")),
    }
}

#[tokio::test]
async fn every_route_at_every_tier_shows_only_what_the_tier_may_see() {
    let w = world().await;
    let subjects = raw_subjects();
    let mut failures: Vec<String> = Vec::new();
    let mut private_saw = (false, false, false); // points, pseudonyms, confidential
    for who in w.callers() {
        let mut routes: Vec<String> = GLOBAL_ROUTES.iter().map(|s| s.to_string()).collect();
        routes.extend(dataset_routes(DS));
        if let Some(o) = who.org {
            routes.push(format!(
                "/collections/{DS}.incidents/items?limit=200&source={o}"
            ));
            routes.push(format!(
                "/collections/{DS}.incidents/items?limit=200&f=csv&source={o}"
            ));
        }
        for route in routes {
            let r = w.call(&who, get(&route)).await;
            assert!(
                r.status.as_u16() < 500,
                "{} {route}: {} {}",
                who.name,
                r.status,
                r.text()
            );
            for s in subjects_in(&r.body, &subjects).into_iter().take(3) {
                failures.push(format!("{} {route}: raw subject {s}", who.name));
            }
            for l in leaks(&who, &route, &r, &allow_for(&who, &route)) {
                failures.push(format!("{} {route} ({}): {l}", who.name, r.status));
            }
            if who.tier == Tier::Private && r.status == 200 {
                let t = r.text();
                private_saw.0 |= t.contains("\"Point\"");
                private_saw.1 |= !pseudonyms_in(&t).is_empty();
                private_saw.2 |= t.contains("F031");
            }
        }
        // the analyses answer at every tier (the checks above are not vacuous)
        for route in [
            format!("/datasets/{DS}/hotspots?resolution=8&k=1"),
            format!("/datasets/{DS}/emerging?resolution=8&bin=month"),
            format!("/datasets/{DS}/proximity?simulations=19"),
        ] {
            w.call(&who, get(&route)).await.expect(200);
        }
    }
    // the same checks catch the private tier's points, pseudonyms and shelters
    assert_eq!(
        private_saw,
        (true, true, true),
        "private tier sees everything"
    );
    assert!(
        failures.is_empty(),
        "{} leaks:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn tier_rules_refuse_too_fine_requests() {
    let w = world().await;
    let hs = |q: &str| get(format!("/datasets/{DS}/hotspots?{q}"));
    for who in [&w.anon, &w.open] {
        w.call(who, hs("resolution=9&k=1"))
            .await
            .problem(403, "tier_resolution");
        w.call(who, hs("resolution=8&k=1&category=verward_persoon"))
            .await
            .problem(403, "tier_sensitive");
        w.call(
            who,
            get(format!("/datasets/{DS}/emerging?resolution=8&bin=week")),
        )
        .await
        .problem(403, "tier_time_bin");
        w.call(who, get(format!("/datasets/{DS}/proximity/nearest")))
            .await
            .problem(403, "tier_forbidden");
    }
    w.call(&w.closed, hs("resolution=11&k=1"))
        .await
        .problem(403, "tier_resolution");
    w.call(&w.closed, hs("resolution=9&k=1&category=verward_persoon"))
        .await
        .problem(403, "tier_sensitive");
    w.call(
        &w.closed,
        get(format!(
            "/datasets/{DS}/emerging?resolution=7&bin=quarter&category=verward_persoon"
        )),
    )
    .await
    .expect(200);
    // at a fine resolution the sensitive category is left out of an unfiltered request
    let others = "burenruzie,drugsoverlast,geluidsoverlast,jeugdoverlast,zwerfafval";
    let open = w
        .call(&w.open, hs("resolution=8&k=1"))
        .await
        .expect(200)
        .json();
    let private = w
        .call(
            &w.private,
            hs(&format!("resolution=8&k=1&category={others}")),
        )
        .await
        .expect(200)
        .json();
    let all = w
        .call(&w.private, hs("resolution=8&k=1"))
        .await
        .expect(200)
        .json();
    assert_eq!(
        open["summary"]["incidents_total"],
        private["summary"]["incidents_total"]
    );
    assert_ne!(
        open["summary"]["incidents_total"],
        all["summary"]["incidents_total"]
    );
}

/// (status, problem code) of an answer.
fn status_code(r: &Resp) -> (u16, String) {
    let code = serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (r.status.as_u16(), code)
}

#[tokio::test]
async fn a_non_member_learns_nothing() {
    let w = world().await;
    let csv = incidents_csv(&[(
        "BA-1".into(),
        "2024-03-01T10:00:00Z",
        "geluidsoverlast",
        STRANGER,
        "",
        4.8454424,
        52.4486809,
    )]);
    let cases: Vec<(&Who, &str)> = vec![
        (&w.stranger_closed, DS),
        (&w.stranger_private, DS),
        (&w.stranger_private, HIDDEN),
        (&w.anon, HIDDEN),
        (&w.open, HIDDEN),
        (&w.private, HIDDEN),
    ];
    let mut diffs = Vec::new();
    for (who, ds) in &cases {
        let mut pairs: Vec<(Req, Req)> = dataset_routes(ds)
            .into_iter()
            .zip(dataset_routes(MISSING))
            .map(|(a, b)| (get(a), get(b)))
            .collect();
        for layer in ["incidents", "facilities"] {
            let p = |d: &str| {
                post(
                    format!("/datasets/{d}/{layer}?crs=EPSG:4326"),
                    "text/csv",
                    csv.clone(),
                )
            };
            pairs.push((p(ds), p(MISSING)));
        }
        for (a, b) in pairs {
            let uri = a.uri.clone();
            let (ra, rb) = (w.call(who, a).await, w.call(who, b).await);
            let (sa, sb) = (status_code(&ra), status_code(&rb));
            if sa != sb || sa.0 < 400 {
                diffs.push(format!(
                    "{} {uri}: {sa:?} vs missing {sb:?}: {}",
                    who.name,
                    ra.text().chars().take(200).collect::<String>()
                ));
            }
        }
        // the catalogue leaves it out
        let cols = w.call(who, get("/collections")).await.expect(200).json();
        let prefix = format!("{ds}.");
        assert!(
            cols["collections"]
                .as_array()
                .expect("collections")
                .iter()
                .all(|c| !c["id"].as_str().unwrap_or("").starts_with(&prefix)),
            "{}: /collections lists {ds}",
            who.name
        );
        let dss = w.call(who, get("/datasets")).await.expect(200).json();
        assert!(
            dss["datasets"]
                .as_array()
                .expect("datasets")
                .iter()
                .all(|d| d["id"] != json!(ds)),
            "{}: /datasets lists {ds}",
            who.name
        );
    }
    // the foreign write did not land either
    let n = w
        .app
        .matched(&format!("{DS}.incidents"), "source=buurtapp")
        .await;
    assert!(
        diffs.is_empty() && n == 0,
        "a non-member can tell the dataset exists ({n} foreign rows written):\n{}",
        diffs.join("\n")
    );
}

#[tokio::test]
async fn a_revoked_key_fails_everywhere() {
    let w = world().await;
    let (key, id) = w.app.key("gemeente", "private").await;
    let me = Who {
        name: "revoked",
        key: Some(key),
        tier: Tier::Private,
        org: Some("gemeente"),
    };
    w.call(
        &me,
        get(format!("/collections/{DS}.incidents/items?limit=1")),
    )
    .await
    .expect(200);
    w.app
        .call(delete(format!("/admin/keys/{id}")).admin())
        .await
        .expect(204);
    let mut routes: Vec<Req> = GLOBAL_ROUTES.iter().map(|r| get(*r)).collect();
    routes.extend(dataset_routes(DS).into_iter().map(get));
    routes.push(get("/api"));
    routes.push(post(
        format!("/datasets/{DS}/incidents"),
        "text/csv",
        "x;y\n1;2\n",
    ));
    routes.push(post_json(
        "/admin/keys",
        &json!({"organisation": "x", "tier": "open"}),
    ));
    for r in routes {
        let uri = r.uri.clone();
        let resp = w.call(&me, r).await;
        assert_eq!(resp.status.as_u16(), 401, "{uri}: {}", resp.text());
        resp.problem(401, "bad_key");
    }
}

#[tokio::test]
async fn a_rotated_key_is_replaced_at_once() {
    let w = world().await;
    let (old, id) = w.app.key("gemeente", "closed").await;
    let items = || get(format!("/datasets/{DS}/hotspots?resolution=9&k=1"));
    w.app.call(items().key(&old)).await.expect(200);
    // only the admin rotates
    w.app
        .call(post_json(format!("/admin/keys/{id}/rotate"), &json!({})).key(&old))
        .await
        .problem(403, "admin_only");
    let r = w
        .app
        .call(post(format!("/admin/keys/{id}/rotate"), "application/json", "").admin())
        .await
        .expect(201)
        .json();
    let new = r["key"].as_str().expect("the new key, shown once");
    assert_eq!(r["replaces"], json!(id));
    assert_eq!(
        (&r["organisation"], &r["tier"]),
        (&json!("gemeente"), &json!("closed"))
    );
    assert_ne!(r["id"], json!(id));
    w.app.call(items().key(&old)).await.problem(401, "bad_key");
    w.app.call(items().key(new)).await.expect(200);
    // the old id is no longer active: rotating it again is 404
    w.app
        .call(post(format!("/admin/keys/{id}/rotate"), "application/json", "").admin())
        .await
        .problem(404, "not_found");
    let keys = w
        .app
        .call(get("/admin/keys").admin())
        .await
        .expect(200)
        .json();
    let text = keys.to_string();
    assert!(
        !text.contains(new) && !text.contains(&old),
        "keys are never listed"
    );
}

#[tokio::test]
async fn raw_subjects_are_nowhere_in_the_store() {
    let w = world().await;
    let subjects = raw_subjects();
    // some traffic, so that the audit table and the WAL hold entries
    for who in w.callers() {
        for route in dataset_routes(DS).into_iter().take(12) {
            w.call(&who, get(route)).await;
        }
    }
    let mut seen = 0;
    for e in std::fs::read_dir(w.app.dir.path()).expect("dir") {
        let p = e.expect("entry").path();
        let bytes = std::fs::read(&p).expect("read");
        seen += bytes.len();
        let found = subjects_in(&bytes, &subjects);
        assert!(
            found.is_empty(),
            "{}: raw subjects {:?}",
            p.display(),
            &found[..found.len().min(5)]
        );
    }
    assert!(seen > 500_000, "the store holds the data ({seen} bytes)");
    // the pseudonyms are there instead, in the audit-free incident rows
    let c = rusqlite::Connection::open(w.db_path()).expect("open");
    let audit: Vec<String> = c
        .prepare("SELECT route || ' ' || query || ' ' || coalesce(organisation,'') FROM audit")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(!audit.is_empty());
    for a in &audit {
        assert!(
            subjects_in(a.as_bytes(), &subjects).is_empty(),
            "audit: {a}"
        );
    }
}

/// Feature id -> properties of a FeatureCollection.
pub fn properties_by_id(v: &Value) -> BTreeMap<String, Value> {
    v["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().expect("id").to_owned(),
                f["properties"].clone(),
            )
        })
        .collect()
}

/// Cells of a hotspot answer: h3 -> (count, count_suppressed, gi_z).
pub fn cells(v: &Value) -> BTreeMap<String, (Value, Value, Value)> {
    v["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            let p = &f["properties"];
            (
                f["id"].as_str().expect("id").to_owned(),
                (
                    p["count"].clone(),
                    p["count_suppressed"].clone(),
                    p["gi_z"].clone(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn overlapping_open_queries_cannot_be_differenced() {
    let w = world().await;
    let a = "bbox=4.78,52.41,4.84,52.45&datetime=2024-02-03T10:00:00Z/2024-05-20T00:00:00Z";
    let b = "bbox=4.81,52.43,4.87,52.47&datetime=2024-02-10T00:00:00Z/2024-05-02T12:00:00Z";
    for route in [
        "hotspots?resolution=8&k=1",
        "hotspots?resolution=8&k=2&fdr=true",
    ] {
        for who in [&w.anon, &w.open] {
            let q = |f: &str| get(format!("/datasets/{DS}/{route}&{f}"));
            let (ca, cb) = (
                cells(&w.call(who, q(a)).await.expect(200).json()),
                cells(&w.call(who, q(b)).await.expect(200).json()),
            );
            let common: Vec<&String> = ca.keys().filter(|c| cb.contains_key(*c)).collect();
            assert!(
                common.len() >= 3 && ca.len() > common.len(),
                "{route}: overlap {}",
                common.len()
            );
            for c in common {
                assert_eq!(
                    ca[c], cb[c],
                    "{route} cell {c} differs between overlapping queries"
                );
            }
            assert!(
                ca.values().any(|v| v.1 == json!(true)),
                "{route}: some cell is suppressed (the test can fail)"
            );
        }
    }
    // emerging and compare: the same cell, the same row
    for route in [
        "emerging?resolution=8&bin=month&min_bins=3",
        "emerging/compare?resolution=8&split_at=2024-04-01T00:00:00Z",
    ] {
        let q = |f: &str| get(format!("/datasets/{DS}/{route}&{f}"));
        let (va, vb) = (
            w.call(&w.open, q(a)).await.expect(200).json(),
            w.call(&w.open, q(b)).await.expect(200).json(),
        );
        let (ma, mb) = (properties_by_id(&va), properties_by_id(&vb));
        let common: Vec<&String> = ma.keys().filter(|c| mb.contains_key(*c)).collect();
        assert!(common.len() >= 3, "{route}: overlap {}", common.len());
        for c in common {
            assert_eq!(ma[c], mb[c], "{route} cell {c} differs");
        }
    }
}

/// The attacker's recovery of hidden counts from a published total: with `total` shown, the
/// hidden parts sum to `total - shown`; that is a leak when exactly one part is hidden, or
/// when the hidden parts add up to less than `k` (and more than 0).
pub fn recoverable(total: u64, parts: &[Option<u64>], k: u64) -> Option<String> {
    let hidden = parts.iter().filter(|p| p.is_none()).count();
    let shown: u64 = parts.iter().flatten().sum();
    let rest = total.checked_sub(shown)?;
    if hidden == 1 && k > 1 {
        return Some(format!("the one hidden part is {rest}"));
    }
    if hidden >= 1 && rest > 0 && rest < k {
        return Some(format!("hidden parts sum to {rest} < {k}"));
    }
    None
}

#[tokio::test]
async fn published_totals_do_not_give_back_suppressed_counts() {
    let w = world().await;
    let mut leaks = Vec::new();
    for who in [&w.private, &w.open, &w.closed] {
        // emerging: a cell's total_count against its series of bin counts
        let v = w
            .call(
                who,
                get(format!("/datasets/{DS}/emerging?resolution=8&bin=month")),
            )
            .await
            .expect(200)
            .json();
        let mut known_totals = 0u64;
        let mut unknown: Vec<String> = Vec::new();
        for f in v["features"].as_array().expect("features") {
            let p = &f["properties"];
            let series: Vec<Option<u64>> = p["series"]
                .as_array()
                .expect("series")
                .iter()
                .map(|b| b["count"].as_u64())
                .collect();
            let total = p["total_count"].as_u64().or_else(|| {
                // every bin shown: the total is their sum
                series
                    .iter()
                    .all(Option::is_some)
                    .then(|| series.iter().flatten().sum())
            });
            match total {
                Some(t) => {
                    known_totals += t;
                    if who.tier != Tier::Private
                        && let Some(l) = recoverable(t, &series, who.k())
                    {
                        leaks.push(format!("{} emerging {}: {l}", who.name, f["id"]));
                    }
                }
                None => unknown.push(f["id"].to_string()),
            }
        }
        let used = v["summary"]["incidents_used"]
            .as_u64()
            .expect("incidents_used");
        if who.tier == Tier::Private {
            assert!(unknown.is_empty());
            assert_eq!(
                known_totals, used,
                "premise: the totals add up to incidents_used"
            );
        } else if unknown.len() == 1 || (used > known_totals && used - known_totals < who.k()) {
            leaks.push(format!(
                "{} emerging: incidents_used - known totals = {} over {} cells",
                who.name,
                used - known_totals,
                unknown.len()
            ));
        }
        // proximity: count within radius_m = the rings inside it; histogram = n_units
        let v = w
            .call(who, get(format!("/datasets/{DS}/proximity?simulations=19")))
            .await
            .expect(200)
            .json();
        for f in v["features"].as_array().expect("features") {
            let p = &f["properties"];
            let rings = [p["ring_0_100"].as_u64(), p["ring_100_250"].as_u64()];
            if let Some(c) = p["count"].as_u64() {
                if who.tier == Tier::Private {
                    assert_eq!(
                        c,
                        rings.iter().flatten().sum::<u64>(),
                        "premise: rings add up"
                    );
                } else if let Some(l) = recoverable(c, &rings, who.k()) {
                    leaks.push(format!("{} proximity {}: {l}", who.name, f["id"]));
                }
            }
        }
        let bins: Vec<Option<u64>> = v["summary"]["histogram"]["bins"]
            .as_array()
            .expect("bins")
            .iter()
            .map(|b| b["count"].as_u64())
            .collect();
        let n = v["summary"]["n_units"].as_u64().expect("n_units");
        if who.tier == Tier::Private {
            assert_eq!(
                n,
                bins.iter().flatten().sum::<u64>(),
                "premise: histogram adds up"
            );
        } else if let Some(l) = recoverable(n, &bins, who.k()) {
            leaks.push(format!("{} proximity histogram: {l}", who.name));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// P(X >= c) for X ~ Poisson(lambda).
fn poisson_sf(c: u64, lambda: f64) -> f64 {
    let (mut term, mut cdf) = ((-lambda).exp(), 0.0);
    for i in 0..c {
        cdf += term;
        term *= lambda / (i + 1) as f64;
    }
    (1.0 - cdf).max(0.0)
}

#[tokio::test]
async fn facility_p_values_do_not_give_back_suppressed_counts() {
    let w = world().await;
    let mut leaks = Vec::new();
    let mut hidden_seen = 0;
    for who in [&w.open, &w.closed] {
        let v = w
            .call(who, get(format!("/datasets/{DS}/proximity?simulations=19")))
            .await
            .expect(200)
            .json();
        for f in v["features"].as_array().expect("features") {
            let p = &f["properties"];
            if !p["count"].is_null() {
                continue;
            }
            hidden_seen += 1;
            let (Some(pv), Some(exp)) = (p["p_value"].as_f64(), p["expected"].as_f64()) else {
                continue;
            };
            let fits: Vec<u64> = (1..who.k())
                .filter(|&c| (poisson_sf(c, exp) - pv).abs() <= 1e-9 * pv.max(1e-300))
                .collect();
            if fits.len() == 1 {
                leaks.push(format!(
                    "{} {}: p_value {pv} with expected {exp} gives count {}",
                    who.name, f["id"], fits[0]
                ));
            }
        }
    }
    assert!(
        hidden_seen > 0,
        "some facility count is suppressed (the test can fail)"
    );
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[tokio::test]
async fn open_collection_temporal_extent_is_no_report_time() {
    let w = world().await;
    let v = w
        .call(&w.anon, get(format!("/collections/{DS}.incidents")))
        .await
        .expect(200)
        .json();
    // the temporal extent: whole months at the open tier, never a report's own timestamp
    let interval = &v["extent"]["temporal"]["interval"][0];
    let times = read_table("zaandam/incidents_wgs84.csv", b',');
    let stamps: HashSet<&str> = times.iter().map(|r| r["occurred_at"].as_str()).collect();
    for t in interval.as_array().expect("interval") {
        if let Some(t) = t.as_str() {
            assert!(
                !stamps.contains(t),
                "the open tier's temporal extent {t} is the exact time of a report"
            );
        }
    }
}

#[tokio::test]
async fn open_collection_extent_is_no_report_coordinate() {
    let w = world().await;
    let v = w
        .call(&w.anon, get(format!("/collections/{DS}.incidents")))
        .await
        .expect(200)
        .json();
    let times = read_table("zaandam/incidents_wgs84.csv", b',');
    // the spatial extent: no coordinate of it is a report's exact coordinate
    let lons: HashSet<String> = times.iter().map(|r| r["lon"].clone()).collect();
    let lats: HashSet<String> = times.iter().map(|r| r["lat"].clone()).collect();
    let bbox = v["extent"]["spatial"]["bbox"][0]
        .as_array()
        .expect("bbox")
        .clone();
    for (i, c) in bbox.iter().enumerate() {
        let s = format!("{}", c.as_f64().expect("number"));
        let set = if i % 2 == 0 { &lons } else { &lats };
        assert!(
            !set.contains(&s),
            "bbox coordinate {s} is a report's exact coordinate"
        );
    }
}

#[tokio::test]
async fn rare_categories_are_not_counted_in_the_open_catalogue() {
    let w = world().await;
    let csv = incidents_csv(&[
        (
            "RARE-1".into(),
            "2024-03-01T10:00:00Z",
            "brandstichting",
            "gemeente",
            "",
            4.8454424,
            52.4486809,
        ),
        (
            "RARE-2".into(),
            "2024-03-02T10:00:00Z",
            "brandstichting",
            "gemeente",
            "",
            4.8454424,
            52.4486809,
        ),
    ]);
    w.app
        .ingest(DS, "incidents", "text/csv", "crs=EPSG:4326", csv)
        .await
        .expect(200);
    for who in [&w.anon, &w.open, &w.closed] {
        for route in [format!("/datasets/{DS}"), "/datasets".to_string()] {
            let v = w.call(who, get(&route)).await.expect(200).json();
            let d = if v["datasets"].is_array() {
                v["datasets"]
                    .as_array()
                    .expect("datasets")
                    .iter()
                    .find(|d| d["id"] == json!(DS))
                    .cloned()
                    .expect("listed")
            } else {
                v
            };
            for group in ["categories", "sources"] {
                for (name, n) in d[group].as_object().into_iter().flatten() {
                    let n = n.as_u64().unwrap_or(0);
                    assert!(
                        n == 0 || n >= who.k(),
                        "{} {route}: {group}.{name} = {n} < {}",
                        who.name,
                        who.k()
                    );
                }
            }
        }
    }
}

/// The audit entries as the admin sees them (all), and the chain verdict.
async fn audit(w: &World) -> (Vec<Value>, Value) {
    let v = w
        .app
        .call(get("/audit?limit=1000").admin())
        .await
        .expect(200)
        .json();
    (v["entries"].as_array().expect("entries").clone(), v)
}

#[tokio::test]
async fn private_and_admin_requests_are_audited() {
    let w = world().await;
    let (before, _) = audit(&w).await;
    let route = format!("/collections/{DS}.incidents/items");
    w.call(&w.private, get(format!("{route}?limit=5")))
        .await
        .expect(200);
    let (after, _) = audit(&w).await;
    // the admin's own GET /audit is an admin action: entries are the private read and that
    let new: Vec<&Value> = after.iter().skip(before.len()).collect();
    let e = new
        .iter()
        .find(|e| e["route"] == json!(route))
        .unwrap_or_else(|| panic!("no entry for the private read: {new:?}"));
    assert_eq!(e["organisation"], json!("gemeente"));
    assert_eq!(e["tier"], json!("private"));
    assert_eq!(e["status"], json!(200));
    assert_eq!(e["dataset"], json!(DS));
    assert_eq!(e["rows_returned"], json!(5));
    assert_eq!(e["query"], json!("limit=5"));
    assert!(e["key_id"].as_str().is_some_and(|k| k.starts_with("hs_")));
    // the admin creates a key: audited with its status
    w.app
        .call(
            post_json(
                "/admin/keys",
                &json!({"organisation": "ggd", "tier": "closed"}),
            )
            .admin(),
        )
        .await
        .expect(201);
    let (after2, v) = audit(&w).await;
    let e = after2
        .iter()
        .skip(after.len())
        .find(|e| e["route"] == json!("/admin/keys"))
        .expect("admin action audited");
    assert_eq!(e["method"], json!("POST"));
    assert_eq!(e["status"], json!(201));
    assert_eq!(e["tier"], json!("private"));
    assert_eq!(e["key_id"], json!("admin"));
    assert_eq!(v["chain_intact"], json!(true));
    // the key itself is in no entry
    assert!(
        !serde_json::to_string(&after2)
            .expect("json")
            .contains(ADMIN)
    );
    // an anonymous (open) read is not audited; a closed read is
    let n = after2.len();
    w.call(
        &w.anon,
        get(format!("/datasets/{DS}/hotspots?resolution=8&k=1")),
    )
    .await
    .expect(200);
    w.call(
        &w.closed,
        get(format!("/datasets/{DS}/hotspots?resolution=9&k=1")),
    )
    .await
    .expect(200);
    let (after3, _) = audit(&w).await;
    let new: Vec<&Value> = after3.iter().skip(n).collect();
    assert!(new.iter().all(|e| e["tier"] != json!("open")), "{new:?}");
    assert!(
        new.iter()
            .any(|e| e["tier"] == json!("closed") && e["organisation"] == json!("woningcorporatie"))
    );
}

#[tokio::test]
async fn the_audit_log_is_append_only_and_tamper_evident() {
    let w = world().await;
    w.call(
        &w.private,
        get(format!("/collections/{DS}.incidents/items?limit=3")),
    )
    .await
    .expect(200);
    w.call(
        &w.closed,
        get(format!("/datasets/{DS}/hotspots?resolution=9&k=1")),
    )
    .await
    .expect(200);
    let (_, v) = audit(&w).await;
    assert_eq!(v["chain_intact"], json!(true));
    let c = rusqlite::Connection::open(w.db_path()).expect("open");
    c.busy_timeout(std::time::Duration::from_secs(10))
        .expect("timeout");
    let n: i64 = c
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .expect("count");
    assert!(n >= 3);
    let upd = c.execute("UPDATE audit SET status = 200 WHERE seq = 1", []);
    assert!(upd.is_err(), "UPDATE on the audit table must fail");
    let del = c.execute("DELETE FROM audit WHERE seq = 1", []);
    assert!(del.is_err(), "DELETE on the audit table must fail");
    let n2: i64 = c
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, n2);
    // an attacker with the file drops the triggers and edits a row: the chain shows it
    c.execute_batch(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
         UPDATE audit SET organisation = 'nobody', rows_returned = 0 WHERE seq = 2;",
    )
    .expect("tamper");
    let (_, v) = audit(&w).await;
    assert_eq!(v["chain_intact"], json!(false), "{v}");
    assert_eq!(v["chain_broken_at"], json!(2));
    // deleting a row is found too
    let w2 = world().await;
    for _ in 0..3 {
        w2.call(
            &w2.private,
            get(format!("/collections/{DS}.incidents/items?limit=1")),
        )
        .await
        .expect(200);
    }
    let c2 = rusqlite::Connection::open(w2.db_path()).expect("open");
    c2.busy_timeout(std::time::Duration::from_secs(10))
        .expect("timeout");
    c2.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2;")
        .expect("delete");
    let (_, v) = audit(&w2).await;
    assert_eq!(v["chain_intact"], json!(false), "{v}");
}

#[tokio::test]
async fn privacy_officers_see_only_their_own_datasets() {
    let w = world().await;
    let core = &w.app.state.app;
    let officer = core
        .create_key("gemeente", Tier::Closed, "po", true)
        .expect("key")
        .0;
    let police = core
        .create_key("politie", Tier::Private, "analyst", false)
        .expect("key")
        .0;
    let police_officer = core
        .create_key("politie", Tier::Closed, "po", true)
        .expect("key")
        .0;
    w.app
        .call(get(format!("/collections/{HIDDEN}.incidents/items?limit=2")).key(&police))
        .await
        .expect(200);
    w.call(
        &w.private,
        get(format!("/collections/{DS}.incidents/items?limit=2")),
    )
    .await
    .expect(200);
    let v = w
        .app
        .call(get("/audit").key(&officer))
        .await
        .expect(200)
        .json();
    let entries = v["entries"].as_array().expect("entries");
    assert!(entries.iter().any(|e| e["dataset"] == json!(DS)));
    assert!(
        entries.iter().all(|e| e["dataset"] == json!(DS)),
        "a gemeente officer sees only overlast-zaandam: {entries:?}"
    );
    assert!(
        v.get("chain_intact").is_none(),
        "the chain verdict is for the admin"
    );
    w.app
        .call(get(format!("/audit?dataset={HIDDEN}")).key(&officer))
        .await
        .problem(404, "not_found");
    let v = w
        .app
        .call(get(format!("/audit?dataset={HIDDEN}")).key(&police_officer))
        .await
        .expect(200)
        .json();
    assert!(!v["entries"].as_array().expect("entries").is_empty());
    // analysts and anonymous callers: 403
    for who in [&w.anon, &w.open, &w.closed, &w.private] {
        w.call(who, get("/audit"))
            .await
            .problem(403, "privacy_officer_only");
    }
}

#[tokio::test]
async fn the_fourth_request_of_a_key_in_a_minute_is_429() {
    let w = world_with(Settings {
        rate_limit_per_minute: 3,
        ..test_settings()
    })
    .await;
    let r = || get(format!("/datasets/{DS}"));
    for _ in 0..3 {
        w.call(&w.open, r()).await.expect(200);
    }
    let resp = w.call(&w.open, r()).await;
    resp.problem(429, "rate_limited");
    let wait: u64 = resp
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // any route counts, and another key has its own budget
    w.call(&w.open, get("/health"))
        .await
        .problem(429, "rate_limited");
    w.call(&w.closed, r()).await.expect(200);
}

#[tokio::test]
async fn callers_without_a_key_have_a_budget_too() {
    let w = world_with(Settings {
        anonymous_rate_limit_per_minute: 3,
        ..Settings::default()
    })
    .await;
    let r = || get(format!("/datasets/{DS}"));
    for _ in 0..3 {
        w.call(&w.anon, r()).await.expect(200);
    }
    let resp = w.call(&w.anon, r()).await;
    resp.problem(429, "rate_limited");
    assert!(resp.header("retry-after").is_some());
    // keys keep their own budgets
    w.call(&w.open, r()).await.expect(200);
}

#[tokio::test]
async fn the_server_logs_hold_no_raw_subject_or_key() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let err_path = dir.path().join("stderr.log");
    let admin = "log-test-admin-key-9876543210";
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--demo", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--fixtures-dir")
        .arg(FIXTURES)
        .env("HOTSPOTS_ADMIN_KEY", admin)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(&err_path).expect("log file"),
        ))
        .spawn()
        .expect("spawn hotspots");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut stdout = String::new();
    let base = loop {
        let mut l = String::new();
        if out.read_line(&mut l).expect("read") == 0 {
            let _ = child.kill();
            panic!("server ended before listening: {stdout}");
        }
        stdout.push_str(&l);
        if let Some(u) = l.strip_prefix("hotspots listening on ") {
            break u.trim().to_owned();
        }
    };
    let c = reqwest::Client::new();
    let keys: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("data/demo-keys.json")).expect("demo keys"),
    )
    .expect("json");
    let private = keys["private"].as_str().expect("private key");
    let mut statuses = Vec::new();
    for (path, key) in [
        (
            format!("/collections/{DS}.incidents/items?limit=500"),
            private,
        ),
        (format!("/datasets/{DS}/proximity?simulations=9"), private),
        ("/admin/keys".to_string(), admin),
        (
            format!("/collections/{DS}.incidents/items?limit=5"),
            "hs_wrongkey",
        ),
    ] {
        let r = c
            .get(format!("{base}{path}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 401]);
    let _ = child.kill();
    let _ = child.wait();
    // (the banner before the listening line prints the demo keys on purpose: `serve --demo`)
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("rest of stdout");
    assert!(
        subjects_in(stdout.as_bytes(), &raw_subjects()).is_empty() && !stdout.contains(admin),
        "banner: {stdout}"
    );
    let mut logs = rest.into_bytes();
    logs.extend(std::fs::read(&err_path).expect("stderr"));
    assert!(logs.len() > 200, "the server logged ({} bytes)", logs.len());
    let found = subjects_in(&logs, &raw_subjects());
    assert!(
        found.is_empty(),
        "raw subjects in the logs: {:?}",
        &found[..found.len().min(5)]
    );
    let text = String::from_utf8_lossy(&logs);
    assert!(!text.contains(admin), "the admin key is in the logs");
    assert!(!text.contains(private), "an API key is in the logs");
    assert!(
        text.contains("hs_wrongkey") == false,
        "a presented (wrong) key is in the logs"
    );
}

/// One calendar month as a datetime interval (UTC, end inclusive at 23:59:59).
fn month_interval(year: i32, month: u32) -> String {
    let (y1, m1) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let last = chrono::NaiveDate::from_ymd_opt(y1, m1, 1)
        .and_then(|d| d.pred_opt())
        .expect("date");
    format!("{year}-{month:02}-01T00:00:00Z/{last}T23:59:59Z")
}

/// A filter (whole months, one category, one source) that the admin finds to match between 1
/// and `max` incidents; returns (query, n).
async fn narrow_filter(w: &World, max: u64) -> (String, u64) {
    let cid = format!("{DS}.incidents");
    for year in [2024, 2023, 2025] {
        for month in 1..=12u32 {
            for cat in ["drugsoverlast", "zwerfafval", "jeugdoverlast"] {
                for src in ["zorgaanbieder", "ggd", "woningcorporatie"] {
                    let q = format!(
                        "datetime={}&category={cat}&source={src}",
                        month_interval(year, month)
                    );
                    let n = w.app.matched(&cid, &q).await;
                    if (1..=max).contains(&n) {
                        return (q, n);
                    }
                }
            }
        }
    }
    panic!("no filter matches 1..={max} incidents");
}

#[tokio::test]
async fn narrow_filters_do_not_reveal_small_totals() {
    let w = world().await;
    let (filter, n) = narrow_filter(&w, 4).await;
    let mut leaks = Vec::new();
    for who in [&w.anon, &w.closed] {
        for route in [
            "hotspots?resolution=8&k=1",
            "emerging?resolution=8&bin=month&min_bins=3",
            "emerging/compare?resolution=8&split_at=2024-07-01T00:00:00Z",
            "proximity?simulations=9",
            "density?output=h3&resolution=8",
            "concentration?by=place&resolution=8",
            "concentration?by=subject",
            "coverage?resolution=8",
            "clusters",
        ] {
            let uri = format!("/datasets/{DS}/{route}&{filter}").replacen("?", "?", 1);
            let uri = if route.contains('?') {
                uri
            } else {
                uri.replacen('&', "?", 1)
            };
            let r = w.call(who, get(&uri)).await;
            let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
                continue;
            };
            walk(&v, &mut Vec::new(), &mut |path, x| {
                let key = path.last().map(String::as_str).unwrap_or("");
                if x.as_u64() == Some(n) && (is_count_key(key) || is_breakdown(path)) {
                    leaks.push(format!("{} {uri}: {} = {n}", who.name, path.join(".")));
                }
            });
            let detail = v["detail"].as_str().unwrap_or("");
            for pat in [
                format!("found {n}"),
                format!("{n} points"),
                format!("got {n}"),
            ] {
                if detail.contains(&pat) {
                    leaks.push(format!("{} {uri} ({}): {detail}", who.name, r.status));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "a filter matching {n} incidents ({filter}): {} leaks\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[tokio::test]
async fn closed_cluster_outlines_are_not_drawn_through_reports() {
    let w = world().await;
    let v = w
        .call(&w.closed, get(format!("/datasets/{DS}/clusters")))
        .await
        .expect(200)
        .json();
    let reports: HashSet<(i64, i64)> = read_table("zaandam/incidents_wgs84.csv", b',')
        .iter()
        .map(|r| {
            let q = |s: &str| (s.parse::<f64>().expect("coordinate") * 1e5).round() as i64;
            (q(&r["lon"]), q(&r["lat"]))
        })
        .collect();
    let (mut vertices, mut on_reports) = (0, 0);
    walk(&v["features"], &mut Vec::new(), &mut |_, x| {
        if let Some(a) = x.as_array()
            && a.len() == 2
            && a.iter().all(Value::is_f64)
        {
            vertices += 1;
            let q = |v: &Value| (v.as_f64().unwrap_or(0.0) * 1e5).round() as i64;
            if reports.contains(&(q(&a[0]), q(&a[1]))) {
                on_reports += 1;
            }
        }
    });
    assert!(vertices > 0, "clusters are drawn at the closed tier");
    assert!(
        on_reports * 10 < vertices,
        "{on_reports} of {vertices} outline vertices are reports' exact locations (to ~1 m)"
    );
}

/// Solves the 3x3 system `a x = b` (Cramer's rule).
fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    if d.abs() < 1e-300 {
        return None;
    }
    let mut out = [0.0; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let mut m = a;
        for (r, row) in m.iter_mut().enumerate() {
            row[c] = b[r];
        }
        *o = det(m) / d;
    }
    Some(out)
}

/// Local metres east and north of (4.82, 52.44).
fn local_m(lon: f64, lat: f64) -> (f64, f64) {
    let (olon, olat) = (4.82, 52.44);
    let dx = lonlat_distance_m((olon, lat), (lon, lat)) * (lon - olon).signum();
    let dy = lonlat_distance_m((lon, olat), (lon, lat)) * (lat - olat).signum();
    (dx, dy)
}

#[tokio::test]
async fn open_density_does_not_locate_a_report() {
    let w = world().await;
    // a narrow filter whose reports lie far apart: near one of them the density is one kernel
    let cid = format!("{DS}.incidents");
    let mut found = None;
    'search: for year in [2024, 2023, 2025] {
        for month in 1..=12u32 {
            for cat in ["drugsoverlast", "zwerfafval", "jeugdoverlast", "burenruzie"] {
                for src in ["zorgaanbieder", "ggd", "woningcorporatie"] {
                    let q = format!(
                        "datetime={}&category={cat}&source={src}",
                        month_interval(year, month)
                    );
                    if w.app.matched(&cid, &q).await != 2 {
                        continue;
                    }
                    let items = w.app.all_items(&cid, &format!("&{q}")).await;
                    let p: Vec<(f64, f64)> = items
                        .iter()
                        .map(|f| {
                            let c = &f["geometry"]["coordinates"];
                            local_m(c[0].as_f64().expect("lon"), c[1].as_f64().expect("lat"))
                        })
                        .collect();
                    if (p[0].0 - p[1].0).hypot(p[0].1 - p[1].1) > 2500.0 {
                        found = Some((q, p));
                        break 'search;
                    }
                }
            }
        }
    }
    let (filter, truth) = found.expect("a filter matching two reports 2.5 km apart");
    let h = 300.0;
    let v = w
        .call(
            &w.anon,
            get(format!(
                "/datasets/{DS}/density?output=h3&resolution=8&kernel=gaussian&bandwidth_m={h}&edge_correction=false&exact=true&{filter}"
            )),
        )
        .await;
    assert!(v.status.as_u16() < 500, "{}", v.text());
    if v.status != 200 {
        return; // refused: the open tier learns nothing here
    }
    let v = v.json();
    // cells near the densest cell: ln f(c) + |c|^2 / (2 h^2) = b + (c . x) / h^2
    let cells: Vec<(f64, f64, f64)> = v["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|f| {
            let d = f["properties"]["density_km2"].as_f64()?;
            let cell: h3o::CellIndex = f["id"].as_str()?.parse().ok()?;
            let ll = h3o::LatLng::from(cell);
            let (x, y) = local_m(ll.lng(), ll.lat());
            Some((x, y, d))
        })
        .collect();
    let peak = cells
        .iter()
        .copied()
        .fold((0.0, 0.0, 0.0), |a, c| if c.2 > a.2 { c } else { a });
    let near: Vec<&(f64, f64, f64)> = cells
        .iter()
        .filter(|c| c.2 > 0.0 && (c.0 - peak.0).hypot(c.1 - peak.1) < 1000.0)
        .collect();
    assert!(near.len() >= 3, "{} cells near the peak", near.len());
    let (mut a, mut b) = ([[0.0; 3]; 3], [0.0; 3]);
    for &&(x, y, d) in &near {
        let t = d.ln() + (x * x + y * y) / (2.0 * h * h);
        let row = [1.0, x / 1000.0, y / 1000.0];
        for i in 0..3 {
            for j in 0..3 {
                a[i][j] += row[i] * row[j];
            }
            b[i] += row[i] * t;
        }
    }
    let sol = solve3(a, b).expect("solvable");
    let (x, y) = (sol[1] / 1000.0 * h * h, sol[2] / 1000.0 * h * h);
    let err_m = truth
        .iter()
        .map(|t| (t.0 - x).hypot(t.1 - y))
        .fold(f64::INFINITY, f64::min);
    assert!(
        err_m > 100.0,
        "the open tier's density located a report of {filter} to {err_m:.1} m from {} cells",
        near.len()
    );
}

#[tokio::test]
async fn open_gi_z_scores_do_not_give_back_suppressed_counts() {
    let w = world().await;
    let route = format!("/datasets/{DS}/hotspots?resolution=8&k=1");
    let open = w.call(&w.anon, get(&route)).await.expect(200).json();
    // the truth, for checking the attack only: the same cells at the private tier with the
    // categories the open tier sees at resolution 8
    let others = "burenruzie,drugsoverlast,geluidsoverlast,jeugdoverlast,zwerfafval";
    let truth = w
        .call(&w.private, get(format!("{route}&category={others}")))
        .await
        .expect(200)
        .json();
    let truth: BTreeMap<String, u64> = truth["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().expect("id").to_owned(),
                f["properties"]["count"].as_u64().expect("count"),
            )
        })
        .collect();
    let feats = open["features"].as_array().expect("features");
    if feats.iter().all(|f| f["properties"]["gi_z"].is_null()) {
        // the open tier publishes no z-scores: there is nothing to solve
        assert!(
            feats.iter().all(|f| f["properties"]["gi_bin"].is_i64()),
            "bins are still published"
        );
        return;
    }
    let cells: BTreeMap<h3o::CellIndex, (Option<u64>, f64)> = feats
        .iter()
        .map(|f| {
            let c: h3o::CellIndex = f["id"].as_str().expect("id").parse().expect("h3");
            (
                c,
                (
                    f["properties"]["count"].as_u64(),
                    f["properties"]["gi_z"].as_f64().expect("z"),
                ),
            )
        })
        .collect();
    let n = cells.len() as f64;
    let used = open["summary"]["incidents_used"]
        .as_f64()
        .expect("incidents_used");
    let mean = used / n;
    let ring = |c: h3o::CellIndex| -> Vec<h3o::CellIndex> {
        c.grid_disk::<Vec<_>>(1)
            .into_iter()
            .filter(|x| cells.contains_key(x))
            .collect()
    };
    let scale = |wsum: f64| ((n * wsum - wsum * wsum) / (n - 1.0)).sqrt();
    // S from neighbourhoods whose counts are all shown
    let mut s_est: Vec<f64> = Vec::new();
    for (&c, &(_, z)) in &cells {
        let nb = ring(c);
        let shown: Option<Vec<u64>> = nb.iter().map(|x| cells[x].0).collect();
        if let Some(v) = shown
            && z.abs() > 0.5
        {
            let wsum = nb.len() as f64;
            s_est.push((v.iter().sum::<u64>() as f64 - mean * wsum) / (z * scale(wsum)));
        }
    }
    assert!(s_est.len() >= 3, "neighbourhoods with every count shown");
    s_est.sort_by(f64::total_cmp);
    let s = s_est[s_est.len() / 2];
    // a hidden cell in a neighbourhood whose other counts are shown: its count is the rest
    let mut recovered = Vec::new();
    for (&c, &(_, z)) in &cells {
        let nb = ring(c);
        let hidden: Vec<&h3o::CellIndex> = nb.iter().filter(|x| cells[x].0.is_none()).collect();
        if hidden.len() != 1 {
            continue;
        }
        let rest: u64 = nb.iter().filter_map(|x| cells[x].0).sum();
        let wsum = nb.len() as f64;
        let x = z * s * scale(wsum) + mean * wsum - rest as f64;
        if (x - x.round()).abs() < 0.05 && x.round() >= 1.0 {
            let id = hidden[0].to_string();
            if truth.get(&id) == Some(&(x.round() as u64)) {
                recovered.push(format!("{id} = {}", x.round()));
            }
        }
    }
    recovered.sort();
    recovered.dedup();
    assert!(
        recovered.is_empty(),
        "the open tier's gi_z gives back {} suppressed counts exactly: {}",
        recovered.len(),
        recovered.join(", ")
    );
}
