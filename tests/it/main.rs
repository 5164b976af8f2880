//! The one integration test binary: HTTP tests against the router and a real server, and
//! the reference tests of each statistic against committed fixtures.

mod http_access;
mod http_crash;
mod http_hotspots;
mod http_ingest;
mod http_ogc;
mod http_picture_browser;
mod http_server;
mod http_web;
mod ingest_parse;
mod monitor;
mod openapi;
mod privacy_attacks;
mod privacy_noise;
mod privacy_props;
mod ref_cluster;
mod ref_concentration;
mod ref_density;
mod ref_emerging;
mod ref_hotspot;
mod ref_proximity;
mod support;
