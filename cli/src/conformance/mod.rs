//! `yunji conformance`: every clause of the standard against any OpenStack-compatible
//! endpoint, with a report a person can read (HTML) and a program can check (JSON).

mod check;
pub mod clauses;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use yunji_client::{Client, CloudConfig};

use crate::output::{Format, Printer, col};
use check::{Outcome, Run, Status};
use report::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the report as a self-contained HTML page here (and as JSON beside it, .json).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// How long to wait for each asynchronous step (server ACTIVE, volume available …).
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Boot the test server from this image (name or id) rather than the blank one the
    /// check uploads: on a cloud of real VMs, a guest that answers ACPI and hot-plug.
    #[arg(long)]
    image: Option<String>,
    /// Print the clause → endpoint → CLI matrix (docs/conformance.md) and exit.
    #[arg(long)]
    pub matrix: bool,
}

pub async fn run(config: CloudConfig, args: Args, out: &Printer) -> ExitCode {
    let cloud = config.auth.auth_url.clone();
    let client = match Client::connect(config).await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("yunji: {e}");
            return ExitCode::from(3);
        }
    };
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let started = Instant::now();
    let live = out.format == Format::Table;
    let boot_image = match &args.image {
        Some(image) => match client.image(image).await {
            Ok(found) => Some(found.id),
            Err(e) => {
                eprintln!("yunji: --image {image}: {e}");
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let outcomes = Run::new(client, Duration::from_secs(args.timeout), boot_image)
        .all(|o| {
            if live {
                eprintln!("{:<9} {:<5} {}", o.id, short(o.status), o.title);
            }
        })
        .await;
    let report = Report::new(cloud, started_at, started.elapsed().as_secs_f64(), outcomes);

    let json_path = args
        .json
        .or_else(|| args.report.as_ref().map(|p| p.with_extension("json")));
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    for (path, text) in [(json_path, json), (args.report, report.html())] {
        if let Some(path) = path
            && let Err(e) = std::fs::write(&path, text)
        {
            eprintln!("yunji: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    match out.format {
        Format::Table => {
            out.list(
                &report.clauses,
                &[
                    col("Clause", |o: &Outcome| serde_json::json!(o.id)),
                    col("Title", |o| serde_json::json!(o.title)),
                    col("Result", |o| serde_json::json!(short(o.status))),
                    col("Evidence", |o| {
                        // The finding that decided a failure, else nothing.
                        let note = o.evidence.iter().rev().find(|e| !e.note.is_empty());
                        serde_json::json!(if o.status == Status::Pass {
                            ""
                        } else {
                            note.map_or("", |e| e.note.as_str())
                        })
                    }),
                ],
            );
            println!(
                "{} passed, {} failed, {} not offered, in {:.0} s",
                report.passed, report.failed, report.not_offered, report.seconds
            );
        }
        _ => out.one(&report),
    }
    if report.conforms() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(5)
    }
}

fn short(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Fail => "FAIL",
        Status::NotOffered => "n/a",
    }
}
