//! Synthetic data for the analysis benchmarks: N incidents over the 20 km x 20 km square
//! around Zaandam of the foundation benchmark, with structure for the analyses to find:
//! - 55 % uniform background over three years (2023-01 .. 2025-12);
//! - 25 % in 40 Gaussian hot spots (sigma 120..400 m), 8 of which only appear in the last
//!   6 months (emerging);
//! - 20 % around the first 20 of 60 facilities (Gaussian, sigma 200 m); the other 40
//!   facilities have no excess.
//!
//! Files under the size's directory (deterministic: ChaCha8 seeded with `SEED ^ n`):
//! - `incidents.csv`: WGS84 comma CSV (`external_id,occurred_at,category,source,subject,lon,lat`)
//!   that the service ingests;
//! - `peer_incidents.csv`: the same rows for the Python peers with RD New metres and epoch
//!   seconds (`id,t,category,source,x,y,lon,lat`), so no peer pays for parsing dates or PROJ;
//! - `facilities.csv` (`id,name,kind,lon,lat`) and `peer_facilities.csv` (`id,x,y,lon,lat`).

use hotspots::crs::{Crs, Transformer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::path::Path;

pub const SEED: u64 = 20_261_126;
/// The square in RD New metres: [min x, min y, max x, max y].
pub const BOX_RD: [f64; 4] = [108_000.0, 485_000.0, 128_000.0, 505_000.0];
pub const FACILITIES: usize = 60;
/// Facilities `0..EXCESS_FACILITIES` have extra incidents around them.
pub const EXCESS_FACILITIES: usize = 20;
const CATEGORIES: [&str; 6] = [
    "jeugdoverlast",
    "verward_persoon",
    "geluidsoverlast",
    "burenruzie",
    "drugsoverlast",
    "zwerfafval",
];
const SOURCES: [&str; 5] = [
    "gemeente",
    "politie",
    "woningcorporatie",
    "ggd",
    "zorgaanbieder",
];
/// 2023-01-01T00:00:00Z, three years of seconds, and the start of the last 6 months.
pub const T0: i64 = 1_672_531_200;
pub const T_END: i64 = 1_767_225_600; // 2026-01-01
const T_LAST6: i64 = 1_751_328_000; // 2025-07-01

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn clamp_box(x: f64, y: f64) -> (f64, f64) {
    (
        x.clamp(BOX_RD[0], BOX_RD[2] - 0.001),
        y.clamp(BOX_RD[1], BOX_RD[3] - 0.001),
    )
}

/// Facility positions in RD New.
pub fn facilities(n: usize) -> Vec<(f64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ 0xFAC ^ n as u64);
    (0..FACILITIES)
        .map(|_| {
            (
                rng.random_range(BOX_RD[0] + 1000.0..BOX_RD[2] - 1000.0),
                rng.random_range(BOX_RD[1] + 1000.0..BOX_RD[3] - 1000.0),
            )
        })
        .collect()
}

/// Writes the four files for `n` incidents into `dir`.
pub fn write(dir: &Path, n: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ n as u64);
    let fac = facilities(n);
    let spots: Vec<(f64, f64, f64, bool)> = (0..40)
        .map(|i| {
            (
                rng.random_range(BOX_RD[0] + 500.0..BOX_RD[2] - 500.0),
                rng.random_range(BOX_RD[1] + 500.0..BOX_RD[3] - 500.0),
                rng.random_range(120.0..400.0),
                i < 8,
            )
        })
        .collect();
    let mut xy = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    for _ in 0..n {
        let u: f64 = rng.random();
        let (x, y, t) = if u < 0.55 {
            (
                rng.random_range(BOX_RD[0]..BOX_RD[2]),
                rng.random_range(BOX_RD[1]..BOX_RD[3]),
                rng.random_range(T0..T_END),
            )
        } else if u < 0.80 {
            let (cx, cy, s, new) = spots[rng.random_range(0..spots.len())];
            let t0 = if new { T_LAST6 } else { T0 };
            (
                cx + s * normal(&mut rng),
                cy + s * normal(&mut rng),
                rng.random_range(t0..T_END),
            )
        } else {
            let (cx, cy) = fac[rng.random_range(0..EXCESS_FACILITIES)];
            (
                cx + 200.0 * normal(&mut rng),
                cy + 200.0 * normal(&mut rng),
                rng.random_range(T0..T_END),
            )
        };
        xy.push(clamp_box(x, y));
        ts.push(t);
    }
    let t = Transformer::new(Crs::RD_NEW, Crs::WGS84).map_err(std::io::Error::other)?;
    let mut ll = xy.clone();
    t.points(&mut ll);
    let mut svc = String::with_capacity(n * 90 + 64);
    svc.push_str("external_id,occurred_at,category,source,subject,lon,lat\n");
    let mut peer = String::with_capacity(n * 80 + 64);
    peer.push_str("id,t,category,source,x,y,lon,lat\n");
    for i in 0..n {
        let cat = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
        let src = SOURCES[rng.random_range(0..SOURCES.len())];
        let subject = if rng.random_bool(0.2) {
            format!("P{:06}", rng.random_range(0..50_000u32))
        } else {
            String::new()
        };
        let when = chrono::DateTime::from_timestamp(ts[i], 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let (lon, lat) = ll[i];
        let (x, y) = xy[i];
        let _ = writeln!(
            svc,
            "B{i:07},{when},{cat},{src},{subject},{lon:.7},{lat:.7}"
        );
        let _ = writeln!(
            peer,
            "B{i:07},{},{cat},{src},{x:.3},{y:.3},{lon:.7},{lat:.7}",
            ts[i]
        );
    }
    std::fs::write(dir.join("incidents.csv"), svc)?;
    std::fs::write(dir.join("peer_incidents.csv"), peer)?;
    let mut fll = fac.clone();
    t.points(&mut fll);
    let mut f = String::from("id,name,kind,lon,lat\n");
    let mut pf = String::from("id,x,y,lon,lat\n");
    for (i, ((x, y), (lon, lat))) in fac.iter().zip(&fll).enumerate() {
        let _ = writeln!(f, "F{i:03},Zorgcentrum {i},care_centre,{lon:.7},{lat:.7}");
        let _ = writeln!(pf, "F{i:03},{x:.3},{y:.3},{lon:.7},{lat:.7}");
    }
    std::fs::write(dir.join("facilities.csv"), f)?;
    std::fs::write(dir.join("peer_facilities.csv"), pf)?;
    Ok(())
}
