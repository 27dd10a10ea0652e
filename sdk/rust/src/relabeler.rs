//! The `relabeler` world: a metric relabelling step run on every scrape.

use crate::bindings::relabeler::exports::pharos::plugin::relabeler_api::Guest;
use crate::hosting::{self, Hosted};
use crate::labels::Labels;
use crate::types::{Label, PluginError, RelabelOutcome};

/// A metric relabelling step: after the native `metric_relabel_configs` of a
/// scrape, the host hands the plugin every series of that scrape in one
/// batch and ingests each series as the outcome says.
///
/// Implement [`relabel`](Relabeler::relabel) for one series at a time, or
/// override [`relabel_batch`](Relabeler::relabel_batch) when looking at the
/// whole batch at once pays off. Export the implementing type with
/// [`export_relabeler!`](crate::export_relabeler).
pub trait Relabeler: Sized + 'static {
    /// Builds the relabeler from the operator's configuration. Called once per
    /// instance, before any batch; return [`PluginError::invalid_config`] to
    /// reject the configuration.
    fn configure(config: &str) -> Result<Self, PluginError>;

    /// Decides what happens to one series. `labels` includes `__name__`.
    fn relabel(&mut self, labels: Labels) -> RelabelOutcome;

    /// Decides what happens to each series of one scrape, returning exactly
    /// one outcome per series, in order. Calls [`relabel`](Relabeler::relabel)
    /// for each series unless overridden.
    fn relabel_batch(&mut self, batch: Vec<Labels>) -> Vec<RelabelOutcome> {
        batch
            .into_iter()
            .map(|labels| self.relabel(labels))
            .collect()
    }
}

impl<H> Guest for H
where
    H: Hosted,
    H::Plugin: Relabeler,
{
    fn configure(config: String) -> Result<(), PluginError> {
        hosting::configure::<H>(&config, H::Plugin::configure)
    }

    /// The world gives `relabel` no error channel, so the contract violations
    /// below trap (panic) with a message the host logs: answering "keep" would
    /// silently ingest series the operator meant to transform.
    fn relabel(batch: Vec<Vec<Label>>) -> Vec<RelabelOutcome> {
        let series = batch.len();
        let batch = batch.into_iter().map(Labels::from).collect();
        let Some(outcomes) = hosting::with_plugin::<H, _>(|plugin| plugin.relabel_batch(batch))
        else {
            panic!("{}", hosting::not_configured("relabel").reason());
        };
        assert_eq!(
            outcomes.len(),
            series,
            "relabel_batch must return one outcome per series"
        );
        outcomes
    }
}

/// Exports a type implementing [`Relabeler`] as this component's `relabeler`
/// world. Invoke it once, at the top level of the plugin crate.
///
/// See the [crate documentation](crate) for an example.
#[macro_export]
macro_rules! export_relabeler {
    ($plugin:ty) => {
        // The generated export glue calls the canonical ABI through raw pointers.
        #[allow(unsafe_code)]
        const _: () = {
            const fn assert_implements_relabeler<T: $crate::Relabeler>() {}
            assert_implements_relabeler::<$plugin>();

            $crate::__declare_host!(__PharosRelabeler, $plugin);
            $crate::__private::relabeler::export!(
                __PharosRelabeler with_types_in $crate::__private::relabeler
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drops series of the configured job and tags every other one.
    struct DropJob(String);

    impl Relabeler for DropJob {
        fn configure(config: &str) -> Result<Self, PluginError> {
            Ok(DropJob(config.to_owned()))
        }

        fn relabel(&mut self, mut labels: Labels) -> RelabelOutcome {
            if labels.get("job") == Some(self.0.as_str()) {
                return RelabelOutcome::Drop;
            }
            labels.set("seen", "yes");
            RelabelOutcome::rewrite(labels)
        }
    }

    crate::__declare_host!(DropJobHost, DropJob);

    /// Breaks the one-outcome-per-series rule.
    struct Forgetful;

    impl Relabeler for Forgetful {
        fn configure(_config: &str) -> Result<Self, PluginError> {
            Ok(Forgetful)
        }

        fn relabel(&mut self, _labels: Labels) -> RelabelOutcome {
            RelabelOutcome::Keep
        }

        fn relabel_batch(&mut self, _batch: Vec<Labels>) -> Vec<RelabelOutcome> {
            Vec::new()
        }
    }

    crate::__declare_host!(ForgetfulHost, Forgetful);

    fn series(job: &str) -> Vec<Label> {
        vec![Label::new("__name__", "up"), Label::new("job", job)]
    }

    #[test]
    fn each_series_gets_its_own_outcome_in_order() {
        <DropJobHost as Guest>::configure("noisy".to_owned()).unwrap();
        let outcomes = <DropJobHost as Guest>::relabel(vec![series("noisy"), series("api")]);
        let mut tagged = series("api");
        tagged.push(Label::new("seen", "yes"));
        assert_eq!(
            outcomes,
            [RelabelOutcome::Drop, RelabelOutcome::Rewrite(tagged)]
        );
    }

    #[test]
    #[should_panic(expected = "before `configure`")]
    fn relabel_before_configure_traps() {
        <DropJobHost as Guest>::relabel(vec![series("api")]);
    }

    #[test]
    #[should_panic(expected = "one outcome per series")]
    fn a_batch_with_missing_outcomes_traps() {
        <ForgetfulHost as Guest>::configure(String::new()).unwrap();
        <ForgetfulHost as Guest>::relabel(vec![series("api")]);
    }
}
