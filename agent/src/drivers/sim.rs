//! The simulated driver set: no root and no VMs, but the same API, realistic delays and
//! failures a test can inject per operation — so the scheduler's handling of slow and
//! failing nodes is exercised without hardware.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use yunji_common::agent_api::{Capacity, Inventory};

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

pub struct Sim {
    capacity: Capacity,
    faults: Mutex<HashMap<String, Fault>>,
}

impl Sim {
    pub fn new(capacity: Capacity) -> Sim {
        Sim {
            capacity,
            faults: Mutex::new(HashMap::new()),
        }
    }

    /// Sets (or with `None` clears) the fault of an operation (`status`, …).
    pub fn set_fault(&self, operation: &str, fault: Option<Fault>) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        match fault {
            Some(f) => faults.insert(operation.to_string(), f),
            None => faults.remove(operation),
        };
    }

    /// Applies the operation's fault: waits its delay, then fails if it must.
    async fn step(&self, operation: &str) -> Result<(), DriverError> {
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
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if fail {
            return Err(DriverError {
                code: "injected",
                message: format!("sim: injected failure of {operation}"),
            });
        }
        Ok(())
    }

    pub async fn observe(&self) -> Result<(Capacity, Inventory), DriverError> {
        self.step("status").await?;
        Ok((self.capacity, Inventory::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn injected_failures_count_down_then_clear() {
        let sim = Sim::new(Capacity {
            vcpus: 1,
            memory_mb: 1,
            disk_gb: 1,
        });
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
}
