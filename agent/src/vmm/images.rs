//! The node's images: read-only bases in `<data-dir>/images/<id>`, each pushed by the
//! scheduler once (streamed, its sha512 verified while it is written, then inspected:
//! the format must match and it must not refer to any other file). Servers' disks are
//! qcow2 overlays on them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Buf;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha512};
use tokio::io::AsyncWriteExt;
use yunji_common::execute::{ExecError, execute};

use crate::drivers::DriverError;

const INSPECT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct NodeImages {
    dir: PathBuf,
}

fn io_failed(what: &str, e: std::io::Error) -> DriverError {
    DriverError {
        code: "storage",
        message: format!("{what}: {e}"),
    }
}

fn bad(message: String) -> DriverError {
    DriverError {
        code: "bad-image",
        message,
    }
}

/// What `qemu-img info --output=json` says about a file, as far as the node checks it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct QemuInfo {
    format: String,
    virtual_size: u64,
    backing_filename: Option<String>,
    full_backing_filename: Option<String>,
    format_specific: Option<serde_json::Value>,
}

async fn qemu_info(path: &Path) -> Result<QemuInfo, DriverError> {
    // -U: a running VM may hold the file; reading its header is still safe.
    let out = execute(
        "qemu-img",
        [
            "info".as_ref(),
            "-U".as_ref(),
            "--output=json".as_ref(),
            path.as_os_str(),
        ],
        INSPECT_TIMEOUT,
    )
    .await
    .map_err(|e| match e {
        ExecError::Failed { stderr, .. } => {
            bad(format!("not a disk image qemu-img reads: {stderr}"))
        }
        other => DriverError {
            code: "vmm",
            message: format!("cannot inspect {}: {other}", path.display()),
        },
    })?;
    serde_json::from_slice(&out.stdout)
        .map_err(|e| bad(format!("qemu-img info printed unexpected JSON: {e}")))
}

/// The virtual size of a disk image, in bytes.
pub async fn virtual_size(path: &Path) -> Result<u64, DriverError> {
    Ok(qemu_info(path).await?.virtual_size)
}

/// Refuses data whose format is not `disk_format` or that refers to other files (the
/// qcow2 backing/data-file host-file-read family).
async fn inspect(path: &Path, disk_format: &str) -> Result<(), DriverError> {
    let info = qemu_info(path).await?;
    if let Some(backing) = info.full_backing_filename.or(info.backing_filename) {
        return Err(bad(format!(
            "the image refers to a backing file ({backing})"
        )));
    }
    let data_file = info
        .format_specific
        .as_ref()
        .and_then(|f| f.pointer("/data/data-file"));
    if data_file.is_some() {
        return Err(bad("the image refers to an external data file".into()));
    }
    if info.format != disk_format {
        return Err(bad(format!(
            "the data is {}, but the image's disk_format is {disk_format}",
            info.format
        )));
    }
    Ok(())
}

impl NodeImages {
    pub fn new(dir: PathBuf) -> anyhow::Result<NodeImages> {
        std::fs::create_dir_all(&dir)?;
        // Pushes cut short by a restart.
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "part") {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(NodeImages { dir })
    }

