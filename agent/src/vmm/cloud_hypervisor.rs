//! The Cloud Hypervisor driver: each VM is a `cloud-hypervisor --api-socket` process,
//! started detached (`setsid -f`) and driven over its REST API on a unix socket with
//! hyper (`vm.create`, `vm.boot`, `vm.power-button`, `vm.reboot`, `vm.pause`,
//! `vm.resume`, `vm.info`, `vmm.shutdown`), booting the disk through firmware. Volumes
//! are hot-plugged with `vm.add-disk`, taken out with `vm.remove-device` and grown with
//! `vm.resize-disk`; live migration is `vm.send-migration` to a `cloud-hypervisor`
//! started on the target waiting in `vm.receive-migration`.
//!
//! Written against Cloud Hypervisor's published OpenAPI (`vmm/src/api/openapi/
//! cloud-hypervisor.yaml`) and tested against a stand-in server that follows its state
//! machine and error replies. It has NOT run against the real binary: Cloud Hypervisor
//! and a usable KVM are not available on the machines this project is built on.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::UnixStream;
use uuid::Uuid;
use yunji_common::agent_api::{IoLimits, PowerState, VmmDriver};
use yunji_common::execute::execute;

use super::{VmConfig, Vmm, VmmError, VolumeDisk};

pub const CLOUD_HYPERVISOR_BINARY: &str = "cloud-hypervisor";
/// Debian's rust-hypervisor-firmware path; Cloud Hypervisor boots disk images with it.
pub const DEFAULT_FIRMWARE: &str = "/usr/share/cloud-hypervisor/hypervisor-fw";

const API_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a live migration may take before it is given up.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(300);
/// How often `vm.info` is read while waiting for the guest to release a disk.
const UNPLUG_POLL: Duration = Duration::from_millis(200);

fn api_socket(dir: &Path) -> PathBuf {
    dir.join("api.sock")
}

/// One call to a Cloud Hypervisor API socket: `PUT`/`GET /api/v1/{endpoint}`.
pub async fn api_call(
    socket: &Path,
    method: Method,
    endpoint: &str,
    body: Option<&Value>,
) -> Result<Option<Value>, VmmError> {
    api_call_within(socket, method, endpoint, body, API_TIMEOUT).await
}

/// `api_call` for the calls that answer only when they are done (the migrations).
async fn api_call_within(
    socket: &Path,
    method: Method,
    endpoint: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Option<Value>, VmmError> {
    let failed = |what: String| VmmError::Failed(format!("cloud-hypervisor {endpoint}: {what}"));
    let call = async {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| failed(format!("cannot reach {}: {e}", socket.display())))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(conn);
        let payload = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b).map_err(|e| failed(e.to_string()))?),
            None => Bytes::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(format!("/api/v1/{endpoint}"))
            .header(http::header::HOST, "localhost")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(payload))
            .map_err(|e| failed(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        match status {
            StatusCode::OK => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| failed(format!("unexpected reply: {e}"))),
            StatusCode::NO_CONTENT => Ok(None),
            other => Err(failed(format!(
                "{other}: {}",
                String::from_utf8_lossy(&bytes).trim()
            ))),
        }
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| failed(format!("no answer within {timeout:?}")))?
}

/// `vm.info`'s state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum VmState {
    Created,
    Running,
    Shutdown,
    Paused,
    BreakPoint,
}

#[derive(Debug, Deserialize)]
struct VmInfo {
    state: VmState,
    #[serde(default)]
    config: InfoConfig,
}

#[derive(Debug, Default, Deserialize)]
struct InfoConfig {
    #[serde(default)]
    disks: Vec<InfoDisk>,
}

#[derive(Debug, Deserialize)]
struct InfoDisk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    rate_limiter_config: Option<Value>,
}

