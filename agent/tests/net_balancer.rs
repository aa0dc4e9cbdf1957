//! Privileged: load balancers of the real network driver (`RealNetwork::apply` with
//! `load_balancers`), with real connections. A node namespace carries a tenant network
//! with two member guests running `busybox httpd` (each answering its own name) and a
//! client guest; the driver makes the load balancer's namespace, VIP veth and proxy
//! thread. The test counts which member answers requests sent to the VIP, kills and
//! restarts a member's httpd under an HTTP health monitor, and checks that removing the
//! load balancer (and `remove_all`) leaves no namespace, link or thread behind.
//! Run as root: `cargo test -p yunji-agent --test net_balancer -- --ignored --test-threads=1`.

mod balancer_rig;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use balancer_rig::{
    Guest, HTTP_PORT, MEMBER_1, MEMBER_2, Rig, VIP, VIP_MAC, VIP_PORT, balancer_threads,
    http_monitor, spec,
};
use yunji_agent::net::tap_name;

/// Requests made while waiting for a member to go out or come back, 4 a second.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
const MAX_POLLS: usize = 32;

fn vip() -> SocketAddr {
    SocketAddr::new(VIP.parse().expect("the VIP"), HTTP_PORT)
}

/// How many answers came from each member, and how many requests failed.
fn tally(results: &[Result<(String, Duration), String>]) -> (usize, usize, usize) {
    let from = |name: &str| {
        results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|(body, _)| body == name))
            .count()
    };
    let failed = results.iter().filter(|r| r.is_err()).count();
    (from(MEMBER_1.name), from(MEMBER_2.name), failed)
}

