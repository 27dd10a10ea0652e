//! The `pharos` binary; everything lives in the library so tests can reach it.

/// mimalloc instead of glibc's malloc: the plugin host lifts every plugin answer into
/// hundreds of small owned strings and frees them a moment later, a pattern glibc serves
/// from its locked arena once the per-thread cache overflows (docs/plugins-runtime.md,
/// "Collect overhead").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pharos::cli::main()
}
