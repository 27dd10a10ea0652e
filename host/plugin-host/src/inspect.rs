//! Reading what a component says about itself — its world, the contract
//! version it was built for, its imports and exports — without compiling it.
//! `pharos plugin inspect` prints this, and [`crate::Runtime::load`] checks it
//! before compiling anything.

use crate::Kind;
use crate::error::{Error, ErrorKind};
use wasmparser::{ComponentTypeRef, Encoding, Parser, Payload};

/// The contract versions this host serves: `pharos:plugin@0.1.x`.
pub const WIT_PACKAGE: &str = "pharos:plugin";
const WIT_MINOR: (u64, u64) = (0, 1);

/// What [`inspect`] found in a component's outer import and export sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The plugin kind its exports make it, if any: a component that exports
    /// `pharos:plugin/<kind>-api@<version>` for exactly one kind.
    pub kind: Option<Kind>,
    /// The `pharos:plugin` version of that export (e.g. `0.1.0`).
    pub wit_version: Option<String>,
    /// Imports by name, with what they are (`instance`, `func`, `type`, ...).
    pub imports: Vec<(String, &'static str)>,
    /// Exports by name, with what they are.
    pub exports: Vec<(String, &'static str)>,
}

impl Inspection {
    /// The world name (`exporter`, `relabeler`, `notifier`), if recognised.
    pub fn world(&self) -> Option<&'static str> {
        self.kind.map(Kind::world)
    }
}

fn type_ref_kind(ty: &ComponentTypeRef) -> &'static str {
    match ty {
        ComponentTypeRef::Module(_) => "module",
        ComponentTypeRef::Func(_) => "func",
        ComponentTypeRef::Value(_) => "value",
        ComponentTypeRef::Type(_) => "type",
        ComponentTypeRef::Instance(_) => "instance",
        ComponentTypeRef::Component(_) => "component",
    }
}

fn refused(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Refused, message)
}

/// Reads a component's outer imports and exports and recognises its world.
pub fn inspect(wasm: &[u8]) -> Result<Inspection, Error> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload =
            payload.map_err(|e| refused(format!("not a valid WebAssembly binary: {e}")))?;
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } if depth == 0 => {
                return Err(refused(
                    "this is a core WebAssembly module, not a component; build for \
                     wasm32-wasip2 or wrap it with `wasm-tools component new`",
                ));
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| refused(format!("bad import section: {e}")))?;
                    imports.push((import.name.name.to_owned(), type_ref_kind(&import.ty)));
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| refused(format!("bad export section: {e}")))?;
                    let kind = match export.kind {
                        wasmparser::ComponentExternalKind::Module => "module",
                        wasmparser::ComponentExternalKind::Func => "func",
                        wasmparser::ComponentExternalKind::Value => "value",
                        wasmparser::ComponentExternalKind::Type => "type",
                        wasmparser::ComponentExternalKind::Instance => "instance",
                        wasmparser::ComponentExternalKind::Component => "component",
                    };
                    exports.push((export.name.name.to_owned(), kind));
                }
            }
            _ => {}
        }
    }
    let mut found: Vec<(Kind, String)> = Vec::new();
    for (name, _) in &exports {
        for kind in [Kind::Exporter, Kind::Relabeler, Kind::Notifier] {
            let prefix = format!("{WIT_PACKAGE}/{}-api@", kind.world());
            if let Some(version) = name.strip_prefix(&prefix) {
                found.push((kind, version.to_owned()));
            }
        }
    }
    let (kind, wit_version) = match found.as_slice() {
        [(kind, version)] => (Some(*kind), Some(version.clone())),
        _ => (None, None),
    };
    Ok(Inspection {
        kind,
        wit_version,
        imports,
        exports,
    })
}

/// `(major, minor)` of a semver string, if it is one.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let _patch: u64 = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((major, minor))
}

