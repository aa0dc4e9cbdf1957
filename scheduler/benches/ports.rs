//! Ports benchmark (issue 4, networking), on loopback, in one process: 1,000 ports
//! created in parallel on one /22 subnet must all get distinct addresses, and the p50
//! of a port create must be at most 2× the p50 of a trivial authenticated GET
//! (`GET /identity/v3/auth/catalog`) sent at the same concurrency in the same run.
//!
//! How: both are timed warm, after 200 untimed GETs and 200 untimed creates (on a
//! network of their own). Then five rounds, each 1,000 creates on a /22 of its own
//! followed by 1,000 GETs: the two kinds alternate, so a slower stretch of this shared
//! machine falls on both rather than on whichever ran then. Each round's figures are
//! printed, and the verdict compares the p50s of all rounds' samples. Sequential
//! figures (40 of each per round) are printed too. Each call is timed until its whole
//! answer has arrived; reading the port's address from it comes after, as client work.
//! Run: `cargo bench -p yunji-scheduler --bench ports`.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::{admin_token, ms, p50, timed, trivial_get};
use reqwest::Client;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "bench-ports-admin";
const PORTS: usize = 1_000;
/// Requests in flight at once during the parallel phases.
const CONCURRENCY: usize = 16;
/// Rounds of 1,000 parallel creates and 1,000 GETs.
const ROUNDS: usize = 5;
/// Sequential calls of each kind over all rounds.
const SEQUENTIAL_RUNS: usize = 200;
/// Untimed calls of each kind before the timed ones.
const WARM_UP: usize = 200;

async fn bench() -> anyhow::Result<()> {
    let (running, _dir) = common::scheduler(ADMIN_PASSWORD, |config| {
        config.network.default_quota.port = -1;
    })
    .await?;
    let base = running.public_url.clone();
    let client = Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let token = admin_token(&client, &base, ADMIN_PASSWORD).await?;

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
    let network = |name: &'static str, cidr: String| {
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
    let warm_up_net = network("bench-warm-up", "10.255.0.0/22".into()).await?;

    // Timed until the whole answer has arrived, as the GET is; its address is read after.
    let create_port = |net: String| {
        let (client, url, token) = (
            client.clone(),
            format!("{base}/network/v2.0/ports"),
            token.clone(),
        );
        move |i: usize| {
            let call = client
                .post(&url)
                .header("X-Auth-Token", &token)
                .json(&json!({"port": {"network_id": net, "name": format!("p{i}")}}))
                .send();
            async move {
                let r = call.await?;
                if r.status() != 201 {
                    bail!("create answered {}: {}", r.status(), r.text().await?);
                }
                anyhow::Ok(r.bytes().await?)
            }
        }
    };
    let address = |answer: &[u8]| -> anyhow::Result<String> {
        let port: Value = serde_json::from_slice(answer)?;
        Ok(port["port"]["fixed_ips"][0]["ip_address"]
            .as_str()
            .context("a port without an address")?
            .to_string())
    };
    let trivial = |_| trivial_get(client.clone(), base.clone(), token.clone());
    // Both kinds of call start warm, each after 200 untimed ones: the connections are
    // open, and the store's caches, log file and heap have grown as a running cloud's have.
    timed(WARM_UP, CONCURRENCY, trivial).await?;
    timed(WARM_UP, CONCURRENCY, create_port(warm_up_net)).await?;

    let mut parallel = Samples::default();
    let mut sequential = Samples::default();
    let mut all_distinct = true;
    println!("round  {PORTS} ports in parallel  distinct  port p50   GET p50   ratio");
    for round in 0..ROUNDS {
        let net = network("bench-parallel", format!("10.{}.0.0/22", 4 * round)).await?;
        let started = Instant::now();
        let (ports, answers) = timed(PORTS, CONCURRENCY, create_port(net)).await?;
        let wall = started.elapsed();
        let addresses = answers
            .iter()
            .map(|a| address(a))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let distinct = addresses.iter().collect::<HashSet<_>>().len();
        all_distinct &= distinct == PORTS;
        let (gets, _) = timed(PORTS, CONCURRENCY, trivial).await?;
        let (port_p50, get_p50) = (p50(ports.clone()), p50(gets.clone()));
        println!(
            "{round:>5}  {:>20.2} s  {distinct:>8}  {}  {}  {:.2}x",
            wall.as_secs_f64(),
            ms(port_p50),
            ms(get_p50),
            port_p50.as_secs_f64() / get_p50.as_secs_f64()
        );
        parallel.add(ports, gets);

        let net = network("bench-sequential", format!("10.{}.0.0/22", 100 + 4 * round)).await?;
        let (ports, _) = timed(SEQUENTIAL_RUNS / ROUNDS, 1, create_port(net)).await?;
        let (gets, _) = timed(SEQUENTIAL_RUNS / ROUNDS, 1, trivial).await?;
        sequential.add(ports, gets);
    }

    let (port_p50, get_p50) = parallel.p50s();
    let (seq_port_p50, seq_get_p50) = sequential.p50s();
    println!("over all {ROUNDS} rounds:");
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
        "[{}] all {PORTS} addresses distinct in every round",
        if all_distinct { "PASS" } else { "FAIL" }
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

/// Latencies of both kinds of call, gathered over the rounds.
#[derive(Default)]
struct Samples {
    ports: Vec<Duration>,
    gets: Vec<Duration>,
}

impl Samples {
    fn add(&mut self, ports: Vec<Duration>, gets: Vec<Duration>) {
        self.ports.extend(ports);
        self.gets.extend(gets);
    }

    fn p50s(self) -> (Duration, Duration) {
        (p50(self.ports), p50(self.gets))
    }
}

fn main() {
    common::main_with(bench());
}
