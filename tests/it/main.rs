//! The one integration test binary: HTTP tests against the router and a real server, and
//! the reference tests of each statistic against committed fixtures.

mod ingest_parse;
mod ref_emerging;
