//! The node PKI and every TLS configuration yunji uses.
//!
//! The scheduler runs a small CA. It signs each node's certificate (serverAuth only,
//! for the node's name) from a CSR the agent makes, so the node's key never leaves the
//! node, and its own client certificate (clientAuth only). Extended key usage is what
//! keeps the roles apart: an agent's certificate cannot be used to call another agent.
//! The same module makes the API listener's certificate when none is configured.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::fsutil::write_private;

/// Common name of the scheduler's client certificate towards agents.
pub const SCHEDULER_CLIENT_NAME: &str = "yunji-scheduler";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration is invalid")]
    Tls(#[from] rustls::Error),
    #[error("client verifier could not be built")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cannot read or write {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The crypto provider every yunji TLS endpoint uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key, as PEM, ready to build TLS configurations.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads a PEM certificate chain and key from files.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, PkiError> {
        Ok(Identity {
            cert_pem: std::fs::read_to_string(cert).map_err(io_err(cert))?,
            key_pem: std::fs::read_to_string(key).map_err(io_err(key))?,
        })
    }

    /// Writes the certificate (0644) and key (0600).
    pub fn save(&self, cert: &Path, key: &Path) -> Result<(), PkiError> {
        crate::fsutil::write_atomic(cert, self.cert_pem.as_bytes(), 0o644).map_err(io_err(cert))?;
        write_private(key, self.key_pem.as_bytes()).map_err(io_err(key))
    }

    fn chain(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PkiError::Invalid(format!("certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(PkiError::Invalid("no certificate in PEM".into()));
        }
        Ok(chain)
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| PkiError::Invalid(format!("private key PEM: {e}")))
    }

    /// SHA-256 (hex) of the last certificate of the chain — the CA that signed the leaf
    /// when the chain carries it, else the leaf itself: what a join token pins. Pinning
    /// the CA keeps tokens valid when the leaf is re-issued.
    pub fn anchor_fingerprint(&self) -> Result<String, PkiError> {
        let chain = self.chain()?;
        Ok(fingerprint(&chain[chain.len() - 1]))
    }
}

/// SHA-256 of a DER certificate, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Trust anchors from PEM (one or more CA certificates).
pub fn roots_from_pem(pem: &str) -> Result<Arc<RootCertStore>, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| PkiError::Invalid(format!("CA PEM: {e}")))?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(PkiError::Invalid("no CA certificate in PEM".into()));
    }
    Ok(Arc::new(roots))
}

/// A certificate authority kept as `NAME.crt` / `NAME.key` in a directory.
pub struct CertificateAuthority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams, years: i64) {
    let now = rcgen::date_time_ymd(2000, 1, 1)
        + std::time::Duration::from_secs(
            (chrono::Utc::now().timestamp() - 946_684_800).max(0) as u64
        );
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs((years * 365 * 86_400) as u64);
}

