//! The `hotspots` binary: configuration, logging, and the `serve`, `import` and `create-key`
//! commands. All logic lives in the library.

use anyhow::{Context, bail};
use clap::Parser;
use hotspots::api::{self, AppState, Settings};
use hotspots::app::{App, IngestRequest, NewDataset};
use hotspots::config::{Cli, Command, CreateKeyArgs, ImportArgs, ServeArgs};
use hotspots::crs::Crs;
use hotspots::ingest::{Format, csv::CsvOptions};
use hotspots::model::{DatasetId, Layer, Tier};
use hotspots::privacy::Principal;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=info".into());
    let json = std::env::var("HOTSPOTS_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    match Cli::parse().command {
        Command::Serve(a) => serve(a),
        Command::Import(a) => import(a),
        Command::CreateKey(a) => create_key(a),
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let app = App::open(&a.store.data_dir, a.store.admin_key.clone())
        .with_context(|| format!("opening the store in {}", a.store.data_dir.display()))?;
    if a.demo {
        let n = hotspots::demo::load_dataset(&app, &a.fixtures_dir)
            .with_context(|| format!("loading demo fixtures from {} (run from the repository root or pass --fixtures-dir)", a.fixtures_dir.display()))?;
        let keys = hotspots::demo::keys(&app, &a.store.data_dir)?;
        println!(
            "demo dataset {} loaded: {n} incidents",
            hotspots::demo::DEMO_DATASET
        );
        println!(
            "demo keys (also in {}):",
            a.store.data_dir.join("demo-keys.json").display()
        );
        println!(
            "  open:    {}\n  closed:  {}\n  private: {}",
            keys.open, keys.closed, keys.private
        );
    }
    let settings = Settings {
        public_url: a.public_url.clone(),
        cors_origins: a.cors_origins.clone(),
        max_body_bytes: a.max_body_mb << 20,
        request_timeout: Duration::from_secs(a.request_timeout_secs),
        max_concurrency: a.max_concurrency.max(1),
        rate_limit_per_minute: a.rate_limit_per_minute,
        anonymous_rate_limit_per_minute: a.anonymous_rate_limit_per_minute,
        ..Settings::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("binding {}", a.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening");
        println!("hotspots listening on http://{addr}");
        let router = api::router(AppState::new(app, settings));
        // the peer address keys the rate limit of callers without a key
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        tracing::info!("shut down");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received");
}

fn import(a: ImportArgs) -> anyhow::Result<()> {
    let app = App::open(&a.store.data_dir, None)?;
    let layer = Layer::parse(&a.layer)?;
    let format = Format::from_path(&a.file)
        .context("file extension must be .csv, .tsv, .txt, .geojson or .json")?;
    let crs = Crs::parse(&a.crs)?;
    let id = DatasetId::new(&a.dataset)?;
    if app.catalog.get(&id).is_none() {
        if !a.create {
            bail!("dataset {id} does not exist; pass --create to create it");
        }
        app.create_dataset(NewDataset {
            id: id.as_str(),
            title: id.as_str(),
            members: a.members.clone(),
            ..NewDataset::default()
        })?;
    }
    let body = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{spinner} {msg} {pos} rows written [{elapsed}]",
    )?);
    bar.set_message(format!("importing {}", a.file.display()));
    bar.enable_steady_tick(Duration::from_millis(120));
    let csv = CsvOptions {
        delimiter: a.delimiter.map(|c| c as u8),
        decimal: a.decimal,
        ..CsvOptions::default()
    };
    let req = IngestRequest {
        layer,
        format,
        body: &body,
        crs,
        csv,
        strict: false,
    };
    let out = app.ingest(&Principal::admin(), &id, req, |n| bar.set_position(n))?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn create_key(a: CreateKeyArgs) -> anyhow::Result<()> {
    let app = App::open(&a.store.data_dir, None)?;
    let (key, rec) = app.create_key(
        &a.organisation,
        Tier::parse(&a.tier)?,
        &a.label,
        a.privacy_officer,
    )?;
    println!("{key}");
    eprintln!(
        "key id {} for organisation {} at tier {} (shown once; stored hashed)",
        rec.id, rec.organisation, rec.tier
    );
    Ok(())
}
