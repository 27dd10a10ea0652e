//! The command line: `pharos run`, `pharos check config|rules`, `pharos test rules`,
//! `pharos tsdb`, `pharos plugin`, `pharos version`.

use crate::config::ListenAddress;
use crate::daemon::{self, ConfigSource};
use crate::telemetry::build;
use crate::telemetry::logging::{self, LogFormat, LogLevel};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Pharos scrapes, stores, queries, federates, accepts pushes, evaluates rules and
/// routes alerts: the Prometheus HA stack in one binary, configured by one JSON file.
#[derive(Debug, Parser)]
#[command(name = "pharos", version = build::VERSION, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon. Without --config, runs the built-in all-in-one configuration
    /// (HTTP endpoints on 0.0.0.0:9090).
    Run(RunArgs),
    /// Check files without running anything; exits 1 if any has errors.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Run unit tests, as promtool does.
    #[command(subcommand)]
    Test(TestCommand),
    /// Inspect a TSDB data directory (read-only).
    #[command(subcommand)]
    Tsdb(TsdbCommand),
    /// Work with WebAssembly plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Print version and build information.
    Version,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Print a component's world, pharos:plugin version, imports and exports.
    Inspect {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Write a plugin skeleton that builds with `cargo build --release --target wasm32-wasip2`.
    New {
        /// The world the plugin targets.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The plugin's language (only Rust has a template).
        #[arg(long, value_enum, default_value = "rust")]
        lang: LangArg,
        /// The package name; defaults to the directory's name.
        #[arg(long)]
        name: Option<String>,
        /// The sdk/rust directory to depend on; defaults to the source tree this binary
        /// was built from.
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
        /// Where to write it (created; existing files are never overwritten).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Exporter,
    Relabeler,
    Notifier,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LangArg {
    Rust,
}

#[derive(Debug, Subcommand)]
enum TsdbCommand {
    /// Series, samples, bytes per sample and label cardinality of the persisted blocks.
    Analyze {
        /// The data directory (storage.tsdb.path).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// How many label names and pairs to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Build blocks from an OpenMetrics file with timestamps, then compact them.
    ImportOpenmetrics {
        /// The data directory to write (stop any daemon using it first).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The OpenMetrics file; every sample needs a timestamp.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print every persisted sample as `{labels} value timestamp_ms` (as promtool does).
    Dump {
        /// The data directory (storage.tsdb.path).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Earliest timestamp to print, in ms since the epoch.
        #[arg(long = "min-time", default_value_t = i64::MIN, allow_hyphen_values = true)]
        min_time: i64,
        /// Latest timestamp to print, in ms since the epoch.
        #[arg(long = "max-time", default_value_t = i64::MAX, allow_hyphen_values = true)]
        max_time: i64,
        /// Also print the head, replayed from the write-ahead log, as promtool does.
        /// This opens the directory as a database: only use it when no daemon runs on it.
        #[arg(long)]
        head: bool,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The JSON configuration file. Re-read on SIGHUP and on POST /-/reload.
    #[arg(long, visible_alias = "config.file", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen here instead of the configuration's web.listen_address
    /// (for example 127.0.0.1:0 to pick a free loopback port).
    #[arg(long = "web.listen-address", value_name = "HOST:PORT")]
    listen_address: Option<ListenAddress>,
    /// Serve /api/v1/admin/tsdb/* (snapshot, delete_series, clean_tombstones), which
    /// let any client that reaches the HTTP port delete data; off as in Prometheus.
    #[arg(long = "web.enable-admin-api")]
    enable_admin_api: bool,
    /// Where compiled plugins are cached (default: plugin-cache in the TSDB directory;
    /// without storage, plugins are compiled at every start).
    #[arg(long = "plugins.cache-dir", value_name = "DIR")]
    plugins_cache_dir: Option<PathBuf>,
    /// How long Pharos may have been down for alerts' `for` state to be restored from
    /// ALERTS_FOR_STATE at start.
    #[arg(
        long = "rules.alert.for-outage-tolerance",
        default_value = "1h",
        value_name = "DURATION"
    )]
    for_outage_tolerance: crate::config::Duration,
    /// The least time an alert waits to fire after its `for` state is restored; rules
    /// whose `for` is shorter are not restored.
    #[arg(
        long = "rules.alert.for-grace-period",
        default_value = "10m",
        value_name = "DURATION"
    )]
    for_grace_period: crate::config::Duration,
    /// The least time between two sends of a firing alert to the routers.
    #[arg(
        long = "rules.alert.resend-delay",
        default_value = "1m",
        value_name = "DURATION"
    )]
    resend_delay: crate::config::Duration,
    /// The URL users reach Pharos at (behind a proxy, say), for alerts' generator URLs
    /// and templates' $externalURL. Default: http://<hostname>:<port>.
    #[arg(long = "web.external-url", value_name = "URL")]
    external_url: Option<String>,
    /// Log line format, written to standard error.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    log_format: LogFormat,
    /// Least severe level to log. RUST_LOG, when set, takes precedence.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    log_level: LogLevel,
}

