//! The cloud's own processes dying under it: the `yunji-scheduler` binary with a local
//! agent on the QEMU driver, the scheduler and then the agent killed with SIGKILL while
//! two VMs run. Nothing may stop a VM, and each restarted process takes up where the
//! dead one left off.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Method;
use rustix::process::{Pid, Signal};
use serde_json::json;
use yunji_common::pidlock::{AGENT_LOCK_FILE, PidLock};
use yunji_tests::{ADMIN_PASSWORD, Api};

use super::{BOOT, Session, binary};

/// Server states must be right this soon after a restarted process answers.
const STATES_RIGHT: Duration = Duration::from_secs(5);

/// `yunji-scheduler --local-agents 1 --driver auto` as a process of its own. Dropping it
/// kills the scheduler, its agent and every QEMU the agent started.
struct SchedulerProcess {
    dir: tempfile::TempDir,
    listen: std::net::SocketAddr,
    child: Option<tokio::process::Child>,
}

impl SchedulerProcess {
    async fn start() -> SchedulerProcess {
        let dir = tempfile::tempdir().unwrap();
        // Fast heartbeats and cheap password hashing, as the in-process tests use.
        std::fs::write(
            dir.path().join("scheduler.toml"),
            "local_agents = 1\ndriver = \"auto\"\n\
             [tls]\nplain_http = true\n\
             [identity]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n\
             [agents]\nheartbeat_secs = 1\ndown_after_secs = 3\n",
        )
        .unwrap();
        // A port of its own, kept across restarts: the agent finds the scheduler there.
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut scheduler = SchedulerProcess {
            dir,
            listen,
            child: None,
        };
        scheduler.spawn().await;
        scheduler
    }

