//! Servers benchmark (issue: compute and image services), on loopback, in one process:
//!
//! - with 10,000 servers in the store, `GET /servers/detail?limit=1000` p50, against
//!   serialising the same 1,000 views with serde_json alone (target: at most 3×);
//! - `POST /servers` accepted (202) p50, against an authenticated trivial GET
//!   (`GET /identity/v3/auth/catalog`) in the same run (target: at most 2×), timed in
//!   five alternating rounds whose samples are pooled.
//!
//! The scheduler runs without nodes, so builds end in ERROR right away and the store
//! fills fast; the views are full detailed views all the same.
//! Run: `cargo bench -p yunji-scheduler --bench servers`.

mod common;

use std::time::Instant;

use anyhow::{Context, bail};
use common::{admin_token, ms, p50, timed, trivial_get};
use reqwest::Client;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "bench-servers-admin";
const SERVERS: usize = 10_000;
const DETAIL_RUNS: usize = 30;
const POST_RUNS: usize = 300;
const GET_RUNS: usize = 2_000;
/// Rounds of GETs then POSTs; the verdict compares the p50s of all rounds' samples.
const ROUNDS: usize = 5;

async fn bench() -> anyhow::Result<()> {
    let (running, _dir) = common::scheduler(ADMIN_PASSWORD, |config| {
        config.compute.default_quota.instances = -1;
        config.compute.default_quota.cores = -1;
        config.compute.default_quota.ram_mb = -1;
    })
    .await?;
    let base = running.public_url.clone();
    let client = Client::builder().pool_max_idle_per_host(4).build()?;
    let token = admin_token(&client, &base, ADMIN_PASSWORD).await?;

    let image = client
        .post(format!("{base}/image/v2/images"))
        .header("X-Auth-Token", &token)
        .json(&json!({"name": "bench", "disk_format": "raw", "container_format": "bare"}))
        .send()
        .await?
        .json::<Value>()
        .await?["id"]
        .as_str()
        .context("no image id")?
        .to_string();
    let up = client
        .put(format!("{base}/image/v2/images/{image}/file"))
        .header("X-Auth-Token", &token)
        .header("Content-Type", "application/octet-stream")
        .body(vec![0u8; 65536])
        .send()
        .await?;
    if up.status() != 204 {
        bail!("image upload answered {}", up.status());
    }

    let create = |i: usize| {
        let (client, base, token, image) =
            (client.clone(), base.clone(), token.clone(), image.clone());
        async move {
            let r = client
                .post(format!("{base}/compute/v2.1/servers"))
                .header("X-Auth-Token", &token)
                .json(&json!({"server": {"name": format!("bench-{i}"), "flavorRef": "1", "imageRef": image,
                    "metadata": {"layer": "roads"}}}))
                .send()
                .await?;
            if r.status() != 202 {
                bail!("create answered {}: {}", r.status(), r.text().await?);
            }
            // Read as a client does; an unread body also costs the connection.
            r.bytes().await?;
            Ok(())
        }
    };
    let started = Instant::now();
    timed(SERVERS - POST_RUNS, 1, create).await?;
    eprintln!(
        "filled the store with {} servers in {:.1} s",
        SERVERS - POST_RUNS,
        started.elapsed().as_secs_f64()
    );

    let trivial = |_| trivial_get(client.clone(), base.clone(), token.clone());
    timed(200, 1, trivial).await?;
    // The two kinds alternate in rounds, so a slower stretch of this shared machine falls
    // on both rather than on whichever ran then.
    let (mut gets, mut posts) = (Vec::new(), Vec::new());
    println!("round  POST p50   GET p50    ratio");
    for round in 0..ROUNDS {
        let (round_gets, _) = timed(GET_RUNS / ROUNDS, 1, trivial).await?;
        let first = SERVERS + round * POST_RUNS / ROUNDS;
        let (round_posts, _) = timed(POST_RUNS / ROUNDS, 1, |i| create(first + i)).await?;
        let (post_p50, get_p50) = (p50(round_posts.clone()), p50(round_gets.clone()));
        println!(
            "{round:>5}  {}  {}  {:.2}x",
            ms(post_p50),
            ms(get_p50),
            post_p50.as_secs_f64() / get_p50.as_secs_f64()
        );
        gets.extend(round_gets);
        posts.extend(round_posts);
    }
    let (get_p50, post_p50) = (p50(gets), p50(posts));

    let detail = |_| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let r = client
                .get(format!("{base}/compute/v2.1/servers/detail?limit=1000"))
                .header("X-Auth-Token", &token)
                .send()
                .await?;
            r.bytes().await?;
            Ok(())
        }
    };
    timed(3, 1, detail).await?;
    let detail_p50 = p50(timed(DETAIL_RUNS, 1, detail).await?.0);
    let page: Value = client
        .get(format!("{base}/compute/v2.1/servers/detail?limit=1000"))
        .header("X-Auth-Token", &token)
        .send()
        .await?
        .json()
        .await?;
    let views = page["servers"].as_array().context("no servers")?.clone();
    if views.len() != 1000 {
        bail!("expected 1000 servers in the page, got {}", views.len());
    }
    let mut serde = Vec::new();
    for _ in 0..DETAIL_RUNS {
        let start = Instant::now();
        let bytes = serde_json::to_vec(&json!({"servers": views}))?;
        std::hint::black_box(bytes);
        serde.push(start.elapsed());
    }
    let serde_p50 = p50(serde);

    println!("servers in the store          {SERVERS}");
    println!("GET /servers/detail?limit=1000  p50 {}", ms(detail_p50));
    println!("serde_json alone, same views    p50 {}", ms(serde_p50));
    println!("POST /servers (202), all rounds p50 {}", ms(post_p50));
    println!(
        "GET /identity/v3/auth/catalog, all rounds p50 {}",
        ms(get_p50)
    );
    let detail_ratio = detail_p50.as_secs_f64() / serde_p50.as_secs_f64();
    let post_ratio = post_p50.as_secs_f64() / get_p50.as_secs_f64();
    println!(
        "[{}] detail p50 <= 3 x serde_json floor : {detail_ratio:.2}x",
        if detail_ratio <= 3.0 { "PASS" } else { "FAIL" }
    );
    println!(
        "[{}] POST p50 <= 2 x trivial GET p50    : {post_ratio:.2}x",
        if post_ratio <= 2.0 { "PASS" } else { "FAIL" }
    );
    running.shutdown().await;
    Ok(())
}

fn main() {
    common::main_with(bench());
}
