//! `yunji`: every operation of the CH/Z IaaS standard from the command line, against
//! yunji or any OpenStack-compatible cloud, configured the way the `openstack` CLI is
//! (`--os-cloud`/`OS_CLOUD` and `clouds.yaml`, or the `OS_*` variables).
//!
//! Exit codes scripts can rely on:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the cloud refused or failed the operation (its message is printed) |
//! | 2 | the command line is wrong (see `--help`) |
//! | 3 | no usable configuration, or the cloud could not be reached or refused the credentials |
//! | 4 | `--wait` gave up, or the resource went to an error state |
//! | 5 | `yunji conformance`: at least one clause failed |

mod commands;
mod conformance;
mod output;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use yunji_client::{Client, CloudConfig, Error};

use output::{Format, Printer};

#[derive(Debug, Parser)]
#[command(
    name = "yunji",
    version,
    about = "yunji (云基): the CH/Z IaaS standard's operations from the command line"
)]
struct Cli {
    /// The cloud to use, from clouds.yaml (else OS_CLOUD, else the OS_* variables).
    #[arg(long, global = true, env = "OS_CLOUD")]
    os_cloud: Option<String>,
    /// Output format.
    #[arg(short = 'f', long, global = true, value_enum, default_value = "table")]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tokens (B.1.1 鉴权).
    #[command(subcommand)]
    Token(commands::identity::TokenCommand),
    /// Data centres: regions and availability zones, and their capacity (B.1.2, B.1.3.1).
    #[command(subcommand)]
    Datacenter(commands::identity::DatacenterCommand),
    /// The project's quotas and usage (B.1.3.1 云主机配额, B.1.3.2 云硬盘配额).
    #[command(subcommand)]
    Quota(commands::identity::QuotaCommand),
    /// Cloud hosts (B.2.1 云主机).
    #[command(subcommand)]
    Server(commands::compute::ServerCommand),
    /// Flavors (B.2.2 云主机规格).
    #[command(subcommand)]
    Flavor(commands::compute::FlavorCommand),
    /// Images (B.2.3 镜像).
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Networks (B.3.1 网络).
    #[command(subcommand)]
    Network(commands::network::NetworkCommand),
    /// Floating IPs (B.3.2 浮动 IP).
    #[command(subcommand, name = "floating-ip")]
    FloatingIp(commands::network::FloatingIpCommand),
    /// Public IPs (B.3.3 公网 IP).
    #[command(subcommand, name = "public-ip")]
    PublicIp(commands::network::PublicIpCommand),
    /// Load balancers and their nodes (B.3.4 负载均衡).
    #[command(subcommand)]
    Lb(commands::lb::LbCommand),
    /// Security groups and rules (B.3.5 安全组).
    #[command(subcommand, name = "security-group")]
    SecurityGroup(commands::network::SecurityGroupCommand),
    /// Cloud disks (B.4.1 云硬盘).
    #[command(subcommand)]
    Volume(commands::volume::VolumeCommand),
    /// Checks every clause of the standard against a cloud and writes a report.
    Conformance(conformance::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer { format: cli.format };
    if let Command::Conformance(args) = &cli.command
        && args.matrix
    {
        print!("{}", conformance::clauses::matrix_markdown());
        return ExitCode::SUCCESS;
    }
    let config = match CloudConfig::load(cli.os_cloud.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    if let Command::Conformance(args) = cli.command {
        return conformance::run(config, args, &printer).await;
    }
    let client = match Client::connect(config).await {
        Ok(client) => client,
        Err(e) => return fail(&e),
    };
    let result = match cli.command {
        Command::Token(c) => c.run(&client, &printer).await,
        Command::Datacenter(c) => c.run(&client, &printer).await,
        Command::Quota(c) => c.run(&client, &printer).await,
        Command::Server(c) => c.run(&client, &printer).await,
        Command::Flavor(c) => c.run(&client, &printer).await,
        Command::Image(c) => c.run(&client, &printer).await,
        Command::Network(c) => c.run(&client, &printer).await,
        Command::FloatingIp(c) => c.run(&client, &printer).await,
        Command::PublicIp(c) => c.run(&client, &printer).await,
        Command::Lb(c) => c.run(&client, &printer).await,
        Command::SecurityGroup(c) => c.run(&client, &printer).await,
        Command::Volume(c) => c.run(&client, &printer).await,
        Command::Conformance(_) => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Prints the error with a hint and returns its exit code.
fn fail(error: &Error) -> ExitCode {
    let (code, hint) = match error {
        Error::Config(_) => (3, None),
        Error::Auth { .. } => (
            3,
            Some("check the user name, password and project of the cloud you chose"),
        ),
        Error::Transport { .. } => (
            3,
            Some("is the cloud running, and is auth_url (and cacert for HTTPS) right?"),
        ),
        Error::NoEndpoint { .. } => (3, Some("this cloud does not offer that service")),
        Error::Wait(_) => (4, None),
        Error::Api { status, .. } if status.as_u16() == 401 => {
            (3, Some("the token was refused; authenticate again"))
        }
        Error::Api { status, .. } if status.as_u16() == 403 => {
            (1, Some("this needs a role you do not have (often admin)"))
        }
        Error::Api { .. } | Error::Decode { .. } | Error::Lookup(_) | Error::File { .. } => {
            (1, None)
        }
    };
    eprintln!("yunji: {error}");
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(code)
}
