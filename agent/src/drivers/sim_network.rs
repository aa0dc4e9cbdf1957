//! The simulated network side: it carries the last network spec the scheduler pushed,
//! applied all at once or not at all, with a delay and an injectable fault
//! (`PUT /v1/sim/faults/network_apply`), as the real driver will apply bridges, VXLAN
//! and nftables in one transaction.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use yunji_common::agent_api::{NetworkApplied, NetworkInventory, NodeNetworkSpec};

use super::DriverError;
use super::sim::Fault;

/// The fault-injection name of an apply.
pub const APPLY: &str = "network_apply";

/// The spec a node carries, as both network drivers keep it: replaced whole by an apply
/// that succeeded, never by one older than it.
#[derive(Default)]
pub(crate) struct Carried(Mutex<NodeNetworkSpec>);

impl Carried {
    /// Refuses `spec` when it is older than the carried one (the scheduler's stale push).
    pub(crate) fn check_newer(&self, spec: &NodeNetworkSpec) -> Result<(), DriverError> {
        let current = self.get().generation;
        if spec.generation < current {
            return Err(DriverError {
                code: "state",
                message: format!(
                    "network spec generation {} is older than the applied {current}",
                    spec.generation
                ),
            });
        }
        Ok(())
    }

    /// Carries `spec` from now on.
    pub(crate) fn replace(&self, spec: NodeNetworkSpec) -> NetworkApplied {
        let generation = spec.generation;
        tracing::info!(
            generation,
            networks = spec.networks.len(),
            ports = spec.ports.len(),
            "network spec carried"
        );
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = spec;
        NetworkApplied { generation }
    }

