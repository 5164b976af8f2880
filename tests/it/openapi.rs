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
/// Files outside `src/api` whose `fn code(&self)` values reach problem+json through a
/// conversion that the import scan cannot see (`ingest::ParseFailure` copies `e.code()`).
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
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let resp = router
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
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
        out.replace_range(start..=end, &example(spec, p));
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
            let documented = op["responses"]
                .as_object()
                .is_some_and(|r| r.contains_key(a.status.as_str()) || r.contains_key("default"));
            if !documented {
                wrong.push(format!("{what}: status {} is not documented", a.show()));
            }
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

/// The source files named by `crate::a::b::{c, d}` paths in `src` (the longest prefix that
/// is a module file).
fn referenced_modules(src: &str) -> BTreeSet<PathBuf> {
    let l = lex(src);
    let text = String::from_utf8_lossy(&l.masked).into_owned();
    let mut paths: Vec<Vec<String>> = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let n = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let segs: Vec<String> = rest[..n]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if rest[n..].starts_with('{') {
            let close = rest[n..].find('}').map_or(rest.len(), |e| n + e);
            for item in rest[n + 1..close].split(',') {
                let mut p = segs.clone();
                p.extend(item.trim().split("::").map(|s| s.trim().to_owned()));
                paths.push(p);
            }
        }
        paths.push(segs);
    }
    let src_dir = root().join("src");
    let mut out = BTreeSet::new();
    for p in paths {
        for k in (1..=p.len()).rev() {
            let rel = p[..k].join("/");
            let file = src_dir.join(format!("{rel}.rs"));
            let modf = src_dir.join(&rel).join("mod.rs");
            if file.is_file() {
                out.insert(file);
                break;
            }
            if modf.is_file() {
                out.insert(modf);
                break;
            }
        }
    }
    out
}

/// Every problem code the service can answer, from the source.
fn codes_in_source() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut code_files: BTreeSet<PathBuf> =
        EXTRA_CODE_FILES.iter().map(|f| root().join(f)).collect();
    for f in api_files() {
        let src = read(&f);
        for c in api_codes(&src).into_iter().chain(fn_codes(&src)) {
            out.entry(c).or_insert_with(|| f.display().to_string());
        }
        code_files.extend(referenced_modules(&src));
    }
    for f in code_files {
        for c in fn_codes(&read(&f)) {
            out.entry(c).or_insert_with(|| f.display().to_string());
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
    let mods =
        referenced_modules("use crate::analysis::{stats, hotspot::Params};\nuse crate::crs::Crs;");
    for m in [
        "src/analysis/stats.rs",
        "src/analysis/hotspot.rs",
        "src/crs.rs",
    ] {
        assert!(mods.contains(&root().join(m)), "{m} not in {mods:?}");
    }
}
