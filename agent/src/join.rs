//! Joining: the agent proves it holds the join token and gets its certificate, signed by
//! the scheduler's CA from a CSR (the key never leaves the node). With operator-provided
//! certificates it only announces its address. Every start announces again, so a new
//! address (a new port, a new IP) reaches the scheduler.

use std::time::Duration;

use anyhow::{Context, bail};
use http::Method;
use rustls::pki_types::ServerName;
use yunji_common::agent_api::{JOIN_PATH, JoinReply, JoinRequest};
use yunji_common::client::{CallError, Transport, call_json};
use yunji_common::fsutil::write_private;
use yunji_common::pki::{self, Identity};

use crate::config::AgentConfig;

/// The node's TLS credentials after joining.
pub struct Credentials {
    pub identity: Identity,
    pub ca_pem: String,
}

/// Where a joined node keeps its certificate, key and the node CA.
fn credential_paths(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    (
        dir.join("node.crt"),
        dir.join("node.key"),
        dir.join("ca.crt"),
    )
}

pub async fn join(config: &AgentConfig, agent_url: &str) -> anyhow::Result<Credentials> {
    let (cert_path, key_path, ca_path) = credential_paths(&config.data_dir);
    let operator = config.tls_cert.is_some();

    // A node keeps its key; it asks for a certificate only when it has none.
    let joined = cert_path.exists() && key_path.exists() && ca_path.exists();
    let (key_pem, csr_pem) = if operator || joined {
        (None, None)
    } else {
        let (key, csr) = pki::node_key_and_csr(&config.node_name)?;
        (Some(key), Some(csr))
    };

    let transport = scheduler_transport(config)?;
    let request = JoinRequest {
        token: config.join_token.clone(),
        node_name: config.node_name.clone(),
        agent_url: agent_url.to_string(),
        csr_pem,
    };
    let reply = join_with_retry(&transport, &config.scheduler, &request).await?;

    // Files on the blocking pool: the agent's async threads never wait on the disk.
    let config = config.clone();
    tokio::task::spawn_blocking(move || store_credentials(&config, reply, key_pem)).await?
}

/// Keeps a newly issued certificate, then loads the credentials the agent serves with.
fn store_credentials(
    config: &AgentConfig,
    reply: JoinReply,
    key_pem: Option<String>,
) -> anyhow::Result<Credentials> {
    let (cert_path, key_path, ca_path) = credential_paths(&config.data_dir);
    if let (Some(cert), Some(key)) = (reply.certificate_pem, key_pem) {
        let identity = Identity {
            cert_pem: cert,
            key_pem: key,
        };
        identity.save(&cert_path, &key_path)?;
        write_private(&ca_path, reply.ca_pem.as_bytes())?;
        tracing::info!(node = %config.node_name, "joined: certificate issued by the scheduler's CA");
    }
    if let (Some(cert), Some(key), Some(ca)) = (&config.tls_cert, &config.tls_key, &config.ca_cert)
    {
        return Ok(Credentials {
            identity: Identity::load(cert, key)?,
            ca_pem: std::fs::read_to_string(ca)
                .with_context(|| format!("reading {}", ca.display()))?,
        });
    }
    Ok(Credentials {
        identity: Identity::load(&cert_path, &key_path)?,
        ca_pem: std::fs::read_to_string(&ca_path)
            .with_context(|| format!("reading {}", ca_path.display()))?,
    })
}

/// How to reach the scheduler before the agent has a certificate: the fingerprint in the
/// join token, or a CA file, or plain HTTP if the scheduler serves that.
fn scheduler_transport(config: &AgentConfig) -> anyhow::Result<Transport> {
    let uri: http::Uri = config
        .scheduler
        .parse()
        .context("--scheduler is not a URL")?;
    if uri.scheme_str() != Some("https") {
        tracing::warn!("joining over plain HTTP: the join token travels unencrypted");
        return Ok(Transport::Plain);
    }
    let host = uri.host().context("--scheduler has no host")?;
    let server_name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .context("--scheduler's host is not a valid name")?;
    let fingerprint = config.join_token.split('.').nth(1);
    let tls = match (fingerprint, &config.scheduler_ca) {
        (Some(fp), _) if fp.len() == 64 => pki::pinned_client_config(fp)?,
        (_, Some(ca)) => pki::client_config_trusting(&std::fs::read_to_string(ca)?)?,
        _ => bail!(
            "cannot verify the scheduler's certificate: use the full join token (it carries the \
             certificate's fingerprint) or pass --scheduler-ca"
        ),
    };
    Ok(Transport::Tls {
        config: tls,
        server_name,
    })
}

/// Joins, retrying while the scheduler is unreachable; a refusal (4xx) or a certificate
/// that does not verify is final.
async fn join_with_retry(
    transport: &Transport,
    url: &str,
    request: &JoinRequest,
) -> anyhow::Result<JoinReply> {
    let mut delay = Duration::from_millis(200);
    let mut attempts = 0;
    loop {
        match call_json(
            transport,
            url,
            Method::POST,
            JOIN_PATH,
            Some(request),
            Duration::from_secs(10),
        )
        .await
        {
            Ok(reply) => return Ok(reply),
            Err(CallError::Status {
                status, message, ..
            }) if status.is_client_error() => {
                bail!("the scheduler refused to let this node join ({status}): {message}")
            }
            // A certificate that does not verify will not start verifying by waiting.
            Err(error @ CallError::Tls { .. }) => {
                return Err(anyhow::Error::new(error).context(
                    "the scheduler's certificate is not the one the join token names; \
                     copy the current token from the scheduler's data directory (join-token)",
                ));
            }
            Err(error) => {
                attempts += 1;
                if attempts % 10 == 1 {
                    tracing::warn!(%error, "cannot reach the scheduler yet; retrying");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
