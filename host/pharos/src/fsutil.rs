//! File helpers shared by the parts of the daemon that keep state on disk (the
//! pushgateway's file, the router's snapshot and journal): an atomic replace and
//! moving an unreadable file aside so nothing is lost and the next write does not
//! overwrite it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes `data` to `path` atomically: a temporary file beside it, synced, renamed
/// over it, and the directory synced so the rename survives a crash. A crash leaves
/// the old file or the new one, never half of either.
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(
            "{}.in_progress.",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("pharos")
        ))
        .tempfile_in(&dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(&dir)
}

/// Syncs a directory, so the creation, rename or removal of a file in it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Renames `path` to `<path>.corrupt-<now_ms>`; `None` when the rename failed.
pub fn move_aside(path: &Path, now_ms: i64) -> Option<PathBuf> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{now_ms}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside).ok().map(|()| aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_moves_bad_ones_aside() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("f");
        for content in [&b"one"[..], b"two"] {
            write_atomically(&path, content).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(std::fs::read(&path).ok().as_deref(), Some(content));
        }
        // Only the file itself: the temporaries were renamed.
        assert_eq!(
            std::fs::read_dir(dir.path()).map(Iterator::count).ok(),
            Some(1)
        );
        assert_eq!(move_aside(&path, 7), Some(dir.path().join("f.corrupt-7")));
        assert!(!path.exists());
        assert_eq!(move_aside(&path, 8), None);
    }
}
