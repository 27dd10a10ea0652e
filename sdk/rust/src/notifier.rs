//! The `notifier` world: an alert receiver fed by the alert router.

use crate::bindings::notifier::exports::pharos::plugin::notifier_api::Guest;
use crate::hosting::{self, Hosted};
use crate::types::{Notification, PluginError};

/// An alert receiver: the alert router calls [`notify`](Notifier::notify) for
/// every notification routed to a receiver backed by the plugin, after
/// grouping, inhibition, silencing and deduplication.
///
/// Notifications usually leave through [`http`](crate::http).
/// Export the implementing type with [`export_notifier!`](crate::export_notifier).
pub trait Notifier: Sized + 'static {
    /// Builds the notifier from the operator's configuration. Called once per
    /// instance, before any notification; return
    /// [`PluginError::invalid_config`] to reject the configuration.
    fn configure(config: &str) -> Result<Self, PluginError>;

    /// Delivers one notification. Return [`PluginError::transient`] when a
    /// retry may succeed (the router retries with back-off) and
    /// [`PluginError::permanent`] when it cannot.
    fn notify(&mut self, notification: Notification) -> Result<(), PluginError>;
}

impl<H> Guest for H
where
    H: Hosted,
    H::Plugin: Notifier,
{
    fn configure(config: String) -> Result<(), PluginError> {
        hosting::configure::<H>(&config, H::Plugin::configure)
    }

    fn notify(notification: Notification) -> Result<(), PluginError> {
        hosting::with_plugin::<H, _>(|plugin| plugin.notify(notification))
            .unwrap_or_else(|| Err(hosting::not_configured("notify")))
    }
}

/// Exports a type implementing [`Notifier`] as this component's `notifier`
/// world. Invoke it once, at the top level of the plugin crate.
///
/// ```no_run
/// use pharos_sdk::{Notification, Notifier, PluginError};
///
/// /// Logs each notification instead of sending it anywhere.
/// struct LogOnly;
///
/// impl Notifier for LogOnly {
///     fn configure(_config: &str) -> Result<Self, PluginError> {
///         Ok(LogOnly)
///     }
///
///     fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
///         pharos_sdk::info!("{} alerts for {}", n.alerts.len(), n.receiver);
///         Ok(())
///     }
/// }
///
/// pharos_sdk::export_notifier!(LogOnly);
/// ```
#[macro_export]
macro_rules! export_notifier {
    ($plugin:ty) => {
        // The generated export glue calls the canonical ABI through raw pointers.
        #[allow(unsafe_code)]
        const _: () = {
            const fn assert_implements_notifier<T: $crate::Notifier>() {}
            assert_implements_notifier::<$plugin>();

            $crate::__declare_host!(__PharosNotifier, $plugin);
            $crate::__private::notifier::export!(
                __PharosNotifier with_types_in $crate::__private::notifier
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlertStatus, Labels};

    /// Remembers the group keys it was given; refuses resolved notifications.
    struct Recorder(Vec<String>);

    impl Notifier for Recorder {
        fn configure(_config: &str) -> Result<Self, PluginError> {
            Ok(Recorder(Vec::new()))
        }

        fn notify(&mut self, notification: Notification) -> Result<(), PluginError> {
            if notification.status == AlertStatus::Resolved {
                return Err(PluginError::permanent(
                    "resolved notifications are not sent",
                ));
            }
            self.0.push(notification.group_key);
            if self.0.len() > 1 {
                return Err(PluginError::transient(self.0.join(",")));
            }
            Ok(())
        }
    }

    crate::__declare_host!(RecorderHost, Recorder);

    fn notification(group_key: &str, status: AlertStatus) -> Notification {
        Notification {
            receiver: "team".to_owned(),
            status,
            alerts: Vec::new(),
            group_labels: Labels::from_iter([("alertname", "Down")]).into(),
            common_labels: Vec::new(),
            common_annotations: Vec::new(),
            external_url: "http://pharos.example".to_owned(),
            group_key: group_key.to_owned(),
            truncated_alerts: 0,
        }
    }

    #[test]
    fn notify_reaches_the_configured_instance_in_order() {
        <RecorderHost as Guest>::configure(String::new()).unwrap();
        <RecorderHost as Guest>::notify(notification("a", AlertStatus::Firing)).unwrap();
        assert_eq!(
            <RecorderHost as Guest>::notify(notification("b", AlertStatus::Firing)),
            Err(PluginError::transient("a,b"))
        );
        assert_eq!(
            <RecorderHost as Guest>::notify(notification("c", AlertStatus::Resolved)),
            Err(PluginError::permanent(
                "resolved notifications are not sent"
            ))
        );
    }

    #[test]
    fn notify_before_configure_is_a_permanent_error() {
        let error = <RecorderHost as Guest>::notify(notification("a", AlertStatus::Firing));
        assert!(matches!(error, Err(PluginError::Permanent(_))), "{error:?}");
    }
}