impl CertificateAuthority {
    /// Loads the CA from `dir/NAME.{crt,key}`, creating it on first use.
    pub fn load_or_create(dir: &Path, name: &str, common_name: &str) -> Result<Self, PkiError> {
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        if cert_path.exists() {
            let id = Identity::load(&cert_path, &key_path)?;
            let key = KeyPair::from_pem(&id.key_pem)?;
            let issuer = Issuer::from_ca_cert_pem(&id.cert_pem, key)?;
            return Ok(CertificateAuthority {
                cert_pem: id.cert_pem,
                issuer,
            });
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params, 20);
        let cert = params.self_signed(&key)?;
        let id = Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        id.save(&cert_path, &key_path)?;
        Ok(CertificateAuthority {
            cert_pem: id.cert_pem,
            issuer: Issuer::new(params, key),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Signs a node's CSR: only its public key is taken from the request; the name,
    /// usages and validity are the CA's decision.
    pub fn sign_node_csr(&self, node_name: &str, csr_pem: &str) -> Result<String, PkiError> {
        if !crate::valid_node_name(node_name) {
            return Err(PkiError::Invalid(format!(
                "node name {node_name:?} is not a lower-case DNS name"
            )));
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::Invalid(format!("certificate signing request: {e}")))?;
        let mut params = CertificateParams::new(vec![node_name.to_string()])?;
        params.distinguished_name = dn(node_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, 5);
        Ok(params.signed_by(&csr.public_key, &self.issuer)?.pem())
    }

    /// Issues a client certificate (clientAuth only) with a fresh key.
    pub fn issue_client(&self, common_name: &str) -> Result<Identity, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, 5);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a server certificate (serverAuth) for DNS names and IP addresses.
    pub fn issue_server(&self, names: &[String]) -> Result<Identity, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(names.first().map_or("yunji", String::as_str));
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, 5);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Identity {
            cert_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "yunji");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A fresh key and a CSR for `node_name`; the key stays on the node.
pub fn node_key_and_csr(node_name: &str) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![node_name.to_string()])?;
    params.distinguished_name = dn(node_name);
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

/// A server that requires no client certificate (the public API listener).
pub fn server_config(identity: &Identity) -> Result<Arc<ServerConfig>, PkiError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(identity.chain()?, identity.key()?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An agent's server: a client certificate signed by `ca_pem` with clientAuth is required.
pub fn mutual_server_config(
    identity: &Identity,
    ca_pem: &str,
) -> Result<Arc<ServerConfig>, PkiError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots_from_pem(ca_pem)?, provider()).build()?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain()?, identity.key()?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The scheduler's client towards agents: presents `identity`, trusts only `ca_pem`.
pub fn mutual_client_config(
    identity: &Identity,
    ca_pem: &str,
) -> Result<Arc<ClientConfig>, PkiError> {
    let roots = roots_from_pem(ca_pem)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(identity.chain()?, identity.key()?)?;
    Ok(Arc::new(config))
}

/// A client that trusts the CA certificates in `ca_pem` (e.g. the API's CA).
pub fn client_config_trusting(ca_pem: &str) -> Result<Arc<ClientConfig>, PkiError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots_from_pem(ca_pem)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client that trusts one certificate known only by its SHA-256 fingerprint: the
/// server's leaf itself, or a CA the server presents in its chain, which must then have
/// signed the leaf for the name connected to. How an agent that has nothing but a join
/// token knows it talks to its scheduler.
pub fn pinned_client_config(fingerprint_hex: &str) -> Result<Arc<ClientConfig>, PkiError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCert {
            fingerprint: fingerprint_hex.to_ascii_lowercase(),
            provider: provider(),
        }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct PinnedCert {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity) == self.fingerprint {
            return Ok(ServerCertVerified::assertion());
        }
        let anchor = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.fingerprint)
            .ok_or_else(|| {
                rustls::Error::General(
                    "the scheduler's certificate does not match the join token's fingerprint"
                        .into(),
                )
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(anchor.clone().into_owned())?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_certificates_come_from_csrs_and_carry_server_auth_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path(), "ca", "test CA").unwrap();
        let (key_pem, csr_pem) = node_key_and_csr("node-1").unwrap();
        let cert_pem = ca.sign_node_csr("node-1", &csr_pem).unwrap();
        let node = Identity { cert_pem, key_pem };
        // A server config builds from it, and the CA reloads identically from disk.
        mutual_server_config(&node, ca.cert_pem()).unwrap();
        let again = CertificateAuthority::load_or_create(dir.path(), "ca", "test CA").unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
    }

    #[test]
    fn bad_csrs_and_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path(), "ca", "test CA").unwrap();
        assert!(ca.sign_node_csr("node-1", "not a csr").is_err());
        let (_, csr) = node_key_and_csr("node-1").unwrap();
        assert!(ca.sign_node_csr("Bad_Name", &csr).is_err());
    }
}