/// Checks that a component is a plugin of `kind` for a contract version this
/// host serves, and imports only what the host links for that kind.
pub(crate) fn check(inspection: &Inspection, kind: Kind) -> Result<(), Error> {
    match (inspection.kind, &inspection.wit_version) {
        (Some(k), Some(version)) if k == kind => {
            if major_minor(version) != Some(WIT_MINOR) {
                return Err(refused(format!(
                    "the component was built for {WIT_PACKAGE}@{version}; this host serves \
                     {WIT_PACKAGE}@{}.{}.x",
                    WIT_MINOR.0, WIT_MINOR.1
                )));
            }
        }
        (Some(k), _) => {
            return Err(refused(format!(
                "the component targets the {} world, but the plugin is configured as {}",
                k.world(),
                kind.world()
            )));
        }
        (None, _) => {
            return Err(refused(format!(
                "the component does not export {WIT_PACKAGE}/{}-api@{}.{}.x (it exports: {}); \
                 it is not a {} plugin",
                kind.world(),
                WIT_MINOR.0,
                WIT_MINOR.1,
                names(&inspection.exports),
                kind.world()
            )));
        }
    }
    let missing: Vec<&str> = inspection
        .imports
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !provides(kind, name))
        .collect();
    if !missing.is_empty() {
        return Err(refused(format!(
            "the component imports {}, which the host does not provide to {} plugins",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", "),
            kind.world()
        )));
    }
    Ok(())
}

fn names(list: &[(String, &str)]) -> String {
    if list.is_empty() {
        return "nothing".to_owned();
    }
    list.iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The WASI 0.2 interfaces every plugin's linker holds (`wasi:cli/imports`),
/// so that components from any toolchain instantiate; what they grant is
/// decided by the store's WASI context, which grants nothing by default.
const WASI: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// The outbound HTTP client, for exporters and notifiers.
const WASI_HTTP: &[&str] = &["wasi:http/types", "wasi:http/outgoing-handler"];

/// The host's own interfaces (`types` holds only types).
const PHAROS: &[&str] = &["pharos:plugin/log", "pharos:plugin/types"];

/// Whether the host's linker for `kind` satisfies an import named `name`
/// (`ns:pkg/iface@version`), with wasmtime's semver rule: the same interface
/// of a compatible version (same major, and same minor for 0.x).
pub(crate) fn provides(kind: Kind, name: &str) -> bool {
    let Some((interface, version)) = name.split_once('@') else {
        return false;
    };
    let Some(version) = major_minor(version) else {
        return false;
    };
    let http = matches!(kind, Kind::Exporter | Kind::Notifier);
    (version == (0, 2) && WASI.contains(&interface))
        || (version == (0, 2) && http && WASI_HTTP.contains(&interface))
        || (version == WIT_MINOR && PHAROS.contains(&interface))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_provided_imports() {
        assert_eq!(major_minor("0.1.0"), Some((0, 1)));
        assert_eq!(major_minor("0.2.12"), Some((0, 2)));
        assert_eq!(major_minor("0.2"), None);
        assert!(provides(Kind::Relabeler, "wasi:cli/environment@0.2.0"));
        assert!(provides(Kind::Relabeler, "pharos:plugin/log@0.1.3"));
        assert!(!provides(Kind::Relabeler, "pharos:plugin/log@0.2.0"));
        assert!(!provides(
            Kind::Relabeler,
            "wasi:http/outgoing-handler@0.2.12"
        ));
        assert!(provides(
            Kind::Notifier,
            "wasi:http/outgoing-handler@0.2.12"
        ));
        assert!(!provides(Kind::Exporter, "wasi:keyvalue/store@0.2.0"));
        assert!(!provides(Kind::Exporter, "wasi:cli/environment"));
    }

    #[test]
    fn core_modules_and_garbage_are_refused() {
        let e = inspect(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(e.message.contains("core WebAssembly module"), "{e}");
        let e = inspect(b"not wasm at all").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Refused);
    }
}
