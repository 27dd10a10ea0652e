//! `plugins`: the WebAssembly components this node loads.
//!
//! ```json
//! "plugins": [
//!   {"name": "procfs", "kind": "exporter", "read_dirs": ["/proc"]},
//!   {"name": "acme", "kind": "exporter", "file": "/etc/pharos/acme.wasm",
//!    "config": {"url": "https://acme.example/stats"}, "allow_hosts": ["acme.example"],
//!    "limits": {"memory": "32MB", "timeout": "2s"}}
//! ]
//! ```
//!
//! A plugin without `file` is one of the first-party plugins compiled into the binary,
//! found by name when the plugins load. Everything a plugin may reach outside its
//! sandbox is listed here: hosts for outbound HTTP and directories it may read. Both are
//! empty by default, so a plugin can do nothing beyond computing on what it is given.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

use super::decode::{Decode, Object, Path, quote};
use super::duration::Duration;
use super::error::ConfigErrors;
use super::storage::ByteSize;

/// The default memory cap of one plugin instance.
pub const DEFAULT_PLUGIN_MEMORY: ByteSize = ByteSize(64 << 20);
/// The largest memory cap the runtime's pooling allocator reserves room for.
const MAX_PLUGIN_MEMORY: u64 = 1 << 30;
/// The smallest memory cap that any component toolchain's runtime fits in.
const MIN_PLUGIN_MEMORY: u64 = 1 << 20;

/// The world a plugin targets, which decides where it plugs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// A metrics source, scraped in-process as a target with `scheme: "plugin"`.
    Exporter,
    /// A relabelling step: `{"action": "plugin", "plugin": "<name>"}`.
    Relabeler,
    /// An alert receiver.
    Notifier,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Exporter => "exporter",
            PluginKind::Relabeler => "relabeler",
            PluginKind::Notifier => "notifier",
        }
    }

    /// The kind with its indefinite article, for messages.
    pub fn a(self) -> &'static str {
        match self {
            PluginKind::Exporter => "an exporter",
            PluginKind::Relabeler => "a relabeler",
            PluginKind::Notifier => "a notifier",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Decode for PluginKind {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        match String::decode(v, path, errs)?.as_str() {
            "exporter" => Some(PluginKind::Exporter),
            "relabeler" => Some(PluginKind::Relabeler),
            "notifier" => Some(PluginKind::Notifier),
            other => {
                errs.push(
                    path,
                    format!(
                        "unknown plugin kind {}: must be \"exporter\", \"relabeler\" or \"notifier\"",
                        quote(other)
                    ),
                );
                None
            }
        }
    }
}

/// What one call and one instance of a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PluginLimits {
    /// The most linear memory one instance may grow to.
    pub memory: ByteSize,
    /// The longest one call may run.
    pub timeout: Duration,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory: DEFAULT_PLUGIN_MEMORY,
            timeout: Duration::from_secs(2),
        }
    }
}

impl Decode for PluginLimits {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let defaults = PluginLimits::default();
        let mut obj = Object::open(v, path, errs)?;
        let memory = obj.or("memory", defaults.memory);
        let timeout = obj.or("timeout", defaults.timeout);
        obj.finish();
        let (memory, timeout) = (memory?, timeout?);
        let mut ok = true;
        if !(MIN_PLUGIN_MEMORY..=MAX_PLUGIN_MEMORY).contains(&memory.0) {
            errs.push(
                &path.key("memory"),
                format!(
                    "{memory} is out of range ({} to {})",
                    ByteSize(MIN_PLUGIN_MEMORY),
                    ByteSize(MAX_PLUGIN_MEMORY)
                ),
            );
            ok = false;
        }
        if timeout.is_zero() {
            errs.push(&path.key("timeout"), "must be greater than 0s");
            ok = false;
        }
        ok.then_some(PluginLimits { memory, timeout })
    }
}

