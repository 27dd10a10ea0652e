//! What one plugin instance's `Store` holds: the WASI context built from
//! nothing, the HTTP context with the egress hooks, the resource limiter, the
//! log budget and the captured stdout/stderr.

use crate::bindings::Level;
use crate::bindings::relabeler::pharos::plugin::log;
use crate::egress::Egress;
use crate::metrics::VersionMetrics;
use crate::sockets::{Sockets, SocketsView};
use bytes::Bytes;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Lines one call may log (host `log` import and stdout/stderr together);
/// the rest are dropped and counted.
pub const LOG_LINES_PER_CALL: u32 = 100;
/// Longest line kept, in bytes; longer lines are cut (at a character boundary).
pub const LOG_LINE_MAX: usize = 4096;
/// Bytes of stdout and of stderr buffered per call before output is dropped.
pub const STDIO_BUFFER: usize = 64 * 1024;
/// Core instances, tables and memories one store may create: far above what
/// any toolchain's component holds, far below what exhausts the pool.
const STORE_INSTANCES: usize = 64;
const STORE_TABLES: usize = 64;
const STORE_MEMORIES: usize = 16;
/// Elements one table may grow to (the pool's slot size).
const TABLE_ELEMENTS: usize = 100_000;

/// Who is running in a store: what log lines and errors are tagged with.
#[derive(Debug)]
pub(crate) struct Identity {
    pub name: String,
    pub version: String,
}

/// Memory, table and instance caps of one store, with the bookkeeping the
/// host reports: the largest memory granted, and whether a growth was refused
/// during the current call (a trap after that is a memory failure).
pub(crate) struct Limiter {
    memory: usize,
    pub high_water: usize,
    pub refused_growth: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.refused_growth = true;
            return Ok(false);
        }
        self.high_water = self.high_water.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        STORE_INSTANCES
    }

    fn tables(&self) -> usize {
        STORE_TABLES
    }

    fn memories(&self) -> usize {
        STORE_MEMORIES
    }
}

/// The per-call log budget and where lines go.
pub(crate) struct LogSink {
    identity: Arc<Identity>,
    metrics: Arc<VersionMetrics>,
    lines: u32,
}

impl LogSink {
    /// Starts a new call's budget.
    pub fn reset(&mut self) {
        self.lines = 0;
    }