/// Polls the VIP until `settled` holds for the last `window` answers; the time from
/// `since` to the first of them, and every result seen.
async fn poll_until(
    rig: &Rig,
    since: Instant,
    window: usize,
    settled: impl Fn(&Result<(String, Duration), String>) -> bool,
) -> (Option<Duration>, Vec<Result<(String, Duration), String>>) {
    let mut seen = Vec::new();
    let mut stamps = Vec::new();
    for _ in 0..MAX_POLLS {
        let at = since.elapsed();
        seen.push(rig.requests(vip(), 1, 1).await.remove(0));
        stamps.push(at);
        if seen.len() >= window && seen[seen.len() - window..].iter().all(&settled) {
            return (Some(stamps[stamps.len() - window]), seen);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    (None, seen)
}

fn answered_by(member: &'static Guest) -> impl Fn(&Result<(String, Duration), String>) -> bool {
    move |result| result.as_ref().is_ok_and(|(body, _)| body == member.name)
}

#[tokio::test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
async fn a_load_balancer_spreads_connections_follows_its_members_health_and_goes_away() {
    let mut rig = Rig::new("lb").await;
    let prefix = rig.prefix.clone();
    let lb_namespace = rig.lb_namespace();
    let vip_tap = tap_name(VIP_PORT);
    let both: &[&Guest] = &[&MEMBER_1, &MEMBER_2];

    // Both members, round robin.
    rig.apply(spec(&rig, 1, Some(both), "ROUND_ROBIN", None))
        .await
        .expect("the spec with a load balancer applies");
    let namespace_made = rig.namespace_exists(&lb_namespace).await;
    let inside = rig.interfaces(&lb_namespace).await;
    let eth0 = inside
        .iter()
        .find(|link| link["ifname"] == "eth0")
        .expect("eth0 in the load balancer's namespace");
    let eth0_mac = eth0["address"].as_str().map(str::to_string);
    let eth0_addresses: Vec<String> = eth0["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or("?"), a["prefixlen"]))
        .collect();
    let node_links = rig.interfaces(&rig.ns("node")).await;
    let vip_master = node_links
        .iter()
        .find(|link| link["ifname"] == vip_tap.as_str())
        .map(|link| link["master"].as_str().map(str::to_string));
    let threads_running = balancer_threads();
    let spread = rig.requests(vip(), 100, 1).await;
    eprintln!(
        "100 requests through the VIP (member 1, member 2, failed): {:?}",
        tally(&spread)
    );

    // Member 2 leaves the pool.
    rig.apply(spec(&rig, 2, Some(&[&MEMBER_1]), "ROUND_ROBIN", None))
        .await
        .expect("the spec without member 2 applies");
    let only_first = rig.requests(vip(), 20, 1).await;

    // An HTTP monitor every second; member 1's httpd dies, then comes back.
    rig.apply(spec(
        &rig,
        3,
        Some(both),
        "ROUND_ROBIN",
        Some(http_monitor(1)),
    ))
    .await
    .expect("the spec with a health monitor applies");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let monitored = rig.requests(vip(), 10, 1).await;
    rig.stop_httpd(&MEMBER_1).await;
    let killed = Instant::now();
    let (out_after, while_out) = poll_until(&rig, killed, 6, answered_by(&MEMBER_2)).await;
    eprintln!("member 1 out after {out_after:?}: {:?}", tally(&while_out));
    rig.start_httpd(&MEMBER_1).await;
    let restarted = Instant::now();
    let (back_after, while_back) = poll_until(&rig, restarted, 1, answered_by(&MEMBER_1)).await;
    eprintln!(
        "member 1 back after {back_after:?}: {:?}",
        tally(&while_back)
    );

    // The load balancer leaves the spec.
    rig.apply(spec(&rig, 4, None, "ROUND_ROBIN", None))
        .await
        .expect("the spec without the load balancer applies");
    let namespace_after_removal = rig.namespace_exists(&lb_namespace).await;
    let tap_after_removal = rig
        .interfaces(&rig.ns("node"))
        .await
        .iter()
        .any(|link| link["ifname"] == vip_tap.as_str());
    let threads_after_removal = balancer_threads();
    let refused_after_removal = rig.requests(vip(), 1, 1).await;

    // Back, then everything removed.
    rig.apply(spec(&rig, 5, Some(both), "LEAST_CONNECTIONS", None))
        .await
        .expect("the load balancer comes back");
    let least_connections = rig.requests(vip(), 20, 1).await;
    rig.remove_all().await.expect("remove_all");
    let namespace_after_remove_all = rig.namespace_exists(&lb_namespace).await;
    let yunji_links_left: Vec<String> = rig
        .interfaces(&rig.ns("node"))
        .await
        .iter()
        .filter_map(|link| link["ifname"].as_str().map(str::to_string))
        .filter(|name| name == &vip_tap || name.starts_with("ybr-") || name.starts_with("yvx-"))
        .collect();
    let threads_after_remove_all = balancer_threads();
    drop(rig);
    let namespaces_left =
        String::from_utf8_lossy(&balancer_rig::ip(&["netns", "list"]).await.stdout).into_owned();

    assert!(namespace_made, "the driver made {lb_namespace}");
    assert_eq!(eth0_mac.as_deref(), Some(VIP_MAC));
    assert_eq!(eth0_addresses, [format!("{VIP}/24")]);
    assert_eq!(
        vip_master,
        Some(Some(format!("ybr-{}", balancer_rig::VNI))),
        "the VIP's veth is on the network's bridge"
    );
    assert_eq!(threads_running, 1, "one thread per load balancer");
    let (to_first, to_second, failed) = tally(&spread);
    assert_eq!(failed, 0, "every request through the VIP is answered");
    assert!(
        (30..=70).contains(&to_first) && (30..=70).contains(&to_second),
        "round robin spreads 100 requests: {to_first} to member 1, {to_second} to member 2"
    );
    assert_eq!(tally(&only_first), (20, 0, 0), "member 2 left the pool");
    let (m1, m2, failed) = tally(&monitored);
    assert!(
        m1 > 0 && m2 > 0 && failed == 0,
        "both members healthy under the monitor: {monitored:?}"
    );
    let out_after = out_after.unwrap_or_else(|| {
        panic!("member 1 was never taken out: {while_out:?}");
    });
    assert!(
        out_after <= Duration::from_secs(3),
        "member 1 out {out_after:?} after its httpd died (3 intervals: 3 s): {while_out:?}"
    );
    assert!(
        tally(&while_out).2 > 0,
        "member 1 was still picked (and failed) before the monitor took it out: {while_out:?}"
    );
    let back_after = back_after.unwrap_or_else(|| {
        panic!("member 1 never came back: {while_back:?}");
    });
    assert!(
        back_after <= Duration::from_secs(4),
        "member 1 back {back_after:?} after its httpd restarted: {while_back:?}"
    );
    assert!(!namespace_after_removal, "{lb_namespace} removed");
    assert!(!tap_after_removal, "the VIP veth {vip_tap} removed");
    assert_eq!(threads_after_removal, 0, "the load balancer's thread ended");
    assert!(
        refused_after_removal[0].is_err(),
        "nothing answers on the VIP any more"
    );
    let (m1, m2, failed) = tally(&least_connections);
    assert!(
        m1 > 0 && m2 > 0 && failed == 0,
        "least connections uses both idle members: {m1}/{m2}/{failed}"
    );
    assert!(
        !namespace_after_remove_all,
        "remove_all removes {lb_namespace}"
    );
    assert!(
        yunji_links_left.is_empty(),
        "links left: {yunji_links_left:?}"
    );
    assert_eq!(threads_after_remove_all, 0);
    assert!(
        !namespaces_left.contains(&prefix) && !namespaces_left.contains(&lb_namespace),
        "namespaces left behind: {namespaces_left}"
    );
}
