//! Runs every clause against a cloud: creates what each needs (a flavor, an image, a
//! network, a server, a volume, …), checks each reply's status and the standard's
//! mandatory elements, keeps the requests as evidence, and removes everything it made.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};
use yunji_client::{Client, Error, Reply, Service};

use super::clauses::{CLAUSES, clause};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    NotOffered,
}

/// One request made for a clause, or a finding about its reply.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub request: String,
    pub status: Option<u16>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: &'static str,
    pub title: &'static str,
    pub endpoint: &'static str,
    pub status: Status,
    pub evidence: Vec<Evidence>,
    pub millis: u64,
}

/// Why a clause stopped.
enum Stop {
    Fail(String),
    NotOffered(String),
}

type Step = Result<(), Stop>;

/// What the clauses create and later clauses use.
#[derive(Default)]
struct Made {
    flavor: Option<String>,
    bigger_flavor: Option<String>,
    image: Option<String>,
    network: Option<String>,
    subnet: Option<String>,
    external_network: Option<String>,
    server: Option<String>,
    port: Option<(String, String)>,
    volume: Option<String>,
    floating_ip: Option<String>,
    public_ip: Option<String>,
    load_balancer: Option<String>,
    security_group: Option<String>,
    rule: Option<String>,
}

pub struct Run {
    client: Client,
    timeout: Duration,
    /// Names of everything made start with this, so a person can find leftovers.
    prefix: String,
    log: Vec<Evidence>,
    outcomes: BTreeMap<&'static str, Outcome>,
    /// Requests that undo what was made, run last-first at the end.
    undo: Vec<(Service, Method, String, Option<Value>)>,
    made: Made,
    boot_image: Option<String>,
}

impl Run {
    /// `boot_image`: what the test server boots (else the image B.2.3.2 uploads).
    pub fn new(client: Client, timeout: Duration, boot_image: Option<String>) -> Run {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Run {
            client,
            timeout,
            prefix: format!("conformance-{}", &tag[..8]),
            log: Vec::new(),
            outcomes: BTreeMap::new(),
            undo: Vec::new(),
            made: Made::default(),
            boot_image,
        }
    }

    /// Runs every clause (in an order where each finds what it needs) and cleans up;
    /// returns the outcomes in the standard's order.
    pub async fn all(mut self, progress: impl Fn(&Outcome)) -> Vec<Outcome> {
        macro_rules! clause {
            ($id:literal, $check:ident) => {{
                let started = Instant::now();
                let result = self.$check().await;
                let outcome = self.finish($id, started, result);
                progress(&outcome);
            }};
        }
        clause!("B.1.1", b_1_1);
        clause!("B.1.2", b_1_2);
        clause!("B.1.3.1", b_1_3_1);
        clause!("B.1.3.2", b_1_3_2);
        clause!("B.2.2.1", b_2_2_1);
        clause!("B.2.2.3", b_2_2_3);
        clause!("B.2.2.4", b_2_2_4);
        clause!("B.2.3.2", b_2_3_2);
        clause!("B.2.3.4", b_2_3_4);
        clause!("B.2.3.5", b_2_3_5);
        clause!("B.2.3.6", b_2_3_6);
        clause!("B.3.1.1", b_3_1_1);
        clause!("B.3.5.1", b_3_5_1);
        clause!("B.3.5.3", b_3_5_3);
        clause!("B.3.5.4", b_3_5_4);
        clause!("B.3.5.5", b_3_5_5);
        clause!("B.3.5.2", b_3_5_2);
        clause!("B.2.1.1", b_2_1_1);
        clause!("B.2.1.3", b_2_1_3);
        clause!("B.2.1.8", b_2_1_8);
        clause!("B.2.1.4", b_2_1_4);
        clause!("B.2.1.6", b_2_1_6);
        clause!("B.2.1.5", b_2_1_5);
        clause!("B.2.1.7", b_2_1_7);
        clause!("B.4.1.1", b_4_1_1);
        clause!("B.4.1.3", b_4_1_3);
        clause!("B.4.1.4", b_4_1_4);
        clause!("B.4.1.6", b_4_1_6);
        clause!("B.4.1.5", b_4_1_5);
        clause!("B.4.1.2", b_4_1_2);
        clause!("B.3.2.1", b_3_2_1);
        clause!("B.3.2.2", b_3_2_2);
        clause!("B.3.3.1", b_3_3_1);
        clause!("B.3.3.2", b_3_3_2);
        clause!("B.3.3.4", b_3_3_4);
        clause!("B.3.3.3", b_3_3_3);
        clause!("B.3.3.5", b_3_3_5);
        clause!("B.3.4.1", b_3_4_1);
        clause!("B.3.4.3", b_3_4_3);
        clause!("B.3.4.4", b_3_4_4);
        clause!("B.3.4.5", b_3_4_5);
        clause!("B.3.4.6", b_3_4_6);
        clause!("B.3.4.2", b_3_4_2);
        clause!("B.2.1.10", b_2_1_10);
        clause!("B.2.1.9", b_2_1_9);
        clause!("B.2.3.1", b_2_3_1);
        clause!("B.2.1.2", b_2_1_2);
        clause!("B.2.3.3", b_2_3_3);
        clause!("B.2.2.2", b_2_2_2);
        self.clean_up().await;
        CLAUSES
            .iter()
            .filter_map(|c| self.outcomes.remove(c.id))
            .collect()
    }

    fn finish(&mut self, id: &'static str, started: Instant, result: Step) -> Outcome {
        let c = clause(id);
        let mut evidence = std::mem::take(&mut self.log);
        let status = match result {
            Ok(()) => Status::Pass,
            Err(Stop::Fail(note)) => {
                evidence.push(Evidence {
                    request: String::new(),
                    status: None,
                    note,
                });
                Status::Fail
            }
            Err(Stop::NotOffered(note)) => {
                evidence.push(Evidence {
                    request: String::new(),
                    status: None,
                    note,
                });
                Status::NotOffered
            }
        };
        let outcome = Outcome {
            id: c.id,
            title: c.title,
            endpoint: c.endpoint,
            status,
            evidence,
            millis: started.elapsed().as_millis() as u64,
        };
        self.outcomes.insert(id, outcome.clone());
        outcome
    }

    /// Sends a request and requires one of the `expected` statuses.
    async fn call(
        &mut self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: &[u16],
    ) -> Result<Reply, Stop> {
        self.call_with(service, method, path, body, expected, None)
            .await
    }

