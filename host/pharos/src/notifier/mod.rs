//! Delivering alerts to Alertmanager-compatible routers. Rule evaluation pushes alerts
//! into the [`AlertQueue`] in the daemon's context; the notifier component (the
//! `alerting` section) drains it.

mod queue;

pub use queue::{Alert, AlertQueue, DEFAULT_CAPACITY};
