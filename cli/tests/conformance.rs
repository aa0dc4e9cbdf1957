//! `yunji conformance` against yunji itself (every clause passes), and against a broken
//! endpoint that drops mandatory elements (those clauses fail, with the evidence).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use common::{Cloud, stderr, stdout, write_clouds_yaml, yunji};

fn report(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn clause<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clause_passes_against_yunji_with_sim_nodes() {
    let cloud = Cloud::start(2).await;
    let out = tempfile::tempdir().unwrap();
    let html = out.path().join("report.html");
    let run = cloud
        .yunji(&[
            "conformance",
            "--report",
            html.to_str().unwrap(),
            "--timeout",
            "60",
        ])
        .await;
    let report = report(out.path());
    let failing: Vec<String> = report["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| format!("{} {}: {}", c["id"], c["status"], c["evidence"]))
        .collect();
    assert!(
        failing.is_empty(),
        "clauses not passing:\n{}\n{}",
        failing.join("\n"),
        stderr(&run)
    );
    assert_eq!(report["passed"], 49);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(
        stdout(&run).contains("49 passed, 0 failed, 0 not offered"),
        "{}",
        stdout(&run)
    );
    // The page names every clause, in Chinese, with its result.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("热迁移云主机") && page.contains("id=\"B.4.1.6\""),
        "{page}"
    );
    // Nothing the run made is left behind.
    let left = cloud
        .yunji(&["-f", "json", "server", "list", "--all-projects"])
        .await;
    assert_eq!(stdout(&left).trim(), "[]");
    let left = cloud.yunji(&["-f", "json", "volume", "list"]).await;
    assert_eq!(stdout(&left).trim(), "[]");
    let networks = cloud.yunji(&["-f", "json", "network", "list"]).await;
    assert!(
        !stdout(&networks).contains("conformance-"),
        "{}",
        stdout(&networks)
    );
    cloud.ctx.shutdown().await;
}

/// What the broken endpoint leaves out.
fn break_reply(path: &str, body: &mut Value) {
    // B.1.1: the token's expiry (过期时间).
    if path.ends_with("/auth/tokens")
        && let Some(token) = body.get_mut("token").and_then(Value::as_object_mut)
    {
        token.remove("expires_at");
    }
    // B.2.1.3: a server's creation time (云主机创建时间), in show only.
    if path.starts_with("/compute/v2.1/servers/")
        && !path.contains("/action")
        && let Some(server) = body.get_mut("server").and_then(Value::as_object_mut)
    {
        server.remove("created");
    }
}

/// A proxy to `upstream` that rewrites the catalog to itself and breaks some replies.
async fn broken_endpoint(upstream: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let me = format!("http://{addr}");
    let http = reqwest::Client::new();
    let base = me.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (http, upstream, me) = (http.clone(), upstream.clone(), base.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (http, upstream, me) = (http.clone(), upstream.clone(), me.clone());
                    async move {
                        let path = req.uri().path().to_owned();
                        let target = format!(
                            "{upstream}{}",
                            req.uri().path_and_query().map_or("", |p| p.as_str())
                        );
                        let mut forward = http.request(req.method().clone(), target);
                        for (name, value) in req.headers() {
                            if name != "host" {
                                forward = forward.header(name, value);
                            }
                        }
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let reply = forward.body(body).send().await.unwrap();
                        let mut response = hyper::Response::builder().status(reply.status());
                        for (name, value) in reply.headers() {
                            if name != "content-length" && name != "transfer-encoding" {
                                response = response.header(name, value);
                            }
                        }
                        let bytes = reply.bytes().await.unwrap();
                        let text = String::from_utf8_lossy(&bytes).replace(&upstream, &me);
                        let out = match serde_json::from_str::<Value>(&text) {
                            Ok(mut json) => {
                                break_reply(&path, &mut json);
                                json.to_string()
                            }
                            Err(_) => text,
                        };
                        Ok::<_, std::convert::Infallible>(
                            response.body(Full::new(Bytes::from(out))).unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    me
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_mandatory_element_fails_its_clause_with_the_evidence() {
    let cloud = Cloud::start(1).await;
    let proxy = broken_endpoint(cloud.ctx.url.clone()).await;
    let out = tempfile::tempdir().unwrap();
    let clouds = out.path().join("clouds.yaml");
    write_clouds_yaml(&clouds, "broken", &proxy);
    let json = out.path().join("report.json");
    let run = yunji(
        &clouds,
        "broken",
        &[
            "conformance",
            "--json",
            json.to_str().unwrap(),
            "--timeout",
            "60",
        ],
    )
    .await;
    assert_eq!(
        run.status.code(),
        Some(5),
        "{}\n{}",
        stdout(&run),
        stderr(&run)
    );
    let report = report(out.path());

    let token = clause(&report, "B.1.1");
    assert_eq!(token["status"], "fail");
    let evidence = token["evidence"].to_string();
    assert!(
        evidence.contains("过期时间 (/token/expires_at)"),
        "{evidence}"
    );
    assert!(
        evidence.contains("POST http://") && evidence.contains("/identity/v3/auth/tokens"),
        "{evidence}"
    );

    let show = clause(&report, "B.2.1.3");
    assert_eq!(show["status"], "fail");
    assert!(
        show["evidence"]
            .to_string()
            .contains("云主机创建时间 (/created)"),
        "{}",
        show["evidence"]
    );
    // The list still carries it, so its clause passes; one compute host: no migration.
    assert_eq!(clause(&report, "B.2.1.8")["status"], "pass");
    assert_eq!(clause(&report, "B.2.1.9")["status"], "not-offered");
    assert_eq!(report["failed"], 2, "{}", stdout(&run));
    cloud.ctx.shutdown().await;
}
