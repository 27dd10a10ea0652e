//! The on-disk cache of compiled components.
//!
//! Compiling a component is the slow part of loading a plugin (tens of
//! milliseconds for a Rust plugin, seconds for Python or JavaScript), so the
//! runtime keeps what Cranelift produced in the daemon's cache directory.
//!
//! - The key is the SHA-256 of the component plus a hash of everything in the
//!   engine that changes compiled code (`precompile_compatibility_hash`: the
//!   wasmtime version, the target, the settings). A new Pharos build therefore
//!   never loads an old build's artifacts; it compiles and writes its own.
//! - Files are written to a temporary file in the same directory and renamed
//!   into place, so a reader sees a whole artifact or none; each starts with
//!   the SHA-256 of the rest, so a damaged file is refused, deleted and
//!   recompiled rather than run.
//! - **Trust boundary.** Loading an artifact maps native code into the
//!   daemon, which is why wasmtime marks it `unsafe`: whoever can write the
//!   cache directory can run code as the daemon. The runtime therefore only
//!   loads files from the directory it was given, which must belong to the
//!   daemon's user and be writable by nobody else (it is created `0700`), and
//!   only regular files (no symlinks) of that user that nobody else may write.
//!   This is the same trust the daemon places in its own binary; do not point
//!   the cache at a shared or world-writable directory.
//! - **In memory**, a component is compiled (or read from disk) once while any
//!   version built from the same bytes is alive: every notifier entry of a
//!   receiver is its own plugin instance of the same file, and twenty Slack
//!   receivers would otherwise compile, or map, the same code twenty times.

