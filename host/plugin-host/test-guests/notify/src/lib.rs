//! A notifier for the host's tests: POSTs `<receiver> <group key> <alerts>`
//! to the configured `url=`; 2xx is delivered, 4xx permanent, the rest
//! (and refused requests) transient.

use pharos_sdk::wasi::http::types::Method;
use pharos_sdk::{Notification, Notifier, PluginError};

#[path = "../../http.rs"]
mod http;

struct Hook(String);

impl Notifier for Hook {
    fn configure(config: &str) -> Result<Self, PluginError> {
        config
            .strip_prefix("url=")
            .map(|url| Hook(url.to_owned()))
            .ok_or_else(|| PluginError::invalid_config("expected url=<url>"))
    }

    fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
        let body = format!("{} {} {}", n.receiver, n.group_key, n.alerts.len());
        match http::send(Method::Post, &self.0, body.as_bytes()) {
            Ok(status) if (200..300).contains(&status) => Ok(()),
            Ok(status) if (400..500).contains(&status) => {
                Err(PluginError::permanent(format!("status {status}")))
            }
            Ok(status) => Err(PluginError::transient(format!("status {status}"))),
            Err(e) => Err(PluginError::transient(e)),
        }
    }
}

pharos_sdk::export_notifier!(Hook);
