//! The contract: `openapi.yaml` and the router must agree, both ways.
//!
//! - every path + method of the spec is answered by a real handler (not the router's
//!   fallback, not 405), with a status the spec documents for it, and errors are
//!   problem+json with a documented `code`;
//! - every other method on a spec path gets 405 `method_not_allowed`;
//! - every `.route("...")` path in `src/api/*.rs` is a path of the spec;
//! - every problem `code` the code can produce is in the spec's `ProblemCode` enum, and every
//!   code of that enum is produced somewhere;
//! - `/api` serves the spec as JSON equal to the YAML, `/openapi.yaml` serves it verbatim;
//! - every `$ref` resolves, and the advertised `limit` (which QGIS reads from
//!   `components.parameters.limit`) is the server's.
//!
//! Source scanning works on the text of the files (comments and literals masked), so a new
//! route or error code fails this test until `openapi.yaml` documents it.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hotspots::api::{AppState, Settings, router};
use hotspots::app::App;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tower::ServiceExt;

const SPEC_YAML: &str = include_str!("../../openapi.yaml");
const ADMIN: &str = "contract-test-admin-key";
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
/// Files whose `fn code(&self)` values reach problem+json through an error type the API
/// layer does not name (`ingest::ParseFailure` copies `ParseError::code()`).
const EXTRA_CODE_FILES: &[&str] = &["src/ingest/raw.rs"];

fn spec() -> Value {
    serde_yaml::from_str(SPEC_YAML).expect("openapi.yaml parses")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Harness {
    _dir: tempfile::TempDir,
    router: Router,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = App::open(dir.path(), Some(ADMIN.to_owned())).expect("app opens");
    Harness {
        router: router(AppState::new(app, Settings::default())),
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
    fn show(&self) -> String {
        format!(
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
        )
    }
}

async fn call(router: &Router, method: &str, uri: &str, key: Option<&str>) -> Answer {
    send(router, method, uri, key, None).await
}

async fn send(
    router: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Answer {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let body = match body {
        Some((ct, bytes)) => {
            req = req.header(header::CONTENT_TYPE, ct);
            Body::from(bytes.to_vec())
        }
        None => Body::empty(),
    };
    let resp = router
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("the router is infallible");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .expect("body");
    Answer {
        status,
        content_type,
        body: body.to_vec(),
    }
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.strip_prefix('#').expect("local $ref");
            spec.pointer(ptr)
                .unwrap_or_else(|| panic!("$ref {r} does not resolve"))
        }
        None => v,
    }
}

/// The operations of the spec: (path, method, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let paths = spec["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((path.clone(), m.to_owned(), op.clone()));
            }
        }
    }
    out
}

/// An example value of a path parameter: its `example`, its schema's `example`, the first
/// `enum` value, else `1` for integers and `x` otherwise.
fn example(spec: &Value, p: &Value) -> String {
    let schema = resolve(spec, &p["schema"]);
    let v = p
        .get("example")
        .or_else(|| schema.get("example"))
        .or_else(|| schema.get("enum").and_then(|e| e.get(0)))
        .cloned()
        .unwrap_or_else(|| match schema["type"].as_str() {
            Some("integer") | Some("number") => Value::from(1),
            _ => Value::from("x"),
        });
    let s = match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)),
        "example {s:?} of path parameter {} must be URL-safe",
        p["name"]
    );
    s
}

/// The path with every `{param}` replaced by the example of its parameter.
fn fill(spec: &Value, path: &str, op: &Value) -> String {
    fill_with(spec, path, op, &BTreeMap::new())
}

/// As [`fill`], taking the values in `values` first.
fn fill_with(spec: &Value, path: &str, op: &Value, values: &BTreeMap<&str, String>) -> String {
    let path_params = spec["paths"][path]["parameters"].as_array();
    let op_params = op["parameters"].as_array();
    let params: Vec<&Value> = path_params
        .into_iter()
        .chain(op_params)
        .flatten()
        .map(|p| resolve(spec, p))
        .filter(|p| p["in"] == "path")
        .collect();
    let mut out = path.to_owned();
    while let Some(start) = out.find('{') {
        let end = start + out[start..].find('}').expect("closing brace");
        let name = out[start + 1..end].to_owned();
        let p = params
            .iter()
            .find(|p| p["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{path}: no path parameter {name:?} declared"));
        let v = values
            .get(name.as_str())
            .cloned()
            .unwrap_or_else(|| example(spec, p));
        out.replace_range(start..=end, &v);
    }
    out
}