/// One entry of `plugins`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginConfig {
    /// How scrape configs, relabel steps and receivers refer to the plugin, and the
    /// `plugin` label of its metrics.
    pub name: String,
    pub kind: PluginKind,
    /// The component; `None` for a first-party plugin compiled into the binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Handed to the plugin's `configure` as JSON text.
    pub config: Value,
    pub limits: PluginLimits,
    /// Hosts (`name` or `name:port`) the plugin may send HTTP requests to.
    pub allow_hosts: Vec<String>,
    /// Directories the plugin may read (exporters only), at the same path inside.
    pub read_dirs: Vec<PathBuf>,
}

impl PluginConfig {
    /// The document `configure` receives.
    pub fn config_json(&self) -> String {
        self.config.to_string()
    }
}

/// Names appear in URLs (`/plugins/<name>/metrics`) and as target addresses, so they
/// keep to characters that need no escaping there.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `name` or `name:port`, without a scheme or a path.
fn valid_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host.contains("://") || host.contains('/') {
        return Err(format!(
            "{} is not a host: write only the name (or name:port), without scheme or path",
            quote(host)
        ));
    }
    let name = match host.rsplit_once(':') {
        // A bracketed IPv6 address, with or without a port.
        _ if host.starts_with('[') => {
            let end = host
                .find(']')
                .ok_or_else(|| format!("{} is not a host", quote(host)))?;
            let rest = &host[end + 1..];
            if !rest.is_empty()
                && rest
                    .strip_prefix(':')
                    .and_then(|p| p.parse::<u16>().ok())
                    .is_none()
            {
                return Err(format!("{} has an invalid port", quote(host)));
            }
            return Ok(());
        }
        Some((name, port)) => {
            if port.parse::<u16>().is_err() {
                return Err(format!("{} has an invalid port", quote(host)));
            }
            name
        }
        None => host,
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '*'))
    {
        return Err(format!("{} is not a host name", quote(host)));
    }
    Ok(())
}

impl Decode for PluginConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let name = obj.required::<String>("name");
        let kind = obj.required::<PluginKind>("kind");
        let file = obj.optional::<String>("file");
        let config = obj
            .take("config")
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        let limits = obj.or_default::<PluginLimits>("limits");
        let allow_hosts = obj.or_default::<Vec<String>>("allow_hosts");
        let read_dirs = obj.or_default::<Vec<String>>("read_dirs");
        obj.finish();

        let mut ok = true;
        if let Some(name) = &name
            && !valid_name(name)
        {
            errs.push(
                &path.key("name"),
                format!(
                    "invalid plugin name {}: letters, digits, '_', '-' and '.', starting with a letter or digit",
                    quote(name)
                ),
            );
            ok = false;
        }
        if let Some(Some(file)) = &file
            && file.is_empty()
        {
            errs.push(
                &path.key("file"),
                "must not be empty (leave it out for a first-party plugin)",
            );
            ok = false;
        }
        let kind = kind?;
        if let Some(hosts) = &allow_hosts {
            let list = path.key("allow_hosts");
            for (i, host) in hosts.iter().enumerate() {
                if let Err(e) = valid_host(host) {
                    errs.push(&list.index(i), e);
                    ok = false;
                }
            }
            if kind == PluginKind::Relabeler && !hosts.is_empty() {
                errs.push(&list, "a relabeler has no network access to grant");
                ok = false;
            }
        }
        if let Some(dirs) = &read_dirs {
            let list = path.key("read_dirs");
            for (i, dir) in dirs.iter().enumerate() {
                if !std::path::Path::new(dir).is_absolute() {
                    errs.push(
                        &list.index(i),
                        format!("{} is not an absolute path", quote(dir)),
                    );
                    ok = false;
                }
            }
            if kind != PluginKind::Exporter && !dirs.is_empty() {
                errs.push(
                    &list,
                    format!("only exporters may read directories, not {}", kind.a()),
                );
                ok = false;
            }
        }
        let config = PluginConfig {
            name: name?,
            kind,
            file: file?.map(PathBuf::from),
            config,
            limits: limits?,
            allow_hosts: allow_hosts?,
            read_dirs: read_dirs?.into_iter().map(PathBuf::from).collect(),
        };
        ok.then_some(config)
    }
}

