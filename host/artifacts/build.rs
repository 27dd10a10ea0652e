//! Builds the first-party plugins (the `plugins/` workspace) as WebAssembly
//! components and generates the table `src/lib.rs` embeds them with.
//!
//! The plugins are compiled by a nested `cargo build --release --target
//! wasm32-wasip2` with its own target directory, so that it never waits on the
//! lock of the build that runs this script, and with the outer build's
//! settings removed from its environment (flags meant for the host target
//! would break a wasm build, and a clippy run must not lint the plugins).

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Rust target the plugins are built for; the component model's native
/// target, so no adapter step is needed.
const WASM_TARGET: &str = "wasm32-wasip2";

/// Every problem is reported as one readable message on stderr, which Cargo
/// shows when a build script fails.
type BuildResult<T> = Result<T, String>;

/// One plugin of the `plugins/` workspace.
struct Plugin {
    /// Package name, which is also the name the host knows the plugin by.
    name: String,
    /// `PluginKind` variant for the world the plugin targets.
    kind: &'static str,
    /// File name of the built component.
    file_name: String,
}

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> BuildResult<()> {
    let manifest_dir = PathBuf::from(required_env("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(required_env("OUT_DIR")?);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let repo = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} has no grandparent directory", manifest_dir.display()))?;
    let plugins_dir = repo.join("plugins");

    // The plugins, the SDK they link, the WIT it is generated from and the template
    // engine its `templates` feature links, plus the root manifest the SDK inherits
    // its dependency versions from.
    for dir in ["plugins", "sdk/rust", "wit", "host/template"] {
        watch(&repo.join(dir))?;
    }
    rerun_if_changed(&repo.join("Cargo.toml"));

    let plugins = list_plugins(&cargo, &plugins_dir)?;
    let target_dir = wasm_target_dir(&out_dir);
    build_plugins(&cargo, &plugins_dir, &target_dir)?;
    write_table(&plugins, &target_dir, &out_dir)
}

fn required_env(name: &str) -> BuildResult<String> {
    env::var(name).map_err(|_| format!("Cargo did not set {name} for the build script"))
}

/// Asks Cargo to rerun this script when a source under `dir` changes.
///
/// Directories are watched as a whole (so new files count) unless they hold a
/// `target` directory somewhere below, whose churn must not trigger rebuilds;
/// those are walked and their other entries watched one by one.
fn watch(dir: &Path) -> BuildResult<()> {
    if !holds_build_output(dir)? {
        rerun_if_changed(dir);
        return Ok(());
    }
    for entry in read_dir_sorted(dir)? {
        if is_build_output(&entry) {
            continue;
        }
        if entry.is_dir() {
            watch(&entry)?;
        } else {
            rerun_if_changed(&entry);
        }
    }
    Ok(())
}

/// Tells Cargo to rerun this script when `path` changes, naming it relative to this
/// package (`../../plugins/...`). Cargo resolves relative paths against the package
/// being built, so a target directory shared by several checkouts (CI clones, work
/// trees) checks each checkout's own files; an absolute path would keep pointing at
/// the checkout that built first and leave its plugins embedded in the others.
fn rerun_if_changed(path: &Path) {
    let repo = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|m| m.parent().and_then(Path::parent).map(Path::to_path_buf));
    match repo.as_deref().and_then(|r| path.strip_prefix(r).ok()) {
        Some(inside) => println!(
            "cargo::rerun-if-changed={}",
            Path::new("../..").join(inside).display()
        ),
        None => println!("cargo::rerun-if-changed={}", path.display()),
    }
}

/// A Cargo target directory (e.g. from running `cargo test` in `plugins/`).
fn is_build_output(path: &Path) -> bool {
    path.is_dir() && path.file_name().is_some_and(|name| name == "target")
}

fn holds_build_output(dir: &Path) -> BuildResult<bool> {
    for entry in read_dir_sorted(dir)? {
        if entry.is_dir() && (is_build_output(&entry) || holds_build_output(&entry)?) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn read_dir_sorted(dir: &Path) -> BuildResult<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths = entries
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

/// `<target>/<profile>/build/pharos-artifacts-<hash>/out` becomes
/// `<target>/plugins-wasm`: shared by every profile of the outer build (the
/// plugins are always built in release mode) and outside the directories
/// Cargo locks for it.
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    let mut ancestors = out_dir.ancestors().skip(2);
    let (build, profile) = (ancestors.next(), ancestors.next());
    match (build, profile.and_then(Path::parent)) {
        (Some(build), Some(target)) if build.ends_with("build") => target.join("plugins-wasm"),
        // An unfamiliar layout: stay inside OUT_DIR, which is always ours.
        _ => out_dir.join("plugins-wasm"),
    }
}

/// A `cargo` command for the plugins workspace that inherits nothing of the
/// outer build but the toolchain (`RUSTC`, `RUSTUP_TOOLCHAIN`), a compiler
/// cache (`RUSTC_WRAPPER`) and how to reach registries.
fn nested_cargo(cargo: &OsString, plugins_dir: &Path) -> Command {
    /// `CARGO_*` variables that configure registry access or output, not the build.
    const KEPT_CARGO_PREFIXES: [&str; 6] = [
        "CARGO_HOME",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRY_",
        "CARGO_REGISTRIES_",
        "CARGO_TERM_",
    ];
    /// Settings of the outer build, or values Cargo set for this script only.
    const REMOVED: [&str; 14] = [
        "CARGO",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "MAKEFLAGS",
        "MFLAGS",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
    ];

    let mut command = Command::new(cargo);
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let outer_cargo_setting = (name.starts_with("CARGO_") || name.starts_with("__CARGO"))
            && !KEPT_CARGO_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix));
        if outer_cargo_setting || REMOVED.contains(&name) {
            command.env_remove(name);
        }
    }
    // Cargo reads `.cargo/config.toml` from the working directory upwards,
    // not from the manifest's directory.
    command.current_dir(plugins_dir);
    command
}