async fn vm_info(dir: &Path) -> Result<VmInfo, VmmError> {
    let info = api_call(&api_socket(dir), Method::GET, "vm.info", None)
        .await?
        .ok_or_else(|| VmmError::Failed("cloud-hypervisor vm.info: an empty reply".into()))?;
    serde_json::from_value(info)
        .map_err(|e| VmmError::Failed(format!("cloud-hypervisor vm.info: unexpected reply: {e}")))
}

/// A volume's `DiskConfig`, for `vm.create` and `vm.add-disk` alike.
fn disk_config(v: &super::VolumeDisk) -> Value {
    let mut disk = json!({
        "path": v.path,
        "readonly": v.read_only,
        "image_type": if v.format == "qcow2" { "Qcow2" } else { "Raw" },
        "serial": v.serial(),
        "id": super::VolumeDisk::device_id(v.volume_id),
    });
    if let Some(limiter) = rate_limiter(&v.limits) {
        disk["rate_limiter_config"] = limiter;
    }
    disk
}

/// A limiter's bucket sizes (bytes, operations), the part that limits: Cloud
/// Hypervisor reports the buckets with fields of its own (`one_time_burst`) beside them.
fn bucket_sizes(limiter: Option<&Value>) -> (Option<u64>, Option<u64>) {
    let size = |bucket: &str| limiter?.get(bucket)?.get("size")?.as_u64();
    (size("bandwidth"), size("ops"))
}

/// Cloud Hypervisor's limiter: token buckets refilled every second, one for bytes and
/// one for operations, shared by reads and writes. A volume type that limits only reads
/// or only writes is held to the stricter of its limits for both.
fn rate_limiter(limits: &IoLimits) -> Option<Value> {
    let shared = |total: u64, read: u64, write: u64| {
        [total, read, write]
            .into_iter()
            .filter(|l| *l > 0)
            .min()
            .map(|size| json!({"size": size, "refill_time": 1000}))
    };
    let bandwidth = shared(
        limits.total_bytes_sec,
        limits.read_bytes_sec,
        limits.write_bytes_sec,
    );
    let ops = shared(
        limits.total_iops_sec,
        limits.read_iops_sec,
        limits.write_iops_sec,
    );
    if bandwidth.is_none() && ops.is_none() {
        return None;
    }
    let mut limiter = json!({});
    if let Some(b) = bandwidth {
        limiter["bandwidth"] = b;
    }
    if let Some(o) = ops {
        limiter["ops"] = o;
    }
    Some(limiter)
}

/// The `vm.create` body (OpenAPI `VmConfig`) for `vm`.
pub fn vm_config(vm: &VmConfig, firmware: &Path, console: &Path) -> Value {
    // The first disk boots: the root disk, or else the boot volume.
    let root = vm
        .root_disk
        .iter()
        .map(|path| json!({"path": path, "image_type": "Qcow2"}));
    let volumes = vm.volumes.iter().map(disk_config);
    let config_drive = json!({"path": vm.config_drive, "readonly": true, "image_type": "Raw"});
    let disks: Vec<Value> = root
        .chain(volumes)
        .chain(std::iter::once(config_drive))
        .collect();
    json!({
        "cpus": {"boot_vcpus": vm.vcpus, "max_vcpus": vm.vcpus},
        "memory": {"size": vm.memory_mb << 20},
        "payload": {"firmware": firmware},
        "disks": disks,
        "net": vm.nics.iter().map(|nic| json!({
            "tap": crate::net::tap_name(&nic.port_id),
            "mac": nic.mac,
        })).collect::<Vec<_>>(),
        "serial": {"mode": "File", "file": console},
        "console": {"mode": "Off"},
    })
}

#[derive(Debug, Clone)]
pub struct CloudHypervisor {
    binary: String,
    firmware: PathBuf,
    /// The node's underlay address, where an incoming migration is received.
    migration_ip: IpAddr,
}

impl CloudHypervisor {
    pub fn new(binary: String, firmware: PathBuf, migration_ip: IpAddr) -> CloudHypervisor {
        CloudHypervisor {
            binary,
            firmware,
            migration_ip,
        }
    }

