//! `hotspots`: where neighbourhood nuisance concentrates, and whether it clusters around
//! facilities such as care centres, served as GeoJSON. See `ARCHITECTURE.md` for the code map.

pub mod analysis;
pub mod api;
pub mod app;
pub mod cancel;
pub mod config;
pub mod crs;
pub mod demo;
pub mod h3bits;
pub mod index;
pub mod ingest;
pub mod model;
pub mod par;
pub mod privacy;
pub mod store;
