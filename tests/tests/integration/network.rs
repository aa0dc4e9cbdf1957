//! Neutron v2.0 networks and subnets: shapes, visibility (own, shared, external),
//! provider attributes for administrators, filters and paging, subnet address plans,
//! and the 401/403/404 matrix.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

const N: &str = "/network/v2.0";

async fn get(ctx: &TestContext, path: &str, token: &str) -> Reply {
    ctx.call(Method::GET, &format!("{N}{path}"), Some(token), None)
        .await
}

async fn send(ctx: &TestContext, method: Method, path: &str, token: &str, body: Value) -> Reply {
    ctx.call(method, &format!("{N}{path}"), Some(token), Some(body))
        .await
}

async fn delete(ctx: &TestContext, path: &str, token: &str) -> Reply {
    ctx.call(Method::DELETE, &format!("{N}{path}"), Some(token), None)
        .await
}

/// Creates a network and returns its view.
pub async fn create_network(ctx: &TestContext, token: &str, network: Value) -> Value {
    let r = send(
        ctx,
        Method::POST,
        "/networks",
        token,
        json!({"network": network}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["network"].clone()
}

/// Creates a subnet and returns its view.
pub async fn create_subnet(ctx: &TestContext, token: &str, subnet: Value) -> Value {
    let r = send(
        ctx,
        Method::POST,
        "/subnets",
        token,
        json!({"subnet": subnet}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["subnet"].clone()
}

fn ids(r: &Reply, collection: &str) -> Vec<String> {
    r.body[collection]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

fn neutron_type(r: &Reply) -> &str {
    r.body["NeutronError"]["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_version_document_lists_resources_and_extensions_are_listed() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;

    let root = ctx.call(Method::GET, "/network/v2.0/", None, None).await;
    let extensions = get(&ctx, "/extensions", &admin).await;
    let one = get(&ctx, "/extensions/external-net", &admin).await;
    let unknown = get(&ctx, "/extensions/no-such-thing", &admin).await;
    let anonymous = ctx
        .call(Method::GET, &format!("{N}/extensions"), None, None)
        .await;

    let collections: Vec<&str> = root.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["collection"].as_str().unwrap())
        .collect();
    assert!(collections.contains(&"networks") && collections.contains(&"subnets"));
    assert_eq!(
        root.body["resources"][0]["links"][0]["href"],
        format!("{}/network/v2.0/networks", ctx.url)
    );
    let aliases: Vec<&str> = extensions.body["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect();
    assert!(aliases.contains(&"external-net"), "{aliases:?}");
    assert!(aliases.contains(&"standard-attr-timestamp"));
    assert_eq!(one.body["extension"]["alias"], "external-net");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_member_creates_shows_updates_and_deletes_a_network() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;

    let created = create_network(&ctx, &member, json!({"name": "net1", "description": "d"})).await;
    let id = created["id"].as_str().unwrap();
    let shown = get(&ctx, &format!("/networks/{id}"), &member).await;
    let updated = send(
        &ctx,
        Method::PUT,
        &format!("/networks/{id}"),
        &member,
        json!({"network": {"name": "net2", "admin_state_up": false}}),
    )
    .await;
    let deleted = delete(&ctx, &format!("/networks/{id}"), &member).await;
    let gone = get(&ctx, &format!("/networks/{id}"), &member).await;

    assert_eq!(created["name"], "net1");
    assert_eq!(created["project_id"], project.as_str());
    assert_eq!(created["tenant_id"], project.as_str());
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["shared"], false);
    assert_eq!(created["router:external"], false);
    assert_eq!(created["mtu"], 1450);
    assert_eq!(created["port_security_enabled"], true);
    assert_eq!(created["subnets"], json!([]));
    assert_eq!(created["subnet_details"], json!([]));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        created.get("provider:segmentation_id").is_none(),
        "provider attributes are for administrators: {created}"
    );
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["network"], created);
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["network"]["name"], "net2");
    assert_eq!(updated.body["network"]["admin_state_up"], false);
    assert_eq!(updated.body["network"]["revision_number"], 2);
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&gone), "NetworkNotFound");
    ctx.shutdown().await;
}

