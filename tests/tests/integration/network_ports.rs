//! Neutron v2.0 ports and IPAM: default and requested addresses, conflicts, exhausted
//! pools, parallel creation, MAC addresses, port security, and what ports keep from
//! being deleted.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

use crate::network::{create_network, create_subnet};

pub(crate) const N: &str = "/network/v2.0";

pub(crate) async fn send(
    ctx: &TestContext,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> Reply {
    ctx.call(method, &format!("{N}{path}"), Some(token), Some(body))
        .await
}

pub(crate) async fn get(ctx: &TestContext, path: &str, token: &str) -> Reply {
    ctx.call(Method::GET, &format!("{N}{path}"), Some(token), None)
        .await
}

pub(crate) async fn delete(ctx: &TestContext, path: &str, token: &str) -> Reply {
    ctx.call(Method::DELETE, &format!("{N}{path}"), Some(token), None)
        .await
}

pub(crate) async fn port(ctx: &TestContext, token: &str, port: Value) -> Reply {
    send(ctx, Method::POST, "/ports", token, json!({"port": port})).await
}

/// A network with one IPv4 subnet; returns (network id, subnet id).
pub(crate) async fn network_with_subnet(
    ctx: &TestContext,
    token: &str,
    cidr: &str,
) -> (String, String) {
    let network = create_network(ctx, token, json!({"name": "n"})).await;
    let net = network["id"].as_str().unwrap().to_string();
    let subnet = create_subnet(
        ctx,
        token,
        json!({"network_id": net, "ip_version": 4, "cidr": cidr}),
    )
    .await;
    (net, subnet["id"].as_str().unwrap().to_string())
}

pub(crate) fn neutron_type(r: &Reply) -> &str {
    r.body["NeutronError"]["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_port_gets_the_next_free_address_a_mac_and_gives_the_address_back() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (net, sub) = network_with_subnet(&ctx, &member, "10.0.0.0/24").await;

    let first = port(&ctx, &member, json!({"network_id": net, "name": "p1"})).await;
    let second = port(&ctx, &member, json!({"network_id": net})).await;
    let first_id = first.body["port"]["id"].as_str().unwrap();
    let shown = get(&ctx, &format!("/ports/{first_id}"), &member).await;
    let deleted = delete(&ctx, &format!("/ports/{first_id}"), &member).await;
    // IPAM moves on past the last address it handed out (a freed address is not reused
    // at once, so stale ARP entries elsewhere cannot misdirect traffic) ...
    let third = port(&ctx, &member, json!({"network_id": net})).await;
    // ... but the freed one is free: it can be asked for.
    let again = port(
        &ctx,
        &member,
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.2"}]}),
    )
    .await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let p = &first.body["port"];
    assert_eq!(
        p["fixed_ips"],
        json!([{"subnet_id": sub, "ip_address": "10.0.0.2"}])
    );
    assert!(p["mac_address"].as_str().unwrap().starts_with("fa:16:3e:"));
    assert_eq!(p["status"], "DOWN");
    assert_eq!(p["project_id"], project.as_str());
    assert_eq!(p["port_security_enabled"], true);
    // No groups asked: the project's default group, made on this first use.
    let groups = get(&ctx, "/security-groups?name=default", &member).await;
    let default = &groups.body["security_groups"][0]["id"];
    assert_eq!(p["security_groups"], json!([default]));
    assert_eq!(p["binding:vnic_type"], "normal");
    assert!(
        p.get("binding:host_id").is_none(),
        "binding is for administrators: {p}"
    );
    assert_eq!(
        second.body["port"]["fixed_ips"][0]["ip_address"],
        "10.0.0.3"
    );
    assert_eq!(shown.body["port"], first.body["port"]);
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(third.body["port"]["fixed_ips"][0]["ip_address"], "10.0.0.4");
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_requested_address_in_use_is_409_ip_address_already_allocated() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (net, sub) = network_with_subnet(&ctx, &admin, "10.0.0.0/24").await;

    let given = port(
        &ctx,
        &admin,
        json!({"network_id": net, "fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.50"}]}),
    )
    .await;
    let again = port(
        &ctx,
        &admin,
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.50"}]}),
    )
    .await;
    let gateway = port(
        &ctx,
        &admin,
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.1"}]}),
    )
    .await;
    let outside = port(
        &ctx,
        &admin,
        json!({"network_id": net, "fixed_ips": [{"subnet_id": sub, "ip_address": "10.1.0.5"}]}),
    )
    .await;
    let no_addresses = port(&ctx, &admin, json!({"network_id": net, "fixed_ips": []})).await;

    assert_eq!(given.status, StatusCode::CREATED, "{}", given.body);
    assert_eq!(
        given.body["port"]["fixed_ips"][0]["ip_address"],
        "10.0.0.50"
    );
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(neutron_type(&again), "IpAddressAlreadyAllocated");
    assert!(
        again.body["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains(&sub)
    );
    assert_eq!(gateway.status, StatusCode::CONFLICT);
    assert_eq!(outside.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_addresses.status, StatusCode::CREATED);
    assert_eq!(no_addresses.body["port"]["fixed_ips"], json!([]));
    ctx.shutdown().await;
}

#[tokio::test]
async fn an_exhausted_pool_is_409_naming_the_subnet() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    // A /29 less network, broadcast and gateway: five addresses.
    let (net, sub) = network_with_subnet(&ctx, &admin, "10.0.0.0/29").await;
    for _ in 0..5 {
        let r = port(&ctx, &admin, json!({"network_id": net})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }

    let sixth = port(&ctx, &admin, json!({"network_id": net})).await;
    let on_subnet = port(
        &ctx,
        &admin,
        json!({"network_id": net, "fixed_ips": [{"subnet_id": sub}]}),
    )
    .await;

    assert_eq!(sixth.status, StatusCode::CONFLICT);
    assert_eq!(neutron_type(&sixth), "IpAddressGenerationFailure");
    let message = sixth.body["NeutronError"]["message"].as_str().unwrap();
    assert!(
        message.contains(&sub) && message.contains("10.0.0.0/29"),
        "{message}"
    );
    assert_eq!(on_subnet.status, StatusCode::CONFLICT);
    ctx.shutdown().await;
}

#[tokio::test]
async fn an_address_freed_in_a_full_pool_is_handed_out_again() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    // Five addresses, all handed out: the only free one is the one given back.
    let (net, _) = network_with_subnet(&ctx, &admin, "10.0.0.0/29").await;
    let mut ports = Vec::new();
    for _ in 0..5 {
        let r = port(&ctx, &admin, json!({"network_id": net})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ports.push(r.body["port"].clone());
    }
    let freed = ports[1]["fixed_ips"][0]["ip_address"].clone();
    let id = ports[1]["id"].as_str().unwrap();
    assert_eq!(
        delete(&ctx, &format!("/ports/{id}"), &admin).await.status,
        StatusCode::NO_CONTENT
    );

    let again = port(&ctx, &admin, json!({"network_id": net})).await;

    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["port"]["fixed_ips"][0]["ip_address"], freed);
    ctx.shutdown().await;
}

