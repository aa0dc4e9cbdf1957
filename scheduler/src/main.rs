//! The `yunji-scheduler` binary: flags and configuration, logs, signals.

use clap::Parser;
use yunji_scheduler::config::{Config, Flags};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    init_logs(&flags.log_format);
    let config = match Config::load(&flags) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %yunji_scheduler::core::error_chain(&e), "invalid configuration");
            std::process::exit(2);
        }
    };
    let running = yunji_scheduler::start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: draining requests and stopping local agents");
    running.shutdown().await;
    Ok(())
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("YUNJI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