    /// Starts `cloud-hypervisor --api-socket` for the VM detached (`setsid -f`: a
    /// session of its own, so the VMM outlives the agent) and waits for its socket.
    async fn start_vmm(&self, dir: &Path) -> Result<PathBuf, VmmError> {
        let socket = api_socket(dir);
        let _ = tokio::fs::remove_file(&socket).await;
        let api = format!("path={}", socket.display());
        execute(
            "setsid",
            ["-f", self.binary.as_str(), "--api-socket", api.as_str()],
            API_TIMEOUT,
        )
        .await
        .map_err(|e| VmmError::Failed(e.to_string()))?;
        for _ in 0..100 {
            if socket.exists() {
                return Ok(socket);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(VmmError::Failed(format!(
            "cloud-hypervisor made no API socket at {}",
            socket.display()
        )))
    }
}

/// The pid of the VM's cloud-hypervisor: the process whose command line names its API
/// socket (it writes no pidfile).
fn running_pid(dir: &Path) -> Option<i32> {
    let ours = api_socket(dir).to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(&ours)
                .then_some(pid)
        })
}

impl Vmm for CloudHypervisor {
    fn kind(&self) -> VmmDriver {
        VmmDriver::CloudHypervisor
    }

    async fn boot(&self, vm: &VmConfig) -> Result<(), VmmError> {
        let socket = self.start_vmm(&vm.dir).await?;
        let config = vm_config(vm, &self.firmware, &self.console_path(&vm.dir));
        api_call(&socket, Method::PUT, "vm.create", Some(&config)).await?;
        api_call(&socket, Method::PUT, "vm.boot", None).await?;
        Ok(())
    }

    async fn power_state(&self, dir: &Path) -> PowerState {
        if running_pid(dir).is_none() {
            return PowerState::Shutdown;
        }
        match api_call(&api_socket(dir), Method::GET, "vm.info", None).await {
            Ok(Some(info)) => match serde_json::from_value::<VmInfo>(info).map(|i| i.state) {
                Ok(VmState::Running) => PowerState::Running,
                Ok(VmState::Shutdown | VmState::Created) => PowerState::Shutdown,
                Ok(VmState::Paused | VmState::BreakPoint) => PowerState::Paused,
                Err(_) => PowerState::Crashed,
            },
            _ => PowerState::Paused,
        }
    }

    async fn power_button(&self, dir: &Path) -> Result<(), VmmError> {
        api_call(&api_socket(dir), Method::PUT, "vm.power-button", None)
            .await
            .map(drop)
    }

    async fn reset(&self, dir: &Path) -> Result<(), VmmError> {
        api_call(&api_socket(dir), Method::PUT, "vm.reboot", None)
            .await
            .map(drop)
    }

    async fn pause(&self, dir: &Path) -> Result<(), VmmError> {
        api_call(&api_socket(dir), Method::PUT, "vm.pause", None)
            .await
            .map(drop)
    }

    async fn resume(&self, dir: &Path) -> Result<(), VmmError> {
        api_call(&api_socket(dir), Method::PUT, "vm.resume", None)
            .await
            .map(drop)
    }

