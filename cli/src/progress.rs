//! `--wait`: a spinner with the resource's status while an operation completes, on
//! stderr and only on a terminal, so scripts see just the result.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use yunji_client::{Error, wait};

/// How long `--wait` waits by default.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Waits until `status` reports one of `wanted`, showing it as it changes.
pub async fn wait_for<F, Fut>(what: &str, wanted: &[&str], status: F) -> Result<String, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, Error>>,
{
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let label = what.to_owned();
    let result = wait::until(what, wanted, WAIT_TIMEOUT, status, |now| {
        bar.set_message(format!("{label}: {now}"))
    })
    .await;
    bar.finish_and_clear();
    result
}

/// A byte progress bar with throughput, for uploads.
pub fn bytes_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}
