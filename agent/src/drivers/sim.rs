//! The simulated driver set: no root and no VMs, but the same API with a state machine
//! per server, realistic delays and failures a test can inject per operation — so the
//! scheduler's handling of slow and failing nodes is exercised without hardware.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use yunji_common::agent_api::{
    Capacity, FlavorSpec, Inventory, PowerState, ServerAction, ServerInventory, ServerReply,
    ServerSpec,
};

use super::DriverError;

/// What to do to the next calls of one operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Fail this many of the next calls (`null`: every call until cleared).
    #[serde(default)]
    pub fail_times: Option<u32>,
    /// Delay every call by this many milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
}

/// One simulated VM.
#[derive(Debug, Clone)]
struct Vm {
    name: String,
    flavor: FlavorSpec,
    /// The flavor before an unconfirmed resize.
    old_flavor: Option<FlavorSpec>,
    power: PowerState,
    /// Prepared to receive a live migration, not yet running here.
    incoming: bool,
    console: Vec<String>,
    boots: u32,
}

impl Vm {
    /// A VM defined on this node, not yet running.
    fn new(name: String, flavor: FlavorSpec, power: PowerState, incoming: bool) -> Vm {
        Vm {
            name,
            flavor,
            old_flavor: None,
            power,
            incoming,
            console: Vec::new(),
            boots: 0,
        }
    }

    fn log(&mut self, line: impl Into<String>) {
        self.console.push(line.into());
    }

    fn boot(&mut self) {
        self.boots += 1;
        self.power = PowerState::Running;
        let (name, vcpus, mem) = (self.name.clone(), self.flavor.vcpus, self.flavor.memory_mb);
        self.log(format!(
            "[    0.000000] Linux version 6.1.0-yunji-sim (boot {})",
            self.boots
        ));
        self.log(format!(
            "[    0.010000] smp: Brought up 1 node, {vcpus} CPUs"
        ));
        self.log(format!("[    0.020000] Memory: {mem}M available"));
        self.log(format!("yunji-sim: {name} booted"));
        self.log(format!("{name} login:"));
    }
}

pub struct Sim {
    node_name: String,
    capacity: Capacity,
    /// The unit of the simulated delays; an operation takes one to three of them.
    delay: Duration,
    faults: Mutex<HashMap<String, Fault>>,
    vms: Mutex<HashMap<Uuid, Vm>>,
}

fn not_found(id: Uuid) -> DriverError {
    DriverError {
        code: "not-found",
        message: format!("sim: no server {id} on this node"),
    }
}

fn wrong_state(id: Uuid, op: &str, power: PowerState) -> DriverError {
    DriverError {
        code: "state",
        message: format!("sim: cannot {op} server {id} while it is {power:?}"),
    }
}

impl Sim {
    pub fn new(node_name: String, capacity: Capacity, delay: Duration) -> Sim {
        Sim {
            node_name,
            capacity,
            delay,
            faults: Mutex::new(HashMap::new()),
            vms: Mutex::new(HashMap::new()),
        }
    }