fn problem_codes(spec: &Value) -> BTreeSet<String> {
    spec["components"]["schemas"]["ProblemCode"]["enum"]
        .as_array()
        .expect("components.schemas.ProblemCode.enum")
        .iter()
        .map(|c| c.as_str().expect("code is a string").to_owned())
        .collect()
}

fn is_fallback(a: &Answer) -> bool {
    a.status == StatusCode::NOT_FOUND
        && a.json().is_some_and(|j| {
            j["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no such route"))
        })
}

/// (a) every operation of the spec reaches a real handler, answers a documented status, and
/// errors are problem+json with a documented code.
#[tokio::test]
async fn every_spec_operation_is_routed_and_documented() {
    let spec = spec();
    let codes = problem_codes(&spec);
    let h = harness();
    let mut wrong = Vec::new();
    for (path, method, op) in operations(&spec) {
        let uri = fill(&spec, &path, &op);
        for key in [Some(ADMIN), None] {
            let who = if key.is_some() { "admin" } else { "anonymous" };
            let a = call(&h.router, &method, &uri, key).await;
            let what = format!("{} {uri} (spec {path}) as {who}", method.to_uppercase());
            if is_fallback(&a) || a.status == StatusCode::METHOD_NOT_ALLOWED {
                wrong.push(format!("{what}: not routed: {}", a.show()));
                continue;
            }
            wrong.extend(check_answer(&spec, &op, &a, &what));
            if a.status.is_client_error() || a.status.is_server_error() {
                let code = a.json().and_then(|j| j["code"].as_str().map(str::to_owned));
                if a.content_type != "application/problem+json" {
                    wrong.push(format!(
                        "{what}: error is {:?}, not problem+json",
                        a.content_type
                    ));
                }
                match code {
                    Some(c) if codes.contains(&c) => {}
                    other => wrong.push(format!("{what}: code {other:?} not in ProblemCode")),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "spec and router disagree:\n{}",
        wrong.join("\n")
    );
}

/// (b) on every path of the spec, the methods it does not list get 405 (HEAD is served
/// wherever GET is; OPTIONS is answered by the CORS layer on every path).
#[tokio::test]
async fn unlisted_methods_get_405() {
    let spec = spec();
    let h = harness();
    let mut wrong = Vec::new();
    let paths = spec["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let any_op = METHODS
            .iter()
            .find_map(|m| item.get(*m))
            .expect("a path with an operation");
        let uri = fill(&spec, path, any_op);
        for m in ["get", "head", "post", "put", "patch", "delete"] {
            let listed = item.get(m).is_some() || (m == "head" && item.get("get").is_some());
            if listed {
                continue;
            }
            let a = call(&h.router, m, &uri, Some(ADMIN)).await;
            let code = a.json().map(|j| j["code"].clone());
            let ok = a.status == StatusCode::METHOD_NOT_ALLOWED
                && (m == "head" || code == Some(Value::from("method_not_allowed")));
            if !ok {
                wrong.push(format!(
                    "{} {uri} (spec {path}) is not in the spec but answers {}",
                    m.to_uppercase(),
                    a.show()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "unlisted methods answered:\n{}",
        wrong.join("\n")
    );
}

// ---------- responses against their documented schemas ----------

/// Checks `v` against an OpenAPI 3.0 schema (the subset this spec uses: `$ref`, `type`,
/// `nullable`, `enum`, `required`, `properties`, `additionalProperties`, `items`,
/// `minItems`/`maxItems`, `minimum`/`maximum`, `oneOf`, `anyOf`, `allOf`). An object schema
/// that lists `properties` without `additionalProperties` is closed: members it does not
/// document are errors, so a new response member fails until it is documented.
fn check_schema(spec: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let s = resolve(spec, schema);
    if v.is_null() {
        if s["nullable"] != Value::Bool(true) && s.get("type").is_some() {
            errs.push(format!("{at}: null but not nullable"));
        }
        return;
    }
    if let Some(all) = s["allOf"].as_array() {
        all.iter().for_each(|x| check_schema(spec, x, v, at, errs));
    }
    for (kw, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(alts) = s[kw].as_array() {
            let fits = alts
                .iter()
                .filter(|x| {
                    let mut e = Vec::new();
                    check_schema(spec, x, v, at, &mut e);
                    e.is_empty()
                })
                .count();
            if fits == 0 || (exactly_one && fits > 1) {
                errs.push(format!("{at}: {fits} of the {kw} alternatives fit {v}"));
            }
        }
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v} is not one of {e:?}"));
    }
    let type_ok = match s["type"].as_str() {
        None => true,
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some("array") => v.is_array(),
        Some("object") => v.is_object(),
        Some(t) => panic!("{at}: unknown schema type {t}"),
    };
    if !type_ok {
        errs.push(format!("{at}: {v} is not of type {}", s["type"]));
        return;
    }
    if let Some(x) = v.as_f64() {
        if s["minimum"].as_f64().is_some_and(|m| x < m)
            || s["maximum"].as_f64().is_some_and(|m| x > m)
        {
            errs.push(format!("{at}: {x} is out of range"));
        }
    }
    if let Some(a) = v.as_array() {
        let n = a.len() as u64;
        if s["minItems"].as_u64().is_some_and(|m| n < m)
            || s["maxItems"].as_u64().is_some_and(|m| n > m)
        {
            errs.push(format!("{at}: {n} items"));
        }
        if let Some(items) = s.get("items") {
            for (i, x) in a.iter().enumerate() {
                check_schema(spec, items, x, &format!("{at}[{i}]"), errs);
            }
        }
    }
    if let Some(o) = v.as_object() {
        for r in s["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            if !o.contains_key(r) {
                errs.push(format!("{at}: required member {r:?} is missing"));
            }
        }
        let props = s["properties"].as_object();
        for (k, x) in o {
            match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
                (Some(ps), _) => check_schema(spec, ps, x, &format!("{at}.{k}"), errs),
                (None, Some(Value::Bool(true))) => {}
                (None, Some(Value::Bool(false))) => {
                    errs.push(format!("{at}: member {k:?} is not allowed"))
                }
                (None, Some(extra)) => check_schema(spec, extra, x, &format!("{at}.{k}"), errs),
                (None, None) if props.is_some() => {
                    errs.push(format!("{at}: member {k:?} is not documented"))
                }
                (None, None) => {}
            }
        }
    }
}

/// Checks an answer against the operation's documented response for its status: a
/// documented status, a documented media type, and a JSON body that fits the schema.
fn check_answer(spec: &Value, op: &Value, a: &Answer, what: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let responses = &op["responses"];
    let Some(doc) = responses
        .get(a.status.as_str())
        .or_else(|| responses.get("default"))
    else {
        return vec![format!("{what}: status {} is not documented", a.show())];
    };
    let doc = resolve(spec, doc);
    let Some(content) = doc["content"].as_object() else {
        if !a.body.is_empty() && a.status != StatusCode::SERVICE_UNAVAILABLE {
            errs.push(format!(
                "{what}: documented without a body, got {}",
                a.show()
            ));
        }
        return errs;
    };
    let essence = |t: &str| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let media = content.get(&a.content_type).or_else(|| {
        content
            .iter()
            .find(|(k, _)| essence(k) == essence(&a.content_type))
            .map(|(_, m)| m)
    });
    let Some(media) = media else {
        return vec![format!(
            "{what}: media type {:?} is not documented for {}",
            a.content_type, a.status
        )];
    };
    if essence(&a.content_type).ends_with("json") {
        match a.json() {
            Some(v) => check_schema(spec, &media["schema"], &v, what, &mut errs),
            None => errs.push(format!("{what}: body is not JSON: {}", a.show())),
        }
    }
    errs
}

const INCIDENTS: &str = r#"{"type": "FeatureCollection", "features": [
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.8262, 52.4381]},
   "properties": {"external_id": "c-1", "occurred_at": "2024-03-05T14:22:00Z", "category": "geluidsoverlast", "source": "politie", "buurt": "Centrum"}},
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.8301, 52.4402]},
   "properties": {"external_id": "c-2", "occurred_at": "2024-03-06T09:00:00+01:00", "category": "jeugdoverlast", "source": "politie", "subject": "P-77"}},
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.8310, 52.4410]},
   "properties": {"external_id": "c-3", "occurred_at": "gisteren", "category": "geluidsoverlast", "source": "politie"}}
]}"#;
const INCIDENTS_RD_CSV: &str = "external_id;occurred_at;category;source;x;y\r\nc-4;2024-04-01T10:00:00+02:00;jeugdoverlast;gemeente;116500,25;496800,5\r\nc-5;2024-04-02T11:00:00Z;geluidsoverlast;gemeente;;496900\r\n";
const FACILITIES: &str = r#"{"type": "FeatureCollection", "features": [
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.8280, 52.4390]},
   "properties": {"id": "f-1", "name": "De Hoek", "kind": "care_centre", "beds": 12}}
]}"#;
const BASELINE_CSV: &str = "id,weight,lon,lat\nb-1,3,4.8270,52.4385\nb-2,1,4.8290,52.4395\n";
const STUDY_AREA: &str = r#"{"type": "FeatureCollection", "features": [
  {"type": "Feature", "properties": {"name": "Zaandam-Zuid"}, "geometry": {"type": "Polygon",
   "coordinates": [[[4.80, 52.42], [4.86, 52.42], [4.86, 52.46], [4.80, 52.46], [4.80, 52.42]]]}}
]}"#;