    async fn force_off(&self, dir: &Path) -> Result<(), VmmError> {
        let Some(pid) = running_pid(dir) else {
            return Ok(());
        };
        let asked = api_call(&api_socket(dir), Method::PUT, "vmm.shutdown", None).await;
        if asked.is_err()
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        for _ in 0..100 {
            if running_pid(dir).is_none() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(VmmError::Failed(format!(
            "cloud-hypervisor (pid {pid}) did not end"
        )))
    }

    fn console_path(&self, dir: &Path) -> PathBuf {
        dir.join("console.log")
    }

    async fn attach_disk(&self, dir: &Path, disk: &VolumeDisk) -> Result<(), VmmError> {
        // One call: the device is added whole, or (an error reply) not at all.
        api_call(
            &api_socket(dir),
            Method::PUT,
            "vm.add-disk",
            Some(&disk_config(disk)),
        )
        .await
        .map(drop)
    }

    async fn detach_disk(
        &self,
        dir: &Path,
        volume_id: Uuid,
        timeout: Duration,
    ) -> Result<(), VmmError> {
        let id = VolumeDisk::device_id(volume_id);
        let plugged = |info: &VmInfo| {
            info.config
                .disks
                .iter()
                .any(|d| d.id.as_deref() == Some(&id))
        };
        // The reply comes at once; the device goes when the guest has ejected it.
        let asked = api_call(
            &api_socket(dir),
            Method::PUT,
            "vm.remove-device",
            Some(&json!({ "id": id })),
        )
        .await;
        if let Err(error) = asked {
            // Refused as unknown is fine when an earlier detach finished late.
            return if plugged(&vm_info(dir).await?) {
                Err(error)
            } else {
                Ok(())
            };
        }
        let start = std::time::Instant::now();
        while plugged(&vm_info(dir).await?) {
            if start.elapsed() >= timeout {
                return Err(VmmError::Failed(format!(
                    "the guest did not release volume {volume_id} within {timeout:?}"
                )));
            }
            tokio::time::sleep(UNPLUG_POLL).await;
        }
        Ok(())
    }

    async fn grow_disk(&self, dir: &Path, volume_id: Uuid, bytes: u64) -> Result<(), VmmError> {
        let resize = json!({"id": VolumeDisk::device_id(volume_id), "desired_size": bytes});
        api_call(
            &api_socket(dir),
            Method::PUT,
            "vm.resize-disk",
            Some(&resize),
        )
        .await
        .map(drop)
    }

    /// The limits go in with the disk (`vm.add-disk`, `vm.create`); Cloud Hypervisor
    /// cannot change them on a plugged-in disk, so this checks they are in force.
    async fn set_io_limits(
        &self,
        dir: &Path,
        volume_id: Uuid,
        limits: IoLimits,
    ) -> Result<(), VmmError> {
        let id = VolumeDisk::device_id(volume_id);
        let info = vm_info(dir).await?;
        let disk = info
            .config
            .disks
            .iter()
            .find(|d| d.id.as_deref() == Some(&id))
            .ok_or_else(|| VmmError::Failed(format!("volume {volume_id} is not plugged in")))?;
        if bucket_sizes(disk.rate_limiter_config.as_ref())
            != bucket_sizes(rate_limiter(&limits).as_ref())
        {
            return Err(VmmError::Unsupported(
                "cloud-hypervisor",
                "changing the I/O limits of a plugged-in volume",
            ));
        }
        Ok(())
    }

    async fn attached_disks(&self, dir: &Path) -> Result<Vec<String>, VmmError> {
        // Volume devices are `dev` + 24 hex digits; the VmHost speaks of their nodes.
        Ok(vm_info(dir)
            .await?
            .config
            .disks
            .into_iter()
            .filter_map(|d| Some(format!("vol{}", d.id?.strip_prefix("dev")?)))
            .collect())
    }

    /// Sends the running VM and answers when it has arrived; on failure Cloud
    /// Hypervisor keeps it running here.
    async fn send_migration(&self, vm: &VmConfig, uri: &str) -> Result<(), VmmError> {
        let send = json!({"destination_url": uri});
        api_call_within(
            &api_socket(&vm.dir),
            Method::PUT,
            "vm.send-migration",
            Some(&send),
            MIGRATION_TIMEOUT,
        )
        .await
        .map(drop)
    }

    /// Starts a `cloud-hypervisor` waiting for the VM on a free TCP port of the node's
    /// migration address; answers the URL the source sends to. The disks must be at the
    /// same paths on both nodes: the VM's configuration travels with it.
    async fn receive_migration(&self, vm: &VmConfig) -> Result<String, VmmError> {
        let url = super::free_migration_url(self.migration_ip).await?;
        let socket = self.start_vmm(&vm.dir).await?;
        // The call answers only once the VM has arrived, so it waits in the background;
        // the VmHost sees the VM running (or not) through `vm.info`.
        let receive = json!({"receiver_url": url});
        tokio::spawn(async move {
            if let Err(error) = api_call_within(
                &socket,
                Method::PUT,
                "vm.receive-migration",
                Some(&receive),
                MIGRATION_TIMEOUT,
            )
            .await
            {
                tracing::warn!(%error, "receiving a live migration failed");
            }
        });
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use hyper::body::Incoming;
    use tokio::net::UnixListener;

    use super::*;

    /// What the stand-in VMM holds: the VM's state and its disks.
    #[derive(Default)]
    struct StandIn {
        state: Option<VmState>,
        disks: Vec<Value>,
    }

    type Shared = Arc<Mutex<StandIn>>;

    /// A stand-in for Cloud Hypervisor's API server, written from its OpenAPI document:
    /// the VM state machine (`Created` → `Running` ⇄ `Paused`, `Shutdown`), 204 for
    /// accepted actions, 200 with JSON for `vm.info` and a hot `vm.add-disk`, 500 with
    /// the error text for an action the state does not allow, 404 for an unknown
    /// endpoint or device, 409 for a device id in use. A removed device goes a moment
    /// after the reply, as when the guest ejects it; `vm.send-migration` connects to
    /// the destination and `vm.receive-migration` answers once a source connected.
    async fn stand_in(listener: UnixListener, vmm: Shared) {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let vmm = vmm.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let vmm = vmm.clone();
                async move {
                    let endpoint = req.uri().path().trim_start_matches("/api/v1/").to_string();
                    let method = req.method().clone();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let (status, text) = answer(&vmm, method, &endpoint, body).await;
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from(text)))
                            .unwrap(),
                    )
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    }

