//! Checks that every embedded plugin is a valid component that a host of the
//! `pharos:plugin` package can instantiate as the world of its kind.

// Every function in this file is test code, helpers included: a failed
// unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use pharos_artifacts::{FirstParty, PluginKind, first_party};
use wasmparser::{Parser, Validator, WasmFeatures};
use wit_component::DecodedWasm;
use wit_parser::{Resolve, Span, WorldId, WorldItem, WorldKey};

/// The WIT package the plugins are built against.
const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit");

/// Loads `wit/` and selects the world of `kind`.
fn expected_world(kind: PluginKind) -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(WIT_DIR).unwrap();
    let world = resolve
        .select_world(&[package], Some(kind.world()))
        .unwrap();
    (resolve, world)
}

/// The functions a world exports, as `interface#function` (or `function` for
/// a function exported by the world itself).
fn exported_functions(resolve: &Resolve, world: WorldId) -> Vec<String> {
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

fn decode(plugin: &FirstParty) -> (Resolve, WorldId) {
    match wit_component::decode(plugin.wasm).unwrap() {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => panic!("{} is a WIT package, not a component", plugin.name),
    }
}

#[test]
fn there_are_first_party_plugins() {
    assert!(!first_party().is_empty());
}

/// The feature set is WebAssembly 2.0 plus the component model: what the
/// `wasm32-wasip2` target emits, and what wasmtime enables by default.
#[test]
fn every_plugin_is_a_valid_component() {
    for plugin in first_party() {
        assert!(
            Parser::is_component(plugin.wasm),
            "{} is a core module, not a component",
            plugin.name
        );
        let features = WasmFeatures::WASM2 | WasmFeatures::COMPONENT_MODEL;
        if let Err(error) = Validator::new_with_features(features).validate_all(plugin.wasm) {
            panic!("{} does not validate: {error}", plugin.name);
        }
    }
}

#[test]
fn every_plugin_exports_exactly_the_functions_of_its_world() {
    for plugin in first_party() {
        let (expected, expected_world) = expected_world(plugin.kind);
        let (decoded, decoded_world) = decode(plugin);
        assert_eq!(
            exported_functions(&decoded, decoded_world),
            exported_functions(&expected, expected_world),
            "exports of {}",
            plugin.name
        );
    }
}

/// Type-checks `plugin` against the world of `kind` with component
/// subtyping, as a host linking that world would: every export must have
/// exactly the world's type and every import must be one of the world's.
///
/// The component's runtime WASI imports are added to the world first:
/// language runtimes (Rust's std included) import WASI on their own, and the
/// host links it for every plugin.
fn check_targets(plugin: &FirstParty, kind: PluginKind) -> Result<(), String> {
    let (mut resolve, world) = expected_world(kind);
    let (decoded, decoded_world) = decode(plugin);
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

    wit_component::targets(&resolve, world, plugin.wasm).map_err(|e| format!("{e:?}"))
}

#[test]
fn every_plugin_targets_the_world_of_its_kind() {
    for plugin in first_party() {
        if let Err(error) = check_targets(plugin, plugin.kind) {
            panic!(
                "{} does not target the `{}` world: {error}",
                plugin.name,
                plugin.kind.world()
            );
        }
    }
}

/// Guards the check above: a component built for one world must not pass as
/// another.
#[test]
fn no_plugin_targets_the_other_worlds() {
    for plugin in first_party() {
        for kind in [
            PluginKind::Exporter,
            PluginKind::Relabeler,
            PluginKind::Notifier,
        ] {
            if kind != plugin.kind {
                assert!(
                    check_targets(plugin, kind).is_err(),
                    "{} passes as a {}",
                    plugin.name,
                    kind.world()
                );
            }
        }
    }
}
