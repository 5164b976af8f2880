//! Synthetic incident CSVs for the benchmark: N incidents uniform over a 20 km x 20 km square
//! around Zaandam, written twice with the same points: as a WGS84 comma CSV (`lon`, `lat`,
//! 7 decimals) and as an RD New `;`-CSV with decimal commas and a BOM (`x`, `y`, 3 decimals),
//! the way a Dutch spreadsheet exports it. Columns as in `fixtures/zaandam/incidents_*.csv`.
//! Deterministic: ChaCha8 seeded with `SEED`.

use hotspots::crs::{Crs, Transformer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const SEED: u64 = 20_261_126;
/// The square in RD New metres: [min x, min y, max x, max y].
pub const BOX_RD: [f64; 4] = [108_000.0, 485_000.0, 128_000.0, 505_000.0];
const CATEGORIES: [&str; 6] = [
    "jeugdoverlast",
    "verward_persoon",
    "geluidsoverlast",
    "burenruzie",
    "drugsoverlast",
    "zwerfafval",
];
const SOURCES: [(&str, &str); 5] = [
    ("gemeente", "GEM"),
    ("politie", "POL"),
    ("woningcorporatie", "WOC"),
    ("ggd", "GGD"),
    ("zorgaanbieder", "ZRG"),
];
/// 2023-01-01T00:00:00Z and three years of seconds.
const T0: i64 = 1_672_531_200;
const SPAN_S: i64 = 3 * 365 * 86_400;

/// The two files of one size.
pub struct Files {
    pub wgs84: PathBuf,
    pub rd: PathBuf,
}

struct Row {
    src: usize,
    seq: usize,
    t: i64,
    cat: usize,
    subject: Option<u32>,
    high: bool,
    x: f64,
    y: f64,
}

fn rows(n: usize) -> Vec<Row> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ n as u64);
    let mut seq = [0usize; SOURCES.len()];
    (0..n)
        .map(|_| {
            let src = rng.random_range(0..SOURCES.len());
            seq[src] += 1;
            Row {
                src,
                seq: seq[src],
                t: T0 + rng.random_range(0..SPAN_S),
                cat: rng.random_range(0..CATEGORIES.len()),
                subject: rng.random_bool(0.2).then(|| rng.random_range(0..50_000u32)),
                high: rng.random_bool(0.1),
                x: rng.random_range(BOX_RD[0]..BOX_RD[2]),
                y: rng.random_range(BOX_RD[1]..BOX_RD[3]),
            }
        })
        .collect()
}

fn common(out: &mut String, r: &Row, sep: char) {
    let (src, prefix) = SOURCES[r.src];
    let t = chrono::DateTime::from_timestamp(r.t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let subject = r.subject.map(|s| format!("P{s:06}")).unwrap_or_default();
    let prio = if r.high { "high" } else { "normal" };
    let cat = CATEGORIES[r.cat];
    let _ = write!(
        out,
        "{prefix}-{:07}{sep}{t}{sep}{cat}{sep}{src}{sep}{subject}{sep}{prio}{sep}",
        r.seq
    );
}

/// Writes `incidents_<n>_wgs84.csv` and `incidents_<n>_rd.csv` under `dir`.
pub fn write(dir: &Path, n: usize) -> std::io::Result<Files> {
    let rows = rows(n);
    let mut ll: Vec<(f64, f64)> = rows.iter().map(|r| (r.x, r.y)).collect();
    Transformer::new(Crs::RD_NEW, Crs::WGS84)
        .map_err(std::io::Error::other)?
        .points(&mut ll);
    let mut rd = String::with_capacity(n * 90 + 64);
    rd.push_str("\u{feff}external_id;occurred_at;category;source;subject;priority;x;y\n");
    let mut wgs = String::with_capacity(n * 90 + 64);
    wgs.push_str("external_id,occurred_at,category,source,subject,priority,lon,lat\n");
    for (r, (lon, lat)) in rows.iter().zip(&ll) {
        common(&mut rd, r, ';');
        let xy = format!("{:.3};{:.3}", r.x, r.y).replace('.', ",");
        rd.push_str(&xy);
        rd.push('\n');
        common(&mut wgs, r, ',');
        let _ = writeln!(wgs, "{lon:.7},{lat:.7}");
    }
    let files = Files {
        wgs84: dir.join(format!("incidents_{n}_wgs84.csv")),
        rd: dir.join(format!("incidents_{n}_rd.csv")),
    };
    std::fs::write(&files.wgs84, wgs)?;
    std::fs::write(&files.rd, rd)?;
    Ok(files)
}