    /// Starts the binary and waits until its API answers.
    async fn spawn(&mut self) {
        let child = tokio::process::Command::new(binary("yunji-scheduler"))
            .arg("--config")
            .arg(self.dir.path().join("scheduler.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen", &self.listen.to_string()])
            .env("YUNJI_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // Lifecycle logs, not a line per request of the polling below.
            .env("YUNJI_LOG", "info,yunji_scheduler::http=warn")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let api = self.api();
        let start = Instant::now();
        while api.client.get(&api.url).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the scheduler does not answer"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn sigkill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().await.unwrap();
    }

    fn api(&self) -> Api {
        Api::new(format!("http://{}", self.listen))
    }

    fn agent_dir(&self) -> PathBuf {
        self.dir.path().join("data/agents/node-1")
    }

    /// The pid of the agent running on the node's data directory, read from its lock.
    fn agent_pid(&self) -> Option<i32> {
        PidLock::holder(&self.agent_dir().join(AGENT_LOCK_FILE))?.pid
    }

    fn qemu_pid(&self, id: &str) -> Option<i32> {
        yunji_agent::vmm::qemu::running_pid(&self.agent_dir().join("vms").join(id))
    }

    /// Waits until an agent other than `not` runs and the scheduler has it up.
    async fn wait_agent(&self, session: &Session, not: Option<i32>) -> i32 {
        let start = Instant::now();
        loop {
            let hypervisors = session
                .api
                .call(
                    Method::GET,
                    "/compute/v2.1/os-hypervisors/detail",
                    Some(&session.admin),
                    None,
                )
                .await;
            let up = hypervisors.body["hypervisors"][0]["state"] == "up";
            match self.agent_pid() {
                Some(pid) if up && Some(pid) != not => return pid,
                _ => {}
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no new agent is up: {}",
                hypervisors.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        if let Some(pid) = self.agent_pid().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        let Ok(vms) = std::fs::read_dir(self.agent_dir().join("vms")) else {
            return;
        };
        for vm in vms.flatten() {
            yunji_agent::vmm::qemu::kill_now(&vm.path());
        }
    }
}

/// Each server is ACTIVE, on the QEMU process it started on, has booted once and is
/// counting now: the test image prints a tick every second, and two more must come.
async fn still_running(scheduler: &SchedulerProcess, session: &Session, servers: &[(String, i32)]) {
    for (id, pid) in servers {
        assert_eq!(session.show(id).await["status"], "ACTIVE");
        assert_eq!(scheduler.qemu_pid(id), Some(*pid), "{id} is the same VM");
        let from = last_tick(&session.console(id).await);
        let start = Instant::now();
        loop {
            let output = session.console(id).await;
            if last_tick(&output) >= from + 2 {
                assert_eq!(output.matches("YUNJI-BOOT-OK").count(), 1, "{output}");
                break;
            }
            assert!(start.elapsed() < BOOT, "{id} stopped counting:\n{output}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The last tick on a console (0 before the first).
fn last_tick(console: &str) -> u64 {
    console
        .lines()
        .rev()
        .find_map(|line| line.split("YUNJI-TICK ").nth(1)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn vms_run_on_through_a_killed_scheduler_and_a_killed_agent() {
    let mut scheduler = SchedulerProcess::start().await;
    let api = scheduler.api();
    let admin = api.admin_token().await;
    let session = Session::prepare(api, admin).await;
    let first_agent = scheduler.wait_agent(&session, None).await;

    let mut servers = Vec::new();
    for name in ["first", "second"] {
        let id = session.boot(name, "e2e-small", None).await;
        session.wait_status(&id, "ACTIVE", BOOT).await;
        servers.push(id);
    }
    let servers: Vec<(String, i32)> = servers
        .into_iter()
        .map(|id| {
            let pid = scheduler.qemu_pid(&id).unwrap();
            (id, pid)
        })
        .collect();
    still_running(&scheduler, &session, &servers).await;

    // The scheduler dies outright: its local agent and the VMs run on without it.
    scheduler.sigkill().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        scheduler.agent_pid(),
        Some(first_agent),
        "the agent runs on"
    );
    for (id, pid) in &servers {
        assert_eq!(scheduler.qemu_pid(id), Some(*pid));
    }

    // Started again, it reads its state back at once and replaces the orphaned agent
    // (which leaves its VMs running) with one of its own that adopts them.
    scheduler.spawn().await;
    let answering = Instant::now();
    for (id, _) in &servers {
        assert_eq!(session.show(id).await["status"], "ACTIVE");
    }
    assert!(answering.elapsed() < STATES_RIGHT);
    let second_agent = scheduler.wait_agent(&session, Some(first_agent)).await;
    still_running(&scheduler, &session, &servers).await;
    // Adopted, not just left alone: the new agent acts on the VM.
    let (first, _) = &servers[0];
    session.act(first, json!({"os-stop": null})).await;
    session
        .wait_status(first, "SHUTOFF", Duration::from_secs(60))
        .await;
    session.act(first, json!({"os-start": null})).await;
    session.wait_status(first, "ACTIVE", BOOT).await;
    session.wait_console(first, "YUNJI-BOOT-OK", 2).await;
    let servers = vec![
        (first.clone(), scheduler.qemu_pid(first).unwrap()),
        servers[1].clone(),
    ];

    // The agent dies outright: the scheduler starts another, which adopts both VMs.
    rustix::process::kill_process(Pid::from_raw(second_agent).unwrap(), Signal::KILL).unwrap();
    let killed = Instant::now();
    scheduler.wait_agent(&session, Some(second_agent)).await;
    println!("a new agent was up {:?} after the kill", killed.elapsed());
    still_running(&scheduler, &session, &servers[1..]).await;
    assert_eq!(scheduler.qemu_pid(first), Some(servers[0].1));
    assert_eq!(session.show(first).await["status"], "ACTIVE");

    // Nothing lost: both servers listed, and both deleted with everything they had.
    let list = session
        .api
        .call(
            Method::GET,
            "/compute/v2.1/servers",
            Some(&session.admin),
            None,
        )
        .await;
    assert_eq!(list.body["servers"].as_array().unwrap().len(), 2);
    for (id, _) in &servers {
        let r = session
            .api
            .call(
                Method::DELETE,
                &format!("/compute/v2.1/servers/{id}"),
                Some(&session.admin),
                None,
            )
            .await;
        assert_eq!(r.status, reqwest::StatusCode::NO_CONTENT, "{:?}", r.body);
    }
    let start = Instant::now();
    while servers
        .iter()
        .any(|(id, _)| scheduler.agent_dir().join("vms").join(id).exists())
    {
        assert!(start.elapsed() < BOOT, "a VM directory stays");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        servers
            .iter()
            .all(|(id, _)| scheduler.qemu_pid(id).is_none())
    );
}
