//! The statistics: pure, synchronous, deterministic (seeded). No HTTP, no async, no store.

pub mod cluster;
pub mod concentration;
pub mod coverage;
pub mod density;
pub mod emerging;
pub mod h3grid;
pub mod hdbscan;
pub mod hotspot;
pub mod hull;
pub mod monitor;
pub mod moran;
pub mod optimized;
pub mod proximity;
pub mod stats;
pub mod trend;
