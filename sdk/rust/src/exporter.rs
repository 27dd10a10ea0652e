//! The `exporter` world: a metrics source the host scrapes in-process.

use crate::bindings::exporter::exports::pharos::plugin::exporter_api::Guest;
use crate::hosting::{self, Hosted};
use crate::types::{MetricFamily, PluginError};

/// A metrics source: the host calls [`collect`](Exporter::collect) on every
/// scrape of the plugin's target and ingests what it returns.
///
/// Export the implementing type with [`export_exporter!`](crate::export_exporter).
/// Outbound HTTP, for exporters that fetch data elsewhere, goes through
/// [`http`](crate::http) (or the raw [`wasi::http`](crate::wasi::http)
/// bindings). Build the returned families with [`metrics`](crate::metrics).
pub trait Exporter: Sized + 'static {
    /// Builds the exporter from the operator's configuration. Called once per
    /// instance, before any scrape; return
    /// [`PluginError::invalid_config`] to reject the configuration.
    fn configure(config: &str) -> Result<Self, PluginError>;

    /// Returns the current value of every family the exporter exposes.
    ///
    /// A [`PluginError::Transient`] or [`PluginError::Permanent`] error fails
    /// this scrape (the target reports `up` 0); the next scrape calls again.
    fn collect(&mut self) -> Result<Vec<MetricFamily>, PluginError>;
}

impl<H> Guest for H
where
    H: Hosted,
    H::Plugin: Exporter,
{
    fn configure(config: String) -> Result<(), PluginError> {
        hosting::configure::<H>(&config, H::Plugin::configure)
    }

    fn collect() -> Result<Vec<MetricFamily>, PluginError> {
        hosting::with_plugin::<H, _>(Exporter::collect)
            .unwrap_or_else(|| Err(hosting::not_configured("collect")))
    }
}

/// Exports a type implementing [`Exporter`] as this component's `exporter`
/// world. Invoke it once, at the top level of the plugin crate.
///
/// ```no_run
/// use pharos_sdk::{Exporter, Labels, MetricFamily, MetricPoints, PluginError, ScalarPoint};
///
/// struct Constant(f64);
///
/// impl Exporter for Constant {
///     fn configure(config: &str) -> Result<Self, PluginError> {
///         config
///             .trim()
///             .parse()
///             .map(Constant)
///             .map_err(|_| PluginError::invalid_config("expected a number"))
///     }
///
///     fn collect(&mut self) -> Result<Vec<MetricFamily>, PluginError> {
///         let point = ScalarPoint::new(Labels::new(), self.0);
///         let family = MetricFamily::new("constant", "A configured value.", MetricPoints::Gauge(vec![point]));
///         Ok(vec![family])
///     }
/// }
///
/// pharos_sdk::export_exporter!(Constant);
/// ```
#[macro_export]
macro_rules! export_exporter {
    ($plugin:ty) => {
        // The generated export glue calls the canonical ABI through raw pointers.
        #[allow(unsafe_code)]
        const _: () = {
            const fn assert_implements_exporter<T: $crate::Exporter>() {}
            assert_implements_exporter::<$plugin>();

            $crate::__declare_host!(__PharosExporter, $plugin);
            $crate::__private::exporter::export!(
                __PharosExporter with_types_in $crate::__private::exporter
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Labels, MetricPoints, ScalarPoint};

    /// Counts its own scrapes.
    struct Scrapes {
        name: String,
        count: u32,
    }

    impl Exporter for Scrapes {
        fn configure(config: &str) -> Result<Self, PluginError> {
            if config.is_empty() {
                return Err(PluginError::invalid_config("a metric name is required"));
            }
            Ok(Scrapes {
                name: config.to_owned(),
                count: 0,
            })
        }

        fn collect(&mut self) -> Result<Vec<MetricFamily>, PluginError> {
            self.count += 1;
            let point = ScalarPoint::new(Labels::new(), f64::from(self.count));
            Ok(vec![MetricFamily::new(
                self.name.clone(),
                "Scrapes so far.",
                MetricPoints::Counter(vec![point]),
            )])
        }
    }

    crate::__declare_host!(ScrapesHost, Scrapes);

    fn counter_value(families: &[MetricFamily]) -> f64 {
        match &families[0].points {
            MetricPoints::Counter(points) => points[0].value,
            other => panic!("unexpected points {other:?}"),
        }
    }

    #[test]
    fn collect_uses_the_configured_instance_and_keeps_its_state() {
        <ScrapesHost as Guest>::configure("scrapes_total".to_owned()).unwrap();
        let first = <ScrapesHost as Guest>::collect().unwrap();
        assert_eq!(first[0].name, "scrapes_total");
        assert_eq!(counter_value(&first), 1.0);
        let second = <ScrapesHost as Guest>::collect().unwrap();
        assert_eq!(counter_value(&second), 2.0);
    }

    #[test]
    fn collect_before_configure_is_a_permanent_error() {
        let error = <ScrapesHost as Guest>::collect().unwrap_err();
        assert!(matches!(error, PluginError::Permanent(_)), "{error:?}");
    }

    #[test]
    fn configure_errors_reach_the_host_unchanged() {
        assert_eq!(
            <ScrapesHost as Guest>::configure(String::new()),
            Err(PluginError::invalid_config("a metric name is required"))
        );
    }
}
