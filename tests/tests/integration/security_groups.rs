//! Neutron security groups and rules (B.3.5): the project's `default` group made once
//! on first use, rule validation and duplicates, groups in use, quotas, ports' groups,
//! and Nova's add/remove security group actions.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

use crate::network_ports::{delete, get, network_with_subnet, neutron_type, port, send};

async fn group(ctx: &TestContext, token: &str, body: Value) -> Reply {
    send(
        ctx,
        Method::POST,
        "/security-groups",
        token,
        json!({"security_group": body}),
    )
    .await
}

async fn rule(ctx: &TestContext, token: &str, body: Value) -> Reply {
    send(
        ctx,
        Method::POST,
        "/security-group-rules",
        token,
        json!({"security_group_rule": body}),
    )
    .await
}

fn id(r: &Reply, key: &str) -> String {
    r.body[key]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} id in {}", r.body))
        .to_string()
}

/// (direction, ethertype, remote group is the group itself, remote prefix) of each rule.
fn rule_shapes(group: &Value) -> Vec<(String, String, bool, Value)> {
    let gid = &group["id"];
    let mut shapes: Vec<_> = group["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["direction"].as_str().unwrap().to_string(),
                r["ethertype"].as_str().unwrap().to_string(),
                r["remote_group_id"] == *gid,
                r["remote_ip_prefix"].clone(),
            )
        })
        .collect();
    shapes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    shapes
}

#[tokio::test]
async fn the_default_group_is_made_once_on_first_use_with_neutrons_rules() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;

    // Ten first uses at once: listing groups and making ports.
    let (net, _) = network_with_subnet(&ctx, &member, "10.0.0.0/24").await;
    let uses = (0..10).map(|i| {
        let (ctx, member, net) = (&ctx, &member, &net);
        async move {
            if i % 2 == 0 {
                get(ctx, "/security-groups", member).await
            } else {
                port(ctx, member, json!({"network_id": net})).await
            }
        }
    });
    let replies = futures_util::future::join_all(uses).await;
    let listed = get(&ctx, "/security-groups", &member).await;

    for r in &replies {
        assert!(r.status.is_success(), "{}", r.body);
    }
    let groups = listed.body["security_groups"].as_array().unwrap();
    assert_eq!(
        groups.len(),
        1,
        "exactly one default group: {}",
        listed.body
    );
    let default = &groups[0];
    assert_eq!(default["name"], "default");
    assert_eq!(default["project_id"], project.as_str());
    assert_eq!(default["tenant_id"], project.as_str());
    assert_eq!(default["stateful"], true);
    assert_eq!(
        rule_shapes(default),
        vec![
            ("egress".into(), "IPv4".into(), false, Value::Null),
            ("egress".into(), "IPv6".into(), false, Value::Null),
            ("ingress".into(), "IPv4".into(), true, Value::Null),
            ("ingress".into(), "IPv6".into(), true, Value::Null),
        ]
    );
    // Every port made without groups got it.
    for r in replies.iter().filter(|r| r.body.get("port").is_some()) {
        assert_eq!(r.body["port"]["security_groups"], json!([default["id"]]));
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn groups_are_created_shown_renamed_and_deleted_but_not_while_in_use() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;

    let web = group(
        &ctx,
        &member,
        json!({"name": "web", "description": "HTTP in"}),
    )
    .await;
    let named_default = group(&ctx, &member, json!({"name": "default"})).await;
    let stateless = group(&ctx, &member, json!({"name": "x", "stateful": false})).await;
    let web_id = id(&web, "security_group");
    let shown = get(&ctx, &format!("/security-groups/{web_id}"), &member).await;
    let renamed = send(
        &ctx,
        Method::PUT,
        &format!("/security-groups/{web_id}"),
        &member,
        json!({"security_group": {"name": "www"}}),
    )
    .await;
    let (net, _) = network_with_subnet(&ctx, &member, "10.0.0.0/24").await;
    let user = port(
        &ctx,
        &member,
        json!({"network_id": net, "security_groups": [web_id]}),
    )
    .await;
    let in_use = delete(&ctx, &format!("/security-groups/{web_id}"), &member).await;
    let port_id = id(&user, "port");
    delete(&ctx, &format!("/ports/{port_id}"), &member).await;
    let deleted = delete(&ctx, &format!("/security-groups/{web_id}"), &member).await;
    let gone = get(&ctx, &format!("/security-groups/{web_id}"), &member).await;
    let listed = get(&ctx, "/security-groups", &member).await;
    let default_id = listed.body["security_groups"][0]["id"].as_str().unwrap();
    let default_delete = delete(&ctx, &format!("/security-groups/{default_id}"), &member).await;
    let default_rename = send(
        &ctx,
        Method::PUT,
        &format!("/security-groups/{default_id}"),
        &member,
        json!({"security_group": {"name": "mine"}}),
    )
    .await;

    assert_eq!(web.status, StatusCode::CREATED, "{}", web.body);
    assert_eq!(web.body["security_group"]["description"], "HTTP in");
    assert_eq!(
        rule_shapes(&web.body["security_group"]),
        vec![
            ("egress".into(), "IPv4".into(), false, Value::Null),
            ("egress".into(), "IPv6".into(), false, Value::Null),
        ]
    );
    assert_eq!(named_default.status, StatusCode::CONFLICT);
    assert_eq!(
        neutron_type(&named_default),
        "SecurityGroupDefaultAlreadyExists"
    );
    assert_eq!(stateless.status, StatusCode::BAD_REQUEST);
    assert_eq!(shown.body["security_group"], web.body["security_group"]);
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["security_group"]["name"], "www");
    assert_eq!(renamed.body["security_group"]["revision_number"], 2);
    assert_eq!(user.body["port"]["security_groups"], json!([web_id]));
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{}", in_use.body);
    assert_eq!(neutron_type(&in_use), "SecurityGroupInUse");
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&gone), "SecurityGroupNotFound");
    assert_eq!(default_delete.status, StatusCode::CONFLICT);
    assert_eq!(
        neutron_type(&default_delete),
        "SecurityGroupCannotRemoveDefault"
    );
    assert_eq!(default_rename.status, StatusCode::CONFLICT);
    ctx.shutdown().await;
}

