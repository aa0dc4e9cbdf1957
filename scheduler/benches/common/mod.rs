//! What the API benches share: a scheduler on loopback with plain HTTP, an admin token,
//! the trivial authenticated GET they compare against, and latency sampling.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{StreamExt, stream};
use reqwest::Client;
use serde_json::json;
use yunji_scheduler::Running;
use yunji_scheduler::config::{Config, DriverChoice};

/// A scheduler without nodes on loopback (plain HTTP), its configuration first adjusted
/// by `tune`; the temporary data directory lives as long as the returned guard.
pub async fn scheduler(
    admin_password: &str,
    tune: impl FnOnce(&mut Config),
) -> anyhow::Result<(Running, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().join("data"),
        listen: ([127, 0, 0, 1], 0).into(),
        local_agents: 0,
        driver: DriverChoice::Sim,
        admin_password: Some(admin_password.into()),
        ..Config::default()
    };
    config.tls.plain_http = true;
    tune(&mut config);
    Ok((yunji_scheduler::start(config).await?, dir))
}

/// A project-scoped token of the bootstrap admin.
pub async fn admin_token(client: &Client, base: &str, password: &str) -> anyhow::Result<String> {
    let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    let resp = client
        .post(format!("{base}/identity/v3/auth/tokens"))
        .json(&auth)
        .send()
        .await?;
    Ok(resp
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .context("no token")?
        .to_string())
}

/// The floor the write benches compare against: `GET /identity/v3/auth/catalog`, which
/// costs a request, its token's validation and a small view.
pub async fn trivial_get(client: Client, base: String, token: String) -> anyhow::Result<()> {
    let r = client
        .get(format!("{base}/identity/v3/auth/catalog"))
        .header("X-Auth-Token", &token)
        .send()
        .await?;
    r.bytes().await?;
    Ok(())
}

pub fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Runs `f(0..runs)` with `concurrency` calls in flight (1: one after another); each
/// call's latency, and the values they returned.
pub async fn timed<F, Fut, T>(
    runs: usize,
    concurrency: usize,
    f: F,
) -> anyhow::Result<(Vec<Duration>, Vec<T>)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let results: Vec<anyhow::Result<(Duration, T)>> = stream::iter(0..runs)
        .map(|i| {
            let call = f(i);
            async move {
                let start = Instant::now();
                let value = call.await?;
                Ok((start.elapsed(), value))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut samples = Vec::with_capacity(runs);
    let mut values = Vec::with_capacity(runs);
    for r in results {
        let (d, v) = r?;
        samples.push(d);
        values.push(v);
    }
    Ok((samples, values))
}

/// Runs a bench on a multi-threaded runtime, as the scheduler runs; exits non-zero
/// when it fails.
pub fn main_with(bench: impl Future<Output = anyhow::Result<()>>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match runtime
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(bench))
    {
        Ok(()) => {}
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            std::process::exit(1);
        }
    }
}
