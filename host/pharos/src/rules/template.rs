//! Expansion of alert labels and annotations.
//!
//! Prometheus runs every label and annotation value of an alerting rule through Go's
//! text/template with `$labels`, `$value`, `$externalLabels` and `$externalURL` defined
//! and its function library (humanize, query, …). Pharos will do the same with the
//! `pharos-template` crate, which is being written beside this module; until it lands
//! this is the one place that wiring it in changes, and values are used as written.

use std::collections::BTreeMap;

/// What a label or annotation template sees.
pub struct AlertTemplateData<'a> {
    /// The labels of the query result the alert comes from.
    pub labels: &'a BTreeMap<String, String>,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    pub value: f64,
}

/// Expands one label or annotation value for an alert.
///
/// # Errors
///
/// The template's error, which the caller writes into the value as upstream does
/// (`<error expanding template: …>`) and counts.
pub fn expand_alert_text(text: &str, data: &AlertTemplateData<'_>) -> Result<String, String> {
    // Until the template engine lands, nothing in `data` is substituted.
    let _ = data;
    Ok(text.to_owned())
}
