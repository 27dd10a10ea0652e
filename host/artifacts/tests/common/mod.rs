//! Checks shared by the tests of embedded plugins and of the plugin
//! templates: whether a component targets a world of `pharos:plugin`.

// Every function in this file is test code, helpers included: a failed
// unwrap is a failed test.
#![allow(clippy::unwrap_used, dead_code)]

use pharos_artifacts::PluginKind;
use wasmparser::{Parser, Validator, WasmFeatures};
use wit_component::DecodedWasm;
use wit_parser::{Resolve, Span, WorldId, WorldItem, WorldKey};

/// The WIT package the plugins are built against.
pub const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit");

pub const KINDS: [PluginKind; 3] = [
    PluginKind::Exporter,
    PluginKind::Relabeler,
    PluginKind::Notifier,
];

/// Loads `wit/` and selects the world of `kind`.
pub fn expected_world(kind: PluginKind) -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(WIT_DIR).unwrap();
    let world = resolve
        .select_world(&[package], Some(kind.world()))
        .unwrap();
    (resolve, world)
}

/// The functions a world exports, as `interface#function` (or `function` for
/// a function exported by the world itself).
pub fn exported_functions(resolve: &Resolve, world: WorldId) -> Vec<String> {
    let mut names = Vec::new();
    for (key, item) in &resolve.worlds[world].exports {
        let exported = resolve.name_world_key(key);
        match item {
            WorldItem::Interface { id, .. } => {
                for function in resolve.interfaces[*id].functions.keys() {
                    names.push(format!("{exported}#{function}"));
                }
            }
            WorldItem::Function(_) | WorldItem::Type { .. } => names.push(exported),
        }
    }
    names.sort();
    names
}

/// Whether `key` is a WASI interface every plugin may import: language
/// runtimes import those on their own. `wasi:http` is not one of them; only
/// the worlds that import it allow it.
fn is_runtime_wasi(resolve: &Resolve, key: &WorldKey) -> bool {
    let WorldKey::Interface(interface) = key else {
        return false;
    };
    resolve.interfaces[*interface]
        .package
        .map(|package| &resolve.packages[package].name)
        .is_some_and(|name| name.namespace == "wasi" && name.name != "http")
}

pub fn decode(name: &str, wasm: &[u8]) -> (Resolve, WorldId) {
    match wit_component::decode(wasm).unwrap() {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => panic!("{name} is a WIT package, not a component"),
    }
}

/// Panics unless `wasm` is a component that validates with WebAssembly 2.0
/// plus the component model: what the `wasm32-wasip2` target emits, and what
/// wasmtime enables by default.
pub fn assert_valid_component(name: &str, wasm: &[u8]) {
    assert!(
        Parser::is_component(wasm),
        "{name} is a core module, not a component"
    );
    let features = WasmFeatures::WASM2 | WasmFeatures::COMPONENT_MODEL;
    if let Err(error) = Validator::new_with_features(features).validate_all(wasm) {
        panic!("{name} does not validate: {error}");
    }
}

/// Panics unless the component exports exactly the functions of `kind`'s world.
pub fn assert_exports_world(name: &str, wasm: &[u8], kind: PluginKind) {
    let (expected, expected_world) = expected_world(kind);
    let (decoded, decoded_world) = decode(name, wasm);
    assert_eq!(
        exported_functions(&decoded, decoded_world),
        exported_functions(&expected, expected_world),
        "exports of {name}"
    );
}

/// Type-checks a component against the world of `kind` with component
/// subtyping, as a host linking that world would: every export must have
/// exactly the world's type and every import must be one of the world's.
///
/// The component's runtime WASI imports are added to the world first:
/// language runtimes (Rust's std included) import WASI on their own, and the
/// host links it for every plugin.
pub fn check_targets(name: &str, wasm: &[u8], kind: PluginKind) -> Result<(), String> {
    let (mut resolve, world) = expected_world(kind);
    let (decoded, decoded_world) = decode(name, wasm);
    let remap = resolve.merge(decoded).map_err(|e| format!("{e:?}"))?;
    let decoded_world = remap
        .map_world(decoded_world, Span::default())
        .map_err(|e| format!("{e:?}"))?;

    let wasi_imports: Vec<(WorldKey, WorldItem)> = resolve.worlds[decoded_world]
        .imports
        .iter()
        .filter(|(key, _)| is_runtime_wasi(&resolve, key))
        .map(|(key, item)| (key.clone(), item.clone()))
        .collect();
    for (key, item) in wasi_imports {
        resolve.worlds[world].imports.entry(key).or_insert(item);
    }

    wit_component::targets(&resolve, world, wasm).map_err(|e| format!("{e:?}"))
}

/// Panics unless the component targets the world of `kind` and no other.
pub fn assert_targets_only(name: &str, wasm: &[u8], kind: PluginKind) {
    if let Err(error) = check_targets(name, wasm, kind) {
        panic!(
            "{name} does not target the `{}` world: {error}",
            kind.world()
        );
    }
    for other in KINDS {
        if other != kind {
            assert!(
                check_targets(name, wasm, other).is_err(),
                "{name} passes as a {}",
                other.world()
            );
        }
    }
}
