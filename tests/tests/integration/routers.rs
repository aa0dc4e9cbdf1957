//! Neutron routers: the external gateway and its IPAM address, interfaces by subnet
//! (the subnet's gateway address) and by port, one router per subnet, delete refused
//! while interfaces remain, the router quota, the node carrying the router's networks,
//! and the 401/403/404 matrix.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

use crate::network::{create_network, create_subnet};

const N: &str = "/network/v2.0";
const WAIT: Duration = Duration::from_secs(20);

async fn call(
    ctx: &TestContext,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    ctx.call(method, &format!("{N}{path}"), Some(token), body)
        .await
}

fn neutron_type(r: &Reply) -> &str {
    r.body["NeutronError"]["type"].as_str().unwrap_or_default()
}

/// An external network with a subnet (admin's); returns (network, subnet).
pub async fn external_network(ctx: &TestContext, admin: &str) -> (String, String) {
    let n = create_network(
        ctx,
        admin,
        json!({"name": "public", "router:external": true}),
    )
    .await;
    let id = n["id"].as_str().unwrap().to_string();
    let s = create_subnet(
        ctx,
        admin,
        json!({"network_id": id, "ip_version": 4, "cidr": "203.0.113.0/24"}),
    )
    .await;
    (id, s["id"].as_str().unwrap().to_string())
}

/// A private network with a 10.0.0.0/24 subnet of `token`'s project: (network, subnet).
pub async fn private_network(ctx: &TestContext, token: &str) -> (String, String) {
    let n = create_network(ctx, token, json!({"name": "private"})).await;
    let id = n["id"].as_str().unwrap().to_string();
    let s = create_subnet(
        ctx,
        token,
        json!({"network_id": id, "ip_version": 4, "cidr": "10.0.0.0/24"}),
    )
    .await;
    (id, s["id"].as_str().unwrap().to_string())
}

pub async fn create_router(ctx: &TestContext, token: &str, router: Value) -> Value {
    let r = call(
        ctx,
        Method::POST,
        "/routers",
        token,
        Some(json!({"router": router})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["router"].clone()
}

pub async fn add_interface(ctx: &TestContext, token: &str, router: &str, body: Value) -> Reply {
    call(
        ctx,
        Method::PUT,
        &format!("/routers/{router}/add_router_interface"),
        token,
        Some(body),
    )
    .await
}

/// A cloud with one sim agent, up.
async fn cloud_with_node() -> (TestContext, String) {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    (ctx, admin)
}

#[tokio::test]
async fn a_router_gets_a_gateway_address_from_the_external_subnet_and_shows_it() {
    let (ctx, admin) = cloud_with_node().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (ext, ext_subnet) = external_network(&ctx, &admin).await;

    let router = create_router(
        &ctx,
        &member,
        json!({"name": "r1", "external_gateway_info": {"network_id": ext}}),
    )
    .await;
    let id = router["id"].as_str().unwrap();
    let gateway_ports = call(
        &ctx,
        Method::GET,
        &format!("/ports?device_id={id}&device_owner=network:router_gateway"),
        &admin,
        None,
    )
    .await;
    let shown = call(&ctx, Method::GET, &format!("/routers/{id}"), &member, None).await;
    let as_admin = call(&ctx, Method::GET, &format!("/routers/{id}"), &admin, None).await;
    let listed = call(&ctx, Method::GET, "/routers?name=r1", &member, None).await;
    let renamed = call(
        &ctx,
        Method::PUT,
        &format!("/routers/{id}"),
        &member,
        Some(json!({"router": {"name": "r2", "admin_state_up": false}})),
    )
    .await;
    let cleared = call(
        &ctx,
        Method::PUT,
        &format!("/routers/{id}"),
        &member,
        Some(json!({"router": {"external_gateway_info": {}}})),
    )
    .await;
    let ports_after_clear = call(
        &ctx,
        Method::GET,
        &format!("/ports?device_id={id}"),
        &admin,
        None,
    )
    .await;
    let deleted = call(
        &ctx,
        Method::DELETE,
        &format!("/routers/{id}"),
        &member,
        None,
    )
    .await;
    let gone = call(&ctx, Method::GET, &format!("/routers/{id}"), &member, None).await;

    assert_eq!(router["name"], "r1");
    assert_eq!(router["project_id"], project.as_str());
    assert_eq!(router["status"], "ACTIVE");
    assert_eq!(router["admin_state_up"], true);
    assert_eq!(router["routes"], json!([]));
    let gateway = &router["external_gateway_info"];
    assert_eq!(gateway["network_id"], ext.as_str());
    assert_eq!(gateway["enable_snat"], true);
    assert_eq!(
        gateway["external_fixed_ips"][0]["subnet_id"],
        ext_subnet.as_str()
    );
    assert_eq!(
        gateway["external_fixed_ips"][0]["ip_address"],
        "203.0.113.2"
    );
    assert!(router.get("binding:host_id").is_none(), "{router}");
    assert_eq!(gateway_ports.body["ports"].as_array().unwrap().len(), 1);
    assert_eq!(
        gateway_ports.body["ports"][0]["fixed_ips"][0]["ip_address"],
        "203.0.113.2"
    );
    assert_eq!(shown.body["router"], router);
    assert_eq!(as_admin.body["router"]["binding:host_id"], "node-1");
    assert_eq!(listed.body["routers"].as_array().unwrap().len(), 1);
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["router"]["name"], "r2");
    assert_eq!(renamed.body["router"]["revision_number"], 2);
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(cleared.body["router"]["external_gateway_info"], Value::Null);
    assert_eq!(ports_after_clear.body["ports"], json!([]));
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&gone), "RouterNotFound");
    ctx.shutdown().await;
}