#[tokio::test]
async fn ports_created_in_parallel_never_share_an_address() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    // 13 usable addresses for 20 ports: some must fail, none may double up.
    let (net, _) = network_with_subnet(&ctx, &admin, "10.0.0.0/28").await;

    let replies = futures_util::future::join_all(
        (0..20).map(|_| port(&ctx, &admin, json!({"network_id": net}))),
    )
    .await;

    let created: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    let addresses: HashSet<&str> = created
        .iter()
        .map(|r| {
            r.body["port"]["fixed_ips"][0]["ip_address"]
                .as_str()
                .unwrap()
        })
        .collect();
    let macs: HashSet<&str> = created
        .iter()
        .map(|r| r.body["port"]["mac_address"].as_str().unwrap())
        .collect();
    assert_eq!(created.len(), 13);
    assert_eq!(addresses.len(), 13);
    assert_eq!(macs.len(), 13);
    assert!(
        replies
            .iter()
            .filter(|r| r.status != StatusCode::CREATED)
            .all(|r| r.status == StatusCode::CONFLICT
                && neutron_type(r) == "IpAddressGenerationFailure")
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_given_mac_is_kept_and_a_taken_one_is_409() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (net, _) = network_with_subnet(&ctx, &admin, "10.0.0.0/24").await;

    let given = port(
        &ctx,
        &admin,
        json!({"network_id": net, "mac_address": "FA:16:3E:00:00:01"}),
    )
    .await;
    let taken = port(
        &ctx,
        &admin,
        json!({"network_id": net, "mac_address": "fa:16:3e:00:00:01"}),
    )
    .await;
    let multicast = port(
        &ctx,
        &admin,
        json!({"network_id": net, "mac_address": "01:00:5e:00:00:01"}),
    )
    .await;

    assert_eq!(
        given.body["port"]["mac_address"], "fa:16:3e:00:00:01",
        "{}",
        given.body
    );
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(neutron_type(&taken), "MacAddressInUse");
    assert_eq!(multicast.status, StatusCode::BAD_REQUEST);
    ctx.shutdown().await;
}

