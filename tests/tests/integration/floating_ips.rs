//! Neutron floating IPs: an address from the external network, association through a
//! router joining the port's subnet to that network (404 naming what to attach
//! otherwise), `port_details`, filters, the quota, disassociation when the port goes,
//! the router kept while floating IPs use it, and the 401/403/404 matrix.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

use crate::routers::{add_interface, create_router, external_network, private_network};

const N: &str = "/network/v2.0";

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

/// A member's private network routed to the external one; returns
/// (member token, external network, router, a port on the private network).
async fn routed(ctx: &TestContext, admin: &str) -> (String, String, String, Value) {
    let (_, _, member) = ctx.user_with_role(admin, "alice", "member").await;
    let (ext, _) = external_network(ctx, admin).await;
    let (net, subnet) = private_network(ctx, &member).await;
    let router = create_router(
        ctx,
        &member,
        json!({"external_gateway_info": {"network_id": ext}}),
    )
    .await;
    let router_id = router["id"].as_str().unwrap().to_string();
    let r = add_interface(ctx, &member, &router_id, json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let port = call(
        ctx,
        Method::POST,
        "/ports",
        &member,
        Some(
            json!({"port": {"network_id": net, "name": "vm-port", "device_id": "vm1",
                              "device_owner": "compute:nova"}}),
        ),
    )
    .await;
    assert_eq!(port.status, StatusCode::CREATED, "{}", port.body);
    (member, ext, router_id, port.body["port"].clone())
}

#[tokio::test]
async fn a_floating_ip_is_created_associated_shown_disassociated_and_deleted() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (member, ext, router, port) = routed(&ctx, &admin).await;
    let port_id = port["id"].as_str().unwrap();

    let created = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext, "description": "web"}})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let fip = created.body["floatingip"].clone();
    let id = fip["id"].as_str().unwrap();
    let associated = call(
        &ctx,
        Method::PUT,
        &format!("/floatingips/{id}"),
        &member,
        Some(json!({"floatingip": {"port_id": port_id}})),
    )
    .await;
    let by_port = call(
        &ctx,
        Method::GET,
        &format!("/floatingips?port_id={port_id}"),
        &member,
        None,
    )
    .await;
    let by_router = call(
        &ctx,
        Method::GET,
        &format!("/floatingips?router_id={router}"),
        &member,
        None,
    )
    .await;
    let by_status = call(&ctx, Method::GET, "/floatingips?status=DOWN", &member, None).await;
    let router_delete = call(
        &ctx,
        Method::DELETE,
        &format!("/routers/{router}"),
        &member,
        None,
    )
    .await;
    let disassociated = call(
        &ctx,
        Method::PUT,
        &format!("/floatingips/{id}"),
        &member,
        Some(json!({"floatingip": {"port_id": null}})),
    )
    .await;
    let holder = call(
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
        &format!("/floatingips/{id}"),
        &member,
        None,
    )
    .await;
    let gone = call(
        &ctx,
        Method::GET,
        &format!("/floatingips/{id}"),
        &member,
        None,
    )
    .await;
    let holder_after = call(
        &ctx,
        Method::GET,
        &format!("/ports?device_id={id}"),
        &admin,
        None,
    )
    .await;

    assert_eq!(fip["floating_network_id"], ext.as_str());
    assert_eq!(
        fip["floating_ip_address"], "203.0.113.3",
        "the gateway took .2: {fip}"
    );
    assert_eq!(fip["status"], "DOWN");
    assert_eq!(fip["port_id"], Value::Null);
    assert_eq!(fip["router_id"], Value::Null);
    assert_eq!(fip["port_details"], Value::Null);
    assert_eq!(fip["description"], "web");
    assert_eq!(associated.status, StatusCode::OK, "{}", associated.body);
    let a = &associated.body["floatingip"];
    assert_eq!(a["port_id"], port_id);
    assert_eq!(a["fixed_ip_address"], port["fixed_ips"][0]["ip_address"]);
    assert_eq!(a["router_id"], router.as_str());
    assert_eq!(a["status"], "ACTIVE");
    assert_eq!(a["port_details"]["name"], "vm-port");
    assert_eq!(a["port_details"]["network_id"], port["network_id"]);
    assert_eq!(a["port_details"]["mac_address"], port["mac_address"]);
    assert_eq!(a["port_details"]["device_id"], "vm1");
    assert_eq!(a["port_details"]["device_owner"], "compute:nova");
    assert_eq!(by_port.body["floatingips"].as_array().unwrap().len(), 1);
    assert_eq!(by_router.body["floatingips"].as_array().unwrap().len(), 1);
    assert_eq!(by_status.body["floatingips"], json!([]));
    assert_eq!(
        router_delete.status,
        StatusCode::CONFLICT,
        "{}",
        router_delete.body
    );
    assert_eq!(disassociated.status, StatusCode::OK);
    assert_eq!(disassociated.body["floatingip"]["port_id"], Value::Null);
    assert_eq!(disassociated.body["floatingip"]["status"], "DOWN");
    assert_eq!(
        holder.body["ports"][0]["device_owner"],
        "network:floatingip"
    );
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_type(&gone), "FloatingIPNotFound");
    assert_eq!(
        holder_after.body["ports"],
        json!([]),
        "the address went back"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn association_needs_a_router_to_the_external_network_and_one_fip_per_address() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (member, ext, _, port) = routed(&ctx, &admin).await;
    let port_id = port["id"].as_str().unwrap();
    // A second private network, attached to no router.
    let (lonely_net, lonely_subnet) = {
        let n = crate::network::create_network(&ctx, &member, json!({"name": "lonely"})).await;
        let id = n["id"].as_str().unwrap().to_string();
        let s = crate::network::create_subnet(
            &ctx,
            &member,
            json!({"network_id": id, "ip_version": 4, "cidr": "10.9.0.0/24"}),
        )
        .await;
        (id, s["id"].as_str().unwrap().to_string())
    };
    let lonely_port = call(
        &ctx,
        Method::POST,
        "/ports",
        &member,
        Some(json!({"port": {"network_id": lonely_net}})),
    )
    .await;
    let lonely_port_id = lonely_port.body["port"]["id"].as_str().unwrap();

    let unreachable = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext, "port_id": lonely_port_id}})),
    )
    .await;
    let not_external = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": lonely_net}})),
    )
    .await;
    let chosen_by_member = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext, "floating_ip_address": "203.0.113.9"}})),
    )
    .await;
    let first = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext, "port_id": port_id}})),
    )
    .await;
    let second = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext, "port_id": port_id}})),
    )
    .await;
    let wrong_fixed = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(
            json!({"floatingip": {"floating_network_id": ext, "port_id": port_id,
                                    "fixed_ip_address": "10.0.0.200"}}),
        ),
    )
    .await;
    let all = call(&ctx, Method::GET, "/floatingips", &member, None).await;
    let by_address = call(
        &ctx,
        Method::GET,
        &format!(
            "/floatingips?floating_ip_address={}",
            first.body["floatingip"]["floating_ip_address"]
                .as_str()
                .unwrap()
        ),
        &member,
        None,
    )
    .await;

    assert_eq!(
        unreachable.status,
        StatusCode::NOT_FOUND,
        "{}",
        unreachable.body
    );
    assert_eq!(
        neutron_type(&unreachable),
        "ExternalGatewayForFloatingIPNotFound"
    );
    let message = unreachable.body["NeutronError"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains(&lonely_subnet) && message.contains("add_router_interface"),
        "{message}"
    );
    assert_eq!(
        not_external.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_external.body
    );
    assert_eq!(chosen_by_member.status, StatusCode::FORBIDDEN);
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(neutron_type(&second), "FloatingIPPortAlreadyAssociated");
    assert_eq!(
        wrong_fixed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        wrong_fixed.body
    );
    assert_eq!(
        all.body["floatingips"].as_array().unwrap().len(),
        1,
        "failed creates leave nothing"
    );
    assert_eq!(by_address.body["floatingips"].as_array().unwrap().len(), 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn deleting_the_port_disassociates_and_the_quota_counts_floating_ips() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (member, ext, _, port) = routed(&ctx, &admin).await;
    let port_id = port["id"].as_str().unwrap();
    let project = port["project_id"].as_str().unwrap();
    call(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &admin,
        Some(json!({"quota": {"floatingip": 1}})),
    )
    .await;
    let first = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext, "port_id": port_id}})),
    )
    .await;
    let over = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext}})),
    )
    .await;
    let id = first.body["floatingip"]["id"].as_str().unwrap();
    let port_deleted = call(
        &ctx,
        Method::DELETE,
        &format!("/ports/{port_id}"),
        &member,
        None,
    )
    .await;
    let after = call(
        &ctx,
        Method::GET,
        &format!("/floatingips/{id}"),
        &member,
        None,
    )
    .await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(over.status, StatusCode::CONFLICT, "{}", over.body);
    assert_eq!(neutron_type(&over), "OverQuota");
    assert_eq!(port_deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(after.body["floatingip"]["port_id"], Value::Null);
    assert_eq!(after.body["floatingip"]["router_id"], Value::Null);
    assert_eq!(after.body["floatingip"]["status"], "DOWN");
    ctx.shutdown().await;
}

