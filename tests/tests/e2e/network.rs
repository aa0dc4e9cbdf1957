//! Tenant networks for real: VMs on a two-node rig get their addresses by DHCP and
//! reach each other over VXLAN; another project's network, with the same CIDR, stays
//! apart. The VMs probe each other from inside (their user_data asks the other's HTTP
//! server every second and prints what answered on the console), so no
//! traffic ever leaves the rig's namespaces.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{BOOT, Cloud, cloud_on_rig};

pub(super) const CIDR: &str = "10.20.0.0/24";

/// A user_data script: every second for two minutes, ask each target for its page over
/// HTTP and print `YUNJI-REACH hostname=<its name> via <ip>` when it answers,
/// `YUNJI-UNREACHED <ip>` when it does not. (busybox `nc`: its static `wget` crashes without NSS.)
fn probe(targets: &[&str]) -> String {
    format!("#!/bin/sh\n{}", probe_loop(targets, 120))
}

/// The probing loop of [`probe`], in the background, for `rounds` rounds.
pub(super) fn probe_loop(targets: &[&str], rounds: usize) -> String {
    format!(
        "( for n in $(seq {rounds}); do for ip in {}; do \
         page=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $ip 80 | grep hostname=); \
         if [ -n \"$page\" ]; then echo \"YUNJI-REACH $page via $ip\"; \
         else echo \"YUNJI-UNREACHED $ip\"; fi; done; sleep 1; done ) &\n",
        targets.join(" ")
    )
}

impl Cloud {
    /// Creates a network with one subnet of [`CIDR`] in `token`'s project.
    pub(super) async fn network(&self, token: &str, name: &str) -> String {
        self.network_with(token, json!({ "name": name }), CIDR)
            .await
            .0
    }

