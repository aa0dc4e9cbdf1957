//! The one way yunji runs a host tool (`qemu-img`, `nft`, …): asynchronously, with the
//! command, exit status and stderr kept for the error and the log. Output that is parsed
//! must be a tool's machine format (`--output=json`, `-j`).

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// A command that could not run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot run {command}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} exited with {status}: {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{command} did not finish within {secs} s")]
    Timeout { command: String, secs: u64 },
}

/// What a successful command printed.
#[derive(Debug)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `program args…` to completion (killing it after `timeout`); a non-zero exit is
/// an error carrying stderr.
pub async fn execute<I, S>(program: &str, args: I, timeout: Duration) -> Result<Output, ExecError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(program, args, None, timeout).await
}

/// [`execute`], with `input` on the tool's stdin (`nft -f -`): nothing goes through a
/// file that a process killed midway would leave behind.
pub async fn execute_with_input<I, S>(
    program: &str,
    args: I,
    input: &[u8],
    timeout: Duration,
) -> Result<Output, ExecError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(program, args, Some(input), timeout).await
}

async fn run<I, S>(
    program: &str,
    args: I,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, ExecError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    use tokio::io::AsyncWriteExt;

    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = std::iter::once(program.to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(program)
        .args(&args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ExecError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdin = child.stdin.take();
    // The input is written while the output is read, so neither side can block the other;
    // a tool that exits without reading it all fails on its own terms.
    let feed = async move {
        if let (Some(mut stdin), Some(input)) = (stdin, input) {
            let _ = stdin.write_all(input).await;
        }
    };
    let finished = async {
        let ((), out) = tokio::join!(feed, child.wait_with_output());
        out
    };
    let out = tokio::time::timeout(timeout, finished)
        .await
        .map_err(|_| ExecError::Timeout {
            command: command.clone(),
            secs: timeout.as_secs(),
        })?
        .map_err(|source| ExecError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    tracing::debug!(%command, status = %out.status, "executed");
    if !out.status.success() {
        return Err(ExecError::Failed {
            command,
            status: out.status.to_string(),
            stderr,
        });
    }
    Ok(Output {
        stdout: out.stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_failure_and_timeout_are_told_apart() {
        let ok = execute("sh", ["-c", "printf hi"], Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(ok.stdout, b"hi");
        let failed = execute(
            "sh",
            ["-c", "echo oops >&2; exit 3"],
            Duration::from_secs(5),
        )
        .await;
        match failed {
            Err(ExecError::Failed { stderr, status, .. }) => {
                assert_eq!(stderr, "oops");
                assert!(status.contains('3'));
            }
            other => panic!("{other:?}"),
        }
        let echoed = execute_with_input("cat", ["-"], b"fed", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(echoed.stdout, b"fed");
        let slow = execute("sleep", ["5"], Duration::from_millis(100)).await;
        assert!(matches!(slow, Err(ExecError::Timeout { .. })));
        let missing = execute("/nonexistent/tool", ["x"], Duration::from_secs(1)).await;
        assert!(matches!(missing, Err(ExecError::Spawn { .. })));
    }
}