#[tokio::test]
async fn every_floating_ip_endpoint_answers_401_403_and_404_as_policy_says() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, reader) = ctx.user_with_role(&admin, "rita", "reader").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "bob", "member").await;
    let (ext, _) = external_network(&ctx, &admin).await;
    let made = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &admin,
        Some(json!({"floatingip": {"floating_network_id": ext, "project_id": project}})),
    )
    .await;
    let id = made.body["floatingip"]["id"].as_str().unwrap();
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/floatingips".into(), None),
        (
            Method::POST,
            "/floatingips".into(),
            Some(json!({"floatingip": {"floating_network_id": ext}})),
        ),
        (Method::GET, format!("/floatingips/{id}"), None),
        (
            Method::PUT,
            format!("/floatingips/{id}"),
            Some(json!({"floatingip": {"description": "x"}})),
        ),
        (Method::DELETE, format!("/floatingips/{id}"), None),
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
    let listed = call(&ctx, Method::GET, "/floatingips", &stranger, None).await;
    assert_eq!(listed.body["floatingips"], json!([]));
    ctx.shutdown().await;
}

/// The router's node is pushed its NAT: gateway, interfaces and each associated
/// floating IP, which goes again on disassociation.
#[tokio::test]
async fn the_routers_node_carries_its_gateway_interfaces_and_floating_ip_nat() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let (member, ext, router, port) = routed(&ctx, &admin).await;
    let fixed = port["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_string();
    let created = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext, "port_id": port["id"]}})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let fip = created.body["floatingip"].clone();
    let floating = fip["floating_ip_address"].as_str().unwrap().to_string();

    ctx.eventually(
        Duration::from_secs(10),
        "the floating IP's NAT on the node",
        || async {
            ctx.agent_network(0).await.routers.iter().any(|r| {
                r.id == router
                    && r.floating_ips
                        .iter()
                        .any(|f| f.floating_ip == floating && f.fixed_ip == fixed)
            })
        },
    )
    .await;
    let carried = ctx.agent_network(0).await;
    let spec = carried.routers.iter().find(|r| r.id == router).unwrap();
    let gateway = spec.gateway.as_ref().expect("a gateway");
    assert_eq!(gateway.network_id, ext);
    assert!(gateway.enable_snat);
    assert_eq!(gateway.addresses, vec!["203.0.113.2".to_string()]);
    assert_eq!(spec.interfaces.len(), 1);
    assert_eq!(
        spec.interfaces[0].network_id,
        port["network_id"].as_str().unwrap()
    );

    let id = fip["id"].as_str().unwrap();
    let off = call(
        &ctx,
        Method::PUT,
        &format!("/floatingips/{id}"),
        &member,
        Some(json!({"floatingip": {"port_id": null}})),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK);
    ctx.eventually(
        Duration::from_secs(10),
        "the NAT gone from the node",
        || async {
            ctx.agent_network(0)
                .await
                .routers
                .iter()
                .all(|r| r.floating_ips.is_empty())
        },
    )
    .await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_servers_addresses_list_its_floating_ip_after_the_fixed_one() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (member, ext, _router, port) = routed(&ctx, &admin).await;
    let server = json!({"name": "web", "flavorRef": "1", "imageRef": image,
                        "networks": [{"uuid": port["network_id"]}]});
    let r = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&member),
            Some(json!({"server": server})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&member, &id, "ACTIVE", Duration::from_secs(20))
        .await;
    let ports = call(
        &ctx,
        Method::GET,
        &format!("/ports?device_id={id}"),
        &member,
        None,
    )
    .await;
    let vm_port = &ports.body["ports"][0];
    let fixed = vm_port["fixed_ips"][0]["ip_address"].as_str().unwrap();
    let fip = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext, "port_id": vm_port["id"]}})),
    )
    .await;
    assert_eq!(fip.status, StatusCode::CREATED, "{}", fip.body);
    let floating = fip.body["floatingip"]["floating_ip_address"]
        .as_str()
        .unwrap();

    let shown = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}"),
            Some(&member),
            None,
        )
        .await;
    let mac = &vm_port["mac_address"];
    let addresses = shown.body["server"]["addresses"].as_object().unwrap();
    assert_eq!(addresses.len(), 1, "{addresses:?}");
    assert_eq!(
        addresses.values().next().unwrap(),
        &json!([
            {"addr": fixed, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac},
            {"addr": floating, "version": 4, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": mac},
        ])
    );
    let ips = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}/ips"),
            Some(&member),
            None,
        )
        .await;
    let listed: Vec<&str> = ips.body["addresses"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|l| l.as_array().unwrap())
        .map(|a| a["addr"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [fixed, floating]);

    // Disassociated, it is gone from the server's addresses.
    let fip_id = fip.body["floatingip"]["id"].as_str().unwrap();
    let r = call(
        &ctx,
        Method::PUT,
        &format!("/floatingips/{fip_id}"),
        &member,
        Some(json!({"floatingip": {"port_id": null}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shown = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}"),
            Some(&member),
            None,
        )
        .await;
    let after: Vec<&Value> = shown.body["server"]["addresses"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|l| l.as_array().unwrap())
        .collect();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["OS-EXT-IPS:type"], "fixed");
    ctx.shutdown().await;
}
