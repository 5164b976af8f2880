//! Issue 7: the printable HTML picture (`GET /datasets/{id}/picture?f=html`) in headless
//! Chromium (Debian `chromium`). The Zaandam dataset is served over real HTTP (the router on a
//! local port, one port per tier that adds that tier's key to every request, as Chromium
//! cannot send headers); Chromium loads each tier's page, dumps the rendered DOM and takes a
//! screenshot into `target/test-output/`. Checked: no console output at all (the page has no
//! script; any console message, error or uncaught exception fails), the charts are in the
//! rendered DOM with one bar per value of the JSON picture, the page needs no other resource,
//! and the screenshot is a valid PNG of the window's size that shows the red chart bars (the
//! PNG is decoded here by a small inflate, so no image dependency is needed).
//!
//! Without `chromium` on `PATH` the tests print a loud skip message, or fail when
//! `HOTSPOTS_REQUIRE_CHROMIUM=1` (set by `scripts/test.sh` where `scripts/ensure-deps.sh`
//! can install it, as in CI).

use crate::support::*;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const DS: &str = "zaandam-picture";
/// A4 at 150 dpi.
const WINDOW: (u32, u32) = (1240, 1754);
/// The fill of the bars (`bars` in `src/api/picture.rs`).
const BAR_RGB: [u8; 3] = [0xc0, 0x39, 0x2b];
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// `chromium` on `PATH`; `None` (after a loud message) when it is missing and not required.
fn chromium(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let required = std::env::var("HOTSPOTS_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{test}: HOTSPOTS_REQUIRE_CHROMIUM=1 but `chromium` is not on PATH \
             (install it: apt-get install -y chromium)"
        );
        loud(&format!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! SKIPPED {test}: `chromium` is not on PATH, so the HTML picture was NOT\n\
             !!! checked in a browser. Install it (apt-get install -y chromium), or set\n\
             !!! HOTSPOTS_REQUIRE_CHROMIUM=1 to make this a failure.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        ));
    }
    found
}

/// Writes to the process's stderr past the test harness's capture (which only shows the
/// output of failing tests), so that a skip or a screenshot's path is seen in every run.
fn loud(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Where screenshots are kept: `target/test-output/` (next to `CARGO_TARGET_TMPDIR`, so it
/// follows `CARGO_TARGET_DIR`).
fn output_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-output");
    std::fs::create_dir_all(&dir).expect("create target/test-output");
    dir
}

/// What Chromium made of a page.
struct Rendered {
    /// The DOM after loading (`--dump-dom`).
    dom: String,
    /// The console messages Chromium logged (every level: the log prints them all as INFO).
    console: Vec<String>,
    screenshot: PathBuf,
}

/// Loads `url` in headless Chromium (a fresh profile), dumps the DOM, writes a screenshot of
/// the window to `png` and collects the console messages from Chromium's log. Killed (the
/// whole process group) after `CHROMIUM_TIMEOUT`.
async fn render(chromium: &Path, url: &str, png: &Path) -> Rendered {
    let profile = tempfile::tempdir().expect("profile dir");
    let _ = std::fs::remove_file(png);
    let mut cmd = tokio::process::Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-extensions",
        "--disable-sync",
        "--disable-breakpad",
        "--no-first-run",
        "--no-default-browser-check",
        "--mute-audio",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
    .arg(format!("--screenshot={}", png.display()))
    .arg(url)
    .env("XDG_CONFIG_HOME", profile.path())
    .env("XDG_CACHE_HOME", profile.path())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    let t0 = Instant::now();
    let child = cmd.spawn().expect("spawn chromium");
    let pid = child.id().expect("chromium pid");
    let out = match tokio::time::timeout(CHROMIUM_TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.expect("chromium output"),
        Err(_) => {
            // the renderer and GPU processes are in chromium's process group
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &format!("-{pid}")])
                .status();
            panic!("chromium did not finish {url} within {CHROMIUM_TIMEOUT:?}");
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "chromium {url}: {:?}\n{stderr}",
        out.status
    );
    // `[pid:tid:time:INFO:CONSOLE:12] "message", source: url (12)`, older builds
    // `INFO:CONSOLE(12)`; uncaught exceptions are logged the same way as "Uncaught ...".
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_owned)
        .collect();
    let dom = match stdout.find("<html").or_else(|| stdout.find("<!DOCTYPE")) {
        Some(i) => stdout[i..].to_owned(),
        None => panic!("chromium {url}: no DOM dumped; stdout {stdout:?}\n{stderr}"),
    };
    assert!(
        png.is_file(),
        "chromium {url}: no screenshot written\n{stderr}"
    );
    eprintln!(
        "chromium rendered {url} in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    Rendered {
        dom,
        console,
        screenshot: png.to_owned(),
    }
}

