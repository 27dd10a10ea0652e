//! Checks that every embedded plugin is a valid component that a host of the
//! `pharos:plugin` package can instantiate as the world of its kind.

mod common;

use pharos_artifacts::first_party;

#[test]
fn there_are_first_party_plugins() {
    assert!(!first_party().is_empty());
}

#[test]
fn every_plugin_is_a_valid_component() {
    for plugin in first_party() {
        common::assert_valid_component(plugin.name, plugin.wasm);
    }
}

#[test]
fn every_plugin_exports_exactly_the_functions_of_its_world() {
    for plugin in first_party() {
        common::assert_exports_world(plugin.name, plugin.wasm, plugin.kind);
    }
}

/// Every plugin type-checks against the world of its kind, and (guarding the
/// check itself) a component built for one world does not pass as another.
#[test]
fn every_plugin_targets_the_world_of_its_kind_and_no_other() {
    for plugin in first_party() {
        common::assert_targets_only(plugin.name, plugin.wasm, plugin.kind);
    }
}
