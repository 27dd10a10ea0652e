//! Go's `text/template` language, as Prometheus uses it for alerting-rule labels and
//! annotations and Alertmanager for notification templates, plus Prometheus's template
//! functions (`humanize`, `query`, ...) and Alertmanager's ([`alertmanager`]).
//!
//! ```
//! use pharos_template::{Funcs, Template, Value};
//!
//! let t = Template::parse("x", "{{ range $i, $v := . }}{{ $i }}={{ $v }} {{ end }}").unwrap();
//! let out = t.execute(&Value::from(vec!["a", "b"]), &Funcs::new()).unwrap();
//! assert_eq!(out, "0=a 1=b ");
//! ```
//!
//! # Why not an existing crate
//! `gtmpl` (the maintained Rust port) takes functions as plain `fn` pointers, so a
//! function cannot capture state: Prometheus's `query` needs the rule's querier and
//! evaluation time, and `externalURL`/`pathPrefix` the server's configuration. It also
//! differs from Go in details alerting depends on (comparison errors between kinds,
//! Go's `%g` formatting that the humanize functions are built on, error texts). This crate
//! is a small lexer/parser/executor that follows Go's `text/template/parse` and `exec`
//! structure instead.
//!
//! # Data
//! Templates read [`Value`]s: nil, bool, int, float, string, list, map (iterated in key
//! order, as Go does), string map (label sets), struct (fixed fields, a missing one is an
//! error), time, duration, and named map or list types with methods (Alertmanager's `KV`).
//!
//! # Features
//! `prometheus` (default): Prometheus's rule-template functions, which need
//! `pharos-model`. Notifier plugins, built for WebAssembly, leave it out.
//!
//! # Safety limits
//! No input panics. Parsing bounds nesting depth; execution bounds template-call depth,
//! total steps and output size ([`Options`]), so a template from a rule file cannot hang or
//! exhaust the process.

pub mod alertmanager;
mod builtins;
mod exec;
mod funcs;
mod gofmt;
mod parse;
#[cfg(feature = "prometheus")]
mod prometheus;
mod timefmt;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use funcs::{
    humanize, humanize_1024, humanize_duration, humanize_percentage, humanize_timestamp,
};
pub use gofmt::sprintf;
#[cfg(feature = "prometheus")]
pub use prometheus::{
    PrometheusContext, QueryFn, QuerySample, alert_error_text, expand_alert_text,
    prometheus_functions,
};
pub use value::{Duration, Methods, Named, Struct, Time, Value};

/// A parse or execution error, worded as Go words it
/// (`template: name:1:12: executing "name" at <.foo>: ...`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Exec(String),
}

/// What `.key` gives for a key a map does not have: Go's `missingkey` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// Go's default: no value, printed `<no value>` (Alertmanager).
    #[default]
    NoValue,
    /// The element type's zero value: `""` for a string map (Prometheus's rule templates
    /// run with `missingkey=zero`, so `{{ $labels.absent }}` is empty).
    Zero,
    /// An execution error.
    Error,
}

/// Execution options and limits.
#[derive(Debug, Clone)]
pub struct Options {
    pub missing_key: MissingKey,
    /// Output larger than this fails the execution.
    pub max_output_bytes: usize,
    /// Nodes evaluated plus loop iterations; more fails the execution.
    pub max_steps: u64,
    /// Nested `{{template}}` calls; deeper fails (Go's limit is 100000, far beyond what
    /// the Rust stack of a worker thread bears).
    pub max_depth: usize,
    /// HTML-escape what actions print, as Go's `html/template` does in HTML text
    /// (Alertmanager renders an email's `html` with it), unless the action's last
    /// command is `html` or `safeHtml`. Go escapes by context (attributes, URLs,
    /// scripts); escaping everything as text is as safe in quoted attributes and text,
    /// which is where notification templates print.
    pub escape_html: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            missing_key: MissingKey::NoValue,
            max_output_bytes: 4 << 20,
            max_steps: 10_000_000,
            max_depth: 200,
            escape_html: false,
        }
    }
}

/// A template function: arguments in, a value or an error message out. It may capture
/// state (a querier, a URL).
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// Named functions available to templates, in addition to Go's builtins (which a function
/// of the same name replaces, as in Go's `Funcs`).
#[derive(Clone, Default)]
pub struct Funcs {
    map: BTreeMap<String, Func>,
}

impl Funcs {
    /// No functions beyond Go's builtins.
    pub fn new() -> Funcs {
        Funcs::default()
    }

