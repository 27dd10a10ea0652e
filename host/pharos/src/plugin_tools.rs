//! `pharos plugin inspect` and `pharos plugin new`: what a plugin author runs before
//! a plugin ever reaches a daemon.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use pharos_artifacts::PluginKind;

/// Prints what a component says about itself: the world it targets, the contract
/// version, its imports and exports. Fails on a file that is not a component.
pub fn inspect(file: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let found =
        pharos_plugin_host::inspect(&wasm).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    writeln!(out, "file: {} ({} bytes)", file.display(), wasm.len())?;
    match (found.world(), &found.wit_version) {
        (Some(world), Some(version)) => {
            writeln!(out, "world: {world}")?;
            writeln!(out, "wit: pharos:plugin@{version}")?;
        }
        _ => writeln!(
            out,
            "world: none (it exports no pharos:plugin/<kind>-api interface, so Pharos cannot load it)"
        )?,
    }
    writeln!(out, "imports:")?;
    for (name, kind) in &found.imports {
        writeln!(out, "  {kind} {name}")?;
    }
    writeln!(out, "exports:")?;
    for (name, kind) in &found.exports {
        writeln!(out, "  {kind} {name}")?;
    }
    Ok(())
}

/// The `sdk/rust` directory of the source tree this binary was built from, which a new
/// plugin depends on unless told otherwise.
fn built_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust")
}

/// Writes a Rust plugin skeleton of `kind` into `dir`, named after the directory unless
/// `name` is given, that depends on the SDK at `sdk` (default: the source tree this
/// binary was built from).
pub fn new_plugin(
    kind: PluginKind,
    dir: &Path,
    name: Option<&str>,
    sdk: Option<&Path>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                anyhow!(
                    "cannot take a plugin name from {}; pass --name",
                    dir.display()
                )
            })?,
    };
    let sdk = match sdk {
        Some(p) => p.to_owned(),
        None => built_sdk_path(),
    };
    let sdk = std::fs::canonicalize(&sdk).with_context(|| {
        format!(
            "the Rust SDK is not at {}; pass --sdk with the sdk/rust directory of a Pharos source tree",
            sdk.display()
        )
    })?;
    pharos_artifacts::templates::instantiate(kind, dir, &name, &sdk)
        .with_context(|| format!("cannot write the skeleton into {}", dir.display()))?;
    writeln!(
        out,
        "Created {} plugin {name:?} in {}.",
        kind.world(),
        dir.display()
    )?;
    writeln!(out, "Build it with:")?;
    writeln!(
        out,
        "  cd {} && cargo build --release --target wasm32-wasip2",
        dir.display()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_names_the_world_of_a_first_party_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let redact = pharos_artifacts::first_party()
            .iter()
            .find(|p| p.kind == PluginKind::Relabeler)
            .unwrap();
        let file = dir.path().join("r.wasm");
        std::fs::write(&file, redact.wasm).unwrap();
        let mut out = Vec::new();
        inspect(&file, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("world: relabeler\nwit: pharos:plugin@0.1.0\n"),
            "{text}"
        );
        assert!(
            text.contains("instance pharos:plugin/relabeler-api@0.1.0"),
            "{text}"
        );
        assert!(text.contains("instance pharos:plugin/log@0.1.0"), "{text}");
    }

    #[test]
    fn inspect_refuses_what_is_not_a_component() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.wasm");
        std::fs::write(&file, b"\0asm\x01\0\0\0").unwrap();
        let err = inspect(&file, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("x.wasm"), "{err}");
        let err = inspect(&dir.path().join("missing.wasm"), &mut Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("cannot read"), "{err:#}");
    }

    #[test]
    fn new_writes_a_skeleton_once() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("my-exporter");
        let mut out = Vec::new();
        new_plugin(PluginKind::Exporter, &target, None, None, &mut out).unwrap();
        let manifest = std::fs::read_to_string(target.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("my-exporter"), "{manifest}");
        assert!(target.join("src/lib.rs").is_file());
        let again = new_plugin(PluginKind::Exporter, &target, None, None, &mut Vec::new());
        assert!(again.is_err(), "an existing skeleton is not overwritten");
        let bad = new_plugin(
            PluginKind::Notifier,
            &dir.path().join("x"),
            None,
            Some(&dir.path().join("no-sdk")),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(format!("{bad:#}").contains("--sdk"), "{bad:#}");
    }
}
