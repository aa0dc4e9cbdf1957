//! Load-balancer datapath benchmark (issue 6, "Performance"): HTTP/1.0 requests/s and
//! p50 latency through a load balancer's VIP (the agent's proxy in its own namespace)
//! against the same requests sent straight to the member, from a client guest on the
//! same tenant network. The members are `busybox httpd` in guest namespaces; the rig is
//! the privileged test's (`tests/balancer_rig`), removed on exit and on panic. The pool
//! has the one member measured directly, so that the ratio is the proxy's cost alone.
//! Needs root (it prints so and exits 0 otherwise):
//!
//!     cargo bench -p yunji-agent --bench balancer

#[path = "../tests/balancer_rig/mod.rs"]
mod balancer_rig;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use balancer_rig::{HTTP_PORT, MEMBER_1, Rig, VIP, spec};

/// Requests per measure; each measure runs sequentially, then 8 at a time.
const REQUESTS: usize = 1000;
const CONCURRENCY: usize = 8;
/// Measures alternate direct / VIP this many times; the best round of each is kept, as
/// other work on the machine only ever slows a round down.
const ROUNDS: usize = 5;

struct Measure {
    per_second: f64,
    p50: Duration,
    p90: Duration,
}

async fn measure(rig: &Rig, target: SocketAddr, concurrency: usize) -> Measure {
    let started = Instant::now();
    let results = rig.requests(target, REQUESTS, concurrency).await;
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = results
        .iter()
        .map(|r| match r {
            Ok((_, latency)) => *latency,
            Err(error) => panic!("a request to {target} failed: {error}"),
        })
        .collect();
    latencies.sort();
    Measure {
        per_second: REQUESTS as f64 / elapsed.as_secs_f64(),
        p50: latencies[latencies.len() / 2],
        p90: latencies[latencies.len() * 9 / 10],
    }
}

fn best(measures: Vec<Measure>) -> Measure {
    measures
        .into_iter()
        .max_by(|a, b| a.per_second.total_cmp(&b.per_second))
        .expect("one round at least")
}

fn main() {
    if !rustix::process::geteuid().is_root() {
        println!(
            "balancer bench: needs root (it makes network namespaces and runs busybox httpd there); skipped"
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let rig = Rig::new("blb").await;
        rig.apply(spec(&rig, 1, Some(&[&MEMBER_1]), "ROUND_ROBIN", None))
            .await
            .expect("the load balancer applies");
        let direct = SocketAddr::new(MEMBER_1.ip.parse().expect("an IP"), HTTP_PORT);
        let vip = SocketAddr::new(VIP.parse().expect("the VIP"), HTTP_PORT);
        // Warm up ARP, the proxy's thread and httpd.
        rig.requests(direct, 20, 1).await;
        rig.requests(vip, 20, 1).await;
        for concurrency in [1, CONCURRENCY] {
            let mut direct_rounds = Vec::new();
            let mut vip_rounds = Vec::new();
            for _ in 0..ROUNDS {
                direct_rounds.push(measure(&rig, direct, concurrency).await);
                vip_rounds.push(measure(&rig, vip, concurrency).await);
            }
            let (direct, through) = (best(direct_rounds), best(vip_rounds));
            let label = if concurrency == 1 {
                "sequential".to_string()
            } else {
                format!("{concurrency} concurrent")
            };
            println!(
                "{REQUESTS} HTTP/1.0 requests, {label}: direct {:.0} req/s p50 {:.0} µs p90 {:.0} µs; \
                 via VIP {:.0} req/s p50 {:.0} µs p90 {:.0} µs; ratio {:.2}x req/s, p50 {:.2}x",
                direct.per_second,
                direct.p50.as_secs_f64() * 1e6,
                direct.p90.as_secs_f64() * 1e6,
                through.per_second,
                through.p50.as_secs_f64() * 1e6,
                through.p90.as_secs_f64() * 1e6,
                through.per_second / direct.per_second,
                through.p50.as_secs_f64() / direct.p50.as_secs_f64(),
            );
        }
        rig.remove_all().await.expect("remove_all");
    });
}