    /// Writes one line to the host log, or counts it as dropped.
    fn line(&mut self, level: Level, stream: &str, message: &str) {
        if self.lines >= LOG_LINES_PER_CALL {
            self.metrics
                .log_lines_dropped
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.lines += 1;
        let message = truncate(message, LOG_LINE_MAX);
        let (plugin, version) = (&self.identity.name, &self.identity.version);
        match level {
            Level::Trace => {
                tracing::trace!(target: "pharos::plugin", plugin, version, stream, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "pharos::plugin", plugin, version, stream, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "pharos::plugin", plugin, version, stream, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "pharos::plugin", plugin, version, stream, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "pharos::plugin", plugin, version, stream, "{message}")
            }
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A bounded buffer for a guest's stdout or stderr. The guest never blocks or
/// fails on it: past [`STDIO_BUFFER`] bytes its output is dropped (and the lines
/// counted) until the host drains the buffer at the end of the call.
#[derive(Clone, Default)]
pub(crate) struct GuestOutput(Arc<Mutex<OutputBuffer>>);

#[derive(Default)]
struct OutputBuffer {
    bytes: Vec<u8>,
    /// Lines lost because the buffer was full.
    dropped_lines: u64,
    /// Whether the last byte dropped ended a line (so a partial line counts once).
    dropping_mid_line: bool,
}

impl GuestOutput {
    fn append(&self, data: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let room = STDIO_BUFFER.saturating_sub(buf.bytes.len());
        let (kept, lost) = data.split_at(room.min(data.len()));
        buf.bytes.extend_from_slice(kept);
        if !lost.is_empty() {
            let newlines = lost.iter().filter(|&&b| b == b'\n').count() as u64;
            let open = !buf.dropping_mid_line;
            buf.dropped_lines += newlines + u64::from(open && lost.last() != Some(&b'\n'));
            buf.dropping_mid_line = lost.last() != Some(&b'\n');
        }
    }

    /// Takes what was written since the last drain.
    fn take(&self) -> (Vec<u8>, u64) {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let dropped = std::mem::take(&mut buf.dropped_lines);
        buf.dropping_mid_line = false;
        (std::mem::take(&mut buf.bytes), dropped)
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(STDIO_BUFFER)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What a store of one plugin version needs to be built.
pub(crate) struct StoreConfig {
    pub identity: Arc<Identity>,
    pub metrics: Arc<VersionMetrics>,
    pub memory: usize,
    pub egress: Option<Egress>,
    /// Whether the plugin may open TCP connections (within `egress`): notifiers.
    pub sockets: bool,
    pub read_dirs: Vec<PathBuf>,
}

/// The `T` of every plugin `Store<T>`.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    egress: Egress,
    sockets: Sockets,
    pub limiter: Limiter,
    pub log: LogSink,
    stdout: GuestOutput,
    stderr: GuestOutput,
    /// When the current call must end.
    pub deadline: Instant,
    /// Set by the epoch callback when it ended a call at its deadline.
    pub timed_out: bool,
}

impl StoreState {
    /// A store state for `config`: WASI grants nothing but the read-only
    /// directories listed (exporters only) and TCP connections within the
    /// allow-list (notifiers only); stdio goes to bounded buffers.
    pub fn new(config: &StoreConfig) -> wasmtime::Result<StoreState> {
        let stdout = GuestOutput::default();
        let stderr = GuestOutput::default();
        let egress = config.egress.clone().unwrap_or_else(Egress::deny_all);
        let sockets = if config.sockets {
            Sockets::allowed(egress.clone())
        } else {
            Sockets::denied()
        };
        let mut wasi = WasiCtx::builder();
        // Name lookups are answered by the host's own `ip-name-lookup`
        // (`sockets::add_to_linker`), not by wasmtime-wasi's.
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(sockets.tcp())
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(sockets.check());
        for dir in &config.read_dirs {
            let guest_path = dir.to_str().ok_or_else(|| {
                wasmtime::format_err!("read_dirs entry {} is not valid UTF-8", dir.display())
            })?;
            wasi.preopened_dir(dir, guest_path, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| {
                    wasmtime::format_err!("cannot open read_dirs entry {}: {e}", dir.display())
                })?;
        }
        Ok(StoreState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress,
            sockets,
            limiter: Limiter {
                memory: config.memory,
                high_water: 0,
                refused_growth: false,
            },
            log: LogSink {
                identity: config.identity.clone(),
                metrics: config.metrics.clone(),
                lines: 0,
            },
            stdout,
            stderr,
            deadline: Instant::now(),
            timed_out: false,
        })
    }

    /// Sends what the guest printed during the call to the host log, within
    /// the call's line budget.
    pub fn drain_stdio(&mut self) {
        for (output, level, stream) in [
            (self.stdout.clone(), Level::Info, "stdout"),
            (self.stderr.clone(), Level::Warn, "stderr"),
        ] {
            let (bytes, dropped) = output.take();
            if dropped > 0 {
                self.log
                    .metrics
                    .log_lines_dropped
                    .fetch_add(dropped, Ordering::Relaxed);
            }
            if bytes.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                self.log.line(level, stream, line);
            }
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl SocketsView for StoreState {
    fn sockets(&self) -> &Sockets {
        &self.sockets
    }

    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

impl log::Host for StoreState {
    fn log(&mut self, level: Level, message: String) {
        self.log.line(level, "log", &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn full_output_buffers_drop_and_count_lines() {
        let out = GuestOutput::default();
        out.append(&vec![b'x'; STDIO_BUFFER - 2]);
        out.append(b"a\nb\nc\nd");
        let (bytes, dropped) = out.take();
        assert_eq!(bytes.len(), STDIO_BUFFER);
        // "a\n" fit; "b", "c" and the unfinished "d" were lost.
        assert_eq!(dropped, 3);
        assert_eq!(out.take(), (Vec::new(), 0));
    }
}