    /// Adds or replaces function `name`.
    pub fn insert<F>(&mut self, name: impl Into<String>, f: F) -> &mut Funcs
    where
        F: Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.map.insert(name.into(), Arc::new(f));
        self
    }

    /// Adds every function of `other`, replacing those with the same name.
    pub fn extend(&mut self, other: &Funcs) -> &mut Funcs {
        for (k, f) in &other.map {
            self.map.insert(k.clone(), f.clone());
        }
        self
    }

    /// The function called `name`, if added (builtins are not listed).
    pub fn get(&self, name: &str) -> Option<&Func> {
        self.map.get(name)
    }
}

impl fmt::Debug for Funcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

/// A set of named templates that can call each other: what Go's `*template.Template`
/// holds, e.g. Alertmanager's default templates plus the user's template files.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    trees: BTreeMap<String, Arc<parse::Tree>>,
    options: Options,
}

impl Templates {
    /// An empty set with default [`Options`].
    pub fn new() -> Templates {
        Templates::default()
    }

    /// An empty set with the given options.
    pub fn with_options(options: Options) -> Templates {
        Templates {
            trees: BTreeMap::new(),
            options,
        }
    }

    /// Parses `text` (a template file) and adds the template `name` with its body plus
    /// every `{{define}}`/`{{block}}` in it. A later definition replaces an earlier one of
    /// the same name, except that an empty body does not replace a non-empty one (Go's
    /// rule, which lets a file of definitions leave the other templates alone). On error
    /// nothing is added.
    pub fn add(&mut self, name: &str, text: &str) -> Result<&mut Templates, Error> {
        let trees = parse::parse(name, text)?;
        for t in trees {
            if t.is_empty() && self.trees.get(&t.name).is_some_and(|old| !old.is_empty()) {
                continue;
            }
            self.trees.insert(t.name.clone(), Arc::new(t));
        }
        Ok(self)
    }

    /// Whether a template called `name` is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// The names of the defined templates, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.trees.keys().map(String::as_str)
    }

    /// Fails with Go's parse-time message (`function "x" not defined`) if any template
    /// calls a function neither in `funcs` nor builtin. Go checks this while parsing; here
    /// the functions are given at execution, so a loader calls this to fail early.
    pub fn check_functions(&self, funcs: &Funcs) -> Result<(), Error> {
        for t in self.trees.values() {
            exec::check_functions(t, funcs)?;
        }
        Ok(())
    }

    /// Runs `text` as a new, unnamed template of this set, which it may call into with
    /// `{{ template "name" . }}` (its own `{{ define }}`s apply to this run only): how
    /// Alertmanager expands a notifier's configured fields (`ExecuteTextString`). Empty
    /// text gives empty output.
    pub fn execute_text(&self, text: &str, data: &Value, funcs: &Funcs) -> Result<String, Error> {
        self.execute_text_with(text, data, funcs, false)
    }

    /// [`Templates::execute_text`] for an HTML document: what actions print, here and
    /// in the templates `text` calls, is escaped ([`Options::escape_html`]).
    pub fn execute_html(&self, text: &str, data: &Value, funcs: &Funcs) -> Result<String, Error> {
        self.execute_text_with(text, data, funcs, true)
    }

    fn execute_text_with(
        &self,
        text: &str,
        data: &Value,
        funcs: &Funcs,
        escape_html: bool,
    ) -> Result<String, Error> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let mut set = self.clone();
        set.options.escape_html = escape_html;
        set.add("", text)?;
        set.check_functions(funcs)?;
        set.execute("", data, funcs)
    }

    /// Runs template `name` with `data` as dot and `$`.
    pub fn execute(&self, name: &str, data: &Value, funcs: &Funcs) -> Result<String, Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(Error::Exec(format!(
                "template: no template {name:?} associated with template {:?}",
                self.trees.keys().next().map_or("", String::as_str)
            )));
        };
        exec::execute(self, tree, data, funcs)
    }
}

/// One template (with any templates it defines): the common case of a single text such as
/// an annotation.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    set: Templates,
}

impl Template {
    /// Parses `text` as template `name` with default options.
    pub fn parse(name: &str, text: &str) -> Result<Template, Error> {
        Template::parse_with(name, text, Options::default())
    }

    /// Parses `text` as template `name` with the given options.
    pub fn parse_with(name: &str, text: &str, options: Options) -> Result<Template, Error> {
        let mut set = Templates::with_options(options);
        set.add(name, text)?;
        Ok(Template {
            name: name.to_string(),
            set,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template and its definitions, e.g. to check functions.
    pub fn templates(&self) -> &Templates {
        &self.set
    }

    /// Runs the template with `data` as dot and `$`.
    pub fn execute(&self, data: &Value, funcs: &Funcs) -> Result<String, Error> {
        self.set.execute(&self.name, data, funcs)
    }
}

/// The engine's tests use Prometheus's functions throughout.
#[cfg(all(test, feature = "prometheus"))]
mod tests;