    /// Sets (or with `None` clears) the fault of an operation (`status`, `create`, …).
    pub fn set_fault(&self, operation: &str, fault: Option<Fault>) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        match fault {
            Some(f) => faults.insert(operation.to_string(), f),
            None => faults.remove(operation),
        };
    }

    /// Takes `units` of simulated time, then applies the operation's fault.
    pub(crate) async fn step(&self, operation: &str, units: u32) -> Result<(), DriverError> {
        let (delay, fail) = {
            let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
            match faults.get_mut(operation) {
                None => (0, false),
                Some(f) => {
                    let fail = match &mut f.fail_times {
                        None => true,
                        Some(0) => false,
                        Some(n) => {
                            *n -= 1;
                            true
                        }
                    };
                    (f.delay_ms, fail)
                }
            }
        };
        tokio::time::sleep(self.delay * units + Duration::from_millis(delay)).await;
        if fail {
            return Err(DriverError {
                code: "injected",
                message: format!("sim: injected failure of {operation}"),
            });
        }
        Ok(())
    }

    /// Whether this node runs (or has defined) server `id`: volumes attach only to those.
    pub(crate) fn has_server(&self, id: Uuid) -> bool {
        self.vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&id)
    }

    fn with_vm<T>(
        &self,
        id: Uuid,
        f: impl FnOnce(&mut Vm) -> Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        f(vms.get_mut(&id).ok_or_else(|| not_found(id))?)
    }

    fn reply(&self, id: Uuid) -> Result<ServerReply, DriverError> {
        self.with_vm(id, |vm| {
            Ok(ServerReply {
                id,
                power_state: vm.power,
                migration_uri: None,
            })
        })
    }

    pub async fn observe(&self) -> Result<(Capacity, Inventory), DriverError> {
        self.step("status", 0).await?;
        let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        let mut servers: Vec<ServerInventory> = vms
            .iter()
            .filter(|(_, vm)| !vm.incoming)
            .map(|(id, vm)| ServerInventory {
                id: *id,
                power_state: vm.power,
            })
            .collect();
        servers.sort_by_key(|s| s.id);
        Ok((self.capacity, Inventory { servers }))
    }

    pub async fn create(&self, spec: ServerSpec) -> Result<ServerReply, DriverError> {
        self.step("create", 2).await?;
        let mut vm = Vm::new(spec.name.clone(), spec.flavor, PowerState::Shutdown, false);
        vm.log(format!("SeaBIOS (sim) on {}", self.node_name));
        vm.boot();
        if let Some(data) = &spec.user_data {
            vm.log(format!(
                "yunji-sim: user_data of {} bytes (base64) received",
                data.len()
            ));
        }
        let reply = ServerReply {
            id: spec.id,
            power_state: vm.power,
            migration_uri: None,
        };
        self.vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.id, vm);
        Ok(reply)
    }

    pub async fn act(&self, id: Uuid, action: ServerAction) -> Result<ServerReply, DriverError> {
        let op = action.name();
        // Check the state before spending the operation's time, like a real VMM would.
        self.with_vm(id, |vm| {
            let ok = match &action {
                ServerAction::Start => vm.power == PowerState::Shutdown,
                ServerAction::Stop { .. } | ServerAction::MigrateOut { .. } => {
                    vm.power == PowerState::Running
                }
                ServerAction::Reboot { hard } => *hard || vm.power == PowerState::Running,
                ServerAction::ConfirmResize | ServerAction::RevertResize => vm.old_flavor.is_some(),
                ServerAction::FinishIncoming | ServerAction::AbortIncoming => vm.incoming,
                ServerAction::Resize { .. } | ServerAction::PrepareIncoming { .. } => true,
            };
            if ok {
                Ok(())
            } else {
                Err(wrong_state(id, op, vm.power))
            }
        })
        .or_else(|e| match &action {
            ServerAction::PrepareIncoming { .. } if e.code == "not-found" => Ok(()),
            _ => Err(e),
        })?;
        match action {
            ServerAction::Start => {
                self.step(op, 1).await?;
                self.with_vm(id, |vm| {
                    vm.boot();
                    Ok(())
                })?;
            }
            ServerAction::Stop { .. } => {
                self.step(op, 1).await?;
                self.with_vm(id, |vm| {
                    vm.log("yunji-sim: ACPI power-button: powering down");
                    vm.power = PowerState::Shutdown;
                    Ok(())
                })?;
            }
            ServerAction::Reboot { hard } => {
                self.step(op, 1).await?;
                self.with_vm(id, |vm| {
                    vm.log(if hard {
                        "yunji-sim: reset"
                    } else {
                        "yunji-sim: ACPI reboot requested"
                    });
                    vm.boot();
                    Ok(())
                })?;
            }
            ServerAction::Resize { flavor } => {
                self.step(op, 2).await?;
                self.with_vm(id, |vm| {
                    let was_running = vm.power == PowerState::Running;
                    vm.old_flavor = Some(vm.flavor);
                    vm.flavor = flavor;
                    vm.log(format!(
                        "yunji-sim: resized to {} vCPUs, {} MiB",
                        flavor.vcpus, flavor.memory_mb
                    ));
                    if was_running {
                        vm.boot();
                    }
                    Ok(())
                })?;
            }
            ServerAction::ConfirmResize => {
                self.step(op, 0).await?;
                self.with_vm(id, |vm| {
                    vm.old_flavor = None;
                    Ok(())
                })?;
            }
            ServerAction::RevertResize => {
                self.step(op, 1).await?;
                self.with_vm(id, |vm| {
                    if let Some(old) = vm.old_flavor.take() {
                        vm.flavor = old;
                    }
                    vm.log("yunji-sim: resize reverted");
                    if vm.power == PowerState::Running {
                        vm.boot();
                    }
                    Ok(())
                })?;
            }
            ServerAction::PrepareIncoming { spec } => {
                self.step(op, 1).await?;
                let vm = Vm::new(spec.name, spec.flavor, PowerState::Paused, true);
                self.vms
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, vm);
                let mut reply = self.reply(id)?;
                reply.migration_uri = Some(format!("sim://{}/{id}", self.node_name));
                return Ok(reply);
            }
            ServerAction::MigrateOut { uri } => {
                self.step(op, 3).await?;
                let mut reply = self.reply(id)?;
                self.vms
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                tracing::info!(%id, %uri, "sim: migrated out");
                reply.power_state = PowerState::Shutdown;
                return Ok(reply);
            }
            ServerAction::FinishIncoming => {
                self.step(op, 0).await?;
                self.with_vm(id, |vm| {
                    vm.incoming = false;
                    vm.power = PowerState::Running;
                    vm.log("yunji-sim: live migration arrived; still running");
                    Ok(())
                })?;
            }
            ServerAction::AbortIncoming => {
                self.step(op, 0).await?;
                self.vms
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                return Ok(ServerReply {
                    id,
                    power_state: PowerState::Shutdown,
                    migration_uri: None,
                });
            }
        }
        self.reply(id)
    }

    pub async fn console(&self, id: Uuid, length: Option<usize>) -> Result<String, DriverError> {
        self.step("console", 0).await?;
        self.with_vm(id, |vm| {
            let skip = length.map_or(0, |n| vm.console.len().saturating_sub(n));
            Ok(vm.console[skip..].join("\n") + "\n")
        })
    }

    /// Deletes a server; deleting one that is not here succeeds (the goal is met).
    pub async fn delete(&self, id: Uuid) -> Result<(), DriverError> {
        self.step("delete", 1).await?;
        self.vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> Sim {
        Sim::new(
            "node-1".into(),
            Capacity {
                vcpus: 4,
                memory_mb: 4096,
                disk_gb: 100,
            },
            Duration::ZERO,
        )
    }

    fn spec(id: Uuid) -> ServerSpec {
        ServerSpec {
            id,
            name: "vm".into(),
            hostname: "vm".into(),
            project_id: "p".into(),
            flavor: FlavorSpec {
                vcpus: 1,
                memory_mb: 512,
                disk_gb: 1,
            },
            image: None,
            user_data: None,
            metadata: Default::default(),
            public_key: None,
            nics: Vec::new(),
            volumes: Vec::new(),
        }
    }

    #[tokio::test]
    async fn injected_failures_count_down_then_clear() {
        let sim = sim();
        sim.set_fault(
            "status",
            Some(Fault {
                fail_times: Some(2),
                delay_ms: 0,
            }),
        );
        assert!(sim.observe().await.is_err());
        assert!(sim.observe().await.is_err());
        assert!(sim.observe().await.is_ok());
        sim.set_fault(
            "status",
            Some(Fault {
                fail_times: None,
                delay_ms: 0,
            }),
        );
        assert!(sim.observe().await.is_err());
        sim.set_fault("status", None);
        assert!(sim.observe().await.is_ok());
    }

    #[tokio::test]
    async fn a_server_moves_through_its_power_states() {
        let sim = sim();
        let id = Uuid::new_v4();
        assert_eq!(
            sim.create(spec(id)).await.unwrap().power_state,
            PowerState::Running
        );
        assert_eq!(
            sim.act(id, ServerAction::Start).await.unwrap_err().code,
            "state"
        );
        let stopped = sim
            .act(id, ServerAction::Stop { timeout_secs: 1 })
            .await
            .unwrap();
        assert_eq!(stopped.power_state, PowerState::Shutdown);
        assert_eq!(
            sim.act(id, ServerAction::Reboot { hard: false })
                .await
                .unwrap_err()
                .code,
            "state"
        );
        assert_eq!(
            sim.act(id, ServerAction::Start).await.unwrap().power_state,
            PowerState::Running
        );
        let flavor = FlavorSpec {
            vcpus: 2,
            memory_mb: 1024,
            disk_gb: 2,
        };
        sim.act(id, ServerAction::Resize { flavor }).await.unwrap();
        sim.act(id, ServerAction::RevertResize).await.unwrap();
        assert_eq!(
            sim.act(id, ServerAction::ConfirmResize)
                .await
                .unwrap_err()
                .code,
            "state"
        );
        let console = sim.console(id, Some(2)).await.unwrap();
        assert_eq!(console.lines().count(), 2);
        assert!(
            sim.console(id, None)
                .await
                .unwrap()
                .contains("resize reverted")
        );
        sim.delete(id).await.unwrap();
        assert_eq!(
            sim.act(id, ServerAction::Start).await.unwrap_err().code,
            "not-found"
        );
    }

    #[tokio::test]
    async fn a_failed_create_leaves_nothing() {
        let sim = sim();
        sim.set_fault(
            "create",
            Some(Fault {
                fail_times: Some(1),
                delay_ms: 0,
            }),
        );
        let id = Uuid::new_v4();
        assert!(sim.create(spec(id)).await.is_err());
        assert!(sim.observe().await.unwrap().1.servers.is_empty());
    }
}
