//! What the privileged datapath tests share: the real network driver on a thread inside
//! a node namespace, and running host tools. (Each test binary uses part of it.)
#![allow(dead_code)]

use std::os::fd::AsFd;
use std::time::Duration;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use yunji_agent::drivers::DriverError;
use yunji_agent::net::driver::RealNetwork;
use yunji_common::agent_api::{NetworkApplied, NodeNetworkSpec};
use yunji_common::execute::{Output, execute};

pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What the test asks of the driver thread.
enum Request {
    Apply(
        NodeNetworkSpec,
        oneshot::Sender<Result<NetworkApplied, DriverError>>,
    ),
    AttachPort(String, oneshot::Sender<Result<bool, DriverError>>),
    RemoveAll(oneshot::Sender<Result<(), DriverError>>),
}

/// The driver, living on a thread inside the node namespace with a runtime of its own
/// (its DHCP servers run there between requests).
pub struct NodeThread {
    requests: Option<mpsc::UnboundedSender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NodeThread {
    pub fn start(namespace: &str) -> NodeThread {
        let path = format!("/var/run/netns/{namespace}");
        let (requests, mut incoming) = mpsc::unbounded_channel::<Request>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::spawn(move || {
            let netns = std::fs::File::open(&path).expect("open the node namespace");
            move_into_link_name_space(netns.as_fd(), Some(LinkNameSpaceType::Network))
                .expect("setns into the node namespace");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("node runtime");
            runtime.block_on(async move {
                let network = match RealNetwork::new() {
                    Ok(network) => network,
                    Err(error) => {
                        let _ = ready_tx.send(Err(format!("{:#}", anyhow::Error::from(error))));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while let Some(request) = incoming.recv().await {
                    match request {
                        Request::Apply(spec, reply) => {
                            let _ = reply.send(network.apply(spec).await);
                        }
                        Request::AttachPort(port, reply) => {
                            let _ = reply.send(network.attach_port(&port).await);
                        }
                        Request::RemoveAll(reply) => {
                            let _ = reply.send(network.remove_all().await);
                        }
                    }
                }
            });
        });
        ready_rx
            .recv()
            .expect("the node thread ended before starting")
            .expect("RealNetwork::new");
        NodeThread {
            requests: Some(requests),
            thread: Some(thread),
        }
    }

    async fn ask<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Request) -> T {
        let (reply, answer) = oneshot::channel();
        self.requests
            .as_ref()
            .expect("node thread running")
            .send(request(reply))
            .unwrap_or_else(|_| panic!("the node thread stopped"));
        answer.await.expect("the node thread answers")
    }

    pub async fn apply(&self, spec: NodeNetworkSpec) -> Result<NetworkApplied, DriverError> {
        self.ask(|reply| Request::Apply(spec, reply)).await
    }

    pub async fn attach_port(&self, port: &str) -> Result<bool, DriverError> {
        self.ask(|reply| Request::AttachPort(port.to_string(), reply))
            .await
    }

    pub async fn remove_all(&self) -> Result<(), DriverError> {
        self.ask(Request::RemoveAll).await
    }
}

impl Drop for NodeThread {
    fn drop(&mut self) {
        // Closing the channel ends the loop; the runtime's drop stops the DHCP servers.
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub async fn run(program: &str, args: &[&str]) -> Output {
    execute(program, args, COMMAND_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn ip(args: &[&str]) -> Output {
    run("ip", args).await
}

pub fn json(output: &Output) -> Vec<Value> {
    serde_json::from_slice(&output.stdout).expect("the tool prints a JSON array")
}
