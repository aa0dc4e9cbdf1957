//! Waiting for asynchronous operations: poll a resource until it reaches a state, fail
//! at once on an error state, and report progress to whoever shows it.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::Error;

/// Polls `status` every `interval` until it returns one of `wanted`. An `ERROR`-like
/// status (or `gone` for a 404 when waiting for deletion) ends the wait early.
pub async fn until<F, Fut>(
    what: &str,
    wanted: &[&str],
    timeout: Duration,
    mut status: F,
    mut progress: impl FnMut(&str),
) -> Result<String, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, Error>>,
{
    let started = Instant::now();
    let mut interval = Duration::from_millis(250);
    loop {
        let now = match status().await {
            Ok(s) => s,
            // Polled by id: not found by id nor by name means it is gone.
            Err(e) if e.is_not_found() || matches!(e, Error::Lookup(_)) => "DELETED".into(),
            Err(e) => return Err(e),
        };
        progress(&now);
        if wanted.iter().any(|w| w.eq_ignore_ascii_case(&now)) {
            return Ok(now);
        }
        if now.eq_ignore_ascii_case("error") || now.eq_ignore_ascii_case("error_extending") {
            return Err(Error::Wait(format!("{what} went to {now}")));
        }
        if started.elapsed() > timeout {
            return Err(Error::Wait(format!(
                "{what} is still {now} after {} s (wanted {}); it may still get there — check again later",
                timeout.as_secs(),
                wanted.join(" or ")
            )));
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_secs(2));
    }
}