#[tokio::test]
async fn gateways_need_an_external_network_and_snat_off_is_for_administrators() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (ext, _) = external_network(&ctx, &admin).await;
    let (private, _) = private_network(&ctx, &member).await;

    let on_private = call(
        &ctx,
        Method::POST,
        "/routers",
        &member,
        Some(json!({"router": {"external_gateway_info": {"network_id": private}}})),
    )
    .await;
    let no_snat = call(
        &ctx,
        Method::POST,
        "/routers",
        &member,
        Some(
            json!({"router": {"external_gateway_info": {"network_id": ext, "enable_snat": false}}}),
        ),
    )
    .await;
    let admin_no_snat = create_router(
        &ctx,
        &admin,
        json!({"external_gateway_info": {"network_id": ext, "enable_snat": false,
               "external_fixed_ips": [{"ip_address": "203.0.113.50"}]}}),
    )
    .await;
    let unknown = call(
        &ctx,
        Method::POST,
        "/routers",
        &member,
        Some(json!({"router": {"external_gateway_info": {"network_id": "nope"}}})),
    )
    .await;
    let routers = call(&ctx, Method::GET, "/routers", &member, None).await;

    assert_eq!(
        on_private.status,
        StatusCode::BAD_REQUEST,
        "{}",
        on_private.body
    );
    assert!(
        on_private.body["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains("router:external")
    );
    assert_eq!(no_snat.status, StatusCode::FORBIDDEN, "{}", no_snat.body);
    assert_eq!(admin_no_snat["external_gateway_info"]["enable_snat"], false);
    assert_eq!(
        admin_no_snat["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
        "203.0.113.50"
    );
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        routers.body["routers"],
        json!([]),
        "failed creates leave nothing"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn interfaces_take_the_subnet_gateway_one_router_per_subnet_and_block_delete() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (net, subnet) = private_network(&ctx, &member).await;
    let r1 = create_router(&ctx, &member, json!({"name": "r1"})).await;
    let r2 = create_router(&ctx, &member, json!({"name": "r2"})).await;
    let (id1, id2) = (r1["id"].as_str().unwrap(), r2["id"].as_str().unwrap());

    let added = add_interface(&ctx, &member, id1, json!({"subnet_id": subnet})).await;
    let twice = add_interface(&ctx, &member, id2, json!({"subnet_id": subnet})).await;
    let both = add_interface(
        &ctx,
        &member,
        id2,
        json!({"subnet_id": subnet, "port_id": "x"}),
    )
    .await;
    let neither = add_interface(&ctx, &member, id2, json!({})).await;
    let port_id = added.body["port_id"].as_str().unwrap().to_string();
    let port = call(
        &ctx,
        Method::GET,
        &format!("/ports/{port_id}"),
        &member,
        None,
    )
    .await;
    let delete_port = call(
        &ctx,
        Method::DELETE,
        &format!("/ports/{port_id}"),
        &member,
        None,
    )
    .await;
    let delete_router = call(
        &ctx,
        Method::DELETE,
        &format!("/routers/{id1}"),
        &member,
        None,
    )
    .await;
    let delete_subnet = call(
        &ctx,
        Method::DELETE,
        &format!("/subnets/{subnet}"),
        &member,
        None,
    )
    .await;
    let removed = call(
        &ctx,
        Method::PUT,
        &format!("/routers/{id1}/remove_router_interface"),
        &member,
        Some(json!({"subnet_id": subnet})),
    )
    .await;
    let removed_again = call(
        &ctx,
        Method::PUT,
        &format!("/routers/{id1}/remove_router_interface"),
        &member,
        Some(json!({"subnet_id": subnet})),
    )
    .await;
    // By port: a port of the caller's joins the router as its interface.
    let own_port = call(
        &ctx,
        Method::POST,
        "/ports",
        &member,
        Some(json!({"port": {"network_id": net}})),
    )
    .await;
    let own_port_id = own_port.body["port"]["id"].as_str().unwrap();
    let by_port = add_interface(&ctx, &member, id2, json!({"port_id": own_port_id})).await;
    let by_port_again = add_interface(&ctx, &member, id1, json!({"port_id": own_port_id})).await;
    let removed_by_port = call(
        &ctx,
        Method::PUT,
        &format!("/routers/{id2}/remove_router_interface"),
        &member,
        Some(json!({"port_id": own_port_id})),
    )
    .await;
    let delete_after = call(
        &ctx,
        Method::DELETE,
        &format!("/routers/{id1}"),
        &member,
        None,
    )
    .await;

    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["id"], id1);
    assert_eq!(added.body["subnet_id"], subnet.as_str());
    assert_eq!(added.body["network_id"], net.as_str());
    assert_eq!(
        port.body["port"]["device_owner"],
        "network:router_interface"
    );
    assert_eq!(port.body["port"]["device_id"], id1);
    assert_eq!(port.body["port"]["fixed_ips"][0]["ip_address"], "10.0.0.1");
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    assert!(
        twice.body["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains(id1)
    );
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(neither.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        delete_port.status,
        StatusCode::CONFLICT,
        "{}",
        delete_port.body
    );
    assert_eq!(
        delete_router.status,
        StatusCode::CONFLICT,
        "{}",
        delete_router.body
    );
    assert_eq!(neutron_type(&delete_router), "RouterInUse");
    assert_eq!(
        delete_subnet.status,
        StatusCode::CONFLICT,
        "{}",
        delete_subnet.body
    );
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body["port_id"], port_id.as_str());
    assert_eq!(removed_again.status, StatusCode::NOT_FOUND);
    assert_eq!(by_port.status, StatusCode::OK, "{}", by_port.body);
    assert_eq!(by_port.body["port_id"], own_port_id);
    assert_eq!(
        by_port_again.status,
        StatusCode::CONFLICT,
        "{}",
        by_port_again.body
    );
    assert_eq!(
        removed_by_port.status,
        StatusCode::OK,
        "{}",
        removed_by_port.body
    );
    assert_eq!(delete_after.status, StatusCode::NO_CONTENT);
    ctx.shutdown().await;
}

