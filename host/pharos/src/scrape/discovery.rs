//! Target discovery: `static_configs`, `file_sd_configs` and `http_sd_configs`, for
//! scrape jobs and for the notifier's Alertmanager sets alike.
//!
//! Each provider runs as a task and sends its whole current list of target groups to the
//! job's pool whenever it changes. A provider that fails to read (a half-written file, a
//! discovery endpoint answering 500) keeps its last good groups and says why in the
//! log and in `pharos_sd_*_failures_total`, so a bad update never empties a job.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{
    AlertmanagerConfig, ConfigErrors, Decode, FileSdConfig, HttpSdConfig, Path, ScrapeConfig,
    TargetGroup,
};
use crate::telemetry::Telemetry;

/// A target group with its discovery meta labels, tagged with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// A provider's complete, current list of groups.
#[derive(Debug)]
pub struct Update {
    pub provider: usize,
    pub groups: Vec<Group>,
}

/// What one scrape job or Alertmanager set discovers its targets with.
pub struct Sources<'a> {
    /// Names the user of the providers in logs and failure metrics.
    pub name: &'a str,
    pub static_configs: &'a [TargetGroup],
    pub file_sd_configs: &'a [FileSdConfig],
    pub http_sd_configs: &'a [HttpSdConfig],
}

impl<'a> From<&'a ScrapeConfig> for Sources<'a> {
    fn from(job: &'a ScrapeConfig) -> Sources<'a> {
        Sources {
            name: &job.job_name,
            static_configs: &job.static_configs,
            file_sd_configs: &job.file_sd_configs,
            http_sd_configs: &job.http_sd_configs,
        }
    }
}

impl<'a> Sources<'a> {
    /// The providers of one `alerting.alertmanagers` entry, named `name`.
    pub fn alertmanagers(name: &'a str, am: &'a AlertmanagerConfig) -> Sources<'a> {
        Sources {
            name,
            static_configs: &am.static_configs,
            file_sd_configs: &am.file_sd_configs,
            http_sd_configs: &am.http_sd_configs,
        }
    }
}

/// Starts every provider of `job`; their updates arrive on `tx`. Returns the number of
/// providers (the pool waits for each to report once before retiring handed-over
/// targets) and their tasks, which end when aborted or when `tx` closes.
pub fn start(
    job: Sources<'_>,
    tx: mpsc::Sender<Update>,
    telemetry: &Arc<Telemetry>,
) -> anyhow::Result<(usize, Vec<JoinHandle<()>>)> {
    let mut tasks = Vec::new();
    let mut provider = 0;
    if !job.static_configs.is_empty() {
        let groups = job
            .static_configs
            .iter()
            .map(|g| Group {
                targets: g.targets.clone(),
                labels: g.labels.clone(),
            })
            .collect();
        // The channel is fresh, so this cannot be full; a closed pool is fine to ignore.
        let _ = tx.try_send(Update { provider, groups });
        provider += 1;
    }
    for sd in job.file_sd_configs {
        tasks.push(tokio::spawn(run_file_sd(
            sd.clone(),
            provider,
            tx.clone(),
            telemetry.clone(),
            job.name.to_owned(),
        )));
        provider += 1;
    }
    for sd in job.http_sd_configs {
        let client = super::client::build(&sd.http)?;
        tasks.push(tokio::spawn(run_http_sd(
            sd.clone(),
            client,
            provider,
            tx.clone(),
            telemetry.clone(),
            job.name.to_owned(),
        )));
        provider += 1;
    }
    Ok((provider, tasks))
}

/// Decodes a JSON list of target groups, as file_sd files and http_sd replies hold.
fn parse_groups(text: &[u8], meta: (&str, &str)) -> Result<Vec<Group>, String> {
    let value: Value = serde_json::from_slice(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut errs = ConfigErrors::new();
    let groups = Vec::<TargetGroup>::decode(&value, &Path::Root, &mut errs);
    match groups {
        Some(groups) if errs.is_empty() => Ok(groups
            .into_iter()
            .map(|g| {
                let mut labels = g.labels;
                labels.insert(meta.0.to_owned(), meta.1.to_owned());
                Group {
                    targets: g.targets,
                    labels,
                }
            })
            .collect()),
        _ => Err(errs.to_string().replace('\n', "; ")),
    }
}

async fn run_file_sd(
    sd: FileSdConfig,
    provider: usize,
    tx: mpsc::Sender<Update>,
    telemetry: Arc<Telemetry>,
    job: String,
) {
    // Change notifications only wake the loop; the files are always re-read whole.
    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
    let _watcher = watch_dirs(&sd.files, wake_tx);
    let mut last_good: HashMap<PathBuf, Vec<Group>> = HashMap::new();
    let mut sent: Option<Vec<Group>> = None;
    loop {
        let mut current = HashMap::new();
        for path in expand(&sd.files) {
            match std::fs::read(&path) {
                Ok(text) => {
                    let shown = path.display().to_string();
                    match parse_groups(&text, ("__meta_filepath", &shown)) {
                        Ok(groups) => {
                            current.insert(path, groups);
                        }
                        Err(e) => {
                            telemetry.sd_failures.with(&["file", &job]).inc();
                            tracing::error!(job = %job, file = %shown, error = %e, "file_sd: cannot read target groups, keeping the last good ones");
                            if let Some(old) = last_good.get(&path) {
                                current.insert(path, old.clone());
                            }
                        }
                    }
                }
                // Removed between listing and reading: gone.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    telemetry.sd_failures.with(&["file", &job]).inc();
                    tracing::error!(job = %job, file = %path.display(), error = %e, "file_sd: cannot read file, keeping the last good target groups");
                    if let Some(old) = last_good.get(&path) {
                        current.insert(path, old.clone());
                    }
                }
            }
        }
        last_good = current;
        let mut paths: Vec<&PathBuf> = last_good.keys().collect();
        paths.sort();
        let groups: Vec<Group> = paths
            .into_iter()
            .flat_map(|p| last_good[p].iter().cloned())
            .collect();
        if !publish(&tx, provider, groups, &mut sent).await {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(sd.refresh_interval.as_std()) => {}
            Some(()) = wake_rx.recv() => {
                // Editors write in several steps; let them finish.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while wake_rx.try_recv().is_ok() {}
            }
        }
    }
}