/// Serves the router on a local port, adding `Authorization: Bearer <key>` to every request.
async fn serve_as(router: axum::Router, key: String) -> String {
    let bearer = HeaderValue::from_str(&format!("Bearer {key}")).expect("header value");
    let app = router.layer(axum::middleware::map_request(
        move |mut req: Request<Body>| {
            let bearer = bearer.clone();
            async move {
                req.headers_mut().insert(header::AUTHORIZATION, bearer);
                req
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The `<svg>` elements of a DOM with the text of the `<h2>` before each.
fn charts(dom: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find("<svg") {
        let before = &rest[..i];
        let title = before
            .rfind("<h2>")
            .and_then(|h| {
                let t = &before[h + 4..];
                t.find("</h2>").map(|e| t[..e].to_owned())
            })
            .unwrap_or_default();
        let end = rest[i..]
            .find("</svg>")
            .map_or(rest.len(), |e| i + e + "</svg>".len());
        out.push((title, rest[i..end].to_owned()));
        rest = &rest[end..];
    }
    out
}

/// Pixels of a decoded screenshot: all not near-white, and those of the bar colour.
fn pixel_counts(img: &png::Image) -> (usize, usize, usize) {
    let (mut ink, mut bar) = (0, 0);
    let mut bar_rows = 0;
    for y in 0..img.height as usize {
        let mut row_bar = false;
        for x in 0..img.width as usize {
            let p = img.rgb(x, y);
            if p.iter().any(|&c| c < 240) {
                ink += 1;
            }
            if p.iter().zip(BAR_RGB).all(|(&c, b)| c.abs_diff(b) <= 6) {
                bar += 1;
                row_bar = true;
            }
        }
        bar_rows += usize::from(row_bar);
    }
    (ink, bar, bar_rows)
}

#[tokio::test]
async fn picture_html_renders_its_charts_in_chromium() {
    let Some(chromium) = chromium("picture_html_renders_its_charts_in_chromium") else {
        return;
    };
    let t0 = Instant::now();
    let app = TestApp::new();
    app.load_zaandam(DS).await;
    app.load_zaandam_layers(DS).await;
    let out = output_dir();
    for tier in ["private", "closed", "open"] {
        let (key, _) = app.key("gemeente", tier).await;
        // the JSON picture at the same tier, to compare the charts with
        let v = app
            .call(get(format!("/datasets/{DS}/picture")).key(&key))
            .await
            .expect(200)
            .json();
        assert_eq!(v["disclosure"]["tier"], tier, "{}", v["disclosure"]);
        let base = serve_as(app.router.clone(), key).await;
        let url = format!("{base}/datasets/{DS}/picture?f=html");
        let html = reqwest::get(&url).await.expect("GET html");
        assert_eq!(html.status().as_u16(), 200);
        assert_eq!(
            html.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/html; charset=utf-8")
        );
        let html = html.text().await.expect("html body");
        std::fs::write(out.join(format!("picture-{tier}.html")), &html).expect("write html");

        let png_path = out.join(format!("picture-{tier}.png"));
        let r = render(&chromium, &url, &png_path).await;
        loud(&format!(
            "screenshot of the {tier}-tier HTML picture (headless chromium): {}",
            png_path.display()
        ));
        assert!(
            r.console.is_empty(),
            "{tier}: console messages on the picture page:\n{}",
            r.console.join("\n")
        );

        // the rendered DOM: the page and its three bar charts, one bar per value
        assert!(r.dom.contains("<h1>Feitelijke foto: "), "{tier}: {}", r.dom);
        assert!(
            r.dom.contains(&format!("Tier: {tier}.")),
            "{tier}: tier line in the page"
        );
        let charts = charts(&r.dom);
        assert!(charts.len() >= 3, "{tier}: {} charts", charts.len());
        for (title, key) in [
            ("Reports by category", "by_category"),
            ("Reports by organisation", "by_source"),
            ("Reports by month", "by_month"),
        ] {
            let values = v[key].as_object().expect(key);
            assert!(!values.is_empty(), "{tier}: {key} is empty");
            let (_, svg) = charts
                .iter()
                .find(|(t, _)| t == title)
                .unwrap_or_else(|| panic!("{tier}: no chart {title:?} in the rendered DOM"));
            assert!(svg.contains("class=\"chart\""), "{tier}: {svg}");
            assert_eq!(
                svg.matches("<rect").count(),
                values.len(),
                "{tier}: {title}: one bar per {key} value: {svg}"
            );
            for label in values.keys() {
                assert!(
                    svg.contains(&format!(">{label}</text>")),
                    "{tier}: {title}: label {label:?} in {svg}"
                );
            }
        }
        // self-contained: nothing else to load (the test saw no request but the page's)
        for needle in ["src=", "<link", "<script", "url(", "@import"] {
            assert!(!r.dom.contains(needle), "{tier}: the page loads {needle}");
        }

        // the screenshot: a valid PNG of the window, with text and the red bars on it
        let img = png::decode(&std::fs::read(&r.screenshot).expect("read png"))
            .unwrap_or_else(|e| panic!("{tier}: {}: {e}", r.screenshot.display()));
        assert_eq!((img.width, img.height), WINDOW, "{tier}: screenshot size");
        let (ink, bar, bar_rows) = pixel_counts(&img);
        let total = (img.width * img.height) as usize;
        println!(
            "{tier}: {} x {} px, {:.1} % not white, {bar} bar-red pixels on {bar_rows} rows",
            img.width,
            img.height,
            100.0 * ink as f64 / total as f64
        );
        assert!(
            ink > total / 100,
            "{tier}: screenshot nearly blank ({ink} px)"
        );
        // bars are 16 px high: several bars of every chart in view
        assert!(
            bar > 5_000 && bar_rows >= 16 * 6,
            "{tier}: the chart bars are not in the screenshot ({bar} px on {bar_rows} rows)"
        );
    }
    println!(
        "picture_html_renders_its_charts_in_chromium: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// The detectors above on a page that is known to be broken: a deliberate console error and
/// an uncaught exception are reported, and a page without charts is found to have no bars.
#[tokio::test]
async fn console_errors_and_missing_charts_are_detected() {
    let Some(chromium) = chromium("console_errors_and_missing_charts_are_detected") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>broken</title></head>\
         <body><h1>Feitelijke foto: broken</h1><h2>Reports by category</h2>\
         <script>console.error('deliberate console error'); notAFunction();</script>\
         </body></html>",
    )
    .expect("write page");
    let png_path = dir.path().join("broken.png");
    let r = render(&chromium, &format!("file://{}", page.display()), &png_path).await;
    assert!(
        r.console
            .iter()
            .any(|l| l.contains("deliberate console error")),
        "console.error not detected: {:?}",
        r.console
    );
    assert!(
        r.console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "uncaught exception not detected: {:?}",
        r.console
    );
    assert!(charts(&r.dom).is_empty());
    let img = png::decode(&std::fs::read(&r.screenshot).expect("read png")).expect("png");
    assert_eq!((img.width, img.height), WINDOW);
    let (ink, bar, _) = pixel_counts(&img);
    assert!(ink > 0, "the heading is drawn");
    assert_eq!(bar, 0, "no bars on a page without charts");
}

/// Enough of PNG (RFC 2083) to check a Chromium screenshot: chunk CRCs, IHDR, the zlib
/// stream (adler32 checked) and the row filters, for 8-bit RGB and RGBA without interlace.
mod png {
    pub struct Image {
        pub width: u32,
        pub height: u32,
        channels: usize,
        data: Vec<u8>,
    }

    impl Image {
        pub fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
            let i = (y * self.width as usize + x) * self.channels;
            [self.data[i], self.data[i + 1], self.data[i + 2]]
        }
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0xedb8_8320
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    fn be32(b: &[u8]) -> u32 {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn decode(png: &[u8]) -> Result<Image, String> {
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err("not a PNG signature".into());
        }
        let mut pos = 8;
        let (mut ihdr, mut idat, mut end) = (None, Vec::new(), false);
        while pos + 12 <= png.len() {
            let len = be32(&png[pos..]) as usize;
            let body = pos + 8;
            if body + len + 4 > png.len() {
                return Err("truncated chunk".into());
            }
            let kind = &png[pos + 4..body];
            if crc32(&png[pos + 4..body + len]) != be32(&png[body + len..]) {
                return Err(format!("bad CRC in {}", String::from_utf8_lossy(kind)));
            }
            let data = &png[body..body + len];
            match kind {
                b"IHDR" => ihdr = Some(data.to_vec()),
                b"IDAT" => idat.extend_from_slice(data),
                b"IEND" => {
                    end = true;
                    break;
                }
                _ => {}
            }
            pos = body + len + 4;
        }
        let h = ihdr.ok_or("no IHDR")?;
        if !end || h.len() != 13 {
            return Err("no IEND or a bad IHDR".into());
        }
        let (width, height) = (be32(&h[0..]), be32(&h[4..]));
        let channels = match (h[8], h[9], h[12]) {
            (8, 2, 0) => 3,
            (8, 6, 0) => 4,
            (d, t, i) => {
                return Err(format!(
                    "unsupported depth {d}, colour type {t}, interlace {i}"
                ));
            }
        };
        let raw = super::inflate::zlib(&idat)?;
        let stride = width as usize * channels;
        if raw.len() != height as usize * (stride + 1) {
            return Err(format!(
                "{} bytes of image data for {width} x {height}",
                raw.len()
            ));
        }
        let mut data = vec![0u8; height as usize * stride];
        for y in 0..height as usize {
            let filter = raw[y * (stride + 1)];
            let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
            for x in 0..stride {
                let a = if x >= channels {
                    data[y * stride + x - channels]
                } else {
                    0
                };
                let b = if y > 0 { data[(y - 1) * stride + x] } else { 0 };
                let c = if y > 0 && x >= channels {
                    data[(y - 1) * stride + x - channels]
                } else {
                    0
                };
                let pred = match filter {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                    4 => {
                        let p = i16::from(a) + i16::from(b) - i16::from(c);
                        let (pa, pb, pc) = (
                            (p - i16::from(a)).abs(),
                            (p - i16::from(b)).abs(),
                            (p - i16::from(c)).abs(),
                        );
                        if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        }
                    }
                    f => return Err(format!("bad filter {f} on row {y}")),
                };
                data[y * stride + x] = line[x].wrapping_add(pred);
            }
        }
        Ok(Image {
            width,
            height,
            channels,
            data,
        })
    }
}

/// A small DEFLATE decoder (RFC 1950/1951), after Mark Adler's `puff.c`.
mod inflate {
    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
        buf: u64,
        count: u32,
    }

    impl Bits<'_> {
        fn bits(&mut self, n: u32) -> Result<u32, String> {
            while self.count < n {
                let b = *self.data.get(self.pos).ok_or("deflate stream truncated")?;
                self.pos += 1;
                self.buf |= u64::from(b) << self.count;
                self.count += 8;
            }
            let v = (self.buf & ((1u64 << n) - 1)) as u32;
            self.buf >>= n;
            self.count -= n;
            Ok(v)
        }
    }

    /// Canonical Huffman code: codes per length and the symbols in code order.
    struct Huffman {
        count: [u16; 16],
        symbol: Vec<u16>,
    }

    impl Huffman {
        fn new(lengths: &[u8]) -> Huffman {
            let mut count = [0u16; 16];
            for &l in lengths {
                count[l as usize] += 1;
            }
            let mut offs = [0u16; 16];
            for l in 1..15 {
                offs[l + 1] = offs[l] + count[l];
            }
            let mut symbol = vec![0u16; lengths.len()];
            for (s, &l) in lengths.iter().enumerate() {
                if l != 0 {
                    symbol[offs[l as usize] as usize] = s as u16;
                    offs[l as usize] += 1;
                }
            }
            count[0] = 0;
            Huffman { count, symbol }
        }

        fn decode(&self, b: &mut Bits) -> Result<u16, String> {
            let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
            for len in 1..16 {
                code |= b.bits(1)? as i32;
                let count = i32::from(self.count[len]);
                if code - count < first {
                    return Ok(self.symbol[(index + code - first) as usize]);
                }
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            Err("bad Huffman code".into())
        }
    }

    const LBASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LEXT: [u8; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DBASE: [u16; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DEXT: [u8; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];

    fn codes(b: &mut Bits, out: &mut Vec<u8>, lit: &Huffman, dist: &Huffman) -> Result<(), String> {
        loop {
            let sym = lit.decode(b)? as usize;
            match sym {
                0..=255 => out.push(sym as u8),
                256 => return Ok(()),
                _ => {
                    let i = sym - 257;
                    if i >= 29 {
                        return Err("bad length symbol".into());
                    }
                    let len = LBASE[i] as usize + b.bits(u32::from(LEXT[i]))? as usize;
                    let d = dist.decode(b)? as usize;
                    if d >= 30 {
                        return Err("bad distance symbol".into());
                    }
                    let back = DBASE[d] as usize + b.bits(u32::from(DEXT[d]))? as usize;
                    if back > out.len() {
                        return Err("distance too far back".into());
                    }
                    let start = out.len() - back;
                    for k in 0..len {
                        out.push(out[start + k]);
                    }
                }
            }
        }
    }

    fn dynamic(b: &mut Bits) -> Result<(Huffman, Huffman), String> {
        const ORDER: [usize; 19] = [
            16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
        ];
        let nlen = b.bits(5)? as usize + 257;
        let ndist = b.bits(5)? as usize + 1;
        let ncode = b.bits(4)? as usize + 4;
        let mut cl = [0u8; 19];
        for &o in &ORDER[..ncode] {
            cl[o] = b.bits(3)? as u8;
        }
        let clh = Huffman::new(&cl);
        let mut lengths = Vec::with_capacity(nlen + ndist);
        while lengths.len() < nlen + ndist {
            let sym = clh.decode(b)?;
            let (value, times) = match sym {
                0..=15 => (sym as u8, 1),
                16 => (
                    *lengths.last().ok_or("repeat with no length")?,
                    3 + b.bits(2)? as usize,
                ),
                17 => (0, 3 + b.bits(3)? as usize),
                _ => (0, 11 + b.bits(7)? as usize),
            };
            lengths.extend(std::iter::repeat_n(value, times));
        }
        if lengths.len() != nlen + ndist {
            return Err("too many code lengths".into());
        }
        Ok((
            Huffman::new(&lengths[..nlen]),
            Huffman::new(&lengths[nlen..]),
        ))
    }

    /// Inflates a zlib stream and checks its Adler-32.
    pub fn zlib(z: &[u8]) -> Result<Vec<u8>, String> {
        if z.len() < 6 || z[0] & 0x0f != 8 || (u16::from(z[0]) << 8 | u16::from(z[1])) % 31 != 0 {
            return Err("not a zlib stream".into());
        }
        let mut b = Bits {
            data: &z[2..],
            pos: 0,
            buf: 0,
            count: 0,
        };
        let mut out = Vec::new();
        loop {
            let last = b.bits(1)?;
            match b.bits(2)? {
                0 => {
                    b.buf = 0;
                    b.count = 0;
                    let d = b.data;
                    let p = b.pos;
                    if p + 4 > d.len() {
                        return Err("truncated stored block".into());
                    }
                    let len = usize::from(u16::from_le_bytes([d[p], d[p + 1]]));
                    if len != usize::from(!u16::from_le_bytes([d[p + 2], d[p + 3]])) {
                        return Err("bad stored block length".into());
                    }
                    let block = d.get(p + 4..p + 4 + len).ok_or("truncated stored block")?;
                    out.extend_from_slice(block);
                    b.pos = p + 4 + len;
                }
                1 => {
                    let mut l = [8u8; 288];
                    l[144..256].fill(9);
                    l[256..280].fill(7);
                    let (lit, dist) = (Huffman::new(&l), Huffman::new(&[5u8; 30]));
                    codes(&mut b, &mut out, &lit, &dist)?;
                }
                2 => {
                    let (lit, dist) = dynamic(&mut b)?;
                    codes(&mut b, &mut out, &lit, &dist)?;
                }
                _ => return Err("bad block type".into()),
            }
            if last == 1 {
                break;
            }
        }
        let p = b.pos;
        let adler = b.data.get(p..p + 4).ok_or("no Adler-32")?;
        let (mut s1, mut s2) = (1u32, 0u32);
        for &x in &out {
            s1 = (s1 + u32::from(x)) % 65521;
            s2 = (s2 + s1) % 65521;
        }
        if (s2 << 16 | s1) != u32::from_be_bytes([adler[0], adler[1], adler[2], adler[3]]) {
            return Err("Adler-32 mismatch".into());
        }
        Ok(out)
    }
}
