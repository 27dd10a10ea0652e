//! Expansion of alert labels and annotations with `pharos-template` (Go's
//! text/template and Prometheus's function library), as Prometheus expands them:
//! `$labels`, `$value`, `$externalLabels` and `$externalURL` are defined, `query` runs
//! at the evaluation time, and a failing template becomes
//! `<error expanding template: …>` in the value.

use std::sync::Arc;

use pharos_model::Labels;
use pharos_promql::Engine;
use pharos_template::{Funcs, PrometheusContext, QuerySample};
use pharos_tsdb::Db;

/// What a label or annotation template sees.
pub struct AlertTemplateData<'a> {
    /// The labels of the query result the alert comes from.
    pub labels: &'a Labels,
    pub external_labels: &'a Labels,
    pub external_url: &'a str,
    pub value: f64,
}

/// Prometheus's template functions for one evaluation at `ts` (ms), with `query`
/// reading the local storage.
pub fn functions(db: &Arc<Db>, engine: &Engine, ts: i64, external_url: &str) -> Funcs {
    let (db, engine) = (db.clone(), engine.clone());
    let query: pharos_template::QueryFn = Arc::new(move |q: &str| {
        super::group::query_vector(&engine, &db.querier(), q, ts).map(|v| {
            v.into_iter()
                .map(|(labels, value)| QuerySample { labels, value })
                .collect()
        })
    });
    pharos_template::prometheus_functions(&PrometheusContext {
        query: Some(query),
        external_url: external_url.to_owned(),
        eval_time: ts as f64 / 1000.0,
    })
}

/// Expands one label or annotation value of alerting rule `rule`.
///
/// # Errors
///
/// The text upstream writes in place of the value (`<error expanding template: …>`);
/// the caller uses it as the value and counts it.
pub fn expand_alert_text(
    rule: &str,
    text: &str,
    data: &AlertTemplateData<'_>,
    funcs: &Funcs,
) -> Result<String, String> {
    // A text without actions expands to itself; skip building a template for it.
    if !text.contains("{{") {
        return Ok(text.to_owned());
    }
    pharos_template::expand_alert_text(
        rule,
        text,
        data.labels,
        data.external_labels,
        data.value,
        data.external_url,
        funcs,
    )
    .map_err(|e| pharos_template::alert_error_text(&e))
}
