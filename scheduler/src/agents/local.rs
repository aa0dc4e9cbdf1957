//! Local agents: `--local-agents N` starts N `yunji-agent` processes on this machine,
//! each with its own data directory, joined automatically, and restarts any that exits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use yunji_common::pidlock::{AGENT_LOCK_FILE, Holder, PidLock};

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
        stop_stale_agent(&agent).await;
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

/// A scheduler killed outright (SIGKILL, OOM) leaves its local agents running. The one on
/// this agent's data directory is stopped here so the new one can take the directory and
/// adopt the VMs, which keep running: an agent leaves its VMs when it stops.
async fn stop_stale_agent(agent: &LocalAgent) {
    let lock = agent.data_dir.join(AGENT_LOCK_FILE);
    let Some(holder) = lock_holder(&lock).await else {
        return;
    };
    tracing::warn!(node = %agent.node_name, pid = ?holder.pid,
        "an agent from an earlier scheduler still runs on this node's data directory; stopping it");
    for (signal, wait) in [
        (Signal::TERM, Duration::from_secs(10)),
        (Signal::KILL, Duration::from_secs(5)),
    ] {
        if let Some(pid) = holder.pid.and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, signal);
        }
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            if lock_holder(&lock).await.is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tracing::error!(node = %agent.node_name, pid = ?holder.pid, lock = %lock.display(),
        "the earlier agent does not let go of the data directory; the new one will say why it cannot start");
}

async fn lock_holder(lock: &Path) -> Option<Holder> {
    let lock = lock.to_path_buf();
    tokio::task::spawn_blocking(move || PidLock::holder(&lock))
        .await
        .ok()
        .flatten()
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
