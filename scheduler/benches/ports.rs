//! Ports benchmark (issue 4, networking), on loopback, in one process: 1,000 ports
//! created in parallel on one /22 subnet must all get distinct addresses, and the p50
//! of a port create must be at most 2× the p50 of a trivial authenticated GET
//! (`GET /identity/v3/auth/catalog`) sent at the same concurrency in the same run.
//! Sequential figures of both are printed too.
//! Run: `cargo bench -p yunji-scheduler --bench ports`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use reqwest::Client;
use serde_json::{Value, json};
use yunji_scheduler::config::{Config, DriverChoice};

const ADMIN_PASSWORD: &str = "bench-ports-admin";
const PORTS: usize = 1_000;
/// Requests in flight at once during the parallel phases.
const CONCURRENCY: usize = 16;
const SEQUENTIAL_RUNS: usize = 200;

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Runs `f(0..runs)` with `concurrency` calls in flight; each call's latency, and the
/// values they returned.
async fn timed<F, Fut, T>(
    runs: usize,
    concurrency: usize,
    f: F,
) -> anyhow::Result<(Vec<Duration>, Vec<T>)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
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

async fn bench() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().join("data"),
        listen: ([127, 0, 0, 1], 0).into(),
        local_agents: 0,
        driver: DriverChoice::Sim,
        admin_password: Some(ADMIN_PASSWORD.into()),
        ..Config::default()
    };
    config.tls.plain_http = true;
    config.network.default_quota.port = -1;
    let running = yunji_scheduler::start(config).await?;
    let base = running.public_url.clone();
    let client = Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;

    let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    let resp = client
        .post(format!("{base}/identity/v3/auth/tokens"))
        .json(&auth)
        .send()
        .await?;
    let token = resp
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .context("no token")?
        .to_string();

    let post = |path: &str, body: Value| {
        let (client, url, token) = (client.clone(), format!("{base}{path}"), token.clone());
        async move {
            let r = client
                .post(url)
                .header("X-Auth-Token", &token)
                .json(&body)
                .send()
                .await?;
            if r.status() != 201 {
                bail!("create answered {}: {}", r.status(), r.text().await?);
            }
            Ok(r.json::<Value>().await?)
        }
    };
    let network = |name: &'static str, cidr: &'static str| {
        let post = &post;
        async move {
            let n = post("/network/v2.0/networks", json!({"network": {"name": name}})).await?;
            let id = n["network"]["id"]
                .as_str()
                .context("no network id")?
                .to_string();
            post(
                "/network/v2.0/subnets",
                json!({"subnet": {"network_id": id, "ip_version": 4, "cidr": cidr}}),
            )
            .await?;
            anyhow::Ok(id)
        }
    };
    let parallel_net = network("bench-parallel", "10.0.0.0/22").await?;
    let sequential_net = network("bench-sequential", "10.8.0.0/22").await?;

    let create_port = |net: String| {
        move |i: usize| {
            let body = json!({"port": {"network_id": net, "name": format!("p{i}")}});
            let call = post("/network/v2.0/ports", body);
            async move {
                let port = call.await?;
                let ip = port["port"]["fixed_ips"][0]["ip_address"]
                    .as_str()
                    .context("a port without an address")?
                    .to_string();
                anyhow::Ok(ip)
            }
        }
    };
    let trivial = |_| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let r = client
                .get(format!("{base}/identity/v3/auth/catalog"))
                .header("X-Auth-Token", &token)
                .send()
                .await?;
            r.bytes().await?;
            anyhow::Ok(())
        }
    };
    timed(200, CONCURRENCY, trivial).await?;

    let started = Instant::now();
    let (port_samples, addresses) = timed(PORTS, CONCURRENCY, create_port(parallel_net)).await?;
    let wall = started.elapsed();
    let distinct: HashSet<&String> = addresses.iter().collect();
    let (get_samples, _) = timed(PORTS, CONCURRENCY, trivial).await?;
    let (seq_ports, _) = timed(SEQUENTIAL_RUNS, 1, create_port(sequential_net)).await?;
    let (seq_gets, _) = timed(SEQUENTIAL_RUNS, 1, trivial).await?;

    let (port_p50, get_p50) = (p50(port_samples), p50(get_samples));
    let (seq_port_p50, seq_get_p50) = (p50(seq_ports), p50(seq_gets));
    println!(
        "ports created in parallel ({CONCURRENCY} in flight) {PORTS} in {:.2} s",
        wall.as_secs_f64()
    );
    println!("distinct addresses                     {}", distinct.len());
    println!("POST /v2.0/ports (201), parallel      p50 {}", ms(port_p50));
    println!(
        "GET /identity/v3/auth/catalog, parallel p50 {}",
        ms(get_p50)
    );
    println!(
        "POST /v2.0/ports (201), sequential    p50 {}",
        ms(seq_port_p50)
    );
    println!(
        "GET /identity/v3/auth/catalog, sequential p50 {}",
        ms(seq_get_p50)
    );
    let ratio = port_p50.as_secs_f64() / get_p50.as_secs_f64();
    let seq_ratio = seq_port_p50.as_secs_f64() / seq_get_p50.as_secs_f64();
    println!(
        "[{}] all {PORTS} addresses distinct",
        if distinct.len() == PORTS {
            "PASS"
        } else {
            "FAIL"
        }
    );
    println!(
        "[{}] port create p50 <= 2 x trivial GET p50 (parallel)   : {ratio:.2}x",
        if ratio <= 2.0 { "PASS" } else { "FAIL" }
    );
    println!(
        "[{}] port create p50 <= 2 x trivial GET p50 (sequential) : {seq_ratio:.2}x",
        if seq_ratio <= 2.0 { "PASS" } else { "FAIL" }
    );
    running.shutdown().await;
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match runtime
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(bench()))
    {
        Ok(()) => {}
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            std::process::exit(1);
        }
    }
}