#[tokio::test]
async fn rules_are_validated_normalised_and_a_duplicate_is_409_naming_the_rule() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let web = group(&ctx, &member, json!({"name": "web"})).await;
    let g = id(&web, "security_group");
    let other = group(&ctx, &member, json!({"name": "db"})).await;
    let o = id(&other, "security_group");

    let ssh = rule(
        &ctx,
        &member,
        json!({"security_group_id": g, "direction": "ingress", "protocol": "TCP",
               "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.1.2.3/16"}),
    )
    .await;
    let again = rule(
        &ctx,
        &member,
        json!({"security_group_id": g, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.1.0.0/16"}),
    )
    .await;
    let from_group = rule(
        &ctx,
        &member,
        json!({"security_group_id": g, "direction": "ingress", "ethertype": "IPv6",
               "protocol": 6, "port_range_min": 80, "port_range_max": 443, "remote_group_id": o}),
    )
    .await;
    let ping = rule(
        &ctx,
        &member,
        json!({"security_group_id": g, "direction": "ingress", "protocol": "icmp",
               "port_range_min": 8, "port_range_max": 0}),
    )
    .await;
    let bad = [
        json!({"security_group_id": g, "direction": "sideways"}),
        json!({"security_group_id": g, "direction": "ingress", "ethertype": "IPX"}),
        json!({"security_group_id": g, "direction": "ingress", "protocol": "teleport"}),
        json!({"security_group_id": g, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 90, "port_range_max": 80}),
        json!({"security_group_id": g, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 0, "port_range_max": 70000}),
        json!({"security_group_id": g, "direction": "ingress", "port_range_min": 22}),
        json!({"security_group_id": g, "direction": "ingress", "protocol": "icmp",
               "port_range_min": 300}),
        json!({"security_group_id": g, "direction": "ingress", "remote_ip_prefix": "fd00::/8"}),
        json!({"security_group_id": g, "direction": "ingress", "remote_ip_prefix": "10.0.0.0/8",
               "remote_group_id": o}),
        json!({"security_group_id": g, "direction": "ingress", "remote_ip_prefix": "nonsense"}),
        json!({"security_group_id": g, "direction": "ingress", "ethertype": "IPv4",
               "protocol": "ipv6-icmp"}),
    ];
    let mut refused = Vec::new();
    for body in &bad {
        refused.push((body.clone(), rule(&ctx, &member, body.clone()).await));
    }
    let unknown_group = rule(
        &ctx,
        &member,
        json!({"security_group_id": "nope", "direction": "ingress"}),
    )
    .await;
    let ssh_id = id(&ssh, "security_group_rule");
    let shown_group = get(&ctx, &format!("/security-groups/{g}"), &member).await;
    let filtered = get(
        &ctx,
        &format!("/security-group-rules?security_group_id={g}&protocol=tcp"),
        &member,
    )
    .await;
    let removed = delete(&ctx, &format!("/security-group-rules/{ssh_id}"), &member).await;
    let removed_again = delete(&ctx, &format!("/security-group-rules/{ssh_id}"), &member).await;
    // Deleting a group takes the rules of other groups that refer to it.
    let db_deleted = delete(&ctx, &format!("/security-groups/{o}"), &member).await;
    let after = get(&ctx, &format!("/security-groups/{g}"), &member).await;

    assert_eq!(ssh.status, StatusCode::CREATED, "{}", ssh.body);
    let r = &ssh.body["security_group_rule"];
    assert_eq!(r["protocol"], "tcp");
    assert_eq!(r["ethertype"], "IPv4");
    assert_eq!(r["remote_ip_prefix"], "10.1.0.0/16");
    assert_eq!(
        (r["port_range_min"].clone(), r["port_range_max"].clone()),
        (json!(22), json!(22))
    );
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(neutron_type(&again), "SecurityGroupRuleExists");
    assert!(again.body.to_string().contains(&ssh_id), "{}", again.body);
    assert_eq!(
        from_group.status,
        StatusCode::CREATED,
        "{}",
        from_group.body
    );
    assert_eq!(from_group.body["security_group_rule"]["protocol"], "6");
    assert_eq!(
        from_group.body["security_group_rule"]["remote_group_id"],
        o.as_str()
    );
    assert_eq!(ping.status, StatusCode::CREATED, "{}", ping.body);
    for (body, r) in &refused {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} -> {}", r.body);
    }
    assert_eq!(unknown_group.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&unknown_group), "SecurityGroupNotFound");
    // Two egress rules, then the three added.
    assert_eq!(
        shown_group.body["security_group"]["security_group_rules"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert!(
        shown_group.body["security_group"]["revision_number"]
            .as_i64()
            .unwrap()
            > 1
    );
    let tcp: Vec<&Value> = filtered.body["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(tcp.len(), 1, "{}", filtered.body);
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(removed_again.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&removed_again), "SecurityGroupRuleNotFound");
    assert_eq!(db_deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        after.body["security_group"]["security_group_rules"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{}",
        after.body
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn policy_hides_other_projects_groups_and_readers_cannot_change_them() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, alice) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, _, bob) = ctx.user_with_role(&admin, "bob", "member").await;
    let (_, _, reader) = ctx.user_with_role(&admin, "rita", "reader").await;
    let web = group(&ctx, &alice, json!({"name": "web"})).await;
    let g = id(&web, "security_group");
    let r = rule(
        &ctx,
        &alice,
        json!({"security_group_id": g, "direction": "ingress"}),
    )
    .await;
    let rid = id(&r, "security_group_rule");

    let anonymous = ctx
        .call(
            Method::GET,
            &format!("{}/security-groups", crate::network_ports::N),
            None,
            None,
        )
        .await;
    let bob_sees = get(&ctx, &format!("/security-groups/{g}"), &bob).await;
    let bob_rule = get(&ctx, &format!("/security-group-rules/{rid}"), &bob).await;
    let bob_deletes = delete(&ctx, &format!("/security-groups/{g}"), &bob).await;
    let bob_adds = rule(
        &ctx,
        &bob,
        json!({"security_group_id": g, "direction": "egress", "protocol": "udp"}),
    )
    .await;
    let bob_list = get(&ctx, "/security-groups", &bob).await;
    let bob_port = {
        let (net, _) = network_with_subnet(&ctx, &bob, "10.9.0.0/24").await;
        port(
            &ctx,
            &bob,
            json!({"network_id": net, "security_groups": [g]}),
        )
        .await
    };
    let reader_creates = group(&ctx, &reader, json!({"name": "r"})).await;
    let admin_sees = get(&ctx, &format!("/security-groups/{g}"), &admin).await;
    let admin_all = get(&ctx, "/security-groups", &admin).await;

    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bob_sees.status, StatusCode::NOT_FOUND);
    assert_eq!(bob_rule.status, StatusCode::NOT_FOUND);
    assert_eq!(bob_deletes.status, StatusCode::NOT_FOUND);
    assert_eq!(bob_adds.status, StatusCode::NOT_FOUND);
    assert!(
        !bob_list.body["security_groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == g.as_str()),
        "{}",
        bob_list.body
    );
    assert_eq!(bob_port.status, StatusCode::NOT_FOUND, "{}", bob_port.body);
    assert_eq!(reader_creates.status, StatusCode::FORBIDDEN);
    assert_eq!(admin_sees.status, StatusCode::OK);
    // Admins see every project's groups: alice's two and bob's default at least.
    assert!(admin_all.body["security_groups"].as_array().unwrap().len() >= 3);
    ctx.shutdown().await;
}

#[tokio::test]
async fn quotas_bound_groups_and_rules() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let set = send(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &admin,
        json!({"quota": {"security_group": 2, "security_group_rule": 7}}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    // The default group (4 rules) and one more group (2 rules) fill the groups.
    let first = group(&ctx, &member, json!({"name": "one"})).await;
    let second = group(&ctx, &member, json!({"name": "two"})).await;
    let g = id(&first, "security_group");
    let seventh = rule(
        &ctx,
        &member,
        json!({"security_group_id": g, "direction": "ingress"}),
    )
    .await;
    let eighth = rule(
        &ctx,
        &member,
        json!({"security_group_id": g, "direction": "ingress", "protocol": "udp"}),
    )
    .await;
    let usage = get(&ctx, &format!("/quotas/{project}/details"), &admin).await;

    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(neutron_type(&second), "OverQuota");
    assert_eq!(seventh.status, StatusCode::CREATED, "{}", seventh.body);
    assert_eq!(eighth.status, StatusCode::CONFLICT);
    assert_eq!(usage.body["quota"]["security_group"]["used"], 2);
    assert_eq!(usage.body["quota"]["security_group_rule"]["used"], 7);
    ctx.shutdown().await;
}

#[tokio::test]
async fn servers_take_groups_by_name_and_nova_adds_and_removes_them() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (net, _) = network_with_subnet(&ctx, &admin, "10.0.0.0/24").await;
    let web = group(&ctx, &admin, json!({"name": "web"})).await;
    let web_id = id(&web, "security_group");
    group(&ctx, &admin, json!({"name": "db"})).await;
    let boot = |groups: Value| {
        let ctx = &ctx;
        let (admin, image, net) = (&admin, &image, &net);
        async move {
            ctx.call(
                Method::POST,
                "/compute/v2.1/servers",
                Some(admin),
                Some(
                    json!({"server": {"name": "vm", "flavorRef": "1", "imageRef": image,
                    "networks": [{"uuid": net}], "security_groups": groups}}),
                ),
            )
            .await
        }
    };
    let unknown = boot(json!([{"name": "nope"}])).await;
    let r = boot(json!([{"name": "web"}])).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let server = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &server, "ACTIVE", Duration::from_secs(20))
        .await;
    let action = |body: Value| {
        let (ctx, admin, server) = (&ctx, &admin, &server);
        async move {
            ctx.call(
                Method::POST,
                &format!("/compute/v2.1/servers/{server}/action"),
                Some(admin),
                Some(body),
            )
            .await
        }
    };
    let ports_groups = || async {
        let ports = get(&ctx, &format!("/ports?device_id={server}"), &admin).await;
        ports.body["ports"][0]["security_groups"].clone()
    };
    let at_boot = ports_groups().await;
    let added = action(json!({"addSecurityGroup": {"name": "db"}})).await;
    let after_add = ports_groups().await;
    let listed = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{server}/os-security-groups"),
            Some(&admin),
            None,
        )
        .await;
    let shown = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{server}"),
            Some(&admin),
            None,
        )
        .await;
    let removed = action(json!({"removeSecurityGroup": {"name": "web"}})).await;
    let removed_again = action(json!({"removeSecurityGroup": {"name": "web"}})).await;
    let add_unknown = action(json!({"addSecurityGroup": {"name": "nope"}})).await;
    let after_remove = ports_groups().await;

    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    assert_eq!(at_boot, json!([web_id]));
    assert_eq!(added.status, StatusCode::ACCEPTED, "{}", added.body);
    assert_eq!(after_add.as_array().unwrap().len(), 2, "{after_add}");
    let names: Vec<&str> = listed.body["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "db"]);
    assert_eq!(
        shown.body["server"]["security_groups"],
        json!([{"name": "web"}, {"name": "db"}])
    );
    assert_eq!(removed.status, StatusCode::ACCEPTED);
    assert_eq!(removed_again.status, StatusCode::BAD_REQUEST);
    assert_eq!(add_unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(after_remove.as_array().unwrap().len(), 1);
    assert_ne!(after_remove[0], json!(web_id));
    ctx.shutdown().await;
}

/// The rules and remote members each node is pushed follow rule and membership changes
/// on other nodes.
#[tokio::test]
async fn nodes_carry_the_rules_of_their_ports_groups_and_the_members_of_remote_groups() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;
    let (net, _) = network_with_subnet(&ctx, &admin, "10.0.0.0/24").await;
    let web = id(
        &group(&ctx, &admin, json!({"name": "web"})).await,
        "security_group",
    );
    let client = id(
        &group(&ctx, &admin, json!({"name": "client"})).await,
        "security_group",
    );
    let http = rule(
        &ctx,
        &admin,
        json!({"security_group_id": web, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 80, "port_range_max": 80, "remote_group_id": client}),
    )
    .await;
    assert_eq!(http.status, StatusCode::CREATED, "{}", http.body);
    let spread = ctx
        .call(
            Method::POST,
            "/compute/v2.1/os-server-groups",
            Some(&admin),
            Some(json!({"server_group": {"name": "spread", "policies": ["anti-affinity"]}})),
        )
        .await;
    let spread = spread.body["server_group"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let boot = |name: &'static str, group: &'static str| {
        let (ctx, admin, image, net, spread) = (&ctx, &admin, &image, &net, &spread);
        async move {
            let r = ctx
                .call(
                    Method::POST,
                    "/compute/v2.1/servers",
                    Some(admin),
                    Some(
                        json!({"server": {"name": name, "flavorRef": "1", "imageRef": image,
                        "networks": [{"uuid": net}], "security_groups": [{"name": group}]},
                        "os:scheduler_hints": {"group": spread}}),
                    ),
                )
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
            let id = r.body["server"]["id"].as_str().unwrap().to_string();
            ctx.wait_server(admin, &id, "ACTIVE", Duration::from_secs(20))
                .await;
            let shown = ctx
                .call(
                    Method::GET,
                    &format!("/compute/v2.1/servers/{id}"),
                    Some(admin),
                    None,
                )
                .await;
            let host = shown.body["server"]["OS-EXT-SRV-ATTR:host"]
                .as_str()
                .unwrap()
                .to_string();
            let ports = get(ctx, &format!("/ports?device_id={id}"), admin).await;
            let address = ports.body["ports"][0]["fixed_ips"][0]["ip_address"]
                .as_str()
                .unwrap()
                .to_string();
            (id, host, address)
        }
    };
    let (server, server_host, _) = boot("server", "web").await;
    let (browser, browser_host, browser_ip) = boot("browser", "client").await;
    assert_ne!(server_host, browser_host, "anti-affinity spreads them");
    let server_node = usize::from(ctx.agent_name(0) != server_host);
    let members_seen = |node: usize, group: String| {
        let ctx = &ctx;
        async move {
            ctx.agent_network(node)
                .await
                .security_groups
                .into_iter()
                .find(|g| g.id == group)
                .map(|g| g.members)
                .unwrap_or_default()
        }
    };

    // The web server's node enforces web's rules and knows the client's members,
    // though the browser runs on the other node.
    ctx.eventually(
        Duration::from_secs(10),
        "the browser's address on the server's node",
        || {
            let ip = browser_ip.clone();
            let seen = members_seen(server_node, client.clone());
            async move { seen.await.contains(&ip) }
        },
    )
    .await;
    let carried = ctx.agent_network(server_node).await;
    let web_spec = carried
        .security_groups
        .iter()
        .find(|g| g.id == web)
        .unwrap();
    assert!(
        web_spec
            .rules
            .iter()
            .any(|r| r.remote_group_id.as_deref() == Some(client.as_str())
                && r.port_range_min == Some(80)),
        "{web_spec:?}"
    );
    let port = &carried.ports[0];
    assert_eq!(port.security_group_ids, vec![web.clone()]);

    // A rule added reaches the node.
    let ssh = rule(
        &ctx,
        &admin,
        json!({"security_group_id": web, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "192.0.2.0/24"}),
    )
    .await;
    assert_eq!(ssh.status, StatusCode::CREATED);
    ctx.eventually(
        Duration::from_secs(10),
        "the new rule on the server's node",
        || async {
            ctx.agent_network(server_node)
                .await
                .security_groups
                .iter()
                .any(|g| {
                    g.id == web
                        && g.rules
                            .iter()
                            .any(|r| r.remote_ip_prefix.as_deref() == Some("192.0.2.0/24"))
                })
        },
    )
    .await;

    // The browser leaves the client group: the server's node stops letting it in.
    let left = ctx
        .call(
            Method::POST,
            &format!("/compute/v2.1/servers/{browser}/action"),
            Some(&admin),
            Some(json!({"removeSecurityGroup": {"name": "client"}})),
        )
        .await;
    assert_eq!(left.status, StatusCode::ACCEPTED, "{}", left.body);
    ctx.eventually(
        Duration::from_secs(10),
        "the browser gone from client's members",
        || {
            let ip = browser_ip.clone();
            let seen = members_seen(server_node, client.clone());
            async move { !seen.await.contains(&ip) }
        },
    )
    .await;
    let _ = server;
    ctx.shutdown().await;
}