/// The files matching the configured paths and globs, sorted.
fn expand(patterns: &[String]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = patterns
        .iter()
        .filter_map(|p| glob::glob(p).ok())
        .flat_map(|paths| paths.filter_map(Result::ok))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Watches the directories holding the patterns (files may not exist yet, and editors
/// replace files by renaming). `None` if the platform refuses; the refresh interval
/// still catches changes then.
fn watch_dirs(patterns: &[String], wake: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |_event| {
        let _ = wake.try_send(());
    })
    .map_err(
        |e| tracing::warn!(error = %e, "file_sd: cannot watch files, relying on refresh_interval"),
    )
    .ok()?;
    let mut dirs: Vec<PathBuf> = patterns
        .iter()
        .map(|p| {
            FsPath::new(p)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), FsPath::to_path_buf)
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "file_sd: cannot watch directory, relying on refresh_interval");
        }
    }
    Some(watcher)
}

async fn run_http_sd(
    sd: HttpSdConfig,
    client: reqwest::Client,
    provider: usize,
    tx: mpsc::Sender<Update>,
    telemetry: Arc<Telemetry>,
    job: String,
) {
    let mut sent: Option<Vec<Group>> = None;
    loop {
        match fetch_groups(&client, &sd).await {
            Ok(groups) => {
                if !publish(&tx, provider, groups, &mut sent).await {
                    return;
                }
            }
            Err(e) => {
                telemetry.sd_failures.with(&["http", &job]).inc();
                tracing::error!(job = %job, url = %sd.url, error = %e, "http_sd: refresh failed, keeping the last good target groups");
                // Report "nothing yet" once, so the pool does not wait on us.
                if sent.is_none() && !publish(&tx, provider, Vec::new(), &mut sent).await {
                    return;
                }
            }
        }
        tokio::time::sleep(sd.refresh_interval.as_std()).await;
    }
}

/// Sends a provider's groups to its pool when they differ from what it last sent;
/// `false` once the pool has gone.
async fn publish(
    tx: &mpsc::Sender<Update>,
    provider: usize,
    groups: Vec<Group>,
    sent: &mut Option<Vec<Group>>,
) -> bool {
    if sent.as_ref() == Some(&groups) {
        return true;
    }
    let update = Update {
        provider,
        groups: groups.clone(),
    };
    if tx.send(update).await.is_err() {
        return false;
    }
    *sent = Some(groups);
    true
}

async fn fetch_groups(client: &reqwest::Client, sd: &HttpSdConfig) -> Result<Vec<Group>, String> {
    let resp = client
        .get(&sd.url)
        .header(reqwest::header::ACCEPT, "application/json")
        .header(
            "X-Prometheus-Refresh-Interval-Seconds",
            sd.refresh_interval.as_std().as_secs().to_string(),
        )
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let json = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !json {
        return Err("unsupported content type: expected application/json".into());
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    parse_groups(&body, ("__meta_url", &sd.url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_get_meta_labels_and_bad_ones_are_explained() {
        let groups = parse_groups(
            br#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}]"#,
            ("__meta_filepath", "/etc/sd/x.json"),
        )
        .unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].targets, ["a:1", "b:2"]);
        assert_eq!(groups[0].labels["env"], "prod");
        assert_eq!(groups[1].labels["__meta_filepath"], "/etc/sd/x.json");

        let err = parse_groups(br#"[{"targets": "a:1"}]"#, ("m", "v")).unwrap_err();
        assert_eq!(err, "[0].targets: expected an array, found string");
        let err = parse_groups(
            br#"[{"targets": ["a:1"], "labels": {"1x": "y"}}]"#,
            ("m", "v"),
        )
        .unwrap_err();
        assert!(err.contains("invalid label name"), "{err}");
        assert!(
            parse_groups(b"[{", ("m", "v"))
                .unwrap_err()
                .starts_with("invalid JSON")
        );
    }

    #[test]
    fn globs_expand_to_existing_files_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.json", "b.json", "c.txt"] {
            std::fs::write(dir.path().join(name), "[]").unwrap();
        }
        let pattern = format!("{}/*.json", dir.path().display());
        let missing = format!("{}/none.json", dir.path().display());
        let found = expand(&[pattern, missing]);
        assert_eq!(
            found,
            [dir.path().join("a.json"), dir.path().join("b.json")]
        );
    }
}