#[tokio::test]
async fn administrators_see_a_distinct_vni_per_network() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;

    let a = create_network(&ctx, &admin, json!({"name": "a"})).await;
    let b = create_network(
        &ctx,
        &admin,
        json!({"name": "b", "provider:network_type": "vxlan"}),
    )
    .await;
    let taken = send(
        &ctx,
        Method::POST,
        "/networks",
        &admin,
        json!({"network": {"provider:segmentation_id": a["provider:segmentation_id"]}}),
    )
    .await;
    let vlan = send(
        &ctx,
        Method::POST,
        "/networks",
        &admin,
        json!({"network": {"provider:network_type": "vlan"}}),
    )
    .await;

    assert_eq!(a["provider:network_type"], "vxlan");
    assert!(a["provider:segmentation_id"].as_u64().unwrap() >= 1);
    assert_ne!(a["provider:segmentation_id"], b["provider:segmentation_id"]);
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(vlan.status, StatusCode::BAD_REQUEST);
    assert!(neutron_type(&vlan).starts_with("HTTP"));
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_project_sees_its_own_shared_and_external_networks_only() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, alice) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, _, bob) = ctx.user_with_role(&admin, "bob", "member").await;
    let private = create_network(&ctx, &alice, json!({"name": "private"})).await;
    let shared = create_network(&ctx, &admin, json!({"name": "shared", "shared": true})).await;
    let external = create_network(
        &ctx,
        &admin,
        json!({"name": "public", "router:external": true}),
    )
    .await;
    let admins_own = create_network(&ctx, &admin, json!({"name": "admins"})).await;
    let private_id = private["id"].as_str().unwrap();
    let shared_id = shared["id"].as_str().unwrap();

    let listed = get(&ctx, "/networks", &bob).await;
    let show_private = get(&ctx, &format!("/networks/{private_id}"), &bob).await;
    let update_private = send(
        &ctx,
        Method::PUT,
        &format!("/networks/{private_id}"),
        &bob,
        json!({"network": {"name": "x"}}),
    )
    .await;
    let delete_private = delete(&ctx, &format!("/networks/{private_id}"), &bob).await;
    let show_shared = get(&ctx, &format!("/networks/{shared_id}"), &bob).await;
    let update_shared = send(
        &ctx,
        Method::PUT,
        &format!("/networks/{shared_id}"),
        &bob,
        json!({"network": {"name": "x"}}),
    )
    .await;
    let delete_shared = delete(&ctx, &format!("/networks/{shared_id}"), &bob).await;
    let admin_list = get(&ctx, "/networks", &admin).await;

    let visible = ids(&listed, "networks");
    assert!(visible.contains(&shared["id"].as_str().unwrap().to_string()));
    assert!(visible.contains(&external["id"].as_str().unwrap().to_string()));
    assert!(!visible.contains(&private_id.to_string()));
    assert!(!visible.contains(&admins_own["id"].as_str().unwrap().to_string()));
    assert_eq!(show_private.status, StatusCode::NOT_FOUND);
    assert_eq!(update_private.status, StatusCode::NOT_FOUND);
    assert_eq!(delete_private.status, StatusCode::NOT_FOUND);
    assert_eq!(show_shared.status, StatusCode::OK);
    assert_eq!(update_shared.status, StatusCode::FORBIDDEN);
    assert_eq!(delete_shared.status, StatusCode::FORBIDDEN);
    assert_eq!(ids(&admin_list, "networks").len(), 4);
    ctx.shutdown().await;
}

#[tokio::test]
async fn sharing_marking_external_and_provider_attributes_need_an_administrator() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let own = create_network(&ctx, &member, json!({"name": "own"})).await;
    let own_id = own["id"].as_str().unwrap();

    let attempts = [
        json!({"network": {"shared": true}}),
        json!({"network": {"router:external": true}}),
        json!({"network": {"provider:segmentation_id": 4242}}),
    ];
    for body in attempts {
        let r = send(&ctx, Method::POST, "/networks", &member, body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body}: {}", r.body);
        assert!(
            r.body["NeutronError"]["message"]
                .as_str()
                .unwrap()
                .contains("admin"),
            "{}",
            r.body
        );
    }
    let share = send(
        &ctx,
        Method::PUT,
        &format!("/networks/{own_id}"),
        &member,
        json!({"network": {"shared": true}}),
    )
    .await;
    assert_eq!(share.status, StatusCode::FORBIDDEN);
    ctx.shutdown().await;
}