use crate::error::{Error, ErrorKind};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Counts of what loads did, for `Runtime::compile_stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompileStats {
    /// Components compiled by Cranelift (cache misses and runs without a cache).
    pub compiled: u64,
    /// Components loaded from the cache directory without compiling.
    pub cache_hits: u64,
    /// Artifacts written to the cache directory.
    pub cache_writes: u64,
    /// Artifacts found but refused (foreign owner, loose permissions, damaged).
    pub cache_refused: u64,
    /// Loads that shared a component a live version of the same bytes holds.
    pub shared: u64,
}

/// A compiled component. Versions hold it through an `Arc`, and the cache holds
/// only a `Weak`, so code leaves memory with the last version that runs it.
pub(crate) struct Compiled(pub Component);

/// The component of one digest, locked while it is compiled so that loads of the
/// same bytes wait for the first instead of compiling beside it.
type Slot = Arc<Mutex<Weak<Compiled>>>;

pub(crate) struct Cache {
    dir: Option<TrustedDir>,
    compat: String,
    compiled: AtomicU64,
    hits: AtomicU64,
    writes: AtomicU64,
    refused: AtomicU64,
    shared: AtomicU64,
    live: Mutex<HashMap<[u8; 32], Slot>>,
}

struct TrustedDir {
    path: PathBuf,
    uid: u32,
}

/// Feeds `Hash` output into SHA-256, for a stable digest of the engine's
/// compatibility hash.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn host_error(message: String) -> Error {
    Error::new(ErrorKind::Host, message)
}

impl Cache {
    pub fn open(engine: &Engine, dir: Option<PathBuf>) -> Result<Cache, Error> {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = hex(&hasher.0.finalize()[..8]);
        let dir = dir.map(|path| open_dir(&path)).transpose()?;
        Ok(Cache {
            dir,
            compat,
            compiled: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        })
    }

    pub fn stats(&self) -> CompileStats {
        CompileStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            cache_hits: self.hits.load(Ordering::Relaxed),
            cache_writes: self.writes.load(Ordering::Relaxed),
            cache_refused: self.refused.load(Ordering::Relaxed),
            shared: self.shared.load(Ordering::Relaxed),
        }
    }

    /// The compiled component for `wasm` (whose SHA-256 is `digest`): the one a
    /// live version already runs, else from the cache directory when a trusted
    /// artifact is there, else compiled (and cached). Blocking: call it off the
    /// async executor.
    pub fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &[u8; 32],
    ) -> Result<Arc<Compiled>, String> {
        let slot = {
            let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget digests nobody runs or is loading (a slot in use is locked).
            live.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.try_lock().map_or(true, |held| held.strong_count() > 0)
            });
            live.entry(*digest).or_default().clone()
        };
        let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(compiled) = held.upgrade() {
            self.shared.fetch_add(1, Ordering::Relaxed);
            return Ok(compiled);
        }
        let compiled = Arc::new(Compiled(self.compile_or_read(engine, wasm, digest)?));
        *held = Arc::downgrade(&compiled);
        Ok(compiled)
    }

    /// The component from the cache directory, or compiled (and written there).
    fn compile_or_read(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &[u8; 32],
    ) -> Result<Component, String> {
        let Some(dir) = &self.dir else {
            self.compiled.fetch_add(1, Ordering::Relaxed);
            return Component::new(engine, wasm).map_err(|e| format!("{e:#}"));
        };
        let path = dir
            .path
            .join(format!("{}-{}.cwasm", hex(digest), self.compat));
        match self.load(engine, dir, &path) {
            Ok(Some(component)) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(component);
            }
            Ok(None) => {}
            Err(why) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %path.display(), "compiled-plugin cache: {why}; recompiling");
                if let Err(e) = fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a refused cache file");
                }
            }
        }
        self.compiled.fetch_add(1, Ordering::Relaxed);
        let artifact = engine
            .precompile_component(wasm)
            .map_err(|e| format!("{e:#}"))?;
        match write_atomically(&dir.path, &path, &artifact) {
            Ok(()) => {
                self.writes.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the compiled-plugin cache");
            }
        }
        deserialize(engine, &artifact).map_err(|e| format!("{e:#}"))
    }

    /// A cached artifact, `Ok(None)` when there is none, `Err` when one is
    /// there but must not be used.
    fn load(
        &self,
        engine: &Engine,
        dir: &TrustedDir,
        path: &Path,
    ) -> Result<Option<Component>, String> {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if !meta.file_type().is_file() {
            return Err("not a regular file".to_owned());
        }
        if meta.uid() != dir.uid || meta.mode() & 0o022 != 0 {
            return Err(format!(
                "owned by uid {} with mode {:o}; only files of uid {} that nobody else may write are loaded",
                meta.uid(),
                meta.mode() & 0o777,
                dir.uid
            ));
        }
        let bytes = fs::read(path).map_err(|e| e.to_string())?;
        let (sum, artifact) = bytes.split_at_checked(32).ok_or("truncated")?;
        if Sha256::digest(artifact).as_slice() != sum {
            return Err("checksum mismatch".to_owned());
        }
        deserialize(engine, artifact)
            .map(Some)
            .map_err(|e| format!("{e:#}"))
    }
}

/// Loads an artifact this process compiled, or one read from the trusted cache
/// directory (see the module documentation).
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artifact` was produced by `Engine::precompile_component` of an
    // engine with the same compatibility hash: either just now in this process,
    // or earlier by this daemon into its cache directory, which `open_dir` and
    // `Cache::load` only trust when it and the file belong to the daemon's user
    // and nobody else may write them, and whose checksum matched. wasmtime
    // checks the header's version and settings itself.
    unsafe { Component::deserialize(engine, artifact) }
}

fn open_dir(path: &Path) -> Result<TrustedDir, Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| {
            host_error(format!(
                "cannot create the cache directory {}: {e}",
                path.display()
            ))
        })?;
    let meta = fs::metadata(path).map_err(|e| {
        host_error(format!(
            "cannot read the cache directory {}: {e}",
            path.display()
        ))
    })?;
    // The daemon's uid, as the kernel records it on a file the daemon creates.
    let probe = tempfile::tempfile_in(path)
        .and_then(|f| f.metadata())
        .map_err(|e| {
            host_error(format!(
                "cannot write in the cache directory {}: {e}",
                path.display()
            ))
        })?;
    let uid = probe.uid();
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return Err(host_error(format!(
            "the cache directory {} must be a directory of uid {uid} that nobody else may write \
             (found uid {}, mode {:o})",
            path.display(),
            meta.uid(),
            meta.mode() & 0o777
        )));
    }
    Ok(TrustedDir {
        path: path.to_owned(),
        uid,
    })
}

fn write_atomically(dir: &Path, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(&Sha256::digest(artifact))?;
    file.write_all(artifact)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
