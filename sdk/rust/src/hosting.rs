//! Where a plugin instance keeps the value its `configure` built.
//!
//! The WIT worlds export free functions, so the component itself has to hold
//! the plugin's state between calls. Each export macro declares a
//! thread-local slot for the plugin type in the plugin crate (a generic SDK
//! function cannot own a static per type) and implements [`Hosted`] to point
//! at it; the blanket impls of the generated `Guest` traits then route every
//! call through that slot. A component instance is single-threaded and calls
//! into it never overlap, so the `RefCell` borrow cannot conflict.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::types::PluginError;

/// Connects a plugin type to the slot holding its configured value.
///
/// Implemented by the export macros; not meant to be implemented by hand.
pub trait Hosted: 'static {
    /// The plugin type exported by the macro.
    type Plugin: 'static;

    /// The slot of this component instance.
    fn slot() -> &'static LocalKey<RefCell<Option<Self::Plugin>>>;
}

/// Builds the plugin from `config` and stores it, replacing any earlier value
/// only once the new configuration has been accepted.
pub(crate) fn configure<H: Hosted>(
    config: &str,
    build: impl FnOnce(&str) -> Result<H::Plugin, PluginError>,
) -> Result<(), PluginError> {
    let plugin = build(config)?;
    H::slot().with(|slot| *slot.borrow_mut() = Some(plugin));
    Ok(())
}

/// Runs `call` on the configured plugin; `None` if `configure` has not
/// succeeded on this instance yet.
pub(crate) fn with_plugin<H: Hosted, R>(call: impl FnOnce(&mut H::Plugin) -> R) -> Option<R> {
    H::slot().with(|slot| slot.borrow_mut().as_mut().map(call))
}

/// The error for a call that arrived before a successful `configure`, which
/// the host contract rules out; retrying cannot help.
pub(crate) fn not_configured(function: &str) -> PluginError {
    PluginError::permanent(format!(
        "`{function}` was called before `configure` succeeded on this instance"
    ))
}

/// Declares the zero-sized type `$host` and implements [`Hosted`] for it with
/// a fresh thread-local slot holding a `$plugin`.
#[doc(hidden)]
#[macro_export]
macro_rules! __declare_host {
    ($host:ident, $plugin:ty) => {
        struct $host;

        impl $crate::__private::Hosted for $host {
            type Plugin = $plugin;

            fn slot() -> &'static ::std::thread::LocalKey<
                ::std::cell::RefCell<::std::option::Option<$plugin>>,
            > {
                ::std::thread_local! {
                    static SLOT: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                        const { ::std::cell::RefCell::new(::std::option::Option::None) };
                }
                &SLOT
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u32);
    // Each test runs on its own thread and so starts with an empty slot.
    crate::__declare_host!(CounterHost, Counter);

    fn parse(config: &str) -> Result<Counter, PluginError> {
        config
            .parse()
            .map(Counter)
            .map_err(|_| PluginError::invalid_config("not a number"))
    }

    #[test]
    fn calls_before_configure_find_no_plugin() {
        assert_eq!(with_plugin::<CounterHost, _>(|counter| counter.0), None);
    }

    #[test]
    fn configure_stores_the_plugin_for_later_calls() {
        configure::<CounterHost>("41", parse).unwrap();
        let seen = with_plugin::<CounterHost, _>(|counter| {
            counter.0 += 1;
            counter.0
        });
        assert_eq!(seen, Some(42));
        assert_eq!(with_plugin::<CounterHost, _>(|counter| counter.0), Some(42));
    }

    #[test]
    fn failed_configure_keeps_the_previous_plugin() {
        configure::<CounterHost>("7", parse).unwrap();
        assert_eq!(
            configure::<CounterHost>("seven", parse),
            Err(PluginError::invalid_config("not a number"))
        );
        assert_eq!(with_plugin::<CounterHost, _>(|counter| counter.0), Some(7));
    }

    #[test]
    fn not_configured_is_permanent_and_names_the_call() {
        let error = not_configured("collect");
        assert!(matches!(error, PluginError::Permanent(_)));
        assert!(error.reason().contains("`collect`"));
    }
}
