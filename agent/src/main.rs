//! The `yunji-agent` binary.

use clap::Parser;
use yunji_agent::AgentConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = AgentConfig::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("YUNJI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let agent = yunji_agent::start(config).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    agent.shutdown().await;
    Ok(())
}
