//! The statistics: pure, synchronous, deterministic (seeded). No HTTP, no async, no store.

pub mod stats;