/// 400 incidents over 2023-2024 on a 20 x 10 grid around Zaandam, denser in one corner, from
/// two sources, some with a subject: enough for every analysis to answer.
fn many_incidents() -> String {
    let mut csv = String::from("external_id,occurred_at,category,source,subject,lon,lat\n");
    for i in 0..400u32 {
        let (col, row) = if i % 4 == 0 {
            (i % 3, i % 2)
        } else {
            (i % 20, (i / 20) % 10)
        };
        let lon = 4.800 + f64::from(col) * 0.003;
        let lat = 52.420 + f64::from(row) * 0.004;
        let (year, month, day) = (2023 + i % 2, 1 + (i / 2) % 12, 1 + i % 28);
        let source = if i % 3 == 0 { "gemeente" } else { "politie" };
        let category = if i % 5 == 0 {
            "jeugdoverlast"
        } else {
            "geluidsoverlast"
        };
        let subject = if i % 7 == 0 {
            format!("S-{}", i % 11)
        } else {
            String::new()
        };
        csv.push_str(&format!(
            "m-{i},{year}-{month:02}-{day:02}T12:00:00Z,{category},{source},{subject},{lon:.4},{lat:.4}\n"
        ));
    }
    csv
}

/// Every GET of the spec on a dataset with data in every layer, and the writes that made it:
/// each answer fits the schema documented for its status and media type.
#[tokio::test]
async fn responses_fit_their_schemas_on_real_data() {
    let spec = spec();
    let h = harness();
    let mut wrong = Vec::new();
    let op = |path: &str, method: &str| spec["paths"][path][method].clone();
    let json = "application/json";
    let a = send(
        &h.router,
        "post",
        "/datasets",
        Some(ADMIN),
        Some((
            json,
            br#"{"id": "contract", "title": "Contract", "members": ["politie"], "open": true}"#,
        )),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.show());
    wrong.extend(check_answer(
        &spec,
        &op("/datasets", "post"),
        &a,
        "POST /datasets",
    ));
    let writes = [
        ("incidents", "", "application/geo+json", INCIDENTS),
        ("incidents", "?crs=EPSG:28992", "text/csv", INCIDENTS_RD_CSV),
        ("incidents", "", "text/csv", &many_incidents()),
        ("facilities", "", "application/geo+json", FACILITIES),
        ("baseline", "", "text/csv; charset=utf-8", BASELINE_CSV),
        ("study_area", "", "application/geo+json", STUDY_AREA),
    ];
    for (layer, query, ct, body) in &writes {
        let uri = format!("/datasets/contract/{layer}{query}");
        let a = send(
            &h.router,
            "post",
            &uri,
            Some(ADMIN),
            Some((*ct, body.as_bytes())),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "POST {uri}: {}", a.show());
        wrong.extend(check_answer(
            &spec,
            &op("/datasets/{id}/{layer}", "post"),
            &a,
            &format!("POST {uri}"),
        ));
    }
    let body = br#"{"organisation": "politie", "tier": "open", "label": "contract"}"#;
    let a = send(
        &h.router,
        "post",
        "/admin/keys",
        Some(ADMIN),
        Some((json, body)),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.show());
    wrong.extend(check_answer(
        &spec,
        &op("/admin/keys", "post"),
        &a,
        "POST /admin/keys",
    ));
    let key = a.json().expect("key JSON");
    let key_id = key["id"].as_str().expect("key id").to_owned();
    let body = br#"{"organisation": "politie", "tier": "closed", "role": "privacy_officer"}"#;
    let a = send(
        &h.router,
        "post",
        "/admin/keys",
        Some(ADMIN),
        Some((json, body)),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.show());
    let closed = a.json().expect("key JSON");

    let mut values = BTreeMap::from([
        ("id", "contract".to_owned()),
        ("layer", "incidents".to_owned()),
        ("key_id", key_id.clone()),
    ]);
    for layer in ["incidents", "facilities", "baseline", "study_area"] {
        let cid = format!("contract.{layer}");
        let items = call(
            &h.router,
            "get",
            &format!("/collections/{cid}/items"),
            Some(ADMIN),
        )
        .await;
        let fid = items
            .json()
            .and_then(|j| j["features"][0]["id"].as_i64())
            .expect("a feature");
        values.insert("cid", cid);
        values.insert("fid", fid.to_string());
        for (path, method, op) in operations(&spec) {
            let uses_cid = path.contains("{cid}");
            if method != "get" || (layer != "incidents" && !uses_cid) {
                continue;
            }
            let uri = fill_with(&spec, &path, &op, &values);
            let mut uris = vec![uri.clone()];
            if path == "/collections/{cid}/items" {
                uris.push(format!("{uri}?crs=EPSG:28992&limit=1"));
                if layer != "study_area" {
                    uris.push(format!("{uri}?f=csv"));
                }
            }
            // queries that every tier may ask, and the other modes of each analysis
            let extra: &[&str] = match path.as_str() {
                "/datasets/{id}/hotspots" => &[
                    "resolution=8&k=1",
                    "method=local_moran&resolution=8&k=1&permutations=99",
                ],
                "/datasets/{id}/emerging" => &["resolution=8&bin=quarter&min_bins=3"],
                "/datasets/{id}/emerging/compare" => &["split_at=2024-01-01&resolution=8"],
                "/datasets/{id}/concentration" => &["resolution=8&top=3", "by=subject&top=3"],
                "/datasets/{id}/coverage" => &["resolution=8"],
                "/datasets/{id}/proximity" => &["radius_m=300&rings_m=100,300&simulations=19"],
                "/datasets/{id}/clusters" => &["method=hdbscan&hull=concave"],
                "/datasets/{id}/density" => {
                    &["output=h3&resolution=8", "kernel=gaussian&cell_m=250"]
                }
                "/datasets/{id}/picture" => &["f=html", "datetime=2024-01-01/2024-12-31"],
                _ => &[],
            };
            uris.extend(extra.iter().map(|q| format!("{uri}?{q}")));
            for (who, k) in [
                ("admin", Some(ADMIN)),
                ("open key", key["key"].as_str()),
                ("closed privacy officer", closed["key"].as_str()),
                ("anonymous", None),
            ] {
                for u in &uris {
                    let a = call(&h.router, "get", u, k).await;
                    eprintln!("GET {u} as {who}: {}", a.status);
                    wrong.extend(check_answer(&spec, &op, &a, &format!("GET {u} as {who}")));
                }
            }
        }
    }
    for (path, uri) in [
        ("/admin/keys/{key_id}", format!("/admin/keys/{key_id}")),
        ("/datasets/{id}", "/datasets/contract".to_owned()),
    ] {
        let a = call(&h.router, "delete", &uri, Some(ADMIN)).await;
        assert_eq!(
            a.status,
            StatusCode::NO_CONTENT,
            "DELETE {uri}: {}",
            a.show()
        );
        wrong.extend(check_answer(
            &spec,
            &op(path, "delete"),
            &a,
            &format!("DELETE {uri}"),
        ));
    }
    assert!(
        wrong.is_empty(),
        "answers that do not fit openapi.yaml:\n{}",
        wrong.join("\n")
    );
}