#[tokio::test]
async fn ipv6_slaac_subnets_give_eui64_addresses_beside_the_ipv4_one() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (net, _) = network_with_subnet(&ctx, &admin, "10.0.0.0/24").await;
    create_subnet(
        &ctx,
        &admin,
        json!({"network_id": net, "ip_version": 6, "cidr": "fd00::/64",
               "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
    )
    .await;

    let r = port(
        &ctx,
        &admin,
        json!({"network_id": net, "mac_address": "fa:16:3e:12:34:56"}),
    )
    .await;

    let addresses: Vec<&str> = r.body["port"]["fixed_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["ip_address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, vec!["10.0.0.2", "fd00::f816:3eff:fe12:3456"]);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_port_update_moves_its_address_and_port_security_guards_pairs_and_groups() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (net, sub) = network_with_subnet(&ctx, &member, "10.0.0.0/24").await;
    let group = send(
        &ctx,
        Method::POST,
        "/security-groups",
        &member,
        json!({"security_group": {"name": "sg1"}}),
    )
    .await;
    let group_id = group.body["security_group"]["id"].as_str().unwrap();
    let created = port(
        &ctx,
        &member,
        json!({"network_id": net, "security_groups": [group_id]}),
    )
    .await;
    let id = created.body["port"]["id"].as_str().unwrap().to_string();

    let moved = send(
        &ctx,
        Method::PUT,
        &format!("/ports/{id}"),
        &member,
        json!({"port": {"name": "renamed", "fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.77"}],
                        "allowed_address_pairs": [{"ip_address": "10.0.0.200"}]}}),
    )
    .await;
    let freed = port(
        &ctx,
        &member,
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.2"}]}),
    )
    .await;
    let insecure_with_groups = send(
        &ctx,
        Method::PUT,
        &format!("/ports/{id}"),
        &member,
        json!({"port": {"port_security_enabled": false}}),
    )
    .await;
    let insecure_with_pairs = port(
        &ctx,
        &member,
        json!({"network_id": net, "port_security_enabled": false,
               "allowed_address_pairs": [{"ip_address": "10.0.0.9"}]}),
    )
    .await;
    let bind_as_member = send(
        &ctx,
        Method::PUT,
        &format!("/ports/{id}"),
        &member,
        json!({"port": {"binding:host_id": "node-1"}}),
    )
    .await;
    let bind_as_admin = send(
        &ctx,
        Method::PUT,
        &format!("/ports/{id}"),
        &admin,
        json!({"port": {"binding:host_id": "node-1"}}),
    )
    .await;

    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["port"]["name"], "renamed");
    assert_eq!(
        moved.body["port"]["fixed_ips"][0]["ip_address"],
        "10.0.0.77"
    );
    let mac = created.body["port"]["mac_address"].clone();
    assert_eq!(
        moved.body["port"]["allowed_address_pairs"],
        json!([{"ip_address": "10.0.0.200", "mac_address": mac}])
    );
    assert_eq!(
        freed.status,
        StatusCode::CREATED,
        "the old address is free again"
    );
    assert_eq!(insecure_with_groups.status, StatusCode::CONFLICT);
    assert_eq!(
        neutron_type(&insecure_with_groups),
        "PortSecurityAndIPRequiredForSecurityGroups"
    );
    assert_eq!(insecure_with_pairs.status, StatusCode::CONFLICT);
    assert_eq!(
        neutron_type(&insecure_with_pairs),
        "AddressPairAndPortSecurityRequired"
    );
    assert_eq!(bind_as_member.status, StatusCode::FORBIDDEN);
    assert_eq!(bind_as_admin.status, StatusCode::OK);
    assert_eq!(bind_as_admin.body["port"]["binding:host_id"], "node-1");
    assert_eq!(bind_as_admin.body["port"]["binding:vif_type"], "bridge");
    ctx.shutdown().await;
}