    /// Creates a network (`network`: its body) with one subnet of `cidr`; answers the
    /// network's and the subnet's ids.
    pub(super) async fn network_with(
        &self,
        token: &str,
        network: Value,
        cidr: &str,
    ) -> (String, String) {
        let r = self
            .ctx
            .call(
                Method::POST,
                "/network/v2.0/networks",
                Some(token),
                Some(json!({ "network": network })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["network"]["id"].as_str().unwrap().to_string();
        let r = self
            .ctx
            .call(
                Method::POST,
                "/network/v2.0/subnets",
                Some(token),
                Some(json!({"subnet": {"network_id": id, "ip_version": 4, "cidr": cidr}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (id, r.body["subnet"]["id"].as_str().unwrap().to_string())
    }

    /// A request to the network API as admin that must answer `status`; its body.
    pub(super) async fn neutron(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        self.admin_call(method, &format!("/network/v2.0{path}"), body, status)
            .await
    }

    /// A port with a chosen address, so that the other VMs' scripts can name it, in the
    /// project's default group or in `groups`.
    pub(super) async fn port(
        &self,
        token: &str,
        network: &str,
        ip: &str,
        groups: Option<&[&str]>,
    ) -> String {
        let mut port = json!({"network_id": network, "fixed_ips": [{"ip_address": ip}]});
        if let Some(groups) = groups {
            port["security_groups"] = json!(groups);
        }
        let r = self
            .ctx
            .call(
                Method::POST,
                "/network/v2.0/ports",
                Some(token),
                Some(json!({ "port": port })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["port"]["id"].as_str().unwrap().to_string()
    }

    /// A security group admitting HTTP from anywhere (and, as every new group, letting
    /// everything out).
    pub(super) async fn open_http_group(&self, token: &str) -> String {
        let r = self
            .ctx
            .call(
                Method::POST,
                "/network/v2.0/security-groups",
                Some(token),
                Some(json!({"security_group": {"name": "open-http"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["security_group"]["id"].as_str().unwrap().to_string();
        let rule = json!({"security_group_rule": {"security_group_id": id, "direction": "ingress",
            "protocol": "tcp", "port_range_min": 80, "port_range_max": 80,
            "remote_ip_prefix": "0.0.0.0/0"}});
        let r = self
            .ctx
            .call(
                Method::POST,
                "/network/v2.0/security-group-rules",
                Some(token),
                Some(rule),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        id
    }

    /// Two VMs on `network`, one on each node, with the addresses given, each admitting
    /// HTTP from anywhere and probing the other. With `pinned`, an anti-affinity group
    /// keeps them apart for good; without, placement by free memory spreads them.
    pub(super) async fn spread_pair(
        &self,
        network: &str,
        vms: [(&str, &str); 2],
        pinned: bool,
    ) -> Vec<String> {
        let r = self
            .ctx
            .call(
                Method::POST,
                "/compute/v2.1/os-server-groups",
                Some(&self.admin),
                Some(json!({"server_group": {"name": "spread", "policies": ["anti-affinity"]}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let spread = r.body["server_group"]["id"].as_str().unwrap().to_string();
        let open = self.open_http_group(&self.admin).await;
        let mut ids = Vec::new();
        for (i, (name, ip)) in vms.iter().enumerate() {
            let port = self
                .port(&self.admin, network, ip, Some(&[open.as_str()]))
                .await;
            let other = vms[1 - i].1;
            let mut server = self.server(name, "e2e-small", Some(&probe(&[other])));
            server["networks"] = json!([{ "port": port }]);
            let mut body = json!({ "server": server });
            if pinned {
                body["os:scheduler_hints"] = json!({ "group": spread });
            }
            ids.push(self.boot_as(&self.admin, body).await);
            // Placed one after the other: the second sees the first's memory taken.
            self.wait_status(&ids[i], "ACTIVE", BOOT).await;
        }
        ids
    }

    pub(super) fn host_of(server: &Value) -> String {
        server["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string()
    }

    /// Live-migrates the server from its node of two to the other one and waits until it
    /// runs there; that node's name.
    pub(super) async fn migrate_to_the_other_node(&self, id: &str) -> String {
        let source = Cloud::host_of(&self.show(id).await);
        let target = if source == "node-1" {
            "node-2"
        } else {
            "node-1"
        };
        self.act(
            id,
            json!({"os-migrateLive": {"host": target, "block_migration": true, "disk_over_commit": false}}),
        )
        .await;
        let start = std::time::Instant::now();
        loop {
            let server = self.show(id).await;
            if server["status"] == "ACTIVE" && server["OS-EXT-STS:task_state"].is_null() {
                if Cloud::host_of(&server) != target {
                    // Why it failed is in the migration's action events.
                    let path = format!("/compute/v2.1/servers/{id}/os-instance-actions");
                    let actions = self.ctx.call(Method::GET, &path, Some(&self.admin), None);
                    let actions = actions.await.body["instanceActions"].clone();
                    let request = actions[0]["request_id"].as_str().unwrap_or_default();
                    let action = self
                        .ctx
                        .call(
                            Method::GET,
                            &format!("{path}/{request}"),
                            Some(&self.admin),
                            None,
                        )
                        .await;
                    panic!("not migrated to {target}: {}", action.body);
                }
                return target.to_string();
            }
            assert!(start.elapsed() < BOOT, "not migrated: {server}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

#[tokio::test]
#[ignore = "needs root, QEMU and network namespaces (tests/run.sh runs it)"]
async fn vms_on_two_nodes_reach_each_other_over_vxlan_and_another_projects_network_stays_apart() {
    let cloud = cloud_on_rig(2).await;
    let admin = cloud.admin.clone();
    let net_a = cloud.network(&admin, "net-a").await;
    // a1 and a2 admit HTTP from anywhere: only the networks' isolation keeps c out.
    let a = cloud
        .spread_pair(&net_a, [("a1", "10.20.0.11"), ("a2", "10.20.0.12")], true)
        .await;

    // Project b: its own network with the same CIDR; c probes a1's and a2's addresses.
    let (_, _, member) = cloud.ctx.user_with_role(&admin, "b", "member").await;
    let net_b = cloud.network(&member, "net-b").await;
    let port_c = cloud.port(&member, &net_b, "10.20.0.13", None).await;
    let mut server = cloud.server(
        "c",
        "e2e-small",
        Some(&probe(&["10.20.0.11", "10.20.0.12"])),
    );
    server["networks"] = json!([{"port": port_c}]);
    let c = cloud.boot_as(&member, json!({ "server": server })).await;

    for id in a.iter().chain([&c]) {
        cloud.wait_status(id, "ACTIVE", BOOT).await;
    }
    let hosts: Vec<String> = futures_util::future::join_all(a.iter().map(|id| cloud.show(id)))
        .await
        .iter()
        .map(Cloud::host_of)
        .collect();
    assert_ne!(
        hosts[0], hosts[1],
        "anti-affinity puts a1 and a2 on both nodes"
    );

    // Each VM got exactly its port's address, and a1 and a2 answer each other.
    for (id, ip) in [
        (&a[0], "10.20.0.11"),
        (&a[1], "10.20.0.12"),
        (&c, "10.20.0.13"),
    ] {
        cloud
            .wait_console(id, &format!("YUNJI-DHCP interface=eth0 ip={ip}"), 1)
            .await;
    }
    cloud
        .wait_console(&a[0], "YUNJI-REACH hostname=a2", 1)
        .await;
    cloud
        .wait_console(&a[1], "YUNJI-REACH hostname=a1", 1)
        .await;

    // While both answer, c (with its address) tries them again and again in vain.
    let tried = cloud.console(&c).await.matches("YUNJI-UNREACHED").count();
    let output = cloud.wait_console(&c, "YUNJI-UNREACHED", tried + 6).await;
    assert!(!output.contains("YUNJI-REACH"), "{output}");
    let output = cloud
        .wait_console(&a[0], "YUNJI-REACH hostname=a2", 3)
        .await;
    assert!(!output.contains("hostname=c"), "{output}");

    for id in a.iter().chain([&c]) {
        cloud.delete_and_check_gone(id).await;
    }
    // With no port left, each node carries nothing: no bridge, VXLAN, tap or table.
    let rig = cloud.rig.as_ref().unwrap();
    for n in 1..=2 {
        let node = rig.node(n);
        let mut left = Vec::new();
        for _ in 0..50 {
            left = rig.links(&node).await;
            left.retain(|l| l.starts_with("ybr-") || l.starts_with("yvx-") || l.starts_with("tap"));
            left.extend(rig.nft_tables(&node).await);
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(left.is_empty(), "node {n} still carries {left:?}");
    }
}

/// The probe lines (`YUNJI-REACH …`/`YUNJI-UNREACHED …`) a console shows, in order;
/// with a target, only those of probes to that address.
pub(super) fn probes<'a>(console: &'a str, target: Option<&str>) -> Vec<&'a str> {
    console
        .lines()
        .filter(|l| l.starts_with("YUNJI-REACH") || l.starts_with("YUNJI-UNREACHED"))
        .filter(|l| target.is_none_or(|ip| l.rsplit(' ').next() == Some(ip)))
        .collect()
}

impl Cloud {
    async fn group(&self, name: &str) -> String {
        let r = self
            .ctx
            .call(
                Method::POST,
                "/network/v2.0/security-groups",
                Some(&self.admin),
                Some(json!({"security_group": {"name": name}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["security_group"]["id"].as_str().unwrap().to_string()
    }

    /// Adds an ingress HTTP rule to `group` from a group or a prefix; returns its id.
    async fn http_rule(&self, group: &str, from: Value) -> String {
        let mut rule = json!({"security_group_id": group, "direction": "ingress",
            "protocol": "tcp", "port_range_min": 80, "port_range_max": 80});
        rule.as_object_mut()
            .unwrap()
            .extend(from.as_object().unwrap().clone());
        let r = self
            .ctx
            .call(
                Method::POST,
                "/network/v2.0/security-group-rules",
                Some(&self.admin),
                Some(json!({ "security_group_rule": rule })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["security_group_rule"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits until the last `n` probes on the console (to `target`, or to any) all
    /// satisfy `want`.
    pub(super) async fn wait_probes(
        &self,
        id: &str,
        target: Option<&str>,
        n: usize,
        what: &str,
        want: impl Fn(&str) -> bool,
    ) {
        let start = std::time::Instant::now();
        loop {
            let console = self.console(id).await;
            let lines = probes(&console, target);
            if lines.len() >= n && lines[lines.len() - n..].iter().all(|l| want(l)) {
                return;
            }
            assert!(
                start.elapsed() < BOOT,
                "{id}: not {n} probes in a row {what}:\n{console}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[tokio::test]
#[ignore = "needs root, QEMU and network namespaces (tests/run.sh runs it)"]
async fn security_groups_admit_their_remote_group_and_prefixes_and_drop_a_forged_source() {
    let cloud = cloud_on_rig(2).await;
    let admin = cloud.admin.clone();
    let net = cloud.network(&admin, "net-sg").await;
    // web admits HTTP from group x only; other and forger are in neither.
    let x = cloud.group("x").await;
    let web = cloud.group("web").await;
    let other = cloud.group("other").await;
    cloud.http_rule(&web, json!({"remote_group_id": x})).await;
    // An address no port has: only a VM forging it as its source could use this rule.
    cloud
        .http_rule(&web, json!({"remote_ip_prefix": "10.20.0.50/32"}))
        .await;
    // Once it has its address, the forger swaps it for that one, then probes.
    let forge = format!(
        "#!/bin/sh\n( until ip -4 addr show dev eth0 | grep -q inet; do sleep 1; done; \
         ip addr flush dev eth0; ip addr add 10.20.0.50/24 dev eth0; echo YUNJI-FORGED; \
         {}) &\n",
        probe_loop(&["10.20.0.21"], 120)
    );
    let vms = [
        ("server", "10.20.0.21", &web, None),
        ("member", "10.20.0.22", &x, Some(probe(&["10.20.0.21"]))),
        (
            "outsider",
            "10.20.0.23",
            &other,
            Some(probe(&["10.20.0.21"])),
        ),
        ("forger", "10.20.0.24", &other, Some(forge)),
    ];
    let mut ids = Vec::new();
    for (name, ip, group, script) in &vms {
        let port = cloud.port(&admin, &net, ip, Some(&[group.as_str()])).await;
        let mut server = cloud.server(name, "e2e-small", script.as_deref());
        server["networks"] = json!([{"port": port}]);
        ids.push(cloud.boot_as(&admin, json!({ "server": server })).await);
    }
    let [member, outsider, forger] = [&ids[1], &ids[2], &ids[3]];
    for id in &ids {
        cloud.wait_status(id, "ACTIVE", BOOT).await;
    }

    // The remote group admits its member; nobody else gets through.
    cloud
        .wait_console(member, "YUNJI-REACH hostname=server", 1)
        .await;
    cloud.wait_console(forger, "YUNJI-FORGED", 1).await;
    let seen = probes(&cloud.console(outsider).await, None).len();
    cloud
        .wait_probes(outsider, None, seen + 4, "unreached", |l| {
            l.starts_with("YUNJI-UNREACHED")
        })
        .await;
    // Its probes start only once it forged: every one of them must fail.
    cloud
        .wait_probes(forger, None, 4, "unreached", |l| {
            l.starts_with("YUNJI-UNREACHED")
        })
        .await;
    let forged = cloud.console(forger).await;
    assert!(
        !forged.contains("YUNJI-REACH"),
        "a forged source got through:\n{forged}"
    );

    // A prefix rule opens the server to the outsider; deleting it closes it again.
    let rule = cloud
        .http_rule(&web, json!({"remote_ip_prefix": "10.20.0.23/32"}))
        .await;
    cloud
        .wait_probes(outsider, None, 2, "reaching the server", |l| {
            l.starts_with("YUNJI-REACH hostname=server ")
        })
        .await;
    let r = cloud
        .ctx
        .call(
            Method::DELETE,
            &format!("/network/v2.0/security-group-rules/{rule}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    cloud
        .wait_probes(outsider, None, 3, "unreached after the delete", |l| {
            l.starts_with("YUNJI-UNREACHED")
        })
        .await;
    cloud
        .wait_probes(member, None, 2, "still reaching the server", |l| {
            l.starts_with("YUNJI-REACH hostname=server ")
        })
        .await;
    for id in &ids {
        cloud.delete_and_check_gone(id).await;
    }
}

#[tokio::test]
#[ignore = "needs root, QEMU and network namespaces (tests/run.sh runs it)"]
async fn a_restarted_agent_repairs_its_broken_datapath_from_the_schedulers_state() {
    let mut cloud = cloud_on_rig(2).await;
    let admin = cloud.admin.clone();
    let net = cloud.network(&admin, "net-r").await;
    let ids = cloud
        .spread_pair(&net, [("r1", "10.20.0.31"), ("r2", "10.20.0.32")], true)
        .await;
    for id in &ids {
        cloud.wait_status(id, "ACTIVE", BOOT).await;
    }
    // r2, on the other node, watches r1 (r1's console needs its agent).
    let reached = |l: &str| l.starts_with("YUNJI-REACH hostname=r1 ");
    cloud
        .wait_probes(&ids[1], None, 1, "reaching r1", reached)
        .await;

    // r1's node loses its agent and, behind everyone's back, its bridges and tables.
    let host = Cloud::host_of(&cloud.show(&ids[0]).await);
    let n: usize = host.strip_prefix("node-").unwrap().parse().unwrap();
    cloud.nodes[n - 1].sigkill().await;
    let rig = cloud.rig.as_ref().unwrap();
    let node = rig.node(n);
    for link in rig.links(&node).await {
        if link.starts_with("ybr-") || link.starts_with("yvx-") {
            rig.ip(&node, &format!("link del {link}")).await;
        }
    }
    for table in rig.nft_tables(&node).await {
        let mut argv = vec!["netns", "exec", &node, "nft", "delete", "table"];
        argv.extend(table.split_whitespace());
        yunji_common::execute::execute("ip", &argv, Duration::from_secs(10))
            .await
            .unwrap();
    }
    cloud
        .wait_probes(&ids[1], None, 3, "cut off", |l| {
            l.starts_with("YUNJI-UNREACHED")
        })
        .await;

    // The agent comes back; the scheduler pushes it its spec, which rebuilds it all.
    cloud.nodes[n - 1].spawn(&cloud.ctx);
    cloud
        .wait_probes(&ids[1], None, 2, "reaching r1 again", reached)
        .await;
    let rig = cloud.rig.as_ref().unwrap();
    let links = rig.links(&node).await;
    assert!(links.iter().any(|l| l.starts_with("ybr-")), "{links:?}");
    assert_eq!(rig.nft_tables(&node).await.len(), 2);
    for id in &ids {
        cloud.delete_and_check_gone(id).await;
    }
}

#[tokio::test]
#[ignore = "needs root, QEMU and network namespaces (tests/run.sh runs it)"]
async fn floating_and_public_ips_reach_a_vm_from_the_external_network_until_released() {
    let cloud = cloud_on_rig(2).await;
    let admin = cloud.admin.clone();
    let external = json!({"name": "public", "router:external": true});
    let (ext, _) = cloud.network_with(&admin, external, "203.0.113.0/24").await;
    let (net, subnet) = cloud
        .network_with(&admin, json!({"name": "net-f"}), CIDR)
        .await;
    let router = cloud
        .neutron(
            Method::POST,
            "/routers",
            Some(json!({"router": {"name": "r", "external_gateway_info": {"network_id": ext}}})),
            StatusCode::CREATED,
        )
        .await["router"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let interface = json!({ "subnet_id": subnet });
    cloud
        .neutron(
            Method::PUT,
            &format!("/routers/{router}/add_router_interface"),
            Some(interface.clone()),
            StatusCode::OK,
        )
        .await;

    // v serves HTTP on the tenant network and probes the outside VM (out through SNAT);
    // outside, on the external network, probes v's floating and public IPs.
    let open = cloud.open_http_group(&admin).await;
    let floating = "203.0.113.77";
    let fip = cloud
        .neutron(
            Method::POST,
            "/floatingips",
            Some(json!({"floatingip": {"floating_network_id": ext, "floating_ip_address": floating}})),
            StatusCode::CREATED,
        )
        .await["floatingip"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let public = cloud
        .neutron(
            Method::POST,
            "/publicips",
            Some(json!({"publicip": {"name": "web"}})),
            StatusCode::CREATED,
        )
        .await["publicip"]
        .clone();
    let (public_id, public_ip) = (
        public["id"].as_str().unwrap().to_string(),
        public["public_ip_address"].as_str().unwrap().to_string(),
    );
    let port_v = cloud
        .port(&admin, &net, "10.20.0.11", Some(&[open.as_str()]))
        .await;
    let mut server = cloud.server("v", "e2e-small", Some(&probe(&["203.0.113.50"])));
    server["networks"] = json!([{ "port": port_v }]);
    let v = cloud.boot_as(&admin, json!({ "server": server })).await;
    let port_out = cloud
        .port(&admin, &ext, "203.0.113.50", Some(&[open.as_str()]))
        .await;
    // Probing for longer than the others: the floating IP is also probed after a move.
    let script = format!("#!/bin/sh\n{}", probe_loop(&[floating, &public_ip], 300));
    let mut server = cloud.server("outside", "e2e-small", Some(&script));
    server["networks"] = json!([{ "port": port_out }]);
    let outside = cloud.boot_as(&admin, json!({ "server": server })).await;
    cloud.wait_status(&v, "ACTIVE", BOOT).await;
    cloud.wait_status(&outside, "ACTIVE", BOOT).await;

    let reach_v = |l: &str| l.starts_with("YUNJI-REACH hostname=v ");
    let unreached = |l: &str| l.starts_with("YUNJI-UNREACHED");
    // Out: v reaches the external network through the router.
    cloud
        .wait_probes(&v, None, 2, "reaching outside", |l| {
            l.starts_with("YUNJI-REACH hostname=outside ")
        })
        .await;
    // In: nothing answers for the floating IP before it is associated.
    cloud
        .wait_probes(&outside, Some(floating), 3, "unreached", unreached)
        .await;
    let set_port = |port: Value| json!({"floatingip": {"port_id": port}});
    let path = format!("/floatingips/{fip}");
    cloud
        .neutron(
            Method::PUT,
            &path,
            Some(set_port(json!(port_v))),
            StatusCode::OK,
        )
        .await;
    cloud
        .wait_probes(&outside, Some(floating), 2, "reaching v", reach_v)
        .await;
    cloud
        .neutron(
            Method::PUT,
            &path,
            Some(set_port(Value::Null)),
            StatusCode::OK,
        )
        .await;
    cloud
        .wait_probes(&outside, Some(floating), 3, "unreached again", unreached)
        .await;

    // The public IP: bound by server, then by private address; unbound each time.
    for target in [
        json!({ "server_id": v }),
        json!({"private_ip_address": "10.20.0.11"}),
    ] {
        cloud
            .neutron(
                Method::POST,
                &format!("/publicips/{public_id}/bind"),
                Some(target.clone()),
                StatusCode::OK,
            )
            .await;
        cloud
            .wait_probes(&outside, Some(&public_ip), 2, "reaching v", reach_v)
            .await;
        cloud
            .neutron(
                Method::POST,
                &format!("/publicips/{public_id}/unbind"),
                Some(target),
                StatusCode::OK,
            )
            .await;
        cloud
            .wait_probes(&outside, Some(&public_ip), 3, "unreached", unreached)
            .await;
    }

    // Associated again, the floating IP follows v when it live-migrates to the other
    // node: the router's NAT stays where it is, and v's port moves under it.
    cloud
        .neutron(
            Method::PUT,
            &path,
            Some(set_port(json!(port_v))),
            StatusCode::OK,
        )
        .await;
    cloud
        .wait_probes(&outside, Some(floating), 2, "reaching v", reach_v)
        .await;
    cloud.migrate_to_the_other_node(&v).await;
    let seen = probes(&cloud.console(&outside).await, Some(floating)).len();
    cloud
        .wait_probes(&outside, Some(floating), seen + 3, "probing on", |_| true)
        .await;
    cloud
        .wait_probes(
            &outside,
            Some(floating),
            3,
            "reaching v on its new node",
            reach_v,
        )
        .await;

    for id in [&v, &outside] {
        cloud.delete_and_check_gone(id).await;
    }
    cloud
        .neutron(Method::DELETE, &path, None, StatusCode::NO_CONTENT)
        .await;
    cloud
        .neutron(
            Method::DELETE,
            &format!("/publicips/{public_id}"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    cloud
        .neutron(
            Method::PUT,
            &format!("/routers/{router}/remove_router_interface"),
            Some(interface),
            StatusCode::OK,
        )
        .await;
    cloud
        .neutron(
            Method::DELETE,
            &format!("/routers/{router}"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
}

#[tokio::test]
#[ignore = "needs root, QEMU and network namespaces (tests/run.sh runs it)"]
async fn a_live_migrated_vm_keeps_running_and_answers_on_its_new_node() {
    let cloud = cloud_on_rig(2).await;
    let admin = cloud.admin.clone();
    let net = cloud.network(&admin, "net-m").await;
    let ids = cloud
        .spread_pair(&net, [("m1", "10.20.0.41"), ("m2", "10.20.0.42")], false)
        .await;
    for id in &ids {
        cloud.wait_status(id, "ACTIVE", BOOT).await;
    }
    let reaches_m1 = |l: &str| l.starts_with("YUNJI-REACH hostname=m1 ");
    cloud
        .wait_probes(&ids[1], None, 1, "reaching m1", reaches_m1)
        .await;
    cloud.wait_console(&ids[0], "YUNJI-TICK 3", 1).await;

    cloud.migrate_to_the_other_node(&ids[0]).await;
    // The console is the target's now: it goes on counting, never booting again.
    let console = cloud.wait_console(&ids[0], "YUNJI-TICK", 2).await;
    let first_tick: u32 = console
        .lines()
        .find_map(|l| l.strip_prefix("YUNJI-TICK "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(first_tick > 3, "counting restarted:\n{console}");
    assert!(!console.contains("YUNJI-BOOT-OK"), "{console}");
    // Its port followed it: m2 reaches it again (probes made after the move), and it
    // reaches m2.
    let seen = probes(&cloud.console(&ids[1]).await, None).len();
    cloud
        .wait_probes(&ids[1], None, seen + 3, "probing on", |_| true)
        .await;
    cloud
        .wait_probes(&ids[1], None, 3, "reaching m1 on its new node", reaches_m1)
        .await;
    cloud
        .wait_probes(&ids[0], None, 2, "reaching m2 from the new node", |l| {
            l.starts_with("YUNJI-REACH hostname=m2 ")
        })
        .await;
    for id in &ids {
        cloud.delete_and_check_gone(id).await;
    }
}
