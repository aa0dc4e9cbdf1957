//! A small typed QMP client: one connection to a QEMU monitor socket, the greeting and
//! `qmp_capabilities` handshake, commands with typed replies and errors, and the
//! asynchronous events QEMU interleaves with replies (SHUTDOWN, RESET, STOP, …).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// Longest a QMP exchange may take: QEMU answers its monitor at once, even under TCG.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("cannot reach the QMP socket {path}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("QMP I/O failed")]
    Io(#[from] std::io::Error),
    #[error("QMP sent something that is not the expected JSON: {0}")]
    Protocol(String),
    #[error("QMP command {command} failed: {class}: {desc}")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
    #[error("QMP closed the connection")]
    Closed,
    #[error("QMP did not answer within {0:?}")]
    Timeout(Duration),
}

/// QEMU's run state (`query-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    Debug,
    Inmigrate,
    InternalError,
    IoError,
    Paused,
    Postmigrate,
    Prelaunch,
    FinishMigrate,
    RestoreVm,
    Running,
    SaveVm,
    Shutdown,
    Suspended,
    Watchdog,
    GuestPanicked,
    Colo,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusInfo {
    pub status: RunState,
    pub running: bool,
}

/// Where an outgoing migration is (`query-migrate`).
#[derive(Debug, Clone, Deserialize)]
pub struct MigrationInfo {
    /// `none`, `setup`, `active`, `completed`, `failed`, `cancelled`, …; absent before
    /// any migration.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(rename = "error-desc", default)]
    pub error_desc: Option<String>,
}

/// An asynchronous event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The guest or the host asked to shut down (`guest` tells which).
    Shutdown {
        guest: bool,
        reason: String,
    },
    Reset {
        guest: bool,
    },
    Powerdown,
    Stop,
    Resume,
    Other(String),
}

impl Event {
    fn parse(name: &str, data: &Value) -> Event {
        let guest = data.get("guest").and_then(Value::as_bool).unwrap_or(false);
        match name {
            "SHUTDOWN" => Event::Shutdown {
                guest,
                reason: data
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
            "RESET" => Event::Reset { guest },
            "POWERDOWN" => Event::Powerdown,
            "STOP" => Event::Stop,
            "RESUME" => Event::Resume,
            other => Event::Other(other.to_string()),
        }
    }
}

/// One message from QEMU.
enum Message {
    Return(Value),
    Error { class: String, desc: String },
    Event(Event),
    Greeting,
}

/// QEMU going away shows as a broken pipe or a reset as often as an end of stream.
fn closed_or_io(e: std::io::Error) -> QmpError {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => QmpError::Closed,
        _ => QmpError::Io(e),
    }
}

/// A connected, negotiated QMP session.
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// Events received while waiting for replies, oldest first.
    events: Vec<Event>,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp").finish_non_exhaustive()
    }
}

