//! GeoJSON answers of the analyses: written once into bytes (features one by one, never a
//! whole `serde_json::Value` tree of the collection), cached as bytes per snapshot, and served
//! with a weak ETag and the audit information (features returned, counts suppressed).

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::features::round;
use crate::h3bits::CellMap;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use h3o::CellIndex;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

/// A GeoJSON answer serialised once, with what the audit log records of it.
pub struct Rendered {
    body: bytes::Bytes,
    features: usize,
    hidden: usize,
}

/// Writes a FeatureCollection feature by feature; the `summary` foreign member comes last.
pub struct FeatureWriter {
    buf: Vec<u8>,
    n: usize,
    hidden: usize,
}

impl Default for FeatureWriter {
    fn default() -> Self {
        FeatureWriter::new()
    }
}

impl FeatureWriter {
    pub fn new() -> FeatureWriter {
        FeatureWriter::with_capacity(0)
    }

    /// A writer whose buffer holds `bytes` before it grows.
    pub fn with_capacity(bytes: usize) -> FeatureWriter {
        const HEAD: &[u8] = br#"{"type":"FeatureCollection","features":["#;
        let mut buf = Vec::with_capacity(HEAD.len() + bytes);
        buf.extend_from_slice(HEAD);
        FeatureWriter {
            buf,
            n: 0,
            hidden: 0,
        }
    }

    /// Appends one feature; `hidden` when it has a suppressed count.
    pub fn push(&mut self, feature: &Value, hidden: bool) -> ApiResult<()> {
        if self.n > 0 {
            self.buf.push(b',');
        }
        serde_json::to_writer(&mut self.buf, feature).map_err(ApiError::internal)?;
        self.n += 1;
        self.hidden += usize::from(hidden);
        Ok(())
    }

    /// Appends one feature that `write` writes as JSON bytes; `hidden` when it has a
    /// suppressed count.
    pub fn push_with(&mut self, hidden: bool, write: impl FnOnce(&mut Vec<u8>)) {
        if self.n > 0 {
            self.buf.push(b',');
        }
        write(&mut self.buf);
        self.n += 1;
        self.hidden += usize::from(hidden);
    }

