//! Servers get ports: `networks` checked at create, ports made on the server's node
//! and deleted with it (a given port only unbound), and `addresses` / `ips` views.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

use crate::network::{create_network, create_subnet};

const WAIT: Duration = Duration::from_secs(20);

async fn boot(ctx: &TestContext, token: &str, server: Value) -> Reply {
    ctx.call(
        Method::POST,
        "/compute/v2.1/servers",
        Some(token),
        Some(json!({"server": server})),
    )
    .await
}

async fn get(ctx: &TestContext, path: &str, token: &str) -> Reply {
    ctx.call(Method::GET, path, Some(token), None).await
}

async fn cloud() -> (TestContext, String, String) {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    (ctx, admin, image)
}

/// A network with a /24 subnet; returns (network id, subnet id).
async fn network(ctx: &TestContext, token: &str, name: &str, cidr: &str) -> (String, String) {
    let n = create_network(ctx, token, json!({"name": name})).await;
    let id = n["id"].as_str().unwrap().to_string();
    let s = create_subnet(
        ctx,
        token,
        json!({"network_id": id, "ip_version": 4, "cidr": cidr}),
    )
    .await;
    (id, s["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_server_on_a_network_gets_a_bound_port_and_addresses_and_loses_it_on_delete() {
    let (ctx, admin, image) = cloud().await;
    let (net, _) = network(&ctx, &admin, "private", "10.0.0.0/24").await;

    let r = boot(
        &ctx,
        &admin,
        json!({"name": "vm", "flavorRef": "1", "imageRef": image, "networks": [{"uuid": net}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let ports = get(&ctx, &format!("/network/v2.0/ports?device_id={id}"), &admin).await;
    let shown = get(&ctx, &format!("/compute/v2.1/servers/{id}"), &admin).await;
    let ips = get(&ctx, &format!("/compute/v2.1/servers/{id}/ips"), &admin).await;
    let one_network = get(
        &ctx,
        &format!("/compute/v2.1/servers/{id}/ips/private"),
        &admin,
    )
    .await;
    let unknown_network = get(
        &ctx,
        &format!("/compute/v2.1/servers/{id}/ips/nope"),
        &admin,
    )
    .await;
    let deleted = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{id}"),
            Some(&admin),
            None,
        )
        .await;
    ctx.eventually(WAIT, "the server's port deleted", || async {
        get(&ctx, &format!("/network/v2.0/ports?device_id={id}"), &admin)
            .await
            .body["ports"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;

    let port = &ports.body["ports"][0];
    assert_eq!(ports.body["ports"].as_array().unwrap().len(), 1);
    assert_eq!(port["device_owner"], "compute:nova");
    assert_eq!(port["binding:host_id"], "node-1");
    assert_eq!(port["fixed_ips"][0]["ip_address"], "10.0.0.2");
    assert_eq!(
        shown.body["server"]["addresses"],
        json!({"private": [{"addr": "10.0.0.2", "version": 4, "OS-EXT-IPS:type": "fixed",
                            "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]}]})
    );
    assert_eq!(
        ips.body,
        json!({"addresses": {"private": [{"addr": "10.0.0.2", "version": 4}]}})
    );
    assert_eq!(
        one_network.body,
        json!({"private": [{"addr": "10.0.0.2", "version": 4}]})
    );
    assert_eq!(unknown_network.status, StatusCode::NOT_FOUND);
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_given_port_is_bound_and_only_unbound_when_the_server_goes() {
    let (ctx, admin, image) = cloud().await;
    let (net, _) = network(&ctx, &admin, "private", "10.0.0.0/24").await;
    let p = ctx
        .call(
            Method::POST,
            "/network/v2.0/ports",
            Some(&admin),
            Some(json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.99"}]}})),
        )
        .await;
    let port_id = p.body["port"]["id"].as_str().unwrap().to_string();

    let r = boot(
        &ctx,
        &admin,
        json!({"name": "vm", "flavorRef": "1", "imageRef": image, "networks": [{"port": port_id}]}),
    )
    .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let bound = get(&ctx, &format!("/network/v2.0/ports/{port_id}"), &admin).await;
    let second = boot(
        &ctx,
        &admin,
        json!({"name": "vm2", "flavorRef": "1", "imageRef": image, "networks": [{"port": port_id}]}),
    )
    .await;
    let shown = get(&ctx, &format!("/compute/v2.1/servers/{id}"), &admin).await;
    ctx.call(
        Method::DELETE,
        &format!("/compute/v2.1/servers/{id}"),
        Some(&admin),
        None,
    )
    .await;
    ctx.eventually(WAIT, "the port unbound", || async {
        get(&ctx, &format!("/network/v2.0/ports/{port_id}"), &admin)
            .await
            .body["port"]["device_id"]
            == ""
    })
    .await;
    let after = get(&ctx, &format!("/network/v2.0/ports/{port_id}"), &admin).await;

    assert_eq!(bound.body["port"]["device_id"], id.as_str());
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(
        shown.body["server"]["addresses"]["private"][0]["addr"],
        "10.0.0.99"
    );
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body["port"]["binding:host_id"], "");
    assert_eq!(
        after.body["port"]["fixed_ips"][0]["ip_address"],
        "10.0.0.99"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn without_networks_the_one_usable_network_is_used_and_several_are_409() {
    let (ctx, admin, image) = cloud().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let no_network = boot(
        &ctx,
        &member,
        json!({"name": "bare", "flavorRef": "1", "imageRef": image}),
    )
    .await;
    let bare = no_network.body["server"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    network(&ctx, &member, "only", "10.0.0.0/24").await;
    let one = boot(
        &ctx,
        &member,
        json!({"name": "vm", "flavorRef": "1", "imageRef": image}),
    )
    .await;
    let one_id = one.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&member, &one_id, "ACTIVE", WAIT).await;
    network(&ctx, &member, "second", "10.1.0.0/24").await;
    let several = boot(
        &ctx,
        &member,
        json!({"name": "vm2", "flavorRef": "1", "imageRef": image}),
    )
    .await;
    let none = boot(
        &ctx,
        &member,
        json!({"name": "vm3", "flavorRef": "1", "imageRef": image, "networks": "none"}),
    )
    .await;
    ctx.wait_server(&member, &bare, "ACTIVE", WAIT).await;
    let bare_view = get(&ctx, &format!("/compute/v2.1/servers/{bare}"), &member).await;
    let one_view = get(&ctx, &format!("/compute/v2.1/servers/{one_id}"), &member).await;

    assert_eq!(no_network.status, StatusCode::ACCEPTED);
    assert_eq!(bare_view.body["server"]["addresses"], json!({}));
    assert_eq!(
        one_view.body["server"]["addresses"]["only"][0]["addr"],
        "10.0.0.2"
    );
    assert_eq!(several.status, StatusCode::CONFLICT);
    assert_eq!(
        several.body["conflictingRequest"]["message"],
        "Multiple possible networks found, use a Network ID to be more specific."
    );
    assert_eq!(none.status, StatusCode::ACCEPTED);
    ctx.shutdown().await;
}

#[tokio::test]
async fn bad_network_requests_are_refused_before_the_server_is_accepted() {
    let (ctx, admin, image) = cloud().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (net, _) = network(&ctx, &member, "mine", "10.0.0.0/24").await;
    let (others, _) = network(&ctx, &admin, "admins", "10.9.0.0/24").await;
    let taken = ctx
        .call(
            Method::POST,
            "/network/v2.0/ports",
            Some(&member),
            Some(json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.5"}]}})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CREATED);

    let cases = [
        (json!([{"uuid": "no-such-network"}]), StatusCode::NOT_FOUND),
        (json!([{"uuid": others}]), StatusCode::NOT_FOUND),
        (json!([{"port": "no-such-port"}]), StatusCode::NOT_FOUND),
        (
            json!([{"uuid": net, "fixed_ip": "10.0.0.5"}]),
            StatusCode::CONFLICT,
        ),
        (
            json!([{"uuid": net, "fixed_ip": "banana"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"uuid": net, "fixed_ip": "192.168.1.1"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"uuid": net, "colour": "red"}]),
            StatusCode::BAD_REQUEST,
        ),
        (json!([{"fixed_ip": "10.0.0.9"}]), StatusCode::BAD_REQUEST),
        (json!(["x"]), StatusCode::BAD_REQUEST),
    ];
    for (networks, status) in cases {
        let r = boot(
            &ctx,
            &member,
            json!({"name": "vm", "flavorRef": "1", "imageRef": image, "networks": networks}),
        )
        .await;
        assert_eq!(r.status, status, "{networks}: {}", r.body);
    }
    let servers = get(&ctx, "/compute/v2.1/servers", &member).await;
    assert_eq!(servers.body["servers"], json!([]));
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_build_that_fails_on_the_node_leaves_no_port_behind() {
    let (ctx, admin, image) = cloud().await;
    let (net, _) = network(&ctx, &admin, "private", "10.0.0.0/24").await;
    ctx.inject(0, "create", json!({"fail_times": 1})).await;

    let r = boot(
        &ctx,
        &admin,
        json!({"name": "vm", "flavorRef": "1", "imageRef": image, "networks": [{"uuid": net}]}),
    )
    .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &id, "ERROR", WAIT).await;
    let ports = get(
        &ctx,
        &format!("/network/v2.0/ports?network_id={net}"),
        &admin,
    )
    .await;

    assert_eq!(ports.body["ports"], json!([]));
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_server_names_the_security_groups_of_its_ports_even_when_asked_by_id() {
    let (ctx, admin, image) = cloud().await;
    let (net, _) = network(&ctx, &admin, "private", "10.0.0.0/24").await;
    let group = ctx
        .call(
            Method::POST,
            "/network/v2.0/security-groups",
            Some(&admin),
            Some(json!({"security_group": {"name": "web"}})),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let group_id = group.body["security_group"]["id"].as_str().unwrap();
    // As the openstack CLI sends it: the group by id, under "name".
    let r = boot(
        &ctx,
        &admin,
        json!({"name": "vm", "flavorRef": "1", "imageRef": image,
               "networks": [{"uuid": net}], "security_groups": [{"name": group_id}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let shown = get(&ctx, &format!("/compute/v2.1/servers/{id}"), &admin).await;
    assert_eq!(
        shown.body["server"]["security_groups"],
        json!([{"name": "web"}])
    );
    let listed = get(&ctx, "/compute/v2.1/servers/detail", &admin).await;
    assert_eq!(
        listed.body["servers"][0]["security_groups"],
        json!([{"name": "web"}])
    );
    // The port's groups are what counts: changed on the port, changed on the server.
    let ports = get(&ctx, &format!("/network/v2.0/ports?device_id={id}"), &admin).await;
    let port_id = ports.body["ports"][0]["id"].as_str().unwrap();
    let default = get(&ctx, "/network/v2.0/security-groups?name=default", &admin).await;
    let default_id = default.body["security_groups"][0]["id"].as_str().unwrap();
    let r = ctx
        .call(
            Method::PUT,
            &format!("/network/v2.0/ports/{port_id}"),
            Some(&admin),
            Some(json!({"port": {"security_groups": [default_id, group_id]}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shown = get(&ctx, &format!("/compute/v2.1/servers/{id}"), &admin).await;
    assert_eq!(
        shown.body["server"]["security_groups"],
        json!([{"name": "default"}, {"name": "web"}]),
        "each group once, in the order the groups were made"
    );
    ctx.shutdown().await;
}