#[tokio::test]
async fn the_router_quota_is_checked_at_create() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let set = call(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &admin,
        Some(json!({"quota": {"router": 1}})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    create_router(&ctx, &member, json!({"name": "one"})).await;
    let second = call(
        &ctx,
        Method::POST,
        "/routers",
        &member,
        Some(json!({"router": {}})),
    )
    .await;
    let details = call(
        &ctx,
        Method::GET,
        &format!("/quotas/{project}/details"),
        &member,
        None,
    )
    .await;

    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(neutron_type(&second), "OverQuota");
    assert_eq!(
        details.body["quota"]["router"]["used"], 1,
        "{}",
        details.body
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn the_routers_node_carries_the_external_and_every_attached_network() {
    let (ctx, admin) = cloud_with_node().await;
    let (ext, _) = external_network(&ctx, &admin).await;
    let (net, subnet) = private_network(&ctx, &admin).await;
    let router = create_router(
        &ctx,
        &admin,
        json!({"external_gateway_info": {"network_id": ext}}),
    )
    .await;
    let id = router["id"].as_str().unwrap();
    let added = add_interface(&ctx, &admin, id, json!({"subnet_id": subnet})).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);

    ctx.eventually(WAIT, "the router's node carrying both networks", || async {
        let status = ctx.agent_status(0).await.network;
        status.networks.contains(&ext) && status.networks.contains(&net) && status.ports.len() == 2
    })
    .await;
    let ports = call(
        &ctx,
        Method::GET,
        &format!("/ports?device_id={id}"),
        &admin,
        None,
    )
    .await;
    for p in ports.body["ports"].as_array().unwrap() {
        assert_eq!(p["binding:host_id"], "node-1");
        assert_eq!(p["status"], "ACTIVE", "{p}");
    }

    call(
        &ctx,
        Method::PUT,
        &format!("/routers/{id}/remove_router_interface"),
        &admin,
        Some(json!({"subnet_id": subnet})),
    )
    .await;
    ctx.eventually(WAIT, "the detached network withdrawn", || async {
        let status = ctx.agent_status(0).await.network;
        !status.networks.contains(&net) && status.networks.contains(&ext)
    })
    .await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn every_router_endpoint_answers_401_403_and_404_as_policy_says() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, reader) = ctx.user_with_role(&admin, "rita", "reader").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "bob", "member").await;
    let router = create_router(&ctx, &admin, json!({"project_id": project})).await;
    let id = router["id"].as_str().unwrap();
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/routers".into(), None),
        (Method::POST, "/routers".into(), Some(json!({"router": {}}))),
        (Method::GET, format!("/routers/{id}"), None),
        (
            Method::PUT,
            format!("/routers/{id}"),
            Some(json!({"router": {"name": "x"}})),
        ),
        (
            Method::PUT,
            format!("/routers/{id}/add_router_interface"),
            Some(json!({"subnet_id": "s"})),
        ),
        (
            Method::PUT,
            format!("/routers/{id}/remove_router_interface"),
            Some(json!({"subnet_id": "s"})),
        ),
        (Method::DELETE, format!("/routers/{id}"), None),
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
        if path.contains(id) {
            let r = ctx
                .call(method.clone(), &url, Some(&stranger), body.clone())
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "stranger: {method} {path}");
        }
    }
    let listed = call(&ctx, Method::GET, "/routers", &stranger, None).await;
    assert_eq!(listed.body["routers"], json!([]));
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_live_migrated_servers_ports_follow_it_to_its_new_node() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;
    let (net, _) = private_network(&ctx, &admin).await;
    let booted = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&admin),
            Some(
                json!({"server": {"name": "vm", "flavorRef": "1", "imageRef": image,
                                    "networks": [{"uuid": net}]}}),
            ),
        )
        .await;
    assert_eq!(booted.status, StatusCode::ACCEPTED, "{}", booted.body);
    let id = booted.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let host_of = || async {
        let s = ctx
            .call(
                Method::GET,
                &format!("/compute/v2.1/servers/{id}"),
                Some(&admin),
                None,
            )
            .await;
        s.body["server"]["OS-EXT-SRV-ATTR:host"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let source = host_of().await;
    let index_of = |name: &str| ctx.agents.iter().position(|a| a.node_name == name).unwrap();
    let port = call(
        &ctx,
        Method::GET,
        &format!("/ports?device_id={id}"),
        &admin,
        None,
    )
    .await;
    let port_id = port.body["ports"][0]["id"].as_str().unwrap().to_string();

    let r = ctx
        .call(
            Method::POST,
            &format!("/compute/v2.1/servers/{id}/action"),
            Some(&admin),
            Some(json!({"os-migrateLive": {"host": null, "block_migration": false, "disk_over_commit": false}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    ctx.eventually(WAIT, "the server on its new node", || async {
        host_of().await != source
    })
    .await;
    let target = host_of().await;
    ctx.eventually(
        WAIT,
        "the new node carrying the port, the old one not",
        || async {
            let carried = ctx.agent_status(index_of(&target)).await.network.ports;
            let left = ctx.agent_status(index_of(&source)).await.network.ports;
            carried.contains(&port_id) && !left.contains(&port_id)
        },
    )
    .await;
    let moved = call(
        &ctx,
        Method::GET,
        &format!("/ports/{port_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(moved.body["port"]["binding:host_id"], target.as_str());
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_network_with_a_router_interface_or_gateway_is_not_deleted() {
    let (ctx, admin) = cloud_with_node().await;
    let (external, _) = external_network(&ctx, &admin).await;
    let (private, subnet) = private_network(&ctx, &admin).await;
    let router = create_router(
        &ctx,
        &admin,
        json!({"name": "r", "external_gateway_info": {"network_id": external}}),
    )
    .await;
    let id = router["id"].as_str().unwrap().to_string();
    let r = add_interface(&ctx, &admin, &id, json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for network in [&private, &external] {
        let r = call(
            &ctx,
            Method::DELETE,
            &format!("/networks/{network}"),
            &admin,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(neutron_type(&r), "NetworkInUse");
    }
    let r = call(
        &ctx,
        Method::PUT,
        &format!("/routers/{id}/remove_router_interface"),
        &admin,
        Some(json!({"subnet_id": subnet})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &ctx,
        Method::DELETE,
        &format!("/networks/{private}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    ctx.shutdown().await;
}
