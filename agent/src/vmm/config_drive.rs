//! The config drive: a small vfat filesystem labelled `config-2` holding
//! `openstack/latest/{meta_data.json,user_data,network_data.json}`, the layout cloud-init's
//! ConfigDrive source reads. Built without mounting: `mkfs.vfat` makes the filesystem and
//! `mcopy` copies the files in.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::json;
use yunji_common::agent_api::ServerSpec;
use yunji_common::execute::execute;

use crate::drivers::DriverError;

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// Nova limits user_data to 64 KiB (base64); the drive has room for far more.
const DRIVE_KIB: u64 = 2048;

/// The files of the drive, by path under `openstack/latest/`.
pub fn contents(spec: &ServerSpec) -> Result<Vec<(&'static str, Vec<u8>)>, DriverError> {
    let public_keys: serde_json::Map<String, serde_json::Value> = spec
        .public_key
        .iter()
        .map(|key| ("default".to_string(), json!(key)))
        .collect();
    // One field a line: the test image's init reads it with sed.
    let meta = json!({
        "uuid": spec.id,
        "name": spec.name,
        "hostname": spec.hostname,
        "project_id": spec.project_id,
        "launch_index": 0,
        "availability_zone": "nova",
        "public_keys": public_keys,
        "meta": spec.metadata,
    });
    let mut files = vec![
        (
            "meta_data.json",
            serde_json::to_vec_pretty(&meta).map_err(|e| bad(e.to_string()))?,
        ),
        (
            "network_data.json",
            serde_json::to_vec_pretty(&json!({"links": [], "networks": [], "services": []}))
                .map_err(|e| bad(e.to_string()))?,
        ),
    ];
    if let Some(data) = &spec.user_data {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| bad(format!("user_data is not base64: {e}")))?;
        files.push(("user_data", decoded));
    }
    Ok(files)
}

fn bad(message: String) -> DriverError {
    DriverError {
        code: "bad-request",
        message,
    }
}

fn tool_failed(e: yunji_common::execute::ExecError) -> DriverError {
    DriverError {
        code: "vmm",
        message: format!("building the config drive failed: {e}"),
    }
}

/// Writes the drive for `spec` to `image`.
pub async fn build(spec: &ServerSpec, image: &Path) -> Result<(), DriverError> {
    let files = contents(spec)?;
    let staging = image.with_extension("d");
    let result = build_from(&files, &staging, image).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(image).await;
    }
    result
}

async fn build_from(
    files: &[(&str, Vec<u8>)],
    staging: &Path,
    image: &Path,
) -> Result<(), DriverError> {
    let io = |e: std::io::Error| DriverError {
        code: "vmm",
        message: format!("building the config drive failed: {e}"),
    };
    let _ = tokio::fs::remove_file(image).await;
    let latest = staging.join("openstack/latest");
    tokio::fs::create_dir_all(&latest).await.map_err(io)?;
    for (name, data) in files {
        tokio::fs::write(latest.join(name), data)
            .await
            .map_err(io)?;
    }
    execute(
        "mkfs.vfat",
        [
            "-C".as_ref(),
            "-n".as_ref(),
            "config-2".as_ref(),
            image.as_os_str(),
            DRIVE_KIB.to_string().as_ref(),
        ],
        TOOL_TIMEOUT,
    )
    .await
    .map_err(tool_failed)?;
    let source = staging.join("openstack");
    execute(
        "mcopy",
        [
            "-s".as_ref(),
            "-i".as_ref(),
            image.as_os_str(),
            source.as_os_str(),
            "::/".as_ref(),
        ],
        TOOL_TIMEOUT,
    )
    .await
    .map_err(tool_failed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use yunji_common::agent_api::FlavorSpec;

    fn spec() -> ServerSpec {
        ServerSpec {
            id: uuid::Uuid::nil(),
            name: "web 1".into(),
            hostname: "web-1".into(),
            project_id: "p".into(),
            flavor: FlavorSpec {
                vcpus: 1,
                memory_mb: 128,
                disk_gb: 1,
            },
            image: None,
            user_data: Some(
                base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\necho hi\n"),
            ),
            metadata: Default::default(),
            public_key: Some("ssh-ed25519 AAAA test".into()),
            nics: Vec::new(),
            volumes: Vec::new(),
        }
    }

    #[test]
    fn metadata_carries_identity_keys_and_decoded_user_data() {
        let files = contents(&spec()).unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&files[0].1).unwrap();
        assert_eq!(meta["uuid"], uuid::Uuid::nil().to_string());
        assert_eq!(meta["hostname"], "web-1");
        assert_eq!(meta["name"], "web 1");
        assert_eq!(meta["public_keys"]["default"], "ssh-ed25519 AAAA test");
        let user_data = files.iter().find(|(n, _)| *n == "user_data").unwrap();
        assert_eq!(user_data.1, b"#!/bin/sh\necho hi\n");
    }

    #[test]
    fn user_data_that_is_not_base64_is_refused() {
        let mut spec = spec();
        spec.user_data = Some("not base64!".into());
        assert_eq!(contents(&spec).unwrap_err().code, "bad-request");
    }

    /// Needs mtools and dosfstools (tests/run.sh installs them).
    #[tokio::test]
    async fn the_drive_is_vfat_labelled_config_2_with_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("config.img");
        build(&spec(), &image).await.unwrap();
        assert!(!dir.path().join("config.d").exists());
        let label = execute(
            "mlabel",
            [
                "-s".as_ref(),
                "-i".as_ref(),
                image.as_os_str(),
                "::".as_ref(),
            ],
            TOOL_TIMEOUT,
        )
        .await
        .unwrap();
        assert!(
            String::from_utf8_lossy(&label.stdout)
                .to_lowercase()
                .contains("config-2")
        );
        let out = execute(
            "mtype",
            [
                "-i".as_ref(),
                image.as_os_str(),
                "::/openstack/latest/user_data".as_ref(),
            ],
            TOOL_TIMEOUT,
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, b"#!/bin/sh\necho hi\n");
    }
}