#[tokio::test]
async fn ports_keep_their_network_and_subnet_from_being_deleted() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (net, sub) = network_with_subnet(&ctx, &admin, "10.0.0.0/24").await;
    let p = port(&ctx, &admin, json!({"network_id": net})).await;
    let id = p.body["port"]["id"].as_str().unwrap();

    let network_refused = delete(&ctx, &format!("/networks/{net}"), &admin).await;
    let subnet_refused = delete(&ctx, &format!("/subnets/{sub}"), &admin).await;
    delete(&ctx, &format!("/ports/{id}"), &admin).await;
    let subnet_deleted = delete(&ctx, &format!("/subnets/{sub}"), &admin).await;
    let network_deleted = delete(&ctx, &format!("/networks/{net}"), &admin).await;

    assert_eq!(network_refused.status, StatusCode::CONFLICT);
    assert_eq!(neutron_type(&network_refused), "NetworkInUse");
    assert_eq!(subnet_refused.status, StatusCode::CONFLICT);
    assert_eq!(neutron_type(&subnet_refused), "SubnetInUse");
    assert_eq!(subnet_deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(network_deleted.status, StatusCode::NO_CONTENT);
    ctx.shutdown().await;
}

#[tokio::test]
async fn ports_on_a_shared_network_are_allowed_but_choosing_addresses_is_the_owners() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let shared = create_network(&ctx, &admin, json!({"name": "s", "shared": true})).await;
    let shared_id = shared["id"].as_str().unwrap();
    create_subnet(
        &ctx,
        &admin,
        json!({"network_id": shared_id, "ip_version": 4, "cidr": "10.0.0.0/24"}),
    )
    .await;
    let external =
        create_network(&ctx, &admin, json!({"name": "e", "router:external": true})).await;

    let plain = port(&ctx, &member, json!({"network_id": shared_id})).await;
    let chosen = port(
        &ctx,
        &member,
        json!({"network_id": shared_id, "fixed_ips": [{"ip_address": "10.0.0.9"}]}),
    )
    .await;
    let on_external = port(&ctx, &member, json!({"network_id": external["id"]})).await;
    let admin_list = get(&ctx, "/ports", &admin).await;
    let member_list = get(&ctx, "/ports", &member).await;

    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    assert_eq!(chosen.status, StatusCode::FORBIDDEN);
    assert_eq!(on_external.status, StatusCode::FORBIDDEN);
    assert_eq!(admin_list.body["ports"].as_array().unwrap().len(), 1);
    assert_eq!(member_list.body["ports"].as_array().unwrap().len(), 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn port_lists_filter_by_address_device_and_page() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (net, _) = network_with_subnet(&ctx, &admin, "10.0.0.0/24").await;
    for i in 0..3 {
        port(
            &ctx,
            &admin,
            json!({"network_id": net, "device_id": format!("d{i}")}),
        )
        .await;
    }

    let by_ip = get(&ctx, "/ports?fixed_ips=ip_address%3D10.0.0.3", &admin).await;
    let by_device = get(&ctx, "/ports?device_id=d2", &admin).await;
    let page = get(&ctx, "/ports?limit=2", &admin).await;

    assert_eq!(by_ip.body["ports"].as_array().unwrap().len(), 1);
    assert_eq!(by_ip.body["ports"][0]["device_id"], "d1");
    assert_eq!(
        by_device.body["ports"][0]["fixed_ips"][0]["ip_address"],
        "10.0.0.4"
    );
    assert_eq!(page.body["ports"].as_array().unwrap().len(), 2);
    assert_eq!(page.body["ports_links"][0]["rel"], "next");
    ctx.shutdown().await;
}

#[tokio::test]
async fn every_port_endpoint_answers_401_403_and_404_as_policy_says() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, reader) = ctx.user_with_role(&admin, "rita", "reader").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "bob", "member").await;
    let network = create_network(&ctx, &admin, json!({"name": "n", "project_id": project})).await;
    let net = network["id"].as_str().unwrap();
    let p = port(
        &ctx,
        &admin,
        json!({"network_id": net, "project_id": project}),
    )
    .await;
    let id = p.body["port"]["id"].as_str().unwrap();
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/ports".into(), None),
        (
            Method::POST,
            "/ports".into(),
            Some(json!({"port": {"network_id": net}})),
        ),
        (Method::GET, format!("/ports/{id}"), None),
        (
            Method::PUT,
            format!("/ports/{id}"),
            Some(json!({"port": {"name": "x"}})),
        ),
        (Method::DELETE, format!("/ports/{id}"), None),
    ];

    for (method, path, body) in &endpoints {
        let url = format!("{N}{path}");
        let none = ctx.call(method.clone(), &url, None, body.clone()).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        if *method != Method::GET {
            let r = ctx
                .call(method.clone(), &url, Some(&reader), body.clone())
                .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "reader: {method} {path}: {}",
                r.body
            );
        }
        if path.contains(id) || body.is_some() {
            let r = ctx
                .call(method.clone(), &url, Some(&stranger), body.clone())
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "stranger: {method} {path}");
        }
    }
    ctx.shutdown().await;
}
