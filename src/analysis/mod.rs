//! The statistics: pure, synchronous, deterministic (seeded). No HTTP, no async, no store.

pub mod concentration;
pub mod coverage;
pub mod emerging;
pub mod h3grid;
pub mod hotspot;
pub mod moran;
pub mod optimized;
pub mod proximity;
pub mod stats;
pub mod trend;
