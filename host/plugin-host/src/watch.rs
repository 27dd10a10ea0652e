//! A debounced watcher for plugin files.
//!
//! The deployment contract is "write elsewhere, rename into place": an
//! operator (or a CI job) writes `plugin.wasm.tmp` or `.plugin.wasm` and renames
//! it over `plugin.wasm`. The watcher therefore watches the *directories* the
//! plugin files live in (a watch on the file itself would follow the old inode
//! away on the rename), ignores dot files and editor or download temporaries,
//! and reports a changed path once things have been quiet for the debounce
//! interval, so a write followed by a rename, or a burst of writes, is one
//! report. The daemon reloads the plugins behind the reported paths.

use crate::error::{Error, ErrorKind};
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// A change report waits at most this many debounce intervals, even while
/// events keep coming.
const MAX_DELAY_FACTOR: u32 = 10;

/// Watches plugin files; dropping it stops the watch (and closes the channel).
pub struct Watcher {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

/// Whether a file name is a temporary the deployment contract writes before
/// the rename (or an editor leaves behind), never a plugin.
pub fn is_ignored(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.')
        || name.ends_with('~')
        || [".tmp", ".swp", ".part", ".partial", ".crdownload"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// What to report from one watched directory.
#[derive(Default)]
struct Watched {
    /// Every (non-ignored) file in it, for a directory target.
    whole: bool,
    /// These names, for file targets.
    files: HashSet<OsString>,
}

/// Starts watching `targets`: plugin files (which need not exist yet) and
/// directories of plugin files. Changed paths arrive on the channel in sorted
/// batches, `debounce` after the last event of a burst.
pub fn watch(
    targets: &[PathBuf],
    debounce: Duration,
) -> Result<(Watcher, UnboundedReceiver<Vec<PathBuf>>), Error> {
    let host = |m: String| Error::new(ErrorKind::Host, m);
    let mut dirs: HashMap<PathBuf, Watched> = HashMap::new();
    for target in targets {
        let target = std::path::absolute(target)
            .map_err(|e| host(format!("cannot watch {}: {e}", target.display())))?;
        if target.is_dir() {
            dirs.entry(target).or_default().whole = true;
        } else {
            let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
                return Err(host(format!(
                    "cannot watch {}: no parent directory",
                    target.display()
                )));
            };
            dirs.entry(dir.to_owned())
                .or_default()
                .files
                .insert(name.to_owned());
        }
    }

    let (raw_tx, raw_rx) = mpsc::channel::<Vec<PathBuf>>();
    let (tx, rx) = unbounded_channel();
    let table = Arc::new(dirs);
    let filter_table = table.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
            return;
        }
        let relevant: Vec<PathBuf> = event
            .paths
            .into_iter()
            .filter(|path| reportable(&filter_table, path))
            .collect();
        if !relevant.is_empty() {
            let _ = raw_tx.send(relevant);
        }
    })
    .map_err(|e| host(format!("cannot start the plugin file watcher: {e}")))?;
    for dir in table.keys() {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| host(format!("cannot watch {}: {e}", dir.display())))?;
    }
    std::thread::Builder::new()
        .name("pharos-plugin-watch".to_owned())
        .spawn(move || debounce_loop(&raw_rx, &tx, debounce))
        .map_err(|e| host(format!("cannot start the plugin watch thread: {e}")))?;
    Ok((Watcher { _watcher: watcher }, rx))
}

fn reportable(table: &HashMap<PathBuf, Watched>, path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    !is_ignored(name)
        && table
            .get(dir)
            .is_some_and(|w| w.whole || w.files.contains(name))
}

fn debounce_loop(
    raw: &mpsc::Receiver<Vec<PathBuf>>,
    out: &UnboundedSender<Vec<PathBuf>>,
    debounce: Duration,
) {
    let max_delay = debounce * MAX_DELAY_FACTOR;
    while let Ok(first) = raw.recv() {
        let started = Instant::now();
        let mut pending: BTreeSet<PathBuf> = first.into_iter().collect();
        let mut closed = false;
        loop {
            let left = max_delay.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match raw.recv_timeout(debounce.min(left)) {
                Ok(paths) => pending.extend(paths),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if out.send(pending.into_iter().collect()).is_err() || closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn temporaries_are_ignored() {
        for name in [
            ".plugin.wasm",
            "plugin.wasm.tmp",
            "plugin.wasm~",
            "a.swp",
            "x.part",
        ] {
            assert!(is_ignored(OsStr::new(name)), "{name}");
        }
        assert!(!is_ignored(OsStr::new("plugin.wasm")));
    }
}
