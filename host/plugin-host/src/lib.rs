//! The WebAssembly plugin host.
//!
//! This crate will run the components that implement the worlds of `wit/`
//! (`pharos:plugin`) on wasmtime: one engine, pooled instances, per-call deadlines,
//! memory limits, an egress allow-list and hot reload. It is filled by the plugin
//! platform issue; until then it deliberately exports nothing.