    async fn call_with(
        &mut self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: &[u16],
        header: Option<(&str, &str)>,
    ) -> Result<Reply, Stop> {
        let url = match self.client.endpoint(service) {
            Ok(base) => format!("{base}{path}"),
            Err(e @ Error::NoEndpoint { .. }) => return Err(Stop::NotOffered(e.to_string())),
            Err(e) => return Err(Stop::Fail(e.to_string())),
        };
        let mut request = self.client.request(service, method.clone(), &url);
        if let Some(body) = &body {
            request = request.json(body);
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let reply = self
            .client
            .exchange(method.clone(), url.clone(), request)
            .await
            .map_err(|e| Stop::Fail(format!("{method} {url}: no answer: {e}")))?;
        let status = reply.status.as_u16();
        let ok = expected.contains(&status);
        self.log.push(Evidence {
            request: reply.request_line(),
            status: Some(status),
            note: if ok {
                String::new()
            } else {
                yunji_client::error_message(&reply.raw)
            },
        });
        if !ok {
            let wanted = expected
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(Stop::Fail(format!(
                "{} answered {status}, the binding says {wanted}",
                reply.request_line()
            )));
        }
        Ok(reply)
    }

    /// Requires the clause's mandatory (必选) elements in `object`.
    fn mandatory(&mut self, id: &str, object: &Value, request: &str) -> Step {
        let missing: Vec<String> = clause(id)
            .mandatory
            .iter()
            .filter(|e| e.pointer.starts_with('/') && object.pointer(e.pointer).is_none())
            .map(|e| format!("{} ({})", e.name, e.pointer))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Stop::Fail(format!(
            "{request}: the reply lacks the mandatory (必选) element {}",
            missing.join(", ")
        )))
    }