impl Qmp {
    /// Connects, reads the greeting and leaves capabilities negotiation mode.
    pub async fn connect(path: &Path) -> Result<Qmp, QmpError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| QmpError::Connect {
                path: path.display().to_string(),
                source,
            })?;
        let (read, writer) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(read),
            writer,
            events: Vec::new(),
        };
        match qmp.read_message().await? {
            Message::Greeting => {}
            _ => return Err(QmpError::Protocol("no QMP greeting".into())),
        }
        qmp.execute::<Value>("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self) -> Result<Message, QmpError> {
        let mut line = String::new();
        let n = tokio::time::timeout(QMP_TIMEOUT, self.reader.read_line(&mut line))
            .await
            .map_err(|_| QmpError::Timeout(QMP_TIMEOUT))?
            .map_err(closed_or_io)?;
        if n == 0 {
            return Err(QmpError::Closed);
        }
        let value: Value =
            serde_json::from_str(&line).map_err(|e| QmpError::Protocol(format!("{e}: {line}")))?;
        if let Some(ret) = value.get("return") {
            Ok(Message::Return(ret.clone()))
        } else if let Some(error) = value.get("error") {
            let text = |k: &str| {
                error
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            Ok(Message::Error {
                class: text("class"),
                desc: text("desc"),
            })
        } else if let Some(name) = value.get("event").and_then(Value::as_str) {
            let data = value.get("data").cloned().unwrap_or(Value::Null);
            Ok(Message::Event(Event::parse(name, &data)))
        } else if value.get("QMP").is_some() {
            Ok(Message::Greeting)
        } else {
            Err(QmpError::Protocol(line))
        }
    }

    /// Runs `command` with `arguments` and decodes its `return`.
    pub async fn execute<R: DeserializeOwned>(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<R, QmpError> {
        let mut request = serde_json::json!({ "execute": command });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut line =
            serde_json::to_vec(&request).map_err(|e| QmpError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line).await.map_err(closed_or_io)?;
        loop {
            match self.read_message().await? {
                Message::Return(value) => {
                    return serde_json::from_value(value).map_err(|e| {
                        QmpError::Protocol(format!("reply to {command} not understood: {e}"))
                    });
                }
                Message::Error { class, desc } => {
                    return Err(QmpError::Command {
                        command: command.to_string(),
                        class,
                        desc,
                    });
                }
                Message::Event(event) => self.events.push(event),
                Message::Greeting => return Err(QmpError::Protocol("a second greeting".into())),
            }
        }
    }

    pub async fn query_status(&mut self) -> Result<StatusInfo, QmpError> {
        self.execute("query-status", None).await
    }

    /// Presses the ACPI power button.
    /// Starts sending the VM's state (not its disks) to `uri`.
    pub async fn migrate(&mut self, uri: &str) -> Result<(), QmpError> {
        let arguments = serde_json::json!({ "uri": uri });
        self.execute::<Value>("migrate", Some(arguments))
            .await
            .map(drop)
    }

    pub async fn query_migrate(&mut self) -> Result<MigrationInfo, QmpError> {
        self.execute("query-migrate", None).await
    }

    pub async fn migrate_cancel(&mut self) -> Result<(), QmpError> {
        self.execute::<Value>("migrate_cancel", None)
            .await
            .map(drop)
    }

    pub async fn system_powerdown(&mut self) -> Result<(), QmpError> {
        self.execute::<Value>("system_powerdown", None)
            .await
            .map(drop)
    }

    /// Resets the machine, like the reset button.
    pub async fn system_reset(&mut self) -> Result<(), QmpError> {
        self.execute::<Value>("system_reset", None).await.map(drop)
    }

    /// Pauses the vCPUs.
    pub async fn stop(&mut self) -> Result<(), QmpError> {
        self.execute::<Value>("stop", None).await.map(drop)
    }

    /// Resumes the vCPUs.
    pub async fn cont(&mut self) -> Result<(), QmpError> {
        self.execute::<Value>("cont", None).await.map(drop)
    }

    /// Ends QEMU at once.
    pub async fn quit(&mut self) -> Result<(), QmpError> {
        match self.execute::<Value>("quit", None).await {
            // QEMU may close the socket before its reply arrives.
            Ok(_) | Err(QmpError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The next event: one already received, else the next one QEMU sends.
    pub async fn next_event(&mut self) -> Result<Event, QmpError> {
        if !self.events.is_empty() {
            return Ok(self.events.remove(0));
        }
        match self.read_message().await? {
            Message::Event(event) => Ok(event),
            _ => Err(QmpError::Protocol("a reply nobody asked for".into())),
        }
    }

    /// Events received so far, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;

    /// A fake QEMU monitor: greets, checks each request against the script, answers
    /// with the scripted lines (events may come before a reply, as QEMU sends them).
    pub(crate) async fn fake_qemu(listener: UnixListener, script: Vec<(&'static str, Vec<Value>)>) {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let greeting = serde_json::json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": ["oob"]}});
        write
            .write_all(format!("{greeting}\n").as_bytes())
            .await
            .unwrap();
        for (expected, answers) in script {
            let line = lines.next_line().await.unwrap().unwrap();
            let request: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(request["execute"], expected, "{line}");
            for answer in answers {
                write
                    .write_all(format!("{answer}\n").as_bytes())
                    .await
                    .unwrap();
            }
        }
    }

    pub(crate) fn ok() -> Value {
        serde_json::json!({"return": {}})
    }

    fn listener() -> (tempfile::TempDir, std::path::PathBuf, UnixListener) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        (dir, path, listener)
    }

    #[tokio::test]
    async fn negotiates_then_reads_typed_status() {
        let (_dir, path, listener) = listener();
        let server = tokio::spawn(fake_qemu(
            listener,
            vec![
                ("qmp_capabilities", vec![ok()]),
                (
                    "query-status",
                    vec![
                        serde_json::json!({"return": {"status": "running", "running": true, "singlestep": false}}),
                    ],
                ),
            ],
        ));
        let mut qmp = Qmp::connect(&path).await.unwrap();
        let status = qmp.query_status().await.unwrap();
        assert_eq!(status.status, RunState::Running);
        assert!(status.running);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn events_before_a_reply_are_kept_in_order() {
        let (_dir, path, listener) = listener();
        let server = tokio::spawn(fake_qemu(
            listener,
            vec![
                ("qmp_capabilities", vec![ok()]),
                (
                    "system_powerdown",
                    vec![
                        serde_json::json!({"event": "POWERDOWN", "timestamp": {"seconds": 1, "microseconds": 0}}),
                        ok(),
                        serde_json::json!({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}, "timestamp": {"seconds": 1, "microseconds": 5}}),
                    ],
                ),
            ],
        ));
        let mut qmp = Qmp::connect(&path).await.unwrap();
        qmp.system_powerdown().await.unwrap();
        assert_eq!(qmp.next_event().await.unwrap(), Event::Powerdown);
        assert_eq!(
            qmp.next_event().await.unwrap(),
            Event::Shutdown {
                guest: true,
                reason: "guest-shutdown".into()
            }
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn command_errors_carry_class_and_description() {
        let (_dir, path, listener) = listener();
        let server = tokio::spawn(fake_qemu(
            listener,
            vec![
                ("qmp_capabilities", vec![ok()]),
                (
                    "cont",
                    vec![
                        serde_json::json!({"error": {"class": "GenericError", "desc": "Resetting the Virtual Machine is required"}}),
                    ],
                ),
            ],
        ));
        let mut qmp = Qmp::connect(&path).await.unwrap();
        match qmp.cont().await {
            Err(QmpError::Command {
                class,
                desc,
                command,
            }) => {
                assert_eq!(command, "cont");
                assert_eq!(class, "GenericError");
                assert!(desc.contains("Resetting"));
            }
            other => panic!("{other:?}"),
        }
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_socket_is_reported_not_hung_on() {
        let (_dir, path, listener) = listener();
        let server = tokio::spawn(fake_qemu(listener, vec![("qmp_capabilities", vec![ok()])]));
        let mut qmp = Qmp::connect(&path).await.unwrap();
        server.await.unwrap();
        assert!(matches!(qmp.query_status().await, Err(QmpError::Closed)));
        assert!(matches!(
            Qmp::connect(&path.with_extension("missing")).await,
            Err(QmpError::Connect { .. })
        ));
    }

    #[tokio::test]
    async fn quit_tolerates_qemu_closing_first() {
        let (_dir, path, listener) = listener();
        let server = tokio::spawn(fake_qemu(
            listener,
            vec![("qmp_capabilities", vec![ok()]), ("quit", vec![])],
        ));
        let mut qmp = Qmp::connect(&path).await.unwrap();
        let quit = qmp.quit();
        let (result, _) = tokio::join!(quit, server);
        result.unwrap();
    }
}