// ---------- source scanning ----------

/// A Rust source with comments and the insides of string and char literals masked out (same
/// byte offsets), and its string literals as (start, end, contents); `start` is the opening
/// quote (the `r` of a raw string) and `end` is past the closing quote.
struct Lexed {
    masked: Vec<u8>,
    lits: Vec<(usize, usize, String)>,
}

fn lex(src: &str) -> Lexed {
    let b = src.as_bytes();
    let mut masked = b.to_vec();
    let mut lits = Vec::new();
    let mut i = 0;
    let blank = |m: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut m[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        let prev_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if b[i..].starts_with(b"//") {
            let end = src[i..].find('\n').map_or(b.len(), |e| i + e);
            blank(&mut masked, i, end);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            blank(&mut masked, i, end);
            i = end;
        } else if b[i] == b'r' && !prev_ident && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let open = i + 1 + hashes;
            let close_pat = format!("\"{}", "#".repeat(hashes));
            let close = src[open + 1..]
                .find(&close_pat)
                .map_or(b.len(), |e| open + 1 + e);
            lits.push((i, close + close_pat.len(), src[open + 1..close].to_owned()));
            blank(&mut masked, open + 1, close);
            i = close + close_pat.len();
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let j = j.min(b.len());
            lits.push((i, j + 1, src[i + 1..j].to_owned()));
            blank(&mut masked, i + 1, j);
            i = j + 1;
        } else if b[i] == b'\'' {
            // a char literal ('x', '\n', '\u{..}', 'é') or a lifetime ('a, 'static)
            if b.get(i + 1) == Some(&b'\\') {
                let end = src[i + 3..].find('\'').map_or(b.len(), |e| i + 3 + e + 1);
                blank(&mut masked, i, end);
                i = end;
            } else if let Some(c) = src[i + 1..].chars().next()
                && b.get(i + 1 + c.len_utf8()) == Some(&b'\'')
            {
                let end = i + 2 + c.len_utf8();
                blank(&mut masked, i, end);
                i = end;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    Lexed { masked, lits }
}

impl Lexed {
    fn find_all(&self, pat: &str) -> Vec<usize> {
        let p = pat.as_bytes();
        (0..self.masked.len().saturating_sub(p.len() - 1))
            .filter(|&i| self.masked[i..].starts_with(p))
            .collect()
    }

    /// The index of the bracket closing the one at `open`.
    fn closing(&self, open: usize) -> Option<usize> {
        let mut depth = 0i32;
        for (i, &c) in self.masked.iter().enumerate().skip(open) {
            match c {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Argument spans of the call whose `(` is at `open`.
    fn args(&self, open: usize) -> Vec<(usize, usize)> {
        let Some(close) = self.closing(open) else {
            return vec![];
        };
        let (mut out, mut depth, mut start) = (Vec::new(), 0i32, open + 1);
        for i in open + 1..close {
            match self.masked[i] {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 => {
                    out.push((start, i));
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push((start, close));
        out
    }

    /// The string literal that is the whole of `span` (whitespace aside).
    fn literal_arg(&self, span: (usize, usize)) -> Option<&str> {
        let text = &self.masked[span.0..span.1];
        let lead = text.iter().take_while(|c| c.is_ascii_whitespace()).count();
        let trail = text
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
        let (s, e) = (span.0 + lead, span.1 - trail);
        self.lits
            .iter()
            .find(|(o, end, _)| *o == s && *end == e)
            .map(|(_, _, v)| v.as_str())
    }

    fn lits_in(&self, from: usize, to: usize) -> impl Iterator<Item = &(usize, usize, String)> {
        self.lits
            .iter()
            .filter(move |(o, _, _)| *o >= from && *o < to)
    }

    fn next_non_space(&self, i: usize) -> &[u8] {
        let j = i + self.masked[i..]
            .iter()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
        &self.masked[j..]
    }

    fn prev_non_space_ends_with(&self, i: usize, pat: &str) -> bool {
        let t = self.masked[..i].trim_ascii_end();
        t.ends_with(pat.as_bytes())
    }
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && !s.contains("__")
        && !s.ends_with('_')
}

/// The problem codes written in a source file of the API layer: the code argument of
/// `ApiError::new(status, "code", ..)` and `ApiError::bad_request("code", ..)`, and the values
/// of `let code = ..;` / `let (status, code) = ..;` statements.
fn api_codes(src: &str) -> BTreeSet<String> {
    let l = lex(src);
    let mut out = BTreeSet::new();
    for (pat, arg) in [("ApiError::new(", 1), ("bad_request(", 0)] {
        for at in l.find_all(pat) {
            let args = l.args(at + pat.len() - 1);
            if let Some(c) = args.get(arg).and_then(|&s| l.literal_arg(s)) {
                out.insert(c.to_owned());
            }
        }
    }
    for at in l.find_all("let ") {
        let before = l.masked[..at].trim_ascii_end();
        let in_condition =
            before.ends_with(b"if") || before.ends_with(b"while") || before.ends_with(b"&&");
        let ident_before =
            at > 0 && (l.masked[at - 1].is_ascii_alphanumeric() || l.masked[at - 1] == b'_');
        if in_condition || ident_before {
            continue;
        }
        let Some(eq) = (at..l.masked.len()).find(|&i| {
            l.masked[i] == b'=' && !matches!(l.masked.get(i + 1), Some(b'=') | Some(b'>'))
        }) else {
            continue;
        };
        let binding = String::from_utf8_lossy(&l.masked[at + 4..eq]);
        let binds_code = binding
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == "code");
        if !binds_code {
            continue;
        }
        let mut depth = 0i32;
        let end = (eq..l.masked.len())
            .find(|&i| {
                match l.masked[i] {
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => depth -= 1,
                    _ => {}
                }
                depth == 0 && l.masked[i] == b';'
            })
            .unwrap_or(l.masked.len());
        for (_, e, v) in l.lits_in(eq, end) {
            if is_code(v) && !l.next_non_space(*e).starts_with(b"=>") {
                out.insert(v.clone());
            }
        }
    }
    out
}

/// The values of `fn code(&self) -> &'static str` in a source file (`Variant => "code"`).
fn fn_codes(src: &str) -> BTreeSet<String> {
    let l = lex(src);
    let mut out = BTreeSet::new();
    for at in l.find_all("fn code(&self)") {
        let Some(open) = (at..l.masked.len()).find(|&i| l.masked[i] == b'{') else {
            continue;
        };
        let close = l.closing(open).unwrap_or(l.masked.len());
        for (o, _, v) in l.lits_in(open, close) {
            if is_code(v) && l.prev_non_space_ends_with(*o, "=>") {
                out.insert(v.clone());
            }
        }
    }
    out
}

/// The Rust files of `src/api` (recursively).
fn api_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src/api").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src/api"), &mut out);
    out.sort();
    assert!(out.len() >= 5, "src/api has too few files: {out:?}");
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The error types (`...Error`) named in a source file.
fn error_types(src: &str) -> BTreeSet<String> {
    let l = lex(src);
    let text = String::from_utf8_lossy(&l.masked).into_owned();
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.ends_with("Error") && w.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(str::to_owned)
        .collect()
}

/// The values of `fn code(&self)` inside `impl <name> { .. }` blocks of a source file.
fn impl_codes(src: &str, name: &str) -> BTreeSet<String> {
    let l = lex(src);
    let mut out = BTreeSet::new();
    for pat in [format!("impl {name} {{"), format!("impl {name}{{")] {
        for at in l.find_all(&pat) {
            let open = at + pat.len() - 1;
            let close = l.closing(open).unwrap_or(l.masked.len());
            out.extend(fn_codes(&src[open..close]));
        }
    }
    out
}

/// Every Rust file under `src`.
fn src_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src"), &mut out);
    out.sort();
    out
}

/// Every problem code the service can answer, from the source.
fn codes_in_source() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut types = BTreeSet::new();
    for f in api_files() {
        let src = read(&f);
        for c in api_codes(&src).into_iter().chain(fn_codes(&src)) {
            out.entry(c).or_insert_with(|| f.display().to_string());
        }
        types.extend(error_types(&src));
    }
    // the `code()` of every error type the API layer names: it maps them to problems
    for f in src_files() {
        let src = read(&f);
        for t in &types {
            for c in impl_codes(&src, t) {
                out.entry(c)
                    .or_insert_with(|| format!("{} ({t})", f.display()));
            }
        }
    }
    for f in EXTRA_CODE_FILES {
        for c in fn_codes(&read(&root().join(f))) {
            out.entry(c).or_insert_with(|| f.to_string());
        }
    }
    out
}

/// (c) every route registered in `src/api` is a path of the spec.
#[test]
fn every_route_in_the_source_is_in_the_spec() {
    let spec = spec();
    let paths = spec["paths"].as_object().expect("paths");
    let mut routes = BTreeSet::new();
    let mut wrong = Vec::new();
    for f in api_files() {
        let l = lex(&read(&f));
        for pat in [".nest(", ".nest_service("] {
            if !l.find_all(pat).is_empty() {
                wrong.push(format!(
                    "{}: {pat} hides full paths from this test; register full paths with .route or extend tests/it/openapi.rs",
                    f.display()
                ));
            }
        }
        for pat in [".route(", ".route_service("] {
            for at in l.find_all(pat) {
                let args = l.args(at + pat.len() - 1);
                match args.first().and_then(|&s| l.literal_arg(s)) {
                    Some(p) => {
                        routes.insert(p.to_owned());
                    }
                    None => wrong.push(format!(
                        "{}: a {pat}..) whose path is not a string literal",
                        f.display()
                    )),
                }
            }
        }
    }
    assert!(
        routes.contains("/collections/{cid}/items") && routes.len() >= 10,
        "the route scan found too little: {routes:?}"
    );
    for r in &routes {
        if !paths.contains_key(r) {
            wrong.push(format!("route {r} is not documented in openapi.yaml"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// (d) the problem codes of the source and of the spec are the same set.
#[test]
fn problem_codes_match_the_source() {
    let spec = spec();
    let documented = problem_codes(&spec);
    let used = codes_in_source();
    for must in [
        "not_found",
        "unknown_parameter",
        "tier_forbidden",
        "empty_body",
    ] {
        assert!(
            used.contains_key(must),
            "the code scan missed {must}: {used:?}"
        );
    }
    let mut wrong = Vec::new();
    for (c, file) in &used {
        if !documented.contains(c) || !SPEC_YAML.contains(&format!("`{c}`")) {
            wrong.push(format!(
                "code {c:?} ({file}) is not in ProblemCode's enum and described in openapi.yaml"
            ));
        }
    }
    for c in &documented {
        if !used.contains_key(c) {
            wrong.push(format!(
                "ProblemCode {c:?} is produced nowhere in the source"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `/api` is the spec as JSON, `/openapi.yaml` the file itself.
#[tokio::test]
async fn api_serves_the_spec() {
    let h = harness();
    let a = call(&h.router, "get", "/api", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.content_type
            .starts_with("application/vnd.oai.openapi+json"),
        "{}",
        a.content_type
    );
    assert_eq!(
        a.json().expect("JSON"),
        spec(),
        "/api differs from openapi.yaml"
    );
    let y = call(&h.router, "get", "/openapi.yaml", None).await;
    assert_eq!(y.status, StatusCode::OK);
    assert_eq!(y.body, SPEC_YAML.as_bytes());
    let bad = call(&h.router, "get", "/api?nonsense=1", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

/// The document is OpenAPI 3.0 with resolvable `$ref`s, and advertises the server's limits.
#[test]
fn spec_is_self_consistent() {
    let spec = spec();
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0."))
    );
    fn refs(spec: &Value, v: &Value, bad: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let ok = r.strip_prefix('#').and_then(|p| spec.pointer(p)).is_some();
                    if !ok {
                        bad.push(r.clone());
                    }
                }
                m.values().for_each(|x| refs(spec, x, bad));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(spec, x, bad)),
            _ => {}
        }
    }
    let mut bad = Vec::new();
    refs(&spec, &spec, &mut bad);
    assert!(bad.is_empty(), "unresolved $refs: {bad:?}");
    let limit = &spec["components"]["parameters"]["limit"]["schema"];
    assert_eq!(limit["maximum"], Value::from(hotspots::api::ogc::MAX_LIMIT));
    assert_eq!(limit["default"], Value::from(10));
    let mut ids = BTreeSet::new();
    for (path, method, op) in operations(&spec) {
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(!id.is_empty(), "{method} {path} has no operationId");
        assert!(ids.insert(id.clone()), "operationId {id} is used twice");
    }
}

/// The scanners themselves: they find what they must and skip comments and patterns.
#[test]
fn scanners_read_rust_correctly() {
    let src = r##"
        // ApiError::bad_request("in_comment", "x")
        let s = b'"'; let t = '\''; fn f<'a>(x: &'a str) {}
        ApiError::bad_request("first_code", format!("a, b {}", 1));
        ApiError::new(StatusCode::CONFLICT, "second_code", "not_this");
        ApiError::new(status, code, "no");
        let (status, code) = match e { E::A => (StatusCode::FORBIDDEN, "third_code"), };
        let code = if m.contains("unknown field") { "fourth_code" } else { "fifth_code" };
        let code = match s { "pattern_only" => "sixth_code", _ => "seventh_code" };
        let other = "not_a_code";
        Router::new().route("/a/{b}", get(x)).route(r#"/raw"#, get(y));
        pub fn code(&self) -> &'static str { match self { Self::A => "eighth_code", Self::B(e) => e.code() } }
    "##;
    let got = api_codes(src);
    let want: BTreeSet<String> = [
        "first_code",
        "second_code",
        "third_code",
        "fourth_code",
        "fifth_code",
        "sixth_code",
        "seventh_code",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(got, want);
    assert_eq!(fn_codes(src), ["eighth_code".to_owned()].into());
    let l = lex(src);
    let routes: Vec<&str> = l
        .find_all(".route(")
        .into_iter()
        .filter_map(|at| l.args(at + 6).first().and_then(|&s| l.literal_arg(s)))
        .collect();
    assert_eq!(routes, ["/a/{b}", "/raw"]);
    let other = r#"
        pub enum XError { A, B }
        impl XError { pub fn code(&self) -> &'static str { match self { Self::A => "x_a", Self::B => "x_b" } } }
        impl YError { pub fn code(&self) -> &'static str { match self { Self::A => "y_a" } } }
    "#;
    assert_eq!(
        impl_codes(other, "XError"),
        ["x_a".to_owned(), "x_b".to_owned()].into()
    );
    assert_eq!(
        error_types("fn f(e: XError) -> ApiError { todo!() } // ZError"),
        ["ApiError".to_owned(), "XError".to_owned()].into()
    );
}