/// Decodes the `plugins` list; names must be unique.
pub(super) fn decode_plugins(
    v: &Value,
    path: &Path<'_>,
    errs: &mut ConfigErrors,
) -> Option<Vec<PluginConfig>> {
    let plugins = Vec::<PluginConfig>::decode(v, path, errs)?;
    let mut seen = BTreeSet::new();
    let mut ok = true;
    for (i, p) in plugins.iter().enumerate() {
        if !seen.insert(p.name.as_str()) {
            errs.push(
                &path.index(i).key("name"),
                format!("plugin {} is defined twice", quote(&p.name)),
            );
            ok = false;
        }
    }
    ok.then_some(plugins)
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    use crate::config::rejected as errors;

    #[test]
    fn a_full_entry_decodes_and_defaults_fill_the_rest() {
        let c = parse(
            r#"{"plugins": [
                {"name": "procfs", "kind": "exporter", "read_dirs": ["/proc"]},
                {"name": "acme-1.x", "kind": "notifier", "file": "/srv/acme.wasm",
                 "config": {"url": "https://acme.example"}, "allow_hosts": ["acme.example", "acme.example:8443", "[::1]:80"],
                 "limits": {"memory": "32MB", "timeout": "500ms"}}
            ]}"#,
        )
        .unwrap();
        let [procfs, acme] = &c.plugins[..] else {
            panic!("{:?}", c.plugins)
        };
        assert_eq!(procfs.file, None);
        assert_eq!(procfs.config_json(), "{}");
        assert_eq!(procfs.limits.memory.0, 64 << 20);
        assert_eq!(procfs.limits.timeout.to_string(), "2s");
        assert_eq!(
            acme.file.as_deref(),
            Some(std::path::Path::new("/srv/acme.wasm"))
        );
        assert_eq!(acme.config_json(), r#"{"url":"https://acme.example"}"#);
        assert_eq!(acme.limits.memory.0, 32 << 20);
        assert_eq!(acme.allow_hosts.len(), 3);
    }

    #[test]
    fn every_problem_is_reported_at_its_path() {
        let errs = errors(
            r#"{"plugins": [
                {"name": "-x", "kind": "exporter", "read_dirs": ["proc"]},
                {"name": "r", "kind": "relabeler", "allow_hosts": ["a.example"], "read_dirs": ["/proc"]},
                {"name": "n", "kind": "sender", "file": ""},
                {"name": "h", "kind": "notifier", "allow_hosts": ["https://a.example/x", "a:port"], "limits": {"memory": "1KB", "timeout": "0s"}},
                {"name": "h", "kind": "exporter", "colour": 1},
                {"kind": "exporter"}
            ]}"#,
        );
        assert_eq!(
            errs,
            [
                "plugins[0].name: invalid plugin name \"-x\": letters, digits, '_', '-' and '.', starting with a letter or digit",
                "plugins[0].read_dirs[0]: \"proc\" is not an absolute path",
                "plugins[1].allow_hosts: a relabeler has no network access to grant",
                "plugins[1].read_dirs: only exporters may read directories, not a relabeler",
                "plugins[2].kind: unknown plugin kind \"sender\": must be \"exporter\", \"relabeler\" or \"notifier\"",
                "plugins[2].file: must not be empty (leave it out for a first-party plugin)",
                "plugins[3].limits.memory: 1KB is out of range (1MB to 1GB)",
                "plugins[3].limits.timeout: must be greater than 0s",
                "plugins[3].allow_hosts[0]: \"https://a.example/x\" is not a host: write only the name (or name:port), without scheme or path",
                "plugins[3].allow_hosts[1]: \"a:port\" has an invalid port",
                "plugins[4].colour: unknown key",
                "plugins[5].name: missing required key",
            ]
        );
        let errs = errors(
            r#"{"plugins": [{"name": "h", "kind": "exporter"}, {"name": "h", "kind": "relabeler"}]}"#,
        );
        assert_eq!(errs, ["plugins[1].name: plugin \"h\" is defined twice"]);
    }
}