    pub(crate) fn get(&self) -> NodeNetworkSpec {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What the node carries, for its status.
    pub(crate) fn inventory(&self) -> NetworkInventory {
        let carried = self.get();
        NetworkInventory {
            generation: carried.generation,
            networks: carried.networks.into_iter().map(|n| n.id).collect(),
            ports: carried.ports.into_iter().map(|p| p.id).collect(),
        }
    }
}

pub struct SimNetwork {
    delay: Duration,
    fault: Mutex<Option<Fault>>,
    carried: Carried,
    /// One apply at a time, so a slow one cannot overwrite a newer one.
    applying: tokio::sync::Mutex<()>,
}

/// Refuses a spec that does not hang together: the scheduler rendered it wrong.
pub(crate) fn check(spec: &NodeNetworkSpec) -> Result<(), DriverError> {
    let invalid = |message: String| DriverError {
        code: "invalid",
        message,
    };
    let mut networks = HashSet::new();
    let mut vnis = HashSet::new();
    for n in &spec.networks {
        if !networks.insert(n.id.as_str()) || !vnis.insert(n.vni) {
            return Err(invalid(format!(
                "network {} (VNI {}) appears twice in the spec",
                n.id, n.vni
            )));
        }
    }
    let mut ports = HashSet::new();
    for p in &spec.ports {
        if !ports.insert(p.id.as_str()) {
            return Err(invalid(format!("port {} appears twice in the spec", p.id)));
        }
        if !networks.contains(p.network_id.as_str()) {
            return Err(invalid(format!(
                "port {} is on network {}, which the spec does not carry",
                p.id, p.network_id
            )));
        }
    }
    let groups: HashSet<&str> = spec.security_groups.iter().map(|g| g.id.as_str()).collect();
    if groups.len() != spec.security_groups.len() {
        return Err(invalid("a security group appears twice in the spec".into()));
    }
    for p in &spec.ports {
        if let Some(g) = p
            .security_group_ids
            .iter()
            .find(|g| !groups.contains(g.as_str()))
        {
            return Err(invalid(format!(
                "port {} uses security group {g}, which the spec does not carry",
                p.id
            )));
        }
    }
    for g in &spec.security_groups {
        for r in &g.rules {
            if !matches!(r.direction.as_str(), "ingress" | "egress")
                || !matches!(r.ethertype.as_str(), "IPv4" | "IPv6")
            {
                return Err(invalid(format!(
                    "security group {} has a rule with direction {} and ethertype {}",
                    g.id, r.direction, r.ethertype
                )));
            }
            if let Some(remote) = &r.remote_group_id
                && !groups.contains(remote.as_str())
            {
                return Err(invalid(format!(
                    "a rule of security group {} names group {remote} as remote, whose \
                     members the spec does not carry",
                    g.id
                )));
            }
        }
    }
    for router in &spec.routers {
        let carried = |network: &str| networks.contains(network);
        if let Some(gw) = &router.gateway
            && !carried(&gw.network_id)
        {
            return Err(invalid(format!(
                "router {}'s gateway is on network {}, which the spec does not carry",
                router.id, gw.network_id
            )));
        }
        if let Some(i) = router.interfaces.iter().find(|i| !carried(&i.network_id)) {
            return Err(invalid(format!(
                "router {} has an interface on network {}, which the spec does not carry",
                router.id, i.network_id
            )));
        }
    }
    Ok(())
}

impl SimNetwork {
    pub fn new(delay: Duration) -> SimNetwork {
        SimNetwork {
            delay,
            fault: Mutex::new(None),
            carried: Carried::default(),
            applying: tokio::sync::Mutex::new(()),
        }
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    /// Takes the fault's delay and says whether this call fails.
    fn take_fault(&self) -> (u64, bool) {
        let mut fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        match fault.as_mut() {
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
    }

    /// Replaces what the node carries with `spec`, or changes nothing.
    pub async fn apply(&self, spec: NodeNetworkSpec) -> Result<NetworkApplied, DriverError> {
        let _one_at_a_time = self.applying.lock().await;
        self.carried.check_newer(&spec)?;
        check(&spec)?;
        let (fault_delay, fail) = self.take_fault();
        tokio::time::sleep(self.delay + Duration::from_millis(fault_delay)).await;
        if fail {
            return Err(DriverError {
                code: "injected",
                message: format!("sim: injected failure of {APPLY}"),
            });
        }
        Ok(self.carried.replace(spec))
    }

    /// The spec the node carries now.
    pub fn carried(&self) -> NodeNetworkSpec {
        self.carried.get()
    }

    /// What the node carries, for its status.
    pub fn inventory(&self) -> NetworkInventory {
        self.carried.inventory()
    }
}

#[cfg(test)]
mod tests {
    use yunji_common::agent_api::{NetworkSpec, PortSpec};

    use super::*;

    fn spec(generation: u64, port_network: &str) -> NodeNetworkSpec {
        NodeNetworkSpec {
            generation,
            networks: vec![NetworkSpec {
                id: "n1".into(),
                vni: 7,
                mtu: 1450,
                subnets: vec![],
                peers: vec![],
            }],
            ports: vec![PortSpec {
                id: "p1".into(),
                network_id: port_network.into(),
                server_id: None,
                mac: "fa:16:3e:00:00:01".into(),
                fixed_ips: vec![],
                port_security_enabled: true,
                allowed_address_pairs: vec![],
                security_group_ids: vec![],
            }],
            ..NodeNetworkSpec::default()
        }
    }

    #[tokio::test]
    async fn a_failed_apply_changes_nothing_and_an_older_spec_is_refused() {
        let sim = SimNetwork::new(Duration::ZERO);
        sim.apply(spec(2, "n1")).await.unwrap();
        sim.set_fault(Some(Fault {
            fail_times: Some(1),
            delay_ms: 0,
        }));

        let failed = sim.apply(spec(3, "n1")).await;
        let older = sim.apply(spec(1, "n1")).await;
        let dangling = sim.apply(spec(4, "elsewhere")).await;

        assert_eq!(failed.unwrap_err().code, "injected");
        assert_eq!(older.unwrap_err().code, "state");
        assert_eq!(dangling.unwrap_err().code, "invalid");
        assert_eq!(sim.inventory().generation, 2);
        assert_eq!(sim.inventory().ports, vec!["p1".to_string()]);
    }
}