    /// Polls `path` until `object[field]` is one of `wanted` (`DELETED` = 404).
    async fn wait(
        &mut self,
        service: Service,
        path: &str,
        key: &str,
        field: &str,
        wanted: &[&str],
    ) -> Result<Value, Stop> {
        let started = Instant::now();
        loop {
            let reply = match self.client.probe(service, Method::GET, path, None).await {
                Ok(r) => r,
                Err(e) => return Err(Stop::Fail(e.to_string())),
            };
            let object = if key.is_empty() {
                reply.body.clone()
            } else {
                reply.body.get(key).cloned().unwrap_or(Value::Null)
            };
            let now = if reply.status.as_u16() == 404 {
                "DELETED".to_owned()
            } else {
                object
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned()
            };
            if wanted.iter().any(|w| w.eq_ignore_ascii_case(&now)) {
                self.log.push(Evidence {
                    request: reply.request_line(),
                    status: Some(reply.status.as_u16()),
                    note: format!(
                        "{field} {now} after {:.1} s",
                        started.elapsed().as_secs_f64()
                    ),
                });
                return Ok(object);
            }
            if now.to_ascii_lowercase().starts_with("error") {
                let fault = object
                    .get("fault")
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default();
                return Err(Stop::Fail(format!(
                    "{} went to {now}{fault}",
                    reply.request_line()
                )));
            }
            if started.elapsed() > self.timeout {
                return Err(Stop::Fail(format!(
                    "{} still has {field} {now} after {} s (waited for {})",
                    reply.request_line(),
                    self.timeout.as_secs(),
                    wanted.join(" or ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The value a previous clause made, or why this clause cannot run.
    fn need(&self, value: &Option<String>, clause_id: &str) -> Result<String, Stop> {
        if let Some(v) = value {
            return Ok(v.clone());
        }
        match self.outcomes.get(clause_id).map(|o| o.status) {
            Some(Status::NotOffered) => Err(Stop::NotOffered(format!(
                "not run: {clause_id} is not offered"
            ))),
            _ => Err(Stop::Fail(format!(
                "not run: it needs what {clause_id} makes, and {clause_id} failed"
            ))),
        }
    }

    /// `GET path` and the item of `body[key]` with `id`, which must be listed: the item
    /// and the request, for the mandatory-element check.
    async fn listed(
        &mut self,
        service: Service,
        path: &str,
        key: &str,
        (what, id): (&str, &str),
    ) -> Result<(Value, String), Stop> {
        let reply = self.call(service, Method::GET, path, None, &[200]).await?;
        let item = reply.body[key]
            .as_array()
            .and_then(|l| l.iter().find(|i| i["id"] == json!(id)))
            .cloned();
        item.map(|item| (item, reply.request_line()))
            .ok_or_else(|| {
                Stop::Fail(format!(
                    "{} does not list the {what} {id}",
                    reply.request_line()
                ))
            })
    }

    /// Deletes `path`, which must then be gone (404) at once.
    async fn delete_and_gone(&mut self, service: Service, path: &str, expected: &[u16]) -> Step {
        self.call(service, Method::DELETE, path, None, expected)
            .await?;
        self.forget(path);
        self.call(service, Method::GET, path, None, &[404])
            .await
            .map(drop)
    }

    fn undo_delete(&mut self, service: Service, path: String) {
        self.undo.push((service, Method::DELETE, path, None));
    }

    fn forget(&mut self, path: &str) {
        self.undo.retain(|(_, _, p, _)| p != path);
    }

    async fn clean_up(&mut self) {
        while let Some((service, method, path, body)) = self.undo.pop() {
            // Best effort: what is already gone is fine.
            let _ = self
                .client
                .probe(service, method, &path, body.as_ref())
                .await;
            if path.starts_with("/servers/") || path.starts_with("/volumes/") {
                let key = if path.starts_with("/servers/") {
                    "server"
                } else {
                    "volume"
                };
                let _ = self.wait(service, &path, key, "status", &["DELETED"]).await;
            }
        }
        self.log.clear();
    }

    fn id_of(reply: &Reply, key: &str) -> Result<String, Stop> {
        let object = if key.is_empty() {
            &reply.body
        } else {
            &reply.body[key]
        };
        object
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                Stop::Fail(format!(
                    "{}: the reply has no {key}.id",
                    reply.request_line()
                ))
            })
    }

    // ---- B.1 Basic ----

    async fn b_1_1(&mut self) -> Step {
        let reply = self
            .client
            .issue_token()
            .await
            .map_err(|e| Stop::Fail(e.to_string()))?;
        let status = reply.status.as_u16();
        self.log.push(Evidence {
            request: reply.request_line(),
            status: Some(status),
            note: String::new(),
        });
        if status != 201 {
            return Err(Stop::Fail(format!(
                "{} answered {status}, the binding says 201",
                reply.request_line()
            )));
        }
        if reply.headers.get("X-Subject-Token").is_none() {
            return Err(Stop::Fail(format!(
                "{}: the reply lacks the mandatory (必选) element 令牌 (X-Subject-Token header)",
                reply.request_line()
            )));
        }
        self.mandatory("B.1.1", &reply.body, &reply.request_line())?;
        let expires = reply
            .body
            .pointer("/token/expires_at")
            .and_then(Value::as_str)
            .unwrap_or("");
        if chrono::DateTime::parse_from_rfc3339(expires).is_err() {
            return Err(Stop::Fail(format!(
                "过期时间 {expires:?} is not an ISO 8601 time like 2015-08-27T09:49:58.000000Z"
            )));
        }
        Ok(())
    }

    async fn b_1_2(&mut self) -> Step {
        let regions = self
            .call(Service::Identity, Method::GET, "/regions", None, &[200])
            .await?;
        let zones = self
            .call(
                Service::Compute,
                Method::GET,
                "/os-availability-zone",
                None,
                &[200],
            )
            .await?;
        let listed = regions.body["regions"].as_array().map_or(0, Vec::len)
            + zones.body["availabilityZoneInfo"]
                .as_array()
                .map_or(0, Vec::len);
        if listed == 0 {
            return Err(Stop::Fail(
                "neither a region nor an availability zone is listed".into(),
            ));
        }
        Ok(())
    }

    async fn b_1_3_1(&mut self) -> Step {
        let limits = self
            .call(Service::Compute, Method::GET, "/limits", None, &[200])
            .await?;
        self.mandatory("B.1.3.1", &limits.body, &limits.request_line())?;
        // The data centre's totals need an admin; a member sees the project's.
        let stats = self
            .call(
                Service::Compute,
                Method::GET,
                "/os-hypervisors/statistics",
                None,
                &[200, 403],
            )
            .await?;
        if stats.status.as_u16() == 200 {
            let s = &stats.body["hypervisor_statistics"];
            let missing: Vec<&str> = ["memory_mb", "memory_mb_used", "vcpus", "vcpus_used"]
                .into_iter()
                .filter(|k| s.get(k).is_none())
                .collect();
            if !missing.is_empty() {
                return Err(Stop::Fail(format!(
                    "{}: the data centre's 总内存/已使用内存/总CPU/已使用CPU lack {}",
                    stats.request_line(),
                    missing.join(", ")
                )));
            }
        }
        Ok(())
    }

    async fn b_1_3_2(&mut self) -> Step {
        let limits = self
            .call(Service::Volume, Method::GET, "/limits", None, &[200])
            .await?;
        self.mandatory("B.1.3.2", &limits.body, &limits.request_line())
    }

    // ---- B.2.2 Flavors ----

    async fn b_2_2_1(&mut self) -> Step {
        let mut ids = Vec::new();
        for (suffix, ram, vcpus) in [("small", 512, 1), ("large", 1024, 2)] {
            let id = uuid::Uuid::new_v4().to_string();
            let body = json!({"flavor": {"name": format!("{}-{suffix}", self.prefix), "ram": ram, "vcpus": vcpus,
                                         "disk": 1, "id": id, "os-flavor-access:is_public": true}});
            let reply = self
                .call(
                    Service::Compute,
                    Method::POST,
                    "/flavors",
                    Some(body),
                    &[200, 201],
                )
                .await?;
            self.undo_delete(Service::Compute, format!("/flavors/{id}"));
            self.mandatory("B.2.2.1", &reply.body["flavor"], &reply.request_line())?;
            ids.push(id);
        }
        self.made.bigger_flavor = ids.pop();
        self.made.flavor = ids.pop();
        Ok(())
    }

    async fn b_2_2_3(&mut self) -> Step {
        let id = self.need(&self.made.flavor, "B.2.2.1")?;
        let reply = self
            .call(
                Service::Compute,
                Method::GET,
                &format!("/flavors/{id}"),
                None,
                &[200],
            )
            .await?;
        self.mandatory("B.2.2.3", &reply.body["flavor"], &reply.request_line())
    }

    async fn b_2_2_4(&mut self) -> Step {
        let reply = self
            .call(
                Service::Compute,
                Method::GET,
                "/flavors/detail",
                None,
                &[200],
            )
            .await?;
        let flavors = reply.body["flavors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(first) = flavors.first() else {
            return Err(Stop::Fail(format!(
                "{} lists no flavor",
                reply.request_line()
            )));
        };
        self.mandatory("B.2.2.4", first, &reply.request_line())?;
        if let Some(id) = &self.made.flavor
            && !flavors.iter().any(|f| f["id"] == json!(id))
        {
            return Err(Stop::Fail(format!(
                "{} does not list the flavor {id} just created",
                reply.request_line()
            )));
        }
        Ok(())
    }

    async fn b_2_2_2(&mut self) -> Step {
        let mut deleted = 0;
        for id in [self.made.flavor.clone(), self.made.bigger_flavor.clone()]
            .into_iter()
            .flatten()
        {
            let path = format!("/flavors/{id}");
            self.delete_and_gone(Service::Compute, &path, &[202, 204])
                .await?;
            deleted += 1;
        }
        if deleted == 0 {
            self.need(&None, "B.2.2.1")?;
        }
        Ok(())
    }

    // ---- B.2.3 Images ----

    async fn b_2_3_2(&mut self) -> Step {
        // The record (B.2.3.1, first form) and its data: 1 MiB of raw zeros.
        let body = json!({"name": format!("{}-image", self.prefix), "disk_format": "raw", "container_format": "bare",
                          "visibility": "private"});
        let reply = self
            .call(Service::Image, Method::POST, "/images", Some(body), &[201])
            .await?;
        let id = Self::id_of(&reply, "")?;
        self.undo_delete(Service::Image, format!("/images/{id}"));
        let url = format!(
            "{}/images/{id}/file",
            self.client
                .endpoint(Service::Image)
                .map_err(|e| Stop::Fail(e.to_string()))?
        );
        let request = self
            .client
            .request(Service::Image, Method::PUT, &url)
            .header("Content-Type", "application/octet-stream")
            .body(vec![0u8; 1 << 20]);
        let reply = self
            .client
            .exchange(Method::PUT, url, request)
            .await
            .map_err(|e| Stop::Fail(e.to_string()))?;
        self.log.push(Evidence {
            request: reply.request_line(),
            status: Some(reply.status.as_u16()),
            note: String::new(),
        });
        if reply.status.as_u16() != 204 {
            return Err(Stop::Fail(format!(
                "{} answered {}, the binding says 204: {}",
                reply.request_line(),
                reply.status,
                yunji_client::error_message(&reply.raw)
            )));
        }
        self.wait(
            Service::Image,
            &format!("/images/{id}"),
            "",
            "status",
            &["active"],
        )
        .await?;
        self.made.image = Some(id);
        Ok(())
    }

    async fn b_2_3_4(&mut self) -> Step {
        let id = self.need(&self.made.image, "B.2.3.2")?;
        let reply = self
            .call(
                Service::Image,
                Method::GET,
                &format!("/images/{id}"),
                None,
                &[200],
            )
            .await?;
        for field in [
            "id",
            "name",
            "status",
            "visibility",
            "size",
            "disk_format",
            "min_disk",
            "min_ram",
            "protected",
        ] {
            if reply.body.get(field).is_none() {
                return Err(Stop::Fail(format!(
                    "{}: the image has no {field}",
                    reply.request_line()
                )));
            }
        }
        Ok(())
    }

    async fn b_2_3_5(&mut self) -> Step {
        let id = self.need(&self.made.image, "B.2.3.2")?;
        let url = format!(
            "{}/images/{id}",
            self.client
                .endpoint(Service::Image)
                .map_err(|e| Stop::Fail(e.to_string()))?
        );
        let name = format!("{}-image-renamed", self.prefix);
        let ops = json!([
            {"op": "replace", "path": "/name", "value": name},
            {"op": "add", "path": "/gis_layer", "value": "dem"},
        ]);
        let request = self
            .client
            .request(Service::Image, Method::PATCH, &url)
            .header(
                "Content-Type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(ops.to_string());
        let reply = self
            .client
            .exchange(Method::PATCH, url.clone(), request)
            .await
            .map_err(|e| Stop::Fail(e.to_string()))?;
        self.log.push(Evidence {
            request: reply.request_line(),
            status: Some(reply.status.as_u16()),
            note: String::new(),
        });
        if reply.status.as_u16() != 200
            || reply.body["name"] != json!(name)
            || reply.body["gis_layer"] != json!("dem")
        {
            return Err(Stop::Fail(format!(
                "{} answered {} and the image is not renamed with gis_layer added: {}",
                reply.request_line(),
                reply.status,
                yunji_client::error_message(&reply.raw)
            )));
        }
        let request = self
            .client
            .request(Service::Image, Method::PATCH, &url)
            .header(
                "Content-Type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(json!([{"op": "remove", "path": "/gis_layer"}]).to_string());
        let reply = self
            .client
            .exchange(Method::PATCH, url, request)
            .await
            .map_err(|e| Stop::Fail(e.to_string()))?;
        self.log.push(Evidence {
            request: reply.request_line(),
            status: Some(reply.status.as_u16()),
            note: String::new(),
        });
        if reply.status.as_u16() != 200 || reply.body.get("gis_layer").is_some() {
            return Err(Stop::Fail(format!(
                "{}: remove did not remove gis_layer",
                reply.request_line()
            )));
        }
        Ok(())
    }

    async fn b_2_3_6(&mut self) -> Step {
        let id = self.need(&self.made.image, "B.2.3.2")?;
        self.listed(Service::Image, "/images", "images", ("image", &id))
            .await
            .map(drop)
    }

    async fn b_2_3_1(&mut self) -> Step {
        let server = self.need(&self.made.server, "B.2.1.1")?;
        let body = json!({"createImage": {"name": format!("{}-snapshot", self.prefix),
                                          "metadata": {"description": "conformance check"}}});
        let reply = self
            .call(
                Service::Compute,
                Method::POST,
                &format!("/servers/{server}/action"),
                Some(body),
                &[202],
            )
            .await?;
        let image = reply
            .body
            .get("image_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                let location = reply.headers.get("Location")?.to_str().ok()?;
                location.rsplit('/').next().map(str::to_owned)
            })
            .ok_or_else(|| {
                Stop::Fail(format!(
                    "{}: the reply names no image (镜像ID)",
                    reply.request_line()
                ))
            })?;
        let path = format!("/images/{image}");
        self.undo_delete(Service::Image, path.clone());
        self.wait(Service::Image, &path, "", "status", &["active"])
            .await?;
        self.delete_and_gone(Service::Image, &path, &[204]).await
    }

    async fn b_2_3_3(&mut self) -> Step {
        let id = self.need(&self.made.image, "B.2.3.2")?;
        let path = format!("/images/{id}");
        self.delete_and_gone(Service::Image, &path, &[204]).await
    }

    // ---- B.3.1 Networks (and what servers need) ----

    async fn b_3_1_1(&mut self) -> Step {
        let body = json!({"network": {"name": format!("{}-net", self.prefix)}});
        let reply = self
            .call(
                Service::Network,
                Method::POST,
                "/networks",
                Some(body),
                &[201],
            )
            .await?;
        let network = Self::id_of(&reply, "network")?;
        self.undo_delete(Service::Network, format!("/networks/{network}"));
        let body = json!({"subnet": {"network_id": network, "ip_version": 4, "cidr": "10.251.0.0/24",
                                     "name": format!("{}-subnet", self.prefix)}});
        let reply = self
            .call(
                Service::Network,
                Method::POST,
                "/subnets",
                Some(body),
                &[201],
            )
            .await?;
        let subnet = Self::id_of(&reply, "subnet")?;
        self.undo_delete(Service::Network, format!("/subnets/{subnet}"));
        self.made.network = Some(network.clone());
        self.made.subnet = Some(subnet.clone());

        let (ours, request) = self
            .listed(
                Service::Network,
                "/networks",
                "networks",
                ("network", &network),
            )
            .await?;
        self.mandatory("B.3.1.1", &ours, &request)?;
        // 子网 (table B.39): id, name and CIDR of each subnet, inline or from /subnets.
        let inline = ours["subnet_details"]
            .as_array()
            .and_then(|d| d.iter().find(|s| s["id"] == json!(subnet)))
            .cloned();
        let detail = match inline {
            Some(d) => d,
            None => {
                let reply = self
                    .call(
                        Service::Network,
                        Method::GET,
                        &format!("/subnets/{subnet}"),
                        None,
                        &[200],
                    )
                    .await?;
                reply.body["subnet"].clone()
            }
        };
        for (name, field) in [("子网ID", "id"), ("子网名", "name"), ("网段", "cidr")] {
            if detail.get(field).is_none() {
                return Err(Stop::Fail(format!(
                    "the subnet lacks the mandatory (必选) element {name} ({field})"
                )));
            }
        }
        self.external_network().await
    }

    /// An external network for floating and public IPs: an existing one, else one this
    /// run makes (admins) on 203.0.113.0/24, with a router to the test subnet.
    async fn external_network(&mut self) -> Step {
        let reply = self
            .call(
                Service::Network,
                Method::GET,
                "/networks?router:external=true",
                None,
                &[200],
            )
            .await?;
        let existing = reply.body["networks"]
            .as_array()
            .and_then(|l| l.iter().find(|n| n["router:external"] == json!(true)))
            .and_then(|n| n["id"].as_str())
            .map(str::to_owned);
        let external = match existing {
            Some(id) => id,
            None => {
                let body = json!({"network": {"name": format!("{}-external", self.prefix), "router:external": true}});
                let reply = self
                    .call(
                        Service::Network,
                        Method::POST,
                        "/networks",
                        Some(body),
                        &[201],
                    )
                    .await?;
                let id = Self::id_of(&reply, "network")?;
                self.undo_delete(Service::Network, format!("/networks/{id}"));
                let body = json!({"subnet": {"network_id": id, "ip_version": 4, "cidr": "203.0.113.0/24"}});
                let reply = self
                    .call(
                        Service::Network,
                        Method::POST,
                        "/subnets",
                        Some(body),
                        &[201],
                    )
                    .await?;
                let subnet = Self::id_of(&reply, "subnet")?;
                self.undo_delete(Service::Network, format!("/subnets/{subnet}"));
                id
            }
        };
        let body = json!({"router": {"name": format!("{}-router", self.prefix),
                                     "external_gateway_info": {"network_id": external}}});
        let reply = self
            .call(
                Service::Network,
                Method::POST,
                "/routers",
                Some(body),
                &[201],
            )
            .await?;
        let router = Self::id_of(&reply, "router")?;
        self.undo_delete(Service::Network, format!("/routers/{router}"));
        let subnet = self.made.subnet.clone().unwrap_or_default();
        self.call(
            Service::Network,
            Method::PUT,
            &format!("/routers/{router}/add_router_interface"),
            Some(json!({"subnet_id": subnet})),
            &[200],
        )
        .await?;
        self.undo.push((
            Service::Network,
            Method::PUT,
            format!("/routers/{router}/remove_router_interface"),
            Some(json!({"subnet_id": subnet})),
        ));
        self.made.external_network = Some(external);
        Ok(())
    }

    // ---- B.3.5 Security groups ----

    async fn b_3_5_1(&mut self) -> Step {
        let body = json!({"security_group": {"name": format!("{}-sg", self.prefix), "description": "conformance check"}});
        let reply = self
            .call(
                Service::Network,
                Method::POST,
                "/security-groups",
                Some(body),
                &[201],
            )
            .await?;
        let id = Self::id_of(&reply, "security_group")?;
        self.undo_delete(Service::Network, format!("/security-groups/{id}"));
        self.mandatory(
            "B.3.5.1",
            &reply.body["security_group"],
            &reply.request_line(),
        )?;
        let rules = reply.body["security_group"]["security_group_rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for ethertype in ["IPv4", "IPv6"] {
            if !rules
                .iter()
                .any(|r| r["direction"] == json!("egress") && r["ethertype"] == json!(ethertype))
            {
                return Err(Stop::Fail(format!(
                    "{}: a new group has no default {ethertype} egress rule",
                    reply.request_line()
                )));
            }
        }
        self.made.security_group = Some(id);
        Ok(())
    }

    async fn b_3_5_3(&mut self) -> Step {
        let id = self.need(&self.made.security_group, "B.3.5.1")?;
        let reply = self
            .call(
                Service::Network,
                Method::GET,
                &format!("/security-groups/{id}"),
                None,
                &[200],
            )
            .await?;
        self.mandatory(
            "B.3.5.3",
            &reply.body["security_group"],
            &reply.request_line(),
        )?;
        self.listed(
            Service::Network,
            "/security-groups",
            "security_groups",
            ("group", &id),
        )
        .await
        .map(drop)
    }

    async fn b_3_5_4(&mut self) -> Step {
        let group = self.need(&self.made.security_group, "B.3.5.1")?;
        let body = json!({"security_group_rule": {"security_group_id": group, "direction": "ingress", "ethertype": "IPv4",
                                                  "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                                                  "remote_ip_prefix": "198.51.100.0/24"}});
        let reply = self
            .call(
                Service::Network,
                Method::POST,
                "/security-group-rules",
                Some(body),
                &[201],
            )
            .await?;
        self.mandatory(
            "B.3.5.4",
            &reply.body["security_group_rule"],
            &reply.request_line(),
        )?;
        self.made.rule = Some(Self::id_of(&reply, "security_group_rule")?);
        Ok(())
    }

    async fn b_3_5_5(&mut self) -> Step {
        let rule = self.need(&self.made.rule, "B.3.5.4")?;
        let path = format!("/security-group-rules/{rule}");
        self.delete_and_gone(Service::Network, &path, &[204]).await
    }

    async fn b_3_5_2(&mut self) -> Step {
        let group = self.need(&self.made.security_group, "B.3.5.1")?;
        let path = format!("/security-groups/{group}");
        self.delete_and_gone(Service::Network, &path, &[204]).await
    }

    // ---- B.2.1 Servers ----

    fn server_path(&self) -> Result<String, Stop> {
        Ok(format!(
            "/servers/{}",
            self.need(&self.made.server, "B.2.1.1")?
        ))
    }

    async fn server_action(&mut self, action: Value, settles_at: &str) -> Result<Value, Stop> {
        let path = self.server_path()?;
        self.call(
            Service::Compute,
            Method::POST,
            &format!("{path}/action"),
            Some(action),
            &[202],
        )
        .await?;
        self.wait_server(settles_at).await
    }

    /// Waits for `status` with no task running (a just-accepted action may not have
    /// changed the status yet).
    async fn wait_server(&mut self, status: &str) -> Result<Value, Stop> {
        let path = self.server_path()?;
        let started = Instant::now();
        loop {
            let server = self
                .wait(Service::Compute, &path, "server", "status", &[status])
                .await?;
            if server["OS-EXT-STS:task_state"].is_null() {
                return Ok(server);
            }
            if started.elapsed() > self.timeout {
                return Err(Stop::Fail(format!(
                    "{path} is still busy with {}",
                    server["OS-EXT-STS:task_state"]
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn b_2_1_1(&mut self) -> Step {
        let flavor = self.need(&self.made.flavor, "B.2.2.1")?;
        let image = match &self.boot_image {
            Some(image) => image.clone(),
            None => self.need(&self.made.image, "B.2.3.2")?,
        };
        let network = self.need(&self.made.network, "B.3.1.1")?;
        let body = json!({"server": {"name": format!("{}-server", self.prefix), "flavorRef": flavor, "imageRef": image,
                                     "networks": [{"uuid": network}], "metadata": {"purpose": "conformance"}}});
        let reply = self
            .call(
                Service::Compute,
                Method::POST,
                "/servers",
                Some(body),
                &[202],
            )
            .await?;
        self.mandatory("B.2.1.1", &reply.body["server"], &reply.request_line())?;
        let id = Self::id_of(&reply, "server")?;
        self.undo_delete(Service::Compute, format!("/servers/{id}"));
        self.made.server = Some(id.clone());
        self.wait_server("ACTIVE").await?;
        let ports = self
            .call(
                Service::Network,
                Method::GET,
                &format!("/ports?device_id={id}"),
                None,
                &[200],
            )
            .await?;
        let port = &ports.body["ports"][0];
        if let (Some(port), Some(ip)) = (
            port["id"].as_str(),
            port["fixed_ips"][0]["ip_address"].as_str(),
        ) {
            self.made.port = Some((port.to_owned(), ip.to_owned()));
        }
        Ok(())
    }

    async fn b_2_1_3(&mut self) -> Step {
        let path = self.server_path()?;
        let reply = self
            .call(Service::Compute, Method::GET, &path, None, &[200])
            .await?;
        self.mandatory("B.2.1.3", &reply.body["server"], &reply.request_line())
    }

    async fn b_2_1_8(&mut self) -> Step {
        let id = self.need(&self.made.server, "B.2.1.1")?;
        let (ours, request) = self
            .listed(
                Service::Compute,
                "/servers/detail",
                "servers",
                ("server", &id),
            )
            .await?;
        self.mandatory("B.2.1.8", &ours, &request)?;
        let page = self
            .call(
                Service::Compute,
                Method::GET,
                "/servers?limit=1",
                None,
                &[200],
            )
            .await?;
        if page.body["servers"].as_array().map_or(0, Vec::len) > 1 {
            return Err(Stop::Fail(format!(
                "{} returned more than one server",
                page.request_line()
            )));
        }
        Ok(())
    }

    async fn b_2_1_4(&mut self) -> Step {
        let path = self.server_path()?;
        let name = format!("{}-server-renamed", self.prefix);
        let body =
            json!({"server": {"name": name, "description": "renamed by the conformance check"}});
        let reply = self
            .call(Service::Compute, Method::PUT, &path, Some(body), &[200])
            .await?;
        if reply.body["server"]["name"] != json!(name) {
            return Err(Stop::Fail(format!(
                "{}: the reply still has the old name",
                reply.request_line()
            )));
        }
        Ok(())
    }

    async fn b_2_1_6(&mut self) -> Step {
        self.server_action(json!({"os-stop": null}), "SHUTOFF")
            .await
            .map(drop)
    }

    async fn b_2_1_5(&mut self) -> Step {
        self.need(&self.made.server, "B.2.1.1")?;
        if self.outcomes.get("B.2.1.6").map(|o| o.status) != Some(Status::Pass) {
            return Err(Stop::Fail(
                "not run: the server could not be stopped (B.2.1.6) to start it".into(),
            ));
        }
        self.server_action(json!({"os-start": null}), "ACTIVE")
            .await
            .map(drop)
    }

    async fn b_2_1_7(&mut self) -> Step {
        self.server_action(json!({"reboot": {"type": "SOFT"}}), "ACTIVE")
            .await?;
        self.server_action(json!({"reboot": {"type": "HARD"}}), "ACTIVE")
            .await
            .map(drop)
    }

    async fn b_2_1_10(&mut self) -> Step {
        let bigger = self.need(&self.made.bigger_flavor, "B.2.2.1")?;
        self.server_action(json!({"resize": {"flavorRef": bigger}}), "VERIFY_RESIZE")
            .await?;
        let server = self
            .server_action(json!({"confirmResize": null}), "ACTIVE")
            .await?;
        let now = server["flavor"]["id"]
            .as_str()
            .or(server["flavor"]["original_name"].as_str())
            .unwrap_or("");
        if now != bigger && !now.ends_with("-large") {
            return Err(Stop::Fail(format!(
                "after confirmResize the server's flavor is {now:?}, not {bigger}"
            )));
        }
        Ok(())
    }

    async fn b_2_1_9(&mut self) -> Step {
        let path = self.server_path()?;
        let hypervisors = self
            .call(
                Service::Compute,
                Method::GET,
                "/os-hypervisors/detail",
                None,
                &[200],
            )
            .await?;
        let server = self
            .call(Service::Compute, Method::GET, &path, None, &[200])
            .await?;
        let here = server.body["server"]["OS-EXT-SRV-ATTR:host"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let target = hypervisors.body["hypervisors"].as_array().and_then(|l| {
            l.iter()
                .filter(|h| h["state"] == json!("up") && h["status"] != json!("disabled"))
                .filter_map(|h| h["hypervisor_hostname"].as_str())
                .find(|name| *name != here)
                .map(str::to_owned)
        });
        let Some(target) = target else {
            return Err(Stop::NotOffered(format!(
                "live migration needs a second compute host that is up; this cloud has only {here:?}"
            )));
        };
        let body = json!({"os-migrateLive": {"host": target, "block_migration": "auto"}});
        let accepted = self
            .call(
                Service::Compute,
                Method::POST,
                &format!("{path}/action"),
                Some(body),
                &[202],
            )
            .await?;
        let server = self.wait_server("ACTIVE").await?;
        let now = server["OS-EXT-SRV-ATTR:host"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if now != target {
            let why = self.action_outcome(&path, &accepted).await;
            return Err(Stop::Fail(format!(
                "the server is ACTIVE on {now:?}, not on the target {target:?}{why}"
            )));
        }
        Ok(())
    }

    /// What the cloud recorded about an action (`os-instance-actions`), for evidence.
    async fn action_outcome(&mut self, server_path: &str, accepted: &Reply) -> String {
        let Some(request) = accepted
            .headers
            .get("X-Openstack-Request-Id")
            .and_then(|v| v.to_str().ok())
        else {
            return String::new();
        };
        let path = format!("{server_path}/os-instance-actions/{request}");
        let Ok(reply) = self
            .client
            .probe(Service::Compute, Method::GET, &path, None)
            .await
        else {
            return String::new();
        };
        let events = reply.body["instanceAction"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let told: Vec<String> = events
            .iter()
            .filter(|e| e["result"] != json!("Success"))
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e["event"],
                    e["result"],
                    e["traceback"].as_str().unwrap_or("")
                )
            })
            .collect();
        if told.is_empty() {
            String::new()
        } else {
            format!(" ({})", told.join("; "))
        }
    }

    async fn b_2_1_2(&mut self) -> Step {
        let path = self.server_path()?;
        self.call(Service::Compute, Method::DELETE, &path, None, &[204])
            .await?;
        self.wait(Service::Compute, &path, "server", "status", &["DELETED"])
            .await?;
        self.forget(&path);
        Ok(())
    }

    // ---- B.4.1 Cloud disks ----

    fn volume_path(&self) -> Result<String, Stop> {
        Ok(format!(
            "/volumes/{}",
            self.need(&self.made.volume, "B.4.1.1")?
        ))
    }

    async fn b_4_1_1(&mut self) -> Step {
        let body = json!({"volume": {"name": format!("{}-volume", self.prefix), "size": 1,
                                     "description": "conformance check"}});
        let reply = self
            .call(
                Service::Volume,
                Method::POST,
                "/volumes",
                Some(body),
                &[202],
            )
            .await?;
        let id = Self::id_of(&reply, "volume")?;
        self.undo_delete(Service::Volume, format!("/volumes/{id}"));
        self.mandatory("B.4.1.1", &reply.body["volume"], &reply.request_line())?;
        self.made.volume = Some(id.clone());
        self.wait(
            Service::Volume,
            &format!("/volumes/{id}"),
            "volume",
            "status",
            &["available"],
        )
        .await?;
        Ok(())
    }

    async fn b_4_1_3(&mut self) -> Step {
        let path = self.volume_path()?;
        let reply = self
            .call(Service::Volume, Method::GET, &path, None, &[200])
            .await?;
        self.mandatory("B.4.1.3", &reply.body["volume"], &reply.request_line())?;
        let id = self.made.volume.clone().unwrap_or_default();
        self.listed(
            Service::Volume,
            "/volumes/detail",
            "volumes",
            ("volume", &id),
        )
        .await
        .map(drop)
    }

    async fn b_4_1_4(&mut self) -> Step {
        let volume = self.need(&self.made.volume, "B.4.1.1")?;
        let server = self.need(&self.made.server, "B.2.1.1")?;
        let body = json!({"volumeAttachment": {"volumeId": volume}});
        self.call(
            Service::Compute,
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            Some(body),
            &[200, 202],
        )
        .await?;
        self.undo.push((
            Service::Compute,
            Method::DELETE,
            format!("/servers/{server}/os-volume_attachments/{volume}"),
            None,
        ));
        let shown = self
            .wait(
                Service::Volume,
                &format!("/volumes/{volume}"),
                "volume",
                "status",
                &["in-use"],
            )
            .await?;
        let attached = shown["attachments"]
            .as_array()
            .is_some_and(|l| l.iter().any(|a| a["server_id"] == json!(server)));
        if !attached {
            return Err(Stop::Fail(format!(
                "the in-use volume's attachments do not name the server {server}"
            )));
        }
        Ok(())
    }

    async fn b_4_1_6(&mut self) -> Step {
        let path = self.volume_path()?;
        let attached = self
            .outcomes
            .get("B.4.1.4")
            .is_some_and(|o| o.status == Status::Pass);
        // Extending an attached volume is Cinder 3.42 (the client asks for it anyway; said
        // here so the evidence is explicit).
        self.call_with(
            Service::Volume,
            Method::POST,
            &format!("{path}/action"),
            Some(json!({"os-extend": {"new_size": 2}})),
            &[202],
            Some(("OpenStack-API-Version", "volume 3.42")),
        )
        .await?;
        let settled = if attached { "in-use" } else { "available" };
        let started = Instant::now();
        loop {
            let volume = self
                .wait(Service::Volume, &path, "volume", "status", &[settled])
                .await?;
            if volume["size"] == json!(2) {
                return Ok(());
            }
            if started.elapsed() > self.timeout {
                return Err(Stop::Fail(format!(
                    "{path} still has size {} after os-extend to 2",
                    volume["size"]
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn b_4_1_5(&mut self) -> Step {
        let volume = self.need(&self.made.volume, "B.4.1.1")?;
        let server = self.need(&self.made.server, "B.2.1.1")?;
        if self.outcomes.get("B.4.1.4").map(|o| o.status) != Some(Status::Pass) {
            return Err(Stop::Fail(
                "not run: the volume could not be attached (B.4.1.4)".into(),
            ));
        }
        let path = format!("/servers/{server}/os-volume_attachments/{volume}");
        self.call(Service::Compute, Method::DELETE, &path, None, &[202])
            .await?;
        self.forget(&path);
        self.wait(
            Service::Volume,
            &format!("/volumes/{volume}"),
            "volume",
            "status",
            &["available"],
        )
        .await?;
        Ok(())
    }

    async fn b_4_1_2(&mut self) -> Step {
        let path = self.volume_path()?;
        self.call(Service::Volume, Method::DELETE, &path, None, &[202])
            .await?;
        self.wait(Service::Volume, &path, "volume", "status", &["DELETED"])
            .await?;
        self.forget(&path);
        Ok(())
    }

    // ---- B.3.2 Floating IPs ----

    async fn b_3_2_1(&mut self) -> Step {
        let external = self.need(&self.made.external_network, "B.3.1.1")?;
        let body = json!({"floatingip": {"floating_network_id": external}});
        let reply = self
            .call(
                Service::Network,
                Method::POST,
                "/floatingips",
                Some(body),
                &[201],
            )
            .await?;
        let id = Self::id_of(&reply, "floatingip")?;
        let path = format!("/floatingips/{id}");
        self.undo_delete(Service::Network, path.clone());
        self.made.floating_ip = Some(id);
        // 私有IP地址 and 端口ID describe an association: associate, then check.
        let (port, _) = self
            .made
            .port
            .clone()
            .ok_or_else(|| Stop::Fail("not run: the server (B.2.1.1) has no port".into()))?;
        let reply = self
            .call(
                Service::Network,
                Method::PUT,
                &path,
                Some(json!({"floatingip": {"port_id": port}})),
                &[200],
            )
            .await?;
        self.mandatory("B.3.2.1", &reply.body["floatingip"], &reply.request_line())?;
        let shown = self
            .call(Service::Network, Method::GET, &path, None, &[200])
            .await?;
        if shown.body["floatingip"]["port_id"] != json!(port) {
            return Err(Stop::Fail(format!(
                "{}: the floating IP is not associated with port {port}",
                shown.request_line()
            )));
        }
        Ok(())
    }

    async fn b_3_2_2(&mut self) -> Step {
        let id = self.need(&self.made.floating_ip, "B.3.2.1")?;
        let path = format!("/floatingips/{id}");
        self.delete_and_gone(Service::Network, &path, &[204]).await
    }

    // ---- B.3.3 Public IPs (extension) ----

    async fn b_3_3_1(&mut self) -> Step {
        let extension = self
            .call(
                Service::Network,
                Method::GET,
                "/extensions/publicips",
                None,
                &[200, 404],
            )
            .await?;
        if extension.status.as_u16() == 404 {
            return Err(Stop::NotOffered(
                "the network service does not list the publicips extension".into(),
            ));
        }
        let body = json!({"publicip": {"name": format!("{}-public-ip", self.prefix)}});
        let reply = self
            .call(
                Service::Network,
                Method::POST,
                "/publicips",
                Some(body),
                &[201],
            )
            .await?;
        let id = Self::id_of(&reply, "publicip")?;
        self.undo_delete(Service::Network, format!("/publicips/{id}"));
        self.made.public_ip = Some(id);
        self.mandatory("B.3.3.1", &reply.body["publicip"], &reply.request_line())
    }

    async fn b_3_3_2(&mut self) -> Step {
        let id = self.need(&self.made.public_ip, "B.3.3.1")?;
        let server = self.need(&self.made.server, "B.2.1.1")?;
        let reply = self
            .call(
                Service::Network,
                Method::POST,
                &format!("/publicips/{id}/bind"),
                Some(json!({"server_id": server})),
                &[200],
            )
            .await?;
        if reply.body["publicip"]["server_id"] != json!(server) {
            return Err(Stop::Fail(format!(
                "{}: the public IP is not bound to {server}",
                reply.request_line()
            )));
        }
        Ok(())
    }

    async fn b_3_3_4(&mut self) -> Step {
        let id = self.need(&self.made.public_ip, "B.3.3.1")?;
        let reply = self
            .call(
                Service::Network,
                Method::GET,
                &format!("/publicips/{id}"),
                None,
                &[200],
            )
            .await?;
        self.mandatory("B.3.3.4", &reply.body["publicip"], &reply.request_line())?;
        self.listed(
            Service::Network,
            "/publicips",
            "publicips",
            ("public IP", &id),
        )
        .await
        .map(drop)
    }

    async fn b_3_3_3(&mut self) -> Step {
        let id = self.need(&self.made.public_ip, "B.3.3.1")?;
        let server = self.need(&self.made.server, "B.2.1.1")?;
        let reply = self
            .call(
                Service::Network,
                Method::POST,
                &format!("/publicips/{id}/unbind"),
                Some(json!({"server_id": server})),
                &[200],
            )
            .await?;
        if !reply.body["publicip"]["server_id"].is_null() {
            return Err(Stop::Fail(format!(
                "{}: the public IP is still bound",
                reply.request_line()
            )));
        }
        Ok(())
    }

    async fn b_3_3_5(&mut self) -> Step {
        let id = self.need(&self.made.public_ip, "B.3.3.1")?;
        let path = format!("/publicips/{id}");
        self.delete_and_gone(Service::Network, &path, &[204]).await
    }

    // ---- B.3.4 Load balancers ----

    fn lb_path(&self) -> Result<String, Stop> {
        Ok(format!(
            "/lbaas/loadbalancers/{}",
            self.need(&self.made.load_balancer, "B.3.4.1")?
        ))
    }

    async fn b_3_4_1(&mut self) -> Step {
        let subnet = self.need(&self.made.subnet, "B.3.1.1")?;
        let body = json!({"loadbalancer": {"name": format!("{}-lb", self.prefix), "vip_subnet_id": subnet,
                                           "description": "conformance check"}});
        let reply = self
            .call(
                Service::LoadBalancer,
                Method::POST,
                "/lbaas/loadbalancers",
                Some(body),
                &[201],
            )
            .await?;
        let id = Self::id_of(&reply, "loadbalancer")?;
        self.undo.push((
            Service::LoadBalancer,
            Method::DELETE,
            format!("/lbaas/loadbalancers/{id}?cascade=true"),
            None,
        ));
        self.made.load_balancer = Some(id.clone());
        self.mandatory(
            "B.3.4.1",
            &reply.body["loadbalancer"],
            &reply.request_line(),
        )?;
        self.wait(
            Service::LoadBalancer,
            &format!("/lbaas/loadbalancers/{id}"),
            "loadbalancer",
            "provisioning_status",
            &["ACTIVE"],
        )
        .await?;
        Ok(())
    }

    async fn b_3_4_3(&mut self) -> Step {
        let path = self.lb_path()?;
        let reply = self
            .call(Service::LoadBalancer, Method::GET, &path, None, &[200])
            .await?;
        self.mandatory(
            "B.3.4.3",
            &reply.body["loadbalancer"],
            &reply.request_line(),
        )
    }

    async fn b_3_4_4(&mut self) -> Step {
        let id = self.need(&self.made.load_balancer, "B.3.4.1")?;
        let (ours, request) = self
            .listed(
                Service::LoadBalancer,
                "/lbaas/loadbalancers",
                "loadbalancers",
                ("load balancer", &id),
            )
            .await?;
        self.mandatory("B.3.4.4", &ours, &request)
    }

    async fn b_3_4_5(&mut self) -> Step {
        let path = self.lb_path()?;
        let server = self.need(&self.made.server, "B.2.1.1")?;
        // Nodes are members of the default pool: give the load balancer a listener and
        // a pool first, as an operator would.
        let id = self.need(&self.made.load_balancer, "B.3.4.1")?;
        let body =
            json!({"listener": {"loadbalancer_id": id, "protocol": "TCP", "protocol_port": 80}});
        let reply = self
            .call(
                Service::LoadBalancer,
                Method::POST,
                "/lbaas/listeners",
                Some(body),
                &[201],
            )
            .await?;
        let listener = Self::id_of(&reply, "listener")?;
        self.wait(
            Service::LoadBalancer,
            &path,
            "loadbalancer",
            "provisioning_status",
            &["ACTIVE"],
        )
        .await?;
        let body = json!({"pool": {"listener_id": listener, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}});
        self.call(
            Service::LoadBalancer,
            Method::POST,
            "/lbaas/pools",
            Some(body),
            &[201],
        )
        .await?;
        self.wait(
            Service::LoadBalancer,
            &path,
            "loadbalancer",
            "provisioning_status",
            &["ACTIVE"],
        )
        .await?;
        let body = json!({"add": [{"server_id": server, "protocol_port": 80}]});
        let reply = self
            .call(
                Service::LoadBalancer,
                Method::PATCH,
                &format!("{path}/nodes"),
                Some(body),
                &[200, 404, 405],
            )
            .await?;
        if reply.status.as_u16() != 200 {
            return Err(Stop::NotOffered(format!(
                "{} answered {}: no nodes extension",
                reply.request_line(),
                reply.status
            )));
        }
        let nodes = reply.body["loadbalancer"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(node) = nodes.iter().find(|n| n["id"] == json!(server)) else {
            return Err(Stop::Fail(format!(
                "{}: the nodes do not include the server {server}",
                reply.request_line()
            )));
        };
        self.mandatory("B.3.4.5", node, &reply.request_line())?;
        self.wait(
            Service::LoadBalancer,
            &path,
            "loadbalancer",
            "provisioning_status",
            &["ACTIVE"],
        )
        .await
        .map(drop)
    }

    async fn b_3_4_6(&mut self) -> Step {
        let path = self.lb_path()?;
        let server = self.need(&self.made.server, "B.2.1.1")?;
        if self.outcomes.get("B.3.4.5").map(|o| o.status) == Some(Status::NotOffered) {
            return Err(Stop::NotOffered("no nodes extension (B.3.4.5)".into()));
        }
        let body = json!({"remove": [{"server_id": server}]});
        let reply = self
            .call(
                Service::LoadBalancer,
                Method::PATCH,
                &format!("{path}/nodes"),
                Some(body),
                &[200],
            )
            .await?;
        let nodes = reply.body["loadbalancer"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if nodes.iter().any(|n| n["id"] == json!(server)) {
            return Err(Stop::Fail(format!(
                "{}: the server is still a node",
                reply.request_line()
            )));
        }
        self.wait(
            Service::LoadBalancer,
            &path,
            "loadbalancer",
            "provisioning_status",
            &["ACTIVE"],
        )
        .await
        .map(drop)
    }

    async fn b_3_4_2(&mut self) -> Step {
        let path = self.lb_path()?;
        self.call(
            Service::LoadBalancer,
            Method::DELETE,
            &format!("{path}?cascade=true"),
            None,
            &[204],
        )
        .await?;
        self.wait(
            Service::LoadBalancer,
            &path,
            "loadbalancer",
            "provisioning_status",
            &["DELETED"],
        )
        .await?;
        self.forget(&format!("{path}?cascade=true"));
        Ok(())
    }
}
