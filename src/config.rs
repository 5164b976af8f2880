//! Command-line and environment configuration (every flag has a `HOTSPOTS_*` twin).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "hotspots",
    version,
    about = "Hot spots of nuisance reports, served as GeoJSON (OGC API - Features)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Import a CSV or GeoJSON file into a dataset layer (one atomic batch).
    Import(ImportArgs),
    /// Create an API key for an organisation and tier (prints the key once).
    CreateKey(CreateKeyArgs),
}

#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite store and the pseudonymisation secret.
    #[arg(long, env = "HOTSPOTS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Admin key: every right (all datasets at the private tier and the admin routes).
    #[arg(long, env = "HOTSPOTS_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "HOTSPOTS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Load the committed demo fixtures first (dataset `overlast-zaandam`) and print demo keys.
    #[arg(long, env = "HOTSPOTS_DEMO")]
    pub demo: bool,
    /// Directory holding the demo fixtures.
    #[arg(long, env = "HOTSPOTS_FIXTURES_DIR", default_value = "fixtures")]
    pub fixtures_dir: PathBuf,
    /// Allowed CORS origins, comma-separated; `*` allows any origin.
    #[arg(long, env = "HOTSPOTS_CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,
    /// Largest accepted request body in MiB (413 above).
    #[arg(long, env = "HOTSPOTS_MAX_BODY_MB", default_value_t = 512)]
    pub max_body_mb: usize,
    /// Time limit of a request in seconds (503 after it).
    #[arg(long, env = "HOTSPOTS_REQUEST_TIMEOUT_SECS", default_value_t = 120)]
    pub request_timeout_secs: u64,
    /// Requests handled at once; more wait their turn.
    #[arg(long, env = "HOTSPOTS_MAX_CONCURRENCY", default_value_t = 64)]
    pub max_concurrency: usize,
    /// Requests per minute per API key before 429 (0: no limit).
    #[arg(long, env = "HOTSPOTS_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,
    /// Requests per minute per client IP address without a key before 429 (0: no limit).
    #[arg(
        long,
        env = "HOTSPOTS_ANONYMOUS_RATE_LIMIT_PER_MINUTE",
        default_value_t = 300
    )]
    pub anonymous_rate_limit_per_minute: u32,
    /// Public base URL for links (default: from the Host header).
    #[arg(long, env = "HOTSPOTS_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The file to import (.csv, .tsv, .txt, .geojson, .json).
    pub file: PathBuf,
    /// Dataset id.
    #[arg(long)]
    pub dataset: String,
    /// Layer: incidents, facilities, baseline or study_area.
    #[arg(long, default_value = "incidents")]
    pub layer: String,
    /// CRS of the coordinates in the file.
    #[arg(long, default_value = "EPSG:4326")]
    pub crs: String,
    /// Create the dataset when it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Member organisations of a dataset made with --create (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<String>,
    /// CSV delimiter (sniffed when absent).
    #[arg(long)]
    pub delimiter: Option<char>,
    /// CSV decimal separator, `.` or `,` (sniffed when absent).
    #[arg(long)]
    pub decimal: Option<char>,
}

#[derive(Debug, Args, Clone)]
pub struct CreateKeyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Organisation the key belongs to.
    #[arg(long)]
    pub organisation: String,
    /// Tier: open, closed or private.
    #[arg(long)]
    pub tier: String,
    /// A label to recognise the key by.
    #[arg(long, default_value = "")]
    pub label: String,
    /// The key may read the audit entries of its organisation's datasets.
    #[arg(long)]
    pub privacy_officer: bool,
}
