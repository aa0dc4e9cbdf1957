//! A load balancer for real: its VIP (the agent's proxy in a namespace on one node)
//! spreads HTTP requests over two VMs on two nodes of the rig; the standard's `nodes`
//! extension takes a member out of live traffic and puts it back; a health monitor takes
//! out a member whose VM stopped. The client is a third VM on the same network, so no
//! traffic leaves the rig's namespaces.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::network::{CIDR, probe_loop, probes};
use super::{BOOT, Cloud, cloud_on_rig};

const VIP: &str = "10.20.0.100";
const W1: &str = "10.20.0.61";
const W2: &str = "10.20.0.62";
/// Requests the client sends back to back once both members answer.
const BURST: usize = 100;

/// The client's user_data: ask the VIP once a second until both members have answered
/// (the health monitor may still count a booting member out), then send [`BURST`]
/// requests back to back, printing `YUNJI-LB: hostname=<member>` (empty when nothing
/// answered) for each; then as many straight to the members, alternating. Each burst is
/// timed by the guest's uptime (`YUNJI-TIMED <what> <start> <end>`, in seconds). Then it
/// probes the VIP every second as the other tests' VMs do.
fn client_script() -> String {
    format!(
        "#!/bin/sh\n\
         ask() {{ printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $1 80 | grep hostname=; }}\n\
         now() {{ cut -d' ' -f1 /proc/uptime; }}\n\
         ( seen=; for n in $(seq 150); do page=$(ask {VIP}); echo \"YUNJI-WARMUP $page\"; \
         seen=\"$seen $page\"; case \"$seen\" in *hostname=w1*hostname=w2*|*hostname=w2*hostname=w1*) break;; esac; \
         sleep 1; done; \
         t0=$(now); for n in $(seq {BURST}); do echo \"YUNJI-LB: $(ask {VIP})\"; done; \
         echo \"YUNJI-TIMED vip $t0 $(now)\"; \
         t0=$(now); for n in $(seq {half}); do ask {W1} >/dev/null; ask {W2} >/dev/null; done; \
         echo \"YUNJI-TIMED direct $t0 $(now)\"; echo YUNJI-LB-DONE; \
         {} ) &\n",
        probe_loop(&[VIP], 300),
        half = BURST / 2,
    )
}

/// Requests per second of the `YUNJI-TIMED <what> <start> <end>` burst on the console.
fn burst_rate(console: &str, what: &str) -> f64 {
    let line = console
        .lines()
        .find_map(|l| l.strip_prefix(&format!("YUNJI-TIMED {what} ")))
        .unwrap_or_else(|| panic!("no timed {what} burst:\n{console}"));
    let times: Vec<f64> = line
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    BURST as f64 / (times[1] - times[0]).max(0.01)
}

impl Cloud {
    /// A request to the load-balancer API as admin that must answer `status`; its body.
    async fn octavia(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        let path = format!("/load-balancer/v2/lbaas{path}");
        self.admin_call(method, &path, body, status).await
    }