    async fn answer(
        vmm: &Shared,
        method: Method,
        endpoint: &str,
        body: Value,
    ) -> (StatusCode, String) {
        let accepted = (StatusCode::NO_CONTENT, String::new());
        let error = |text: &str| (StatusCode::INTERNAL_SERVER_ERROR, text.to_string());
        // The migrations answer when done: no lock is held while they wait.
        match (method.clone(), endpoint) {
            (Method::PUT, "vm.send-migration") => {
                if vmm.lock().unwrap().state != Some(VmState::Running) {
                    return error("VmNotRunning");
                }
                let url = body["destination_url"].as_str().unwrap_or_default();
                let Some(address) = url.strip_prefix("tcp:") else {
                    return error("MigrateSend(unsupported URL)");
                };
                return match tokio::net::TcpStream::connect(address).await {
                    Ok(_) => {
                        vmm.lock().unwrap().state = Some(VmState::Shutdown);
                        accepted
                    }
                    Err(e) => error(&format!("MigrateSend({e})")),
                };
            }
            (Method::PUT, "vm.receive-migration") => {
                let url = body["receiver_url"].as_str().unwrap_or_default();
                let Some(address) = url.strip_prefix("tcp:") else {
                    return error("MigrateReceive(unsupported URL)");
                };
                let listener = tokio::net::TcpListener::bind(address).await.unwrap();
                let _source = listener.accept().await.unwrap();
                vmm.lock().unwrap().state = Some(VmState::Running);
                return accepted;
            }
            _ => {}
        }
        let mut vm = vmm.lock().unwrap();
        let transition = |from: &[VmState], to: VmState, vm: &mut StandIn| match vm.state {
            Some(s) if from.contains(&s) => {
                vm.state = Some(to);
                (StatusCode::NO_CONTENT, String::new())
            }
            other => error(&format!("InvalidStateTransition({other:?}, {to:?})")),
        };
        let position = |vm: &StandIn, id: &Value| vm.disks.iter().position(|d| &d["id"] == id);
        match (method, endpoint) {
            (Method::PUT, "vm.create") => {
                assert!(body["payload"]["firmware"].is_string());
                assert!(body["cpus"]["boot_vcpus"].is_number());
                if vm.state.is_some() {
                    return error("VmAlreadyCreated");
                }
                vm.state = Some(VmState::Created);
                vm.disks = body["disks"].as_array().cloned().unwrap_or_default();
                accepted
            }
            (Method::PUT, "vm.boot") => transition(
                &[VmState::Created, VmState::Shutdown],
                VmState::Running,
                &mut vm,
            ),
            (Method::PUT, "vm.power-button") => {
                transition(&[VmState::Running], VmState::Shutdown, &mut vm)
            }
            (Method::PUT, "vm.reboot") => {
                transition(&[VmState::Running], VmState::Running, &mut vm)
            }
            (Method::PUT, "vm.pause") => transition(&[VmState::Running], VmState::Paused, &mut vm),
            (Method::PUT, "vm.resume") => transition(&[VmState::Paused], VmState::Running, &mut vm),
            (Method::PUT, "vm.add-disk") => {
                if vm.state.is_none() {
                    return (StatusCode::NOT_FOUND, "VmNotCreated".into());
                }
                if position(&vm, &body["id"]).is_some() {
                    return (StatusCode::CONFLICT, "DeviceIdInUse".into());
                }
                vm.disks.push(body.clone());
                let hot = vm.state == Some(VmState::Running);
                if hot {
                    let info = json!({"id": body["id"], "bdf": "0000:00:06.0"});
                    (StatusCode::OK, info.to_string())
                } else {
                    accepted
                }
            }
            (Method::PUT, "vm.remove-device") => {
                let Some(index) = position(&vm, &body["id"]) else {
                    return (StatusCode::NOT_FOUND, "UnknownDeviceId".into());
                };
                if vm.state == Some(VmState::Running) {
                    // The guest ejects the device a moment later.
                    let vmm = vmm.clone();
                    let id = body["id"].clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        vmm.lock().unwrap().disks.retain(|d| d["id"] != id);
                    });
                } else {
                    vm.disks.remove(index);
                }
                accepted
            }
            (Method::PUT, "vm.resize-disk") => match position(&vm, &body["id"]) {
                Some(index) => {
                    vm.disks[index]["stand_in_size"] = body["desired_size"].clone();
                    accepted
                }
                None => (StatusCode::NOT_FOUND, "UnknownDiskId".into()),
            },
            (Method::GET, "vm.info") => match vm.state {
                Some(s) => {
                    // Reported as Cloud Hypervisor serialises them, with its own fields.
                    let mut disks = vm.disks.clone();
                    for disk in &mut disks {
                        for bucket in ["bandwidth", "ops"] {
                            if let Some(b) = disk["rate_limiter_config"].get_mut(bucket) {
                                b["one_time_burst"] = json!(0);
                            }
                        }
                    }
                    let info = json!({"config": {"disks": disks}, "state": format!("{s:?}")});
                    (StatusCode::OK, info.to_string())
                }
                None => error("VmNotCreated"),
            },
            _ => (StatusCode::NOT_FOUND, String::new()),
        }
    }

    /// A stand-in serving the API socket of a VM directory.
    fn serve(dir: &Path) -> (Shared, tokio::task::JoinHandle<()>) {
        let vmm = Shared::default();
        let listener = UnixListener::bind(api_socket(dir)).unwrap();
        (vmm.clone(), tokio::spawn(stand_in(listener, vmm)))
    }

    async fn info(socket: &Path) -> VmState {
        let info = api_call(socket, Method::GET, "vm.info", None)
            .await
            .unwrap()
            .unwrap();
        serde_json::from_value::<VmInfo>(info).unwrap().state
    }

    /// A VM of `dir` with a root disk and no NICs or volumes.
    fn plain_vm(dir: &Path) -> VmConfig {
        VmConfig {
            id: uuid::Uuid::nil(),
            vcpus: 2,
            memory_mb: 256,
            dir: dir.to_path_buf(),
            root_disk: Some(dir.join("disk.qcow2")),
            config_drive: dir.join("config.img"),
            volumes: Vec::new(),
            nics: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_client_drives_the_vm_state_machine_and_reports_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let socket = api_socket(dir.path());
        let (_vmm, server) = serve(dir.path());
        let mut vm = plain_vm(dir.path());
        vm.nics = vec![yunji_common::agent_api::NicSpec {
            port_id: "5f0c9a2e-1b3d-4c8e-9f7a-2d6b8e4c1a30".into(),
            mac: "fa:16:3e:00:00:01".into(),
        }];
        let config = vm_config(
            &vm,
            Path::new(DEFAULT_FIRMWARE),
            &dir.path().join("console.log"),
        );
        assert_eq!(config["memory"]["size"], 256u64 << 20);
        assert_eq!(config["disks"][1]["readonly"], true);
        // Cloud Hypervisor's NetConfig: the port's tap, the port's MAC for the guest.
        assert_eq!(config["net"][0]["tap"], "tap5f0c9a2e-1b");
        assert_eq!(config["net"][0]["mac"], "fa:16:3e:00:00:01");

        let refused = api_call(&socket, Method::PUT, "vm.boot", None)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("InvalidStateTransition"),
            "{refused}"
        );
        api_call(&socket, Method::PUT, "vm.create", Some(&config))
            .await
            .unwrap();
        assert_eq!(info(&socket).await, VmState::Created);
        api_call(&socket, Method::PUT, "vm.boot", None)
            .await
            .unwrap();
        assert_eq!(info(&socket).await, VmState::Running);

        let driver = driver();
        driver.pause(dir.path()).await.unwrap();
        assert_eq!(info(&socket).await, VmState::Paused);
        assert!(
            driver.reset(dir.path()).await.is_err(),
            "no reboot while paused"
        );
        driver.resume(dir.path()).await.unwrap();
        driver.reset(dir.path()).await.unwrap();
        driver.power_button(dir.path()).await.unwrap();
        assert_eq!(info(&socket).await, VmState::Shutdown);
        // No process of this VM runs here: observed as shut down, never assumed running.
        assert_eq!(driver.power_state(dir.path()).await, PowerState::Shutdown);
        assert!(
            api_call(&socket, Method::PUT, "vm.nonsense", None)
                .await
                .unwrap_err()
                .to_string()
                .contains("404")
        );
        server.abort();
    }

    fn driver() -> CloudHypervisor {
        CloudHypervisor::new(
            CLOUD_HYPERVISOR_BINARY.into(),
            DEFAULT_FIRMWARE.into(),
            IpAddr::from([127, 0, 0, 1]),
        )
    }

    fn volume(dir: &Path, limits: IoLimits) -> VolumeDisk {
        VolumeDisk {
            volume_id: Uuid::new_v4(),
            path: dir.join("volume.qcow2"),
            format: "qcow2".into(),
            block_device: false,
            shared: false,
            read_only: false,
            device: "/dev/vdb".into(),
            limits,
        }
    }

    /// Creates and boots a VM with no volumes in the stand-in.
    async fn running_vm(dir: &Path) {
        let config = json!({"payload": {"firmware": DEFAULT_FIRMWARE}, "cpus": {"boot_vcpus": 1}, "disks": []});
        let socket = api_socket(dir);
        api_call(&socket, Method::PUT, "vm.create", Some(&config))
            .await
            .unwrap();
        api_call(&socket, Method::PUT, "vm.boot", None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn volumes_are_hot_plugged_grown_limited_and_taken_out() {
        let dir = tempfile::tempdir().unwrap();
        let (vmm, server) = serve(dir.path());
        running_vm(dir.path()).await;
        let driver = driver();
        let limits = IoLimits {
            write_bytes_sec: 1 << 20,
            read_bytes_sec: 4 << 20,
            ..IoLimits::default()
        };
        let disk = volume(dir.path(), limits);

        driver.attach_disk(dir.path(), &disk).await.unwrap();
        let node = VolumeDisk::node_name(disk.volume_id);
        assert_eq!(driver.attached_disks(dir.path()).await.unwrap(), vec![node]);
        {
            let plugged = &vmm.lock().unwrap().disks[0];
            assert_eq!(plugged["serial"], disk.serial());
            // Reads and writes share one bucket: the stricter limit, refilled each second.
            assert_eq!(
                plugged["rate_limiter_config"],
                json!({"bandwidth": {"size": 1 << 20, "refill_time": 1000}})
            );
        }
        driver
            .set_io_limits(dir.path(), disk.volume_id, limits)
            .await
            .unwrap();
        let other = IoLimits {
            total_iops_sec: 100,
            ..IoLimits::default()
        };
        let refused = driver
            .set_io_limits(dir.path(), disk.volume_id, other)
            .await;
        assert!(
            matches!(refused, Err(VmmError::Unsupported(..))),
            "{refused:?}"
        );
        let again = driver.attach_disk(dir.path(), &disk).await.unwrap_err();
        assert!(again.to_string().contains("409"), "{again}");

        driver
            .grow_disk(dir.path(), disk.volume_id, 2 << 30)
            .await
            .unwrap();
        assert_eq!(vmm.lock().unwrap().disks[0]["stand_in_size"], 2u64 << 30);

        // The guest takes a moment to eject it; the detach waits for that.
        driver
            .detach_disk(dir.path(), disk.volume_id, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(driver.attached_disks(dir.path()).await.unwrap().is_empty());
        // Detaching what is gone already (a late eject of an earlier try) is done.
        driver
            .detach_disk(dir.path(), disk.volume_id, Duration::from_secs(5))
            .await
            .unwrap();
        let grown = driver.grow_disk(dir.path(), disk.volume_id, 3 << 30).await;
        assert!(grown.unwrap_err().to_string().contains("404"));
        server.abort();
    }

    #[tokio::test]
    async fn a_vm_is_sent_to_a_waiting_vmm_and_a_failed_send_leaves_it_running() {
        let source = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        let (from, source_server) = serve(source.path());
        let (to, target_server) = serve(target.path());
        running_vm(source.path()).await;
        let driver = driver();

        // Nobody listens there: the send fails and the VM runs on.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let nowhere = format!("tcp:{}", closed.local_addr().unwrap());
        drop(closed);
        let failed = driver
            .send_migration(&plain_vm(source.path()), &nowhere)
            .await;
        assert!(failed.unwrap_err().to_string().contains("MigrateSend"));
        assert_eq!(state_of(&from), Some(VmState::Running));

        let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("tcp:{}", probe.local_addr().unwrap());
        drop(probe);
        let socket = api_socket(target.path());
        let receive = json!({"receiver_url": url});
        let receiving = tokio::spawn(async move {
            api_call(&socket, Method::PUT, "vm.receive-migration", Some(&receive)).await
        });
        // The target binds its port a moment after the call.
        let mut sent = driver.send_migration(&plain_vm(source.path()), &url).await;
        for _ in 0..50 {
            if sent.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            sent = driver.send_migration(&plain_vm(source.path()), &url).await;
        }
        sent.unwrap();
        receiving.await.unwrap().unwrap();
        assert_eq!(state_of(&to), Some(VmState::Running));
        assert_eq!(state_of(&from), Some(VmState::Shutdown));
        source_server.abort();
        target_server.abort();
    }

    fn state_of(vmm: &Shared) -> Option<VmState> {
        vmm.lock().unwrap().state
    }
}