/// The command line, for error messages (without the environment changes
/// `Command`'s `Debug` output lists).
fn render(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    if let Some(dir) = command.get_current_dir() {
        line = format!("(cd {} && {line})", dir.display());
    }
    line
}

fn run_captured(mut command: Command, what: &str) -> BuildResult<Output> {
    let rendered = render(&command);
    let output = command
        .output()
        .map_err(|e| format!("cannot start cargo to {what}: {e}\ncommand: {rendered}"))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(format!(
        "failed to {what} ({status}).\n\
         command: {rendered}\n\
         hints:\n  \
         - if the {WASM_TARGET} target is missing: rustup target add {WASM_TARGET}\n  \
         - if plugins/Cargo.lock is out of date: run `cargo update --workspace` in plugins/\n\
         ---- stderr of the nested cargo ----\n{stderr}",
        status = output.status,
        stderr = String::from_utf8_lossy(&output.stderr).trim_end(),
    ))
}

/// Lists the workspace members with the world each one declares in
/// `[package.metadata.pharos] kind`.
fn list_plugins(cargo: &OsString, plugins_dir: &Path) -> BuildResult<Vec<Plugin>> {
    let mut command = nested_cargo(cargo, plugins_dir);
    command.args([
        "metadata",
        "--format-version=1",
        "--no-deps",
        "--locked",
        "--color=never",
    ]);
    let output = run_captured(command, "read the plugins workspace metadata")?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed invalid JSON: {e}"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata printed no package list")?;

    let mut plugins = Vec::new();
    for package in packages {
        let name = package["name"]
            .as_str()
            .ok_or("cargo metadata printed a package without a name")?;
        let manifest = package["manifest_path"].as_str().unwrap_or(name);
        let declared = package["metadata"]["pharos"]["kind"].as_str();
        let kind = match declared {
            Some("exporter") => "Exporter",
            Some("relabeler") => "Relabeler",
            Some("notifier") => "Notifier",
            Some(other) => {
                return Err(format!(
                    "{manifest}: unknown [package.metadata.pharos] kind {other:?}; \
                     expected \"exporter\", \"relabeler\" or \"notifier\""
                ));
            }
            None => {
                return Err(format!(
                    "{manifest}: missing [package.metadata.pharos] kind \
                     (\"exporter\", \"relabeler\" or \"notifier\")"
                ));
            }
        };
        let targets = package["targets"].as_array().map(Vec::as_slice);
        let component = targets.unwrap_or_default().iter().find(|target| {
            target["crate_types"]
                .as_array()
                .is_some_and(|types| types.iter().any(|t| t == "cdylib"))
        });
        let Some(lib_name) = component.and_then(|target| target["name"].as_str()) else {
            return Err(format!(
                "{manifest}: a plugin needs `[lib] crate-type = [\"cdylib\"]` \
                 to be built as a component"
            ));
        };
        plugins.push(Plugin {
            name: name.to_owned(),
            kind,
            // rustc names the output after the crate, where `-` becomes `_`.
            file_name: format!("{}.wasm", lib_name.replace('-', "_")),
        });
    }
    if plugins.is_empty() {
        return Err(format!("{} has no plugins", plugins_dir.display()));
    }
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(plugins)
}

fn build_plugins(cargo: &OsString, plugins_dir: &Path, target_dir: &Path) -> BuildResult<()> {
    let mut command = nested_cargo(cargo, plugins_dir);
    command
        .args([
            "build",
            "--release",
            "--locked",
            "--workspace",
            "--color=never",
            "--target",
            WASM_TARGET,
            "--manifest-path",
        ])
        .arg(plugins_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    run_captured(command, "build the first-party plugins for wasm32-wasip2")?;
    Ok(())
}

/// Copies each component into OUT_DIR (a snapshot that a concurrent build of
/// another profile cannot change under this one) and writes the table of
/// `FirstParty` entries `src/lib.rs` includes.
fn write_table(plugins: &[Plugin], target_dir: &Path, out_dir: &Path) -> BuildResult<()> {
    let built = target_dir.join(WASM_TARGET).join("release");
    let mut table = String::from("&[\n");
    for plugin in plugins {
        let source = built.join(&plugin.file_name);
        let copy = out_dir.join(&plugin.file_name);
        fs::copy(&source, &copy).map_err(|e| {
            format!(
                "the build of plugin {} did not produce {}: {e}",
                plugin.name,
                source.display()
            )
        })?;
        let copy = copy
            .to_str()
            .ok_or_else(|| format!("{} is not valid UTF-8", copy.display()))?;
        writeln!(
            table,
            "    FirstParty {{ name: {name:?}, kind: PluginKind::{kind}, wasm: include_bytes!({copy:?}) }},",
            name = plugin.name,
            kind = plugin.kind,
        )
        .map_err(|e| format!("cannot format the plugin table: {e}"))?;
    }
    table.push_str("]\n");
    let path = out_dir.join("first_party.rs");
    fs::write(&path, table).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