    fn path(&self, id: &str) -> Result<PathBuf, DriverError> {
        // Ids come from the scheduler, but a path is built from them: keep them plain.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(bad(format!("{id:?} is not an image id")));
        }
        Ok(self.dir.join(id))
    }

    /// The base image's path, when the node has it.
    pub fn path_of(&self, id: &str) -> Result<PathBuf, DriverError> {
        let path = self.path(id)?;
        if path.exists() {
            Ok(path)
        } else {
            Err(DriverError {
                code: "not-found",
                message: format!("image {id} is not on this node"),
            })
        }
    }

    /// Stores a pushed image: written to a part file while its sha512 is computed, then
    /// checked and inspected, then made read-only and renamed into place.
    pub async fn receive<S, B, E>(
        &self,
        id: &str,
        disk_format: &str,
        sha512: Option<&str>,
        mut body: S,
    ) -> Result<u64, DriverError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: Buf,
        E: std::fmt::Display,
    {
        let path = self.path(id)?;
        let part = path.with_extension(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let result = async {
            let mut file = tokio::fs::File::create(&part)
                .await
                .map_err(|e| io_failed("cannot store the image", e))?;
            let mut hasher = Sha512::new();
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let mut chunk = chunk.map_err(|e| bad(format!("the upload broke off: {e}")))?;
                while chunk.has_remaining() {
                    let bytes = chunk.chunk();
                    hasher.update(bytes);
                    file.write_all(bytes)
                        .await
                        .map_err(|e| io_failed("cannot store the image", e))?;
                    size += bytes.len() as u64;
                    let n = bytes.len();
                    chunk.advance(n);
                }
            }
            file.sync_all()
                .await
                .map_err(|e| io_failed("cannot store the image", e))?;
            let digest: String = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if let Some(expected) = sha512
                && !digest.eq_ignore_ascii_case(expected)
            {
                return Err(bad(format!(
                    "the image's sha512 is {digest}, not the expected {expected}"
                )));
            }
            inspect(&part, disk_format).await?;
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o444))
                .await
                .map_err(|e| io_failed("cannot make the image read-only", e))?;
            tokio::fs::rename(&part, &path)
                .await
                .map_err(|e| io_failed("cannot store the image", e))?;
            Ok(size)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn chunks(data: &[u8]) -> impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin {
        let parts: Vec<_> = data
            .chunks(1000)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        futures_util::stream::iter(parts)
    }

    fn sha512_hex(data: &[u8]) -> String {
        Sha512::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[tokio::test]
    async fn a_verified_raw_image_is_kept_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let images = NodeImages::new(dir.path().to_path_buf()).unwrap();
        let data = vec![7u8; 64 * 1024];
        let id = uuid::Uuid::new_v4().to_string();
        let size = images
            .receive(&id, "raw", Some(&sha512_hex(&data)), chunks(&data))
            .await
            .unwrap();
        assert_eq!(size, data.len() as u64);
        let path = images.path_of(&id).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o444
        );
    }

    #[tokio::test]
    async fn a_wrong_checksum_or_format_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let images = NodeImages::new(dir.path().to_path_buf()).unwrap();
        let data = vec![1u8; 4096];
        let id = uuid::Uuid::new_v4().to_string();
        let wrong = images
            .receive(&id, "raw", Some(&sha512_hex(b"other")), chunks(&data))
            .await
            .unwrap_err();
        assert_eq!(wrong.code, "bad-image");
        let format = images
            .receive(&id, "qcow2", Some(&sha512_hex(&data)), chunks(&data))
            .await
            .unwrap_err();
        assert!(
            format.message.contains("disk_format is qcow2"),
            "{}",
            format.message
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(images.path_of(&id).unwrap_err().code, "not-found");
    }

    #[tokio::test]
    async fn an_image_with_a_backing_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.raw");
        std::fs::write(&base, vec![0u8; 4096]).unwrap();
        let overlay = dir.path().join("overlay.qcow2");
        execute(
            "qemu-img",
            [
                "create".as_ref(),
                "-q".as_ref(),
                "-f".as_ref(),
                "qcow2".as_ref(),
                "-F".as_ref(),
                "raw".as_ref(),
                "-b".as_ref(),
                base.as_os_str(),
                overlay.as_os_str(),
            ],
            INSPECT_TIMEOUT,
        )
        .await
        .unwrap();
        let data = std::fs::read(&overlay).unwrap();
        let store = dir.path().join("images");
        let images = NodeImages::new(store.clone()).unwrap();
        let err = images
            .receive("abc", "qcow2", None, chunks(&data))
            .await
            .unwrap_err();
        assert!(err.message.contains("backing file"), "{}", err.message);
        assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
    }
}