    /// Appends features `0..n`, each written by `write(i, buf)`, which returns whether the
    /// feature has a suppressed count, or `None` after writing nothing (the feature is left
    /// out). Many features are written on two threads (the second half into its own buffer,
    /// appended after the first): a res-10 answer at 1M incidents is 33,000 features, 13 MB.
    pub fn extend(&mut self, n: usize, write: impl Fn(usize, &mut Vec<u8>) -> Option<bool> + Sync) {
        const PARALLEL_FROM: usize = 8192;
        let run = |range: std::ops::Range<usize>, w: &mut FeatureWriter| {
            for i in range {
                let mark = w.buf.len();
                if w.n > 0 {
                    w.buf.push(b',');
                }
                match write(i, &mut w.buf) {
                    Some(hidden) => {
                        w.n += 1;
                        w.hidden += usize::from(hidden);
                    }
                    None => w.buf.truncate(mark),
                }
            }
        };
        if n < PARALLEL_FROM {
            return run(0..n, self);
        }
        let mid = n / 2;
        let per = self.buf.capacity() / n.max(1);
        let rest = std::thread::scope(|s| {
            let second = s.spawn(|| {
                let mut w = FeatureWriter {
                    buf: Vec::with_capacity(per * (n - mid)),
                    n: 0,
                    hidden: 0,
                };
                run(mid..n, &mut w);
                w
            });
            run(0..mid, self);
            second
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
        if rest.n > 0 {
            if self.n > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(&rest.buf);
            self.n += rest.n;
            self.hidden += rest.hidden;
        }
    }

    /// Features written so far.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn finish(mut self, summary: &Value) -> ApiResult<Rendered> {
        self.buf.extend_from_slice(br#"],"summary":"#);
        serde_json::to_writer(&mut self.buf, summary).map_err(ApiError::internal)?;
        self.buf.push(b'}');
        Ok(Rendered {
            body: self.buf.into(),
            features: self.n,
            hidden: self.hidden,
        })
    }
}

/// A JSON number exactly as `serde_json` writes an `f64` (`null` when not finite).
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    // writing into a Vec<u8> cannot fail
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// A JSON string as `serde_json` writes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Cell outlines already written, process-wide: an outline never changes, and computing one
/// costs ~1 µs (30 ms for the 33,000 cells of a res-10 answer at 1M incidents). The texts
/// lie one after the other in an arena, in the order they were first asked for (cells
/// ascending, as the answers list them), so writing an answer reads the arena almost
/// sequentially. Emptied when the arena would pass [`MAX_OUTLINE_BYTES`].
#[derive(Default)]
struct Outlines {
    at: CellMap<(usize, usize)>,
    arena: Vec<u8>,
}

static OUTLINES: std::sync::LazyLock<RwLock<Outlines>> = std::sync::LazyLock::new(Default::default);
const MAX_OUTLINE_BYTES: usize = 32 << 20;

/// The outlines of some cells, cached, readable while the guard lives.
pub struct OutlineReader {
    guard: std::sync::RwLockReadGuard<'static, Outlines>,
}

impl OutlineReader {
    /// Writes the GeoJSON Polygon of `cell` (counter-clockwise, closed, 7 decimals): the same
    /// bytes as `serde_json` writes for [`super::analysis::cell_geometry`].
    pub fn write(&self, out: &mut Vec<u8>, cell: CellIndex) {
        match self.guard.at.get(&u64::from(cell)) {
            Some(&(a, b)) => out.extend_from_slice(&self.guard.arena[a..b]),
            // emptied by another request since `outlines` filled it
            None => write_outline(out, cell),
        }
    }
}

/// Caches the outlines of `cells` that are not cached yet and returns a reader of them.
pub fn outlines(cells: impl Iterator<Item = CellIndex>) -> OutlineReader {
    let read = || OUTLINES.read().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<CellIndex> = {
        let o = read();
        cells
            .filter(|c| !o.at.contains_key(&u64::from(*c)))
            .collect()
    };
    if !missing.is_empty() {
        let mut text = Vec::with_capacity(missing.len() * 240);
        let mut ends = Vec::with_capacity(missing.len());
        for &c in &missing {
            write_outline(&mut text, c);
            ends.push(text.len());
        }
        let mut o = OUTLINES.write().unwrap_or_else(|e| e.into_inner());
        if o.arena.len() + text.len() > MAX_OUTLINE_BYTES {
            *o = Outlines::default();
        }
        let base = o.arena.len();
        o.arena.extend_from_slice(&text);
        let mut start = base;
        for (c, end) in missing.iter().zip(ends) {
            o.at.insert(u64::from(*c), (start, base + end));
            start = base + end;
        }
    }
    OutlineReader { guard: read() }
}

/// Computes and writes the GeoJSON Polygon of an H3 cell (see [`OutlineReader::write`]).
pub fn write_outline(p: &mut Vec<u8>, cell: CellIndex) {
    p.extend_from_slice(b"{\"coordinates\":[[");
    let b = cell.boundary();
    for (j, ll) in b.iter().chain(b.iter().take(1)).enumerate() {
        if j > 0 {
            p.push(b',');
        }
        p.push(b'[');
        write_f64(p, round(ll.lng(), 7));
        p.push(b',');
        write_f64(p, round(ll.lat(), 7));
        p.push(b']');
    }
    p.extend_from_slice(b"]],\"type\":\"Polygon\"}");
}

/// A FeatureCollection `Value` rendered (for answers small enough to build as a tree).
fn render(v: &Value) -> ApiResult<Rendered> {
    let feats = v["features"].as_array().map_or(&[][..], |f| f.as_slice());
    let hidden = feats
        .iter()
        .filter(|f| f["properties"]["count_suppressed"] == json!(true))
        .count();
    Ok(Rendered {
        body: serde_json::to_vec(v).map_err(ApiError::internal)?.into(),
        features: feats.len(),
        hidden,
    })
}

/// Serves a cached rendered answer, or computes and renders it on the blocking pool and
/// keeps it, so a repeated request costs a lookup.
pub(crate) async fn cached_rendered(
    st: &AppState,
    key: String,
    compute: impl FnOnce() -> ApiResult<Rendered> + Send + 'static,
) -> ApiResult<Arc<Rendered>> {
    st.cached_in(&st.rendered, key, compute).await
}

/// As [`cached_rendered`] for answers built as a `Value`.
pub(crate) async fn cached_geojson(
    st: &AppState,
    key: String,
    compute: impl FnOnce() -> ApiResult<Value> + Send + 'static,
) -> ApiResult<Arc<Rendered>> {
    cached_rendered(st, key, move || render(&compute()?)).await
}

pub(crate) fn geojson_response(
    v: Arc<Rendered>,
    key: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    let tag = format!("W/\"a-{:016x}\"", h.finish());
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(&tag))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let mut r = super::audit::with_info(
        (StatusCode::OK, v.body.clone()).into_response(),
        v.features,
        v.hidden,
    );
    let hs = r.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/geo+json"),
    );
    hs.insert(
        header::ETAG,
        HeaderValue::from_str(&tag).map_err(ApiError::internal)?,
    );
    hs.insert(
        "content-crs",
        HeaderValue::from_static("<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The features of `n` written by `extend`, against the same written one by one.
    fn both(n: usize) -> (Rendered, Rendered) {
        let write = |i: usize, b: &mut Vec<u8>| {
            if i % 3 == 1 {
                b.extend_from_slice(b"garbage"); // left out: must not remain
                return None;
            }
            b.extend_from_slice(format!("{{\"i\":{i}}}").as_bytes());
            Some(i.is_multiple_of(5))
        };
        let mut a = FeatureWriter::with_capacity(n * 8);
        a.extend(n, write);
        let mut b = FeatureWriter::new();
        for i in 0..n {
            let mut buf = Vec::new();
            if let Some(h) = write(i, &mut buf) {
                b.push_with(h, |out| out.extend_from_slice(&buf));
            }
        }
        let summary = json!({"s": 1});
        (
            a.finish(&summary).expect("a"),
            b.finish(&summary).expect("b"),
        )
    }

    #[test]
    fn features_written_on_two_threads_equal_those_written_in_order() {
        for n in [0, 1, 2, 5000, 8192, 20_001] {
            let (a, b) = both(n);
            assert_eq!(a.body, b.body, "n = {n}");
            assert_eq!((a.features, a.hidden), (b.features, b.hidden));
            let v: Value = serde_json::from_slice(&a.body).expect("valid JSON");
            let f = v["features"].as_array().expect("features");
            assert_eq!(f.len(), a.features);
            assert!(
                f.windows(2)
                    .all(|w| w[0]["i"].as_u64() < w[1]["i"].as_u64())
            );
        }
    }
}