    /// Waits until the load balancer's node applied its last change; its view.
    async fn wait_lb_active(&self, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let path = format!("/loadbalancers/{id}");
            let lb = self.octavia(Method::GET, &path, None, StatusCode::OK).await["loadbalancer"]
                .clone();
            match lb["provisioning_status"].as_str() {
                Some("ACTIVE") => return lb,
                Some("ERROR") => panic!("load balancer {id} failed: {lb}"),
                _ => {}
            }
            assert!(
                start.elapsed() < BOOT,
                "load balancer {id} not ACTIVE: {lb}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates a child of load balancer `lb` (`kind`: listener, pool, healthmonitor) and
    /// waits for its node to apply it; the child's id.
    async fn lb_child(&self, lb: &str, kind: &str, body: Value) -> String {
        let path = format!("/{kind}s");
        let created = self
            .octavia(
                Method::POST,
                &path,
                Some(json!({ kind: body })),
                StatusCode::CREATED,
            )
            .await;
        self.wait_lb_active(lb).await;
        created[kind]["id"].as_str().unwrap().to_string()
    }

    /// Changes the load balancer's nodes (the standard's B.3.4.5–6) and waits until its
    /// node applied it; the load balancer's `nodes`.
    async fn lb_nodes(&self, lb: &str, change: Value) -> Vec<Value> {
        let path = format!("/loadbalancers/{lb}/nodes");
        self.octavia(Method::PATCH, &path, Some(change), StatusCode::OK)
            .await;
        self.wait_lb_active(lb).await["nodes"]
            .as_array()
            .unwrap()
            .clone()
    }
}

#[tokio::test]
#[ignore = "needs root, QEMU and network namespaces (tests/run.sh runs it)"]
async fn a_load_balancer_spreads_requests_over_vms_on_two_nodes_and_follows_its_nodes_and_health() {
    let cloud = cloud_on_rig(2).await;
    let admin = cloud.admin.clone();
    let (net, subnet) = cloud
        .network_with(&admin, json!({"name": "net-lb"}), CIDR)
        .await;

    // The load balancer, complete but for its members: HTTP on port 80, round robin,
    // an HTTP monitor every second, out after two failures and back after two successes.
    let lb = cloud
        .octavia(
            Method::POST,
            "/loadbalancers",
            Some(json!({"loadbalancer": {"name": "web", "vip_subnet_id": subnet, "vip_address": VIP}})),
            StatusCode::CREATED,
        )
        .await["loadbalancer"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    cloud.wait_lb_active(&lb).await;
    let listener = cloud
        .lb_child(
            &lb,
            "listener",
            json!({"loadbalancer_id": lb, "protocol": "HTTP", "protocol_port": 80}),
        )
        .await;
    let pool = cloud
        .lb_child(
            &lb,
            "pool",
            json!({"listener_id": listener, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
        )
        .await;
    cloud
        .lb_child(
            &lb,
            "healthmonitor",
            json!({"pool_id": pool, "type": "HTTP", "delay": 1, "timeout": 1,
                   "max_retries": 2, "max_retries_down": 2, "url_path": "/"}),
        )
        .await;

    // The members, one on each node: w1 by address through Octavia's members API, w2 by
    // server id through the standard's nodes extension.
    let web = cloud
        .spread_pair(&net, [("w1", W1), ("w2", W2)], true)
        .await;
    let hosts: Vec<String> = futures_util::future::join_all(web.iter().map(|id| cloud.show(id)))
        .await
        .iter()
        .map(Cloud::host_of)
        .collect();
    assert_ne!(
        hosts[0], hosts[1],
        "anti-affinity puts w1 and w2 on both nodes"
    );
    cloud
        .octavia(
            Method::POST,
            &format!("/pools/{pool}/members"),
            Some(json!({"member": {"address": W1, "protocol_port": 80, "subnet_id": subnet}})),
            StatusCode::CREATED,
        )
        .await;
    cloud.wait_lb_active(&lb).await;
    let w2 = json!({"server_id": web[1], "protocol_port": 80});
    let nodes = cloud.lb_nodes(&lb, json!({ "add": [w2.clone()] })).await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(
        nodes.iter().any(|n| n["id"] == web[1].as_str()),
        "{nodes:?}"
    );

    // The client asks the VIP: the burst is spread over both members, round robin.
    let port = cloud.port(&admin, &net, "10.20.0.63", None).await;
    let mut server = cloud.server("client", "e2e-small", Some(&client_script()));
    server["networks"] = json!([{ "port": port }]);
    let client = cloud.boot_as(&admin, json!({ "server": server })).await;
    cloud.wait_status(&client, "ACTIVE", BOOT).await;
    let console = cloud.wait_console(&client, "YUNJI-LB-DONE", 1).await;
    let burst: Vec<&str> = console
        .lines()
        .filter_map(|l| l.strip_prefix("YUNJI-LB:"))
        .collect();
    assert_eq!(burst.len(), BURST, "{console}");
    let to = |name: &str| {
        burst
            .iter()
            .filter(|&&l| l.trim() == format!("hostname={name}"))
            .count()
    };
    let (w1_count, w2_count) = (to("w1"), to("w2"));
    println!("{BURST} requests through the VIP: w1 answered {w1_count}, w2 {w2_count}");
    assert_eq!(
        w1_count + w2_count,
        BURST,
        "every request answered:\n{console}"
    );
    assert!(
        w1_count.abs_diff(w2_count) <= 2,
        "round robin spreads evenly: {w1_count}/{w2_count}"
    );
    // The same VMs through the VIP and directly, one request at a time. Under TCG the
    // client's own emulation dominates: this checks the proxy on the real path, and
    // `cargo bench -p yunji-agent --bench balancer` measures its cost alone.
    let vip_rate = burst_rate(&console, "vip");
    let direct_rate = burst_rate(&console, "direct");
    println!(
        "from a TCG guest, {BURST} sequential requests: {vip_rate:.0} req/s through the VIP, \
         {direct_rate:.0} req/s straight to the members: {:.2}x",
        vip_rate / direct_rate
    );

    // Removing w2 through the nodes extension takes it out of live traffic; adding it
    // back returns it.
    let to_w1 = |l: &str| l.starts_with("YUNJI-REACH hostname=w1 ");
    let to_w2 = |l: &str| l.starts_with("YUNJI-REACH hostname=w2 ");
    let nodes = cloud
        .lb_nodes(&lb, json!({"remove": [{"server_id": web[1]}]}))
        .await;
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let seen = probes(&cloud.console(&client).await, Some(VIP)).len();
    cloud
        .wait_probes(&client, Some(VIP), seen + 4, "probing on", |_| true)
        .await;
    cloud
        .wait_probes(&client, Some(VIP), 4, "only to w1", to_w1)
        .await;
    cloud.lb_nodes(&lb, json!({ "add": [w2] })).await;
    cloud
        .wait_probes(&client, Some(VIP), 1, "to w2 again", to_w2)
        .await;

    // w1 stops: the health monitor takes it out, and w2 answers every request.
    cloud.act(&web[0], json!({"os-stop": null})).await;
    cloud.wait_status(&web[0], "SHUTOFF", BOOT).await;
    let stopped = Instant::now();
    cloud
        .wait_probes(&client, Some(VIP), 4, "only to w2", to_w2)
        .await;
    println!(
        "w1 stopped; 4 requests in a row to w2 {:?} later",
        stopped.elapsed()
    );

    // A cascade delete removes the load balancer and its namespace on its node.
    cloud
        .octavia(
            Method::DELETE,
            &format!("/loadbalancers/{lb}?cascade=true"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    let namespace = format!("ylb-{}", &lb[..11]);
    let start = Instant::now();
    loop {
        let out = yunji_common::execute::execute("ip", ["netns", "list"], Duration::from_secs(10))
            .await
            .unwrap();
        let list = String::from_utf8_lossy(&out.stdout).into_owned();
        if !list.contains(&namespace) {
            break;
        }
        assert!(start.elapsed() < BOOT, "{namespace} stays: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in web.iter().chain([&client]) {
        cloud.delete_and_check_gone(id).await;
    }
}
