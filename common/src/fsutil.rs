//! Small file helpers for secrets and state: writes that are private (mode 0600) and atomic.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `contents` to `path` with mode 0600, atomically (a temporary file renamed over
/// the target), so a crash never leaves a half-written key or password behind.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic(path, contents, 0o600)
}

/// Writes `contents` to `path` atomically with the given mode.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        super::write_private(&path, b"s3cret").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"s3cret");
    }
}
