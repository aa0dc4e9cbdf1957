//! Local agents: `--local-agents N` starts N `yunji-agent` processes on this machine,
//! each with its own data directory, joined automatically, and restarts any that exits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::watch;

/// What a local agent is started with.
#[derive(Debug, Clone)]
pub struct LocalAgent {
    pub node_name: String,
    pub data_dir: PathBuf,
    pub scheduler_url: String,
    pub join_token: String,
    /// `sim` or `auto`.
    pub driver: &'static str,
    pub sim_capacity: (u32, u64, u64),
}

/// Finds `yunji-agent` beside this executable, else on `PATH`.
pub fn agent_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("yunji-agent")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("yunji-agent"))
}

fn spawn(binary: &Path, agent: &LocalAgent) -> std::io::Result<Child> {
    let (vcpus, memory_mb, disk_gb) = agent.sim_capacity;
    Command::new(binary)
        .arg("--scheduler")
        .arg(&agent.scheduler_url)
        .arg("--data-dir")
        .arg(&agent.data_dir)
        .arg("--node-name")
        .arg(&agent.node_name)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--driver")
        .arg(agent.driver)
        .arg("--sim-vcpus")
        .arg(vcpus.to_string())
        .arg("--sim-memory-mb")
        .arg(memory_mb.to_string())
        .arg("--sim-disk-gb")
        .arg(disk_gb.to_string())
        // The token travels in the environment, not on the command line others can read.
        .env("YUNJI_JOIN_TOKEN", &agent.join_token)
        .kill_on_drop(true)
        .spawn()
}

/// Runs `agent` until `stop` turns true, restarting it (after a pause) whenever it exits.
pub async fn supervise(agent: LocalAgent, mut stop: watch::Receiver<bool>) {
    let binary = agent_binary();
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut child = match spawn(&binary, &agent) {
            Ok(child) => child,
            Err(error) => {
                tracing::error!(node = %agent.node_name, binary = %binary.display(), %error,
                    "cannot start the local agent");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        tracing::info!(node = %agent.node_name, pid = child.id(), "local agent started");
        tokio::select! {
            status = child.wait() => {
                tracing::warn!(node = %agent.node_name, ?status, "local agent exited; restarting");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
            }
            _ = stop.changed() => {
                terminate(&mut child).await;
                return;
            }
        }
    }
}

/// SIGTERM, then SIGKILL if the agent has not exited after five seconds.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