#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// Validate configuration files (and the rule files they name) and list every
    /// error with its JSON path.
    Config {
        /// Files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Validate rule files and list every error with its file and JSON path.
    Rules {
        /// Files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TestCommand {
    /// Run rule unit tests (promtool's format, in JSON); exits 1 if any fails.
    Rules {
        /// Test files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// Parses the command line and runs the chosen command.
pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Check(CheckCommand::Config { files }) => check_config(&files),
        Command::Check(CheckCommand::Rules { files }) => check_rules(&files),
        Command::Test(TestCommand::Rules { files }) => {
            let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
            if crate::rules::unit_test::run_files(&files, &mut stdout.lock(), &mut stderr.lock()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Tsdb(cmd) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let result = match cmd {
                TsdbCommand::Analyze { dir, limit } => {
                    crate::tsdb_tools::analyze(&dir, limit, &mut out)
                }
                TsdbCommand::ImportOpenmetrics { data, file } => {
                    crate::tsdb_tools::import_openmetrics(&data, &file, &mut out)
                }
                TsdbCommand::Dump {
                    dir,
                    min_time,
                    max_time,
                    head: false,
                } => crate::tsdb_tools::dump(&dir, min_time, max_time, &mut out),
                TsdbCommand::Dump {
                    dir,
                    min_time,
                    max_time,
                    head: true,
                } => crate::tsdb_tools::dump_with_head(&dir, min_time, max_time, &mut out),
            };
            match result.and_then(|()| std::io::Write::flush(&mut out).map_err(Into::into)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pharos tsdb: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Plugin(cmd) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let result = match cmd {
                PluginCommand::Inspect { file } => crate::plugin_tools::inspect(&file, &mut out),
                PluginCommand::New {
                    kind,
                    lang: LangArg::Rust,
                    name,
                    sdk,
                    dir,
                } => {
                    let kind = match kind {
                        KindArg::Exporter => pharos_artifacts::PluginKind::Exporter,
                        KindArg::Relabeler => pharos_artifacts::PluginKind::Relabeler,
                        KindArg::Notifier => pharos_artifacts::PluginKind::Notifier,
                    };
                    crate::plugin_tools::new_plugin(
                        kind,
                        &dir,
                        name.as_deref(),
                        sdk.as_deref(),
                        &mut out,
                    )
                }
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pharos plugin: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Version => {
            println!(
                "pharos, version {} (revision: {})\n  build rust: {}",
                build::VERSION,
                build::REVISION,
                build::RUSTC
            );
            ExitCode::SUCCESS
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    logging::init(args.log_format, args.log_level);
    if let Some(url) = &args.external_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        eprintln!("pharos: --web.external-url must be an http:// or https:// URL, got {url:?}");
        return ExitCode::FAILURE;
    }
    let source = match args.config {
        Some(path) => ConfigSource::File(path),
        None => ConfigSource::Embedded,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pharos: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rules = crate::rules::RuleOptions {
        outage_tolerance: args.for_outage_tolerance.as_std(),
        grace_period: args.for_grace_period.as_std(),
        resend_delay: args.resend_delay.as_std(),
    };
    match runtime.block_on(daemon::run(
        source,
        args.listen_address,
        args.enable_admin_api,
        args.plugins_cache_dir,
        rules,
        args.external_url,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}").replace('\n', "; "), "pharos stopped");
            eprintln!("pharos: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        println!("Checking {}", file.display());
        match crate::config::load(file) {
            Ok(_) => println!("  SUCCESS"),
            Err(errs) => {
                failed = true;
                let n = errs.iter().count();
                println!("  FAILED: {n} error{}", if n == 1 { "" } else { "s" });
                for e in errs.iter() {
                    println!("  - {e}");
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `pharos check rules`: as `promtool check rules`, one verdict per file.
fn check_rules(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        println!("Checking {}", file.display());
        match crate::config::load_rule_file(file) {
            Ok(groups) => {
                let n: usize = groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {n} rules found\n");
            }
            Err(errs) => {
                failed = true;
                let n = errs.len();
                println!("  FAILED: {n} error{}", if n == 1 { "" } else { "s" });
                for e in errs.iter() {
                    println!("  - {e}");
                }
                println!();
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
