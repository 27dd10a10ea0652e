//! The data types of `pharos:plugin/types`, with a few constructors that keep
//! plugin code short.

pub use crate::bindings::relabeler::pharos::plugin::types::{
    Alert, AlertStatus, Bucket, HistogramPoint, Label, MetricFamily, MetricPoints, Notification,
    PluginError, Quantile, RelabelOutcome, ScalarPoint, SummaryPoint, TimestampMs,
};

impl Label {
    /// A label with this name and value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl PluginError {
    /// The configuration cannot work; `reason` should tell the operator what
    /// to change.
    pub fn invalid_config(reason: impl Into<String>) -> Self {
        PluginError::InvalidConfig(reason.into())
    }

    /// A failure that may go away on its own, so the call is worth retrying.
    pub fn transient(reason: impl Into<String>) -> Self {
        PluginError::Transient(reason.into())
    }

    /// A failure that retrying the same call would repeat.
    pub fn permanent(reason: impl Into<String>) -> Self {
        PluginError::Permanent(reason.into())
    }

    /// The human-readable reason, whatever the case.
    pub fn reason(&self) -> &str {
        match self {
            PluginError::InvalidConfig(reason)
            | PluginError::Transient(reason)
            | PluginError::Permanent(reason) => reason,
        }
    }
}

impl RelabelOutcome {
    /// Ingest the series under `labels` instead of its original labels.
    pub fn rewrite(labels: impl Into<Vec<Label>>) -> Self {
        RelabelOutcome::Rewrite(labels.into())
    }
}

impl ScalarPoint {
    /// A counter, gauge or untyped sample stamped by the host at scrape time.
    pub fn new(labels: impl Into<Vec<Label>>, value: f64) -> Self {
        ScalarPoint {
            labels: labels.into(),
            value,
            timestamp: None,
        }
    }
}

impl MetricFamily {
    /// A family without a declared unit.
    pub fn new(name: impl Into<String>, help: impl Into<String>, points: MetricPoints) -> Self {
        MetricFamily {
            name: name.into(),
            help: help.into(),
            unit: None,
            points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labels;

    #[test]
    fn plugin_error_constructors_pick_the_case_and_keep_the_reason() {
        let invalid = PluginError::invalid_config("bad length");
        assert_eq!(invalid, PluginError::InvalidConfig("bad length".to_owned()));
        assert_eq!(invalid.reason(), "bad length");
        assert_eq!(
            PluginError::transient("timeout"),
            PluginError::Transient("timeout".to_owned())
        );
        assert_eq!(PluginError::permanent("rejected").reason(), "rejected");
    }

    #[test]
    fn rewrite_accepts_labels_or_plain_vectors() {
        let labels = Labels::from_iter([("job", "api")]);
        let expected = RelabelOutcome::Rewrite(vec![Label::new("job", "api")]);
        assert_eq!(RelabelOutcome::rewrite(labels), expected);
        assert_eq!(
            RelabelOutcome::rewrite(vec![Label::new("job", "api")]),
            expected
        );
    }

    #[test]
    fn scalar_points_and_families_default_the_optional_fields() {
        let point = ScalarPoint::new(Labels::from_iter([("queue", "mail")]), 3.0);
        assert_eq!(point.timestamp, None);
        let family = MetricFamily::new(
            "queue_length",
            "Messages waiting.",
            MetricPoints::Gauge(vec![point.clone()]),
        );
        assert_eq!(family.unit, None);
        assert_eq!(family.points, MetricPoints::Gauge(vec![point]));
    }
}
