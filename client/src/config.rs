//! Where a cloud is and who we are there: a `clouds.yaml` entry or the `OS_*` variables,
//! read the way openstacksdk and the `openstack` CLI read them, so one configuration
//! serves every tool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;

/// Everything needed to authenticate and reach a cloud's endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CloudConfig {
    pub auth: AuthConfig,
    pub region_name: Option<String>,
    /// Which catalog interface to use (`public` unless set).
    pub interface: Option<String>,
    /// A CA bundle to trust beside the system roots.
    pub cacert: Option<PathBuf>,
    /// `false` skips certificate verification (as `verify: false` does for the CLI).
    pub verify: Option<bool>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub auth_url: String,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<String>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<String>,
}

// Keeps secrets out of logs and error reports.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("user_id", &self.user_id)
            .field("project_name", &self.project_name)
            .field("project_id", &self.project_id)
            .field("application_credential_id", &self.application_credential_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct CloudsFile {
    #[serde(default)]
    clouds: BTreeMap<String, CloudConfig>,
}

impl CloudConfig {
    /// The cloud named `cloud` (or `OS_CLOUD`) from `clouds.yaml`; without a name, the
    /// `OS_*` variables. This is the order the `openstack` CLI uses.
    pub fn load(cloud: Option<&str>) -> Result<CloudConfig, Error> {
        let from_env = std::env::var("OS_CLOUD").ok().filter(|c| !c.is_empty());
        match cloud.map(str::to_owned).or(from_env) {
            Some(name) => Self::from_clouds_yaml(&name),
            None => Self::from_env(),
        }
    }

    /// The cloud `name` from the first `clouds.yaml` found: `OS_CLIENT_CONFIG_FILE`,
    /// `./clouds.yaml`, `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`.
    pub fn from_clouds_yaml(name: &str) -> Result<CloudConfig, Error> {
        let candidates = clouds_yaml_candidates();
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            let looked = candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::Config(format!(
                "no clouds.yaml found (looked at {looked}); set OS_CLIENT_CONFIG_FILE or use the OS_* variables"
            )));
        };
        Self::from_file(path, name)
    }

    /// The cloud `name` from the `clouds.yaml` at `path`.
    pub fn from_file(path: &Path, name: &str) -> Result<CloudConfig, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut file: CloudsFile = serde_yaml_ng::from_str(&text).map_err(|e| {
            Error::Config(format!(
                "{} is not a valid clouds.yaml: {e}",
                path.display()
            ))
        })?;
        let known = file.clouds.keys().cloned().collect::<Vec<_>>().join(", ");
        let mut config = file.clouds.remove(name).ok_or_else(|| {
            Error::Config(format!(
                "cloud {name:?} is not in {} (it has: {known})",
                path.display()
            ))
        })?;
        // A relative CA path is relative to the file, as openstacksdk resolves it.
        if let (Some(ca), Some(dir)) = (&config.cacert, path.parent())
            && ca.is_relative()
        {
            config.cacert = Some(dir.join(ca));
        }
        config.check()?;
        Ok(config)
    }

    /// The cloud the `OS_*` variables describe.
    pub fn from_env() -> Result<CloudConfig, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let config = CloudConfig {
            auth: AuthConfig {
                auth_url: var("OS_AUTH_URL").unwrap_or_default(),
                username: var("OS_USERNAME"),
                user_id: var("OS_USER_ID"),
                password: var("OS_PASSWORD"),
                user_domain_name: var("OS_USER_DOMAIN_NAME"),
                user_domain_id: var("OS_USER_DOMAIN_ID"),
                project_name: var("OS_PROJECT_NAME").or_else(|| var("OS_TENANT_NAME")),
                project_id: var("OS_PROJECT_ID").or_else(|| var("OS_TENANT_ID")),
                project_domain_name: var("OS_PROJECT_DOMAIN_NAME"),
                project_domain_id: var("OS_PROJECT_DOMAIN_ID"),
                application_credential_id: var("OS_APPLICATION_CREDENTIAL_ID"),
                application_credential_name: var("OS_APPLICATION_CREDENTIAL_NAME"),
                application_credential_secret: var("OS_APPLICATION_CREDENTIAL_SECRET"),
            },
            region_name: var("OS_REGION_NAME"),
            interface: var("OS_INTERFACE"),
            cacert: var("OS_CACERT").map(PathBuf::from),
            verify: var("OS_INSECURE").map(|v| !matches!(v.as_str(), "1" | "true" | "True")),
        };
        if config.auth.auth_url.is_empty() {
            return Err(Error::Config(
                "no cloud configured: pass --os-cloud NAME (a clouds.yaml entry) or set OS_CLOUD, or set OS_AUTH_URL, OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME".into(),
            ));
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), Error> {
        let auth = &self.auth;
        if auth.auth_url.is_empty() {
            return Err(Error::Config("auth_url is missing".into()));
        }
        if auth.application_credential_secret.is_some() {
            return Ok(());
        }
        if auth.password.is_none() {
            return Err(Error::Config(
                "no password: set auth.password (OS_PASSWORD) or an application credential".into(),
            ));
        }
        if auth.username.is_none() && auth.user_id.is_none() {
            return Err(Error::Config(
                "no user: set auth.username (OS_USERNAME) or auth.user_id".into(),
            ));
        }
        Ok(())
    }
}

fn clouds_yaml_candidates() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(file) = std::env::var_os("OS_CLIENT_CONFIG_FILE") {
        paths.push(PathBuf::from(file));
    }
    paths.push(PathBuf::from("clouds.yaml"));
    if let Some(home) = std::env::var_os("HOME") {
        paths.push(Path::new(&home).join(".config/openstack/clouds.yaml"));
    }
    paths.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_file_the_scheduler_writes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("clouds.yaml");
        std::fs::write(
            &path,
            "clouds:\n  yunji:\n    auth:\n      auth_url: \"https://127.0.0.1:9000/identity/v3\"\n      username: admin\n      password: \"s3cret\"\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: \"RegionOne\"\n    interface: public\n    identity_api_version: 3\n    cacert: \"tls/api-ca.crt\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let config = CloudConfig::from_file(&path, "yunji").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.auth.auth_url, "https://127.0.0.1:9000/identity/v3");
        assert_eq!(config.auth.password.as_deref(), Some("s3cret"));
        assert_eq!(config.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(config.cacert, Some(dir.path().join("tls/api-ca.crt")));
        // The password never shows in debug output.
        assert!(!format!("{config:?}").contains("s3cret"));

        let missing = CloudConfig::from_file(&path, "other").unwrap_err();
        assert!(missing.to_string().contains("it has: yunji"), "{missing}");
    }
}