#[tokio::test]
async fn every_network_endpoint_answers_401_403_and_404_as_policy_says() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    // The resources belong to the reader's project: a reader sees them but may not
    // change them; a member of another project does not see them.
    let (project, _, reader) = ctx.user_with_role(&admin, "rita", "reader").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "bob", "member").await;
    let network = create_network(&ctx, &admin, json!({"name": "n", "project_id": project})).await;
    let net = network["id"].as_str().unwrap();
    let subnet = create_subnet(
        &ctx,
        &admin,
        json!({"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24", "project_id": project}),
    )
    .await;
    let sub = subnet["id"].as_str().unwrap();
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/networks".into(), None),
        (
            Method::POST,
            "/networks".into(),
            Some(json!({"network": {"name": "x"}})),
        ),
        (Method::GET, format!("/networks/{net}"), None),
        (
            Method::PUT,
            format!("/networks/{net}"),
            Some(json!({"network": {"name": "x"}})),
        ),
        (Method::DELETE, format!("/networks/{net}"), None),
        (Method::GET, "/subnets".into(), None),
        (
            Method::POST,
            "/subnets".into(),
            Some(json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24"}})),
        ),
        (Method::GET, format!("/subnets/{sub}"), None),
        (
            Method::PUT,
            format!("/subnets/{sub}"),
            Some(json!({"subnet": {"name": "x"}})),
        ),
        (Method::DELETE, format!("/subnets/{sub}"), None),
    ];

    for (method, path, body) in &endpoints {
        let url = format!("{N}{path}");
        let none = ctx.call(method.clone(), &url, None, body.clone()).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        let bad = ctx
            .call(method.clone(), &url, Some("not-a-token"), body.clone())
            .await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED, "{method} {path}");
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
        if path.contains(net) || path.contains(sub) {
            let r = ctx
                .call(method.clone(), &url, Some(&stranger), body.clone())
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "stranger: {method} {path}");
        }
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn network_lists_filter_and_page_with_next_links() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    for i in 0..5 {
        create_network(&ctx, &member, json!({"name": format!("n{i}")})).await;
    }
    create_network(
        &ctx,
        &member,
        json!({"name": "down", "admin_state_up": false}),
    )
    .await;

    let by_name = get(&ctx, "/networks?name=n3", &member).await;
    let by_state = get(&ctx, "/networks?admin_state_up=False", &member).await;
    let not_shared = get(&ctx, "/networks?shared=false", &member).await;
    let bad_flag = get(&ctx, "/networks?shared=maybe", &member).await;
    let first = get(&ctx, "/networks?limit=4", &member).await;
    let next = first.body["networks_links"][0]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let second = ctx
        .call(
            Method::GET,
            next.trim_start_matches(&ctx.url),
            Some(&member),
            None,
        )
        .await;

    assert_eq!(by_name.body["networks"][0]["name"], "n3");
    assert_eq!(ids(&by_name, "networks").len(), 1);
    assert_eq!(by_state.body["networks"][0]["name"], "down");
    assert_eq!(ids(&not_shared, "networks").len(), 6);
    assert_eq!(bad_flag.status, StatusCode::BAD_REQUEST);
    assert_eq!(ids(&first, "networks").len(), 4);
    assert_eq!(first.body["networks_links"][0]["rel"], "next");
    assert_eq!(ids(&second, "networks").len(), 2);
    assert_eq!(second.body["networks_links"], json!([]));
    let mut all = ids(&first, "networks");
    all.extend(ids(&second, "networks"));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_subnet_gets_neutrons_default_gateway_and_pools_and_shows_in_its_network() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let network = create_network(&ctx, &member, json!({"name": "n"})).await;
    let net = network["id"].as_str().unwrap();

    let v4 = create_subnet(
        &ctx,
        &member,
        json!({"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24", "name": "s4",
               "dns_nameservers": ["8.8.8.8"],
               "host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}]}),
    )
    .await;
    let v6 = create_subnet(
        &ctx,
        &member,
        json!({"network_id": net, "ip_version": 6, "cidr": "fd00:1::/64",
               "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
    )
    .await;
    let no_gateway = create_subnet(
        &ctx,
        &member,
        json!({"network_id": net, "ip_version": 4, "cidr": "10.9.0.0/29", "gateway_ip": null}),
    )
    .await;
    let shown = get(&ctx, &format!("/networks/{net}"), &member).await;

    assert_eq!(v4["gateway_ip"], "10.0.0.1");
    assert_eq!(
        v4["allocation_pools"],
        json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
    );
    assert_eq!(v4["enable_dhcp"], true);
    assert_eq!(v4["dns_nameservers"], json!(["8.8.8.8"]));
    assert_eq!(v4["host_routes"][0]["nexthop"], "10.0.0.254");
    assert_eq!(v6["gateway_ip"], "fd00:1::1");
    assert_eq!(
        v6["allocation_pools"],
        json!([{"start": "fd00:1::2", "end": "fd00:1::ffff:ffff:ffff:ffff"}])
    );
    assert_eq!(v6["ipv6_address_mode"], "slaac");
    assert_eq!(no_gateway["gateway_ip"], Value::Null);
    assert_eq!(
        no_gateway["allocation_pools"],
        json!([{"start": "10.9.0.1", "end": "10.9.0.6"}])
    );
    assert_eq!(
        shown.body["network"]["subnets"].as_array().unwrap().len(),
        3
    );
    assert_eq!(
        shown.body["network"]["subnet_details"][0],
        json!({"id": v4["id"], "name": "s4", "cidr": "10.0.0.0/24"})
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn bad_subnet_plans_are_refused_with_a_reason() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let network = create_network(&ctx, &member, json!({"name": "n"})).await;
    let net = network["id"].as_str().unwrap();
    create_subnet(
        &ctx,
        &member,
        json!({"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}),
    )
    .await;
    let cases = [
        (
            json!({"cidr": "10.1.0.5/24"}),
            StatusCode::BAD_REQUEST,
            "10.1.0.0/24",
        ),
        (
            json!({"cidr": "10.1.0.0/33"}),
            StatusCode::BAD_REQUEST,
            "not a valid CIDR",
        ),
        (
            json!({"cidr": "10.1.0.0/31"}),
            StatusCode::BAD_REQUEST,
            "/31",
        ),
        (
            json!({"cidr": "fd00::/64"}),
            StatusCode::BAD_REQUEST,
            "ip_version",
        ),
        (
            json!({"cidr": "10.0.0.128/25"}),
            StatusCode::BAD_REQUEST,
            "overlaps",
        ),
        (
            json!({"cidr": "10.1.0.0/24", "gateway_ip": "10.2.0.1"}),
            StatusCode::BAD_REQUEST,
            "inside the subnet",
        ),
        (
            json!({"cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.1.10"}]}),
            StatusCode::BAD_REQUEST,
            "10.1.1.10",
        ),
        (
            json!({"cidr": "10.1.0.0/24", "allocation_pools": [
                {"start": "10.1.0.10", "end": "10.1.0.20"},
                {"start": "10.1.0.20", "end": "10.1.0.30"}]}),
            StatusCode::BAD_REQUEST,
            "overlap",
        ),
        (
            json!({"cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.20", "end": "10.1.0.10"}]}),
            StatusCode::BAD_REQUEST,
            "starts after",
        ),
        (
            json!({"cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.0", "end": "10.1.0.10"}]}),
            StatusCode::BAD_REQUEST,
            "network or broadcast",
        ),
        (
            json!({"cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.1", "end": "10.1.0.10"}]}),
            StatusCode::CONFLICT,
            "conflicts with allocation pool",
        ),
        (
            json!({"cidr": "10.1.0.0/24", "dns_nameservers": ["1.1.1.1", "1.1.1.1"]}),
            StatusCode::BAD_REQUEST,
            "Duplicate nameserver",
        ),
        (
            json!({"cidr": "10.1.0.0/24", "host_routes": [{"destination": "x", "nexthop": "10.1.0.1"}]}),
            StatusCode::BAD_REQUEST,
            "not a valid CIDR",
        ),
        (
            json!({"cidr": "10.1.0.0/24", "ipv6_ra_mode": "slaac"}),
            StatusCode::BAD_REQUEST,
            "IPv6 subnets only",
        ),
        (json!({}), StatusCode::BAD_REQUEST, "cidr must be specified"),
        (
            json!({"cidr": "10.1.0.0/24", "color": "red"}),
            StatusCode::BAD_REQUEST,
            "color",
        ),
    ];
    for (extra, status, phrase) in cases {
        let mut subnet = json!({"network_id": net, "ip_version": 4});
        for (k, v) in extra.as_object().unwrap() {
            subnet[k] = v.clone();
        }
        let r = send(
            &ctx,
            Method::POST,
            "/subnets",
            &member,
            json!({"subnet": subnet}),
        )
        .await;
        assert_eq!(r.status, status, "{extra}: {}", r.body);
        let message = r.body["NeutronError"]["message"].as_str().unwrap();
        assert!(message.contains(phrase), "{extra}: {message}");
    }
    let v6_on_v4 = send(
        &ctx,
        Method::POST,
        "/subnets",
        &member,
        json!({"subnet": {"network_id": net, "ip_version": 6, "cidr": "fd00::/64",
                          "ipv6_address_mode": "slaac", "ipv6_ra_mode": "dhcpv6-stateful"}}),
    )
    .await;
    let unknown_network = send(
        &ctx,
        Method::POST,
        "/subnets",
        &member,
        json!({"subnet": {"network_id": "nope", "ip_version": 4, "cidr": "10.5.0.0/24"}}),
    )
    .await;
    assert_eq!(v6_on_v4.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown_network.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&unknown_network), "NetworkNotFound");
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_subnet_update_changes_its_plan_and_delete_removes_it() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let network = create_network(&ctx, &member, json!({"name": "n"})).await;
    let net = network["id"].as_str().unwrap();
    let subnet = create_subnet(
        &ctx,
        &member,
        json!({"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}),
    )
    .await;
    let sub = subnet["id"].as_str().unwrap();

    let updated = send(
        &ctx,
        Method::PUT,
        &format!("/subnets/{sub}"),
        &member,
        json!({"subnet": {"name": "renamed", "gateway_ip": "10.0.0.254",
                          "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.99"}],
                          "dns_nameservers": ["9.9.9.9"]}}),
    )
    .await;
    let conflicting = send(
        &ctx,
        Method::PUT,
        &format!("/subnets/{sub}"),
        &member,
        json!({"subnet": {"gateway_ip": "10.0.0.50"}}),
    )
    .await;
    let by_network = get(&ctx, &format!("/subnets?network_id={net}"), &member).await;
    let deleted = delete(&ctx, &format!("/subnets/{sub}"), &member).await;
    let gone = get(&ctx, &format!("/subnets/{sub}"), &member).await;
    let network_after = get(&ctx, &format!("/networks/{net}"), &member).await;

    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["subnet"]["name"], "renamed");
    assert_eq!(updated.body["subnet"]["gateway_ip"], "10.0.0.254");
    assert_eq!(
        updated.body["subnet"]["allocation_pools"],
        json!([{"start": "10.0.0.10", "end": "10.0.0.99"}])
    );
    assert_eq!(conflicting.status, StatusCode::CONFLICT);
    assert_eq!(
        neutron_type(&conflicting),
        "GatewayConflictWithAllocationPools"
    );
    assert_eq!(ids(&by_network, "subnets"), vec![sub.to_string()]);
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&gone), "SubnetNotFound");
    assert_eq!(network_after.body["network"]["subnets"], json!([]));
    ctx.shutdown().await;
}

#[tokio::test]
async fn deleting_a_network_takes_its_subnets() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let network = create_network(&ctx, &admin, json!({"name": "n"})).await;
    let net = network["id"].as_str().unwrap();
    let subnet = create_subnet(
        &ctx,
        &admin,
        json!({"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}),
    )
    .await;

    let deleted = delete(&ctx, &format!("/networks/{net}"), &admin).await;
    let subnet_after = get(
        &ctx,
        &format!("/subnets/{}", subnet["id"].as_str().unwrap()),
        &admin,
    )
    .await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(subnet_after.status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}
