//! The Cloud Hypervisor driver: each VM is a `cloud-hypervisor --api-socket` process,
//! started detached (`setsid -f`) and driven over its REST API on a unix socket with
//! hyper (`vm.create`, `vm.boot`, `vm.power-button`, `vm.reboot`, `vm.pause`,
//! `vm.resume`, `vm.info`, `vmm.shutdown`), booting the disk through firmware.
//!
//! Written against Cloud Hypervisor's published OpenAPI (`vmm/src/api/openapi/
//! cloud-hypervisor.yaml`) and tested against a stand-in server that follows its state
//! machine and error replies. It has NOT run against the real binary: Cloud Hypervisor
//! and a usable KVM are not available on the machines this project is built on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::UnixStream;
use yunji_common::agent_api::{PowerState, VmmDriver};
use yunji_common::execute::execute;

use super::{VmConfig, Vmm, VmmError};

pub const CLOUD_HYPERVISOR_BINARY: &str = "cloud-hypervisor";
/// Debian's rust-hypervisor-firmware path; Cloud Hypervisor boots disk images with it.
pub const DEFAULT_FIRMWARE: &str = "/usr/share/cloud-hypervisor/hypervisor-fw";

const API_TIMEOUT: Duration = Duration::from_secs(10);

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
    tokio::time::timeout(API_TIMEOUT, call)
        .await
        .map_err(|_| failed(format!("no answer within {API_TIMEOUT:?}")))?
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
}

/// The `vm.create` body (OpenAPI `VmConfig`) for `vm`.
pub fn vm_config(vm: &VmConfig, firmware: &Path, console: &Path) -> Value {
    // The first disk boots: the root disk, or else the boot volume.
    let root = vm
        .root_disk
        .iter()
        .map(|path| json!({"path": path, "image_type": "Qcow2"}));
    let volumes = vm.volumes.iter().map(|v| {
        json!({
            "path": v.path,
            "readonly": v.read_only,
            "image_type": if v.format == "qcow2" { "Qcow2" } else { "Raw" },
            "serial": v.serial(),
            "id": super::VolumeDisk::device_id(v.volume_id),
        })
    });
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
}

impl CloudHypervisor {
    pub fn new(binary: String, firmware: PathBuf) -> CloudHypervisor {
        CloudHypervisor { binary, firmware }
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
        let socket = api_socket(&vm.dir);
        let _ = tokio::fs::remove_file(&socket).await;
        // setsid -f: a session of its own, so the VMM outlives the agent.
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
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use hyper::body::Incoming;
    use tokio::net::UnixListener;

    use super::*;

    /// A stand-in for Cloud Hypervisor's API server, written from its OpenAPI document:
    /// the VM state machine (`Created` → `Running` ⇄ `Paused`, `Shutdown`), 204 for
    /// accepted actions, 200 with JSON for `vm.info`, 500 with the error text for an
    /// action the state does not allow, 404 for an unknown endpoint.
    async fn stand_in(listener: UnixListener, state: Arc<Mutex<Option<VmState>>>) {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let state = state.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move {
                    let endpoint = req.uri().path().trim_start_matches("/api/v1/").to_string();
                    let method = req.method().clone();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let mut vm = state.lock().unwrap();
                    let transition =
                        |from: &[VmState], to: VmState, vm: &mut Option<VmState>| match *vm {
                            Some(s) if from.contains(&s) => {
                                *vm = Some(to);
                                (StatusCode::NO_CONTENT, String::new())
                            }
                            other => (
                                StatusCode::INTERNAL_SERVER_ERROR,
                                format!("InvalidStateTransition({other:?}, {to:?})"),
                            ),
                        };
                    let (status, text) = match (method, endpoint.as_str()) {
                        (Method::PUT, "vm.create") => {
                            let config: Value = serde_json::from_slice(&body).unwrap();
                            assert!(config["payload"]["firmware"].is_string());
                            assert!(config["cpus"]["boot_vcpus"].is_number());
                            if vm.is_some() {
                                (StatusCode::INTERNAL_SERVER_ERROR, "VmAlreadyCreated".into())
                            } else {
                                *vm = Some(VmState::Created);
                                (StatusCode::NO_CONTENT, String::new())
                            }
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
                        (Method::PUT, "vm.pause") => {
                            transition(&[VmState::Running], VmState::Paused, &mut vm)
                        }
                        (Method::PUT, "vm.resume") => {
                            transition(&[VmState::Paused], VmState::Running, &mut vm)
                        }
                        (Method::GET, "vm.info") => match *vm {
                            Some(s) => (
                                StatusCode::OK,
                                json!({"config": {}, "state": format!("{s:?}")}).to_string(),
                            ),
                            None => (StatusCode::INTERNAL_SERVER_ERROR, "VmNotCreated".into()),
                        },
                        _ => (StatusCode::NOT_FOUND, String::new()),
                    };
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

    async fn info(socket: &Path) -> VmState {
        let info = api_call(socket, Method::GET, "vm.info", None)
            .await
            .unwrap()
            .unwrap();
        serde_json::from_value::<VmInfo>(info).unwrap().state
    }

    #[tokio::test]
    async fn the_client_drives_the_vm_state_machine_and_reports_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let socket = api_socket(dir.path());
        let state = Arc::new(Mutex::new(None));
        let server = tokio::spawn(stand_in(
            UnixListener::bind(&socket).unwrap(),
            state.clone(),
        ));
        let vm = VmConfig {
            id: uuid::Uuid::nil(),
            vcpus: 2,
            memory_mb: 256,
            dir: dir.path().to_path_buf(),
            root_disk: Some(dir.path().join("disk.qcow2")),
            config_drive: dir.path().join("config.img"),
            volumes: Vec::new(),
            nics: vec![yunji_common::agent_api::NicSpec {
                port_id: "5f0c9a2e-1b3d-4c8e-9f7a-2d6b8e4c1a30".into(),
                mac: "fa:16:3e:00:00:01".into(),
            }],
        };
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

        let driver = CloudHypervisor::new(CLOUD_HYPERVISOR_BINARY.into(), DEFAULT_FIRMWARE.into());
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
}
