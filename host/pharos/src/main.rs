//! The `pharos` binary; everything lives in the library so tests can reach it.

fn main() -> std::process::ExitCode {
    pharos::cli::main()
}
