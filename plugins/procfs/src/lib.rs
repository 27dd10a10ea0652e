//! `procfs`: an exporter for the host's CPU, memory, load, network and disk
//! statistics, read from `/proc` under the metric names, labels and units of
//! the Prometheus node exporter (`node_cpu_seconds_total{cpu,mode}`,
//! `node_memory_MemAvailable_bytes`, `node_load1`, ...), so existing
//! dashboards and alerts work unchanged.
//!
//! The plugin reads files, so the operator must grant the directory with
//! `read_dirs` in the plugin's Pharos configuration; inside the sandbox it
//! appears at the same path. Configuration (every field optional):
//!
//! ```json
//! {
//!   "root": "/proc",
//!   "collectors": ["cpu", "stat", "meminfo", "loadavg", "netdev", "diskstats"],
//!   "disk_ignore": "^(ram|loop|fd)\\d+$",
//!   "netdev_ignore": "^veth"
//! }
//! ```
//!
//! - `root` (default `/proc`): where the proc filesystem is, e.g. `/host/proc`
//!   in a container that mounts the host's.
//! - `collectors` (default all): which groups of metrics to collect.
//! - `disk_ignore`: devices of `diskstats` to leave out, a regular expression
//!   matched against the whole name. The default leaves out RAM disks, loop
//!   devices, floppies and partitions (whose I/O their disk already counts);
//!   `""` keeps every device.
//! - `netdev_ignore`: interfaces of `netdev` to leave out (default: none).

mod parse;

use pharos_sdk::log::Throttle;
use pharos_sdk::{Exporter, MetricFamily, PluginError, Registry, config};
use regex::Regex;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Devices whose numbers are noise or double counting: RAM disks, loop
/// devices, floppies, and partitions of SCSI, virtio, Xen, NVMe and MMC disks.
const DEFAULT_DISK_IGNORE: &str =
    r"(z?ram|loop|fd)\d+|(h|s|v|xv)d[a-z]+\d+|nvme\d+n\d+p\d+|mmcblk\d+p\d+";

/// Turns the text of one file into families.
type FillFn = fn(&Procfs, &mut Registry, &str);

/// A group of metrics, each read from one file.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Collector {
    /// `node_cpu_seconds_total`, `node_cpu_guest_seconds_total` (`stat`).
    Cpu,
    /// Boot time, context switches, forks, interrupts, processes (`stat`).
    Stat,
    /// `node_memory_*` (`meminfo`).
    Meminfo,
    /// `node_load1`, `node_load5`, `node_load15` (`loadavg`).
    Loadavg,
    /// `node_network_*` (`net/dev`).
    Netdev,
    /// `node_disk_*` (`diskstats`).
    Diskstats,
}

const ALL_COLLECTORS: [Collector; 6] = [
    Collector::Cpu,
    Collector::Stat,
    Collector::Meminfo,
    Collector::Loadavg,
    Collector::Netdev,
    Collector::Diskstats,
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_root")]
    root: String,
    collectors: Option<Vec<Collector>>,
    disk_ignore: Option<String>,
    netdev_ignore: Option<String>,
}

fn default_root() -> String {
    "/proc".to_owned()
}

/// The configured exporter.
#[derive(Debug)]
pub struct Procfs {
    root: PathBuf,
    collectors: Vec<Collector>,
    disk_ignore: Option<Regex>,
    netdev_ignore: Option<Regex>,
    /// Unreadable files are reported at most once per interval.
    read_errors: Throttle,
}

/// A regular expression that must match the whole name, as Prometheus
/// anchors its regular expressions; `""` means none.
fn anchored(path: &str, pattern: &str) -> Result<Option<Regex>, PluginError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(&format!("^(?:{pattern})$"))
        .map(Some)
        .map_err(|error| config::invalid(path, error))
}

impl Procfs {
    pub fn from_config(config: &str) -> Result<Self, PluginError> {
        let raw: RawConfig = config::parse(config)?;
        if !raw.root.starts_with('/') {
            return Err(config::invalid("root", "must be an absolute path"));
        }
        let collectors = raw.collectors.unwrap_or_else(|| ALL_COLLECTORS.to_vec());
        if collectors.is_empty() {
            return Err(config::invalid(
                "collectors",
                "must name at least one collector",
            ));
        }
        let disk_ignore = raw.disk_ignore.as_deref().unwrap_or(DEFAULT_DISK_IGNORE);
        Ok(Procfs {
            root: PathBuf::from(raw.root),
            collectors,
            disk_ignore: anchored("disk_ignore", disk_ignore)?,
            netdev_ignore: anchored("netdev_ignore", raw.netdev_ignore.as_deref().unwrap_or(""))?,
            read_errors: Throttle::new(Duration::from_secs(300)),
        })
    }

    fn enabled(&self, collector: Collector) -> bool {
        self.collectors.contains(&collector)
    }

    fn read(&self, file: &str) -> Result<String, String> {
        let path = self.root.join(file);
        std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Collects every enabled group; a group whose file cannot be read is
    /// left out, and only when every group failed is the scrape failed.
    pub fn gather(&mut self) -> Result<Vec<MetricFamily>, PluginError> {
        let mut registry = Registry::new();
        let mut failures = Vec::new();
        let mut attempts = 0;

        if self.enabled(Collector::Cpu) || self.enabled(Collector::Stat) {
            attempts += 1;
            match self.read("stat") {
                Ok(text) => {
                    let stat = parse::stat(&text);
                    if self.enabled(Collector::Cpu) {
                        cpu_metrics(&mut registry, &stat);
                    }
                    if self.enabled(Collector::Stat) {
                        stat_metrics(&mut registry, &stat);
                    }
                }
                Err(error) => failures.push(error),
            }
        }
        let files: [(Collector, &str, FillFn); 4] = [
            (Collector::Meminfo, "meminfo", |_, r, text| {
                meminfo_metrics(r, text)
            }),
            (Collector::Loadavg, "loadavg", |_, r, text| {
                loadavg_metrics(r, text)
            }),
            (Collector::Netdev, "net/dev", |p, r, text| {
                netdev_metrics(r, text, p.netdev_ignore.as_ref());
            }),
            (Collector::Diskstats, "diskstats", |p, r, text| {
                diskstats_metrics(r, text, p.disk_ignore.as_ref());
            }),
        ];
        for (collector, file, fill) in files {
            if !self.enabled(collector) {
                continue;
            }
            attempts += 1;
            match self.read(file) {
                Ok(text) => fill(self, &mut registry, &text),
                Err(error) => failures.push(error),
            }
        }

        if !failures.is_empty() && failures.len() == attempts {
            return Err(PluginError::transient(format!(
                "cannot read any file under {} (is it granted in read_dirs?): {}",
                self.root.display(),
                failures.join("; ")
            )));
        }
        if !failures.is_empty() && self.read_errors.ready() {
            pharos_sdk::warn!("left out what could not be read: {}", failures.join("; "));
        }
        Ok(registry.into_families())
    }
}

fn cpu_metrics(registry: &mut Registry, stat: &parse::Stat) {
    let seconds = registry.counter(
        "node_cpu_seconds_total",
        "Seconds each CPU spent in each mode.",
    );
    for cpu in &stat.cpus {
        for (mode, value) in parse::CPU_MODES.iter().zip(&cpu.modes) {
            seconds.add(&[("cpu", &cpu.cpu), ("mode", mode)], *value);
        }
    }
    if stat.cpus.iter().any(|cpu| cpu.guest.is_some()) {
        let guest = registry.counter(
            "node_cpu_guest_seconds_total",
            "Seconds each CPU spent running guests (virtual machines), by mode; also counted in node_cpu_seconds_total.",
        );
        for cpu in &stat.cpus {
            if let Some((normal, nice)) = cpu.guest {
                guest.add(&[("cpu", &cpu.cpu), ("mode", "user")], normal);
                guest.add(&[("cpu", &cpu.cpu), ("mode", "nice")], nice);
            }
        }
    }
}

fn stat_metrics(registry: &mut Registry, stat: &parse::Stat) {
    let scalars = [
        (
            "node_boot_time_seconds",
            "When the system booted, in seconds since the Unix epoch.",
            false,
            stat.boot_time,
        ),
        (
            "node_context_switches_total",
            "Context switches since boot.",
            true,
            stat.context_switches,
        ),
        (
            "node_forks_total",
            "Processes and threads created since boot.",
            true,
            stat.forks,
        ),
        (
            "node_intr_total",
            "Interrupts serviced since boot.",
            true,
            stat.interrupts,
        ),
        (
            "node_procs_running",
            "Processes currently runnable.",
            false,
            stat.procs_running,
        ),
        (
            "node_procs_blocked",
            "Processes currently blocked waiting for I/O.",
            false,
            stat.procs_blocked,
        ),
    ];
    for (name, help, counter, value) in scalars {
        let Some(value) = value else { continue };
        let family = if counter {
            registry.counter(name, help)
        } else {
            registry.gauge(name, help)
        };
        family.add(&[], value);
    }
}

fn meminfo_metrics(registry: &mut Registry, text: &str) {
    for field in parse::meminfo(text) {
        let name = format!("node_memory_{}", field.name);
        let help = format!("The {} field of /proc/meminfo.", field.name);
        registry.gauge(&name, &help).add(&[], field.value);
    }
}

fn loadavg_metrics(registry: &mut Registry, text: &str) {
    let Some([one, five, fifteen]) = parse::loadavg(text) else {
        return;
    };
    registry
        .gauge("node_load1", "System load averaged over 1 minute.")
        .add(&[], one);
    registry
        .gauge("node_load5", "System load averaged over 5 minutes.")
        .add(&[], five);
    registry
        .gauge("node_load15", "System load averaged over 15 minutes.")
        .add(&[], fifteen);
}

fn netdev_metrics(registry: &mut Registry, text: &str, ignore: Option<&Regex>) {
    let devices: Vec<parse::NetDev> = parse::netdev(text)
        .into_iter()
        .filter(|dev| !ignore.is_some_and(|re| re.is_match(&dev.device)))
        .collect();
    for (direction, columns) in [
        ("receive", &parse::NETDEV_RECEIVE),
        ("transmit", &parse::NETDEV_TRANSMIT),
    ] {
        for (index, column) in columns.iter().enumerate() {
            let name = format!("node_network_{direction}_{column}_total");
            let help = format!("The {direction} {column} counter of each network interface.");
            let family = registry.counter(&name, &help);
            for dev in &devices {
                let values = if direction == "receive" {
                    &dev.receive
                } else {
                    &dev.transmit
                };
                if let Some(value) = values.get(index) {
                    family.add(&[("device", &dev.device)], *value);
                }
            }
        }
    }
}

/// How each `/proc/diskstats` counter becomes a metric: name, help, the
/// factor from the kernel's unit to the metric's, and whether it is a gauge.
const DISK_METRICS: [(&str, &str, f64, bool); 17] = [
    (
        "node_disk_reads_completed_total",
        "Reads completed.",
        1.0,
        false,
    ),
    (
        "node_disk_reads_merged_total",
        "Adjacent reads merged into one.",
        1.0,
        false,
    ),
    (
        "node_disk_read_bytes_total",
        "Bytes read.",
        parse::SECTOR_BYTES,
        false,
    ),
    (
        "node_disk_read_time_seconds_total",
        "Seconds spent on reads, summed over all reads.",
        0.001,
        false,
    ),
    (
        "node_disk_writes_completed_total",
        "Writes completed.",
        1.0,
        false,
    ),
    (
        "node_disk_writes_merged_total",
        "Adjacent writes merged into one.",
        1.0,
        false,
    ),
    (
        "node_disk_written_bytes_total",
        "Bytes written.",
        parse::SECTOR_BYTES,
        false,
    ),
    (
        "node_disk_write_time_seconds_total",
        "Seconds spent on writes, summed over all writes.",
        0.001,
        false,
    ),
    ("node_disk_io_now", "I/O requests in progress.", 1.0, true),
    (
        "node_disk_io_time_seconds_total",
        "Seconds the device had I/O in progress.",
        0.001,
        false,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "Seconds of I/O in progress, weighted by the number of requests in progress.",
        0.001,
        false,
    ),
    (
        "node_disk_discards_completed_total",
        "Discards completed.",
        1.0,
        false,
    ),
    (
        "node_disk_discards_merged_total",
        "Adjacent discards merged into one.",
        1.0,
        false,
    ),
    (
        "node_disk_discarded_sectors_total",
        "Sectors discarded.",
        1.0,
        false,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "Seconds spent on discards, summed over all discards.",
        0.001,
        false,
    ),
    (
        "node_disk_flush_requests_total",
        "Flush requests completed.",
        1.0,
        false,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "Seconds spent on flush requests, summed over all of them.",
        0.001,
        false,
    ),
];

fn diskstats_metrics(registry: &mut Registry, text: &str, ignore: Option<&Regex>) {
    let disks: Vec<parse::DiskStats> = parse::diskstats(text)
        .into_iter()
        .filter(|disk| !ignore.is_some_and(|re| re.is_match(&disk.device)))
        .collect();
    for (index, (name, help, factor, gauge)) in DISK_METRICS.iter().enumerate() {
        // Older kernels report 11 or 15 counters: leave out the families
        // none of the devices has.
        if !disks.iter().any(|disk| disk.counters.len() > index) {
            continue;
        }
        let family = if *gauge {
            registry.gauge(name, help)
        } else {
            registry.counter(name, help)
        };
        for disk in &disks {
            if let Some(value) = disk.counters.get(index) {
                family.add(&[("device", &disk.device)], value * factor);
            }
        }
    }
}

impl Exporter for Procfs {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let plugin = Procfs::from_config(config)?;
        pharos_sdk::info!(
            "reading {:?} from {}",
            plugin.collectors,
            plugin.root.display()
        );
        Ok(plugin)
    }

    fn collect(&mut self) -> Result<Vec<MetricFamily>, PluginError> {
        self.gather()
    }
}

pharos_sdk::export_exporter!(Procfs);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::{MetricPoints, ScalarPoint};
    use std::fs;
    use std::path::Path;

    /// A copy of the fixtures laid out like `/proc`, in a directory of its own.
    fn fixture_root(test: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("pharos-procfs-{}-{test}", std::process::id()));
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        fs::create_dir_all(root.join("net")).unwrap();
        for (from, to) in [
            ("stat", "stat"),
            ("meminfo", "meminfo"),
            ("loadavg", "loadavg"),
            ("netdev", "net/dev"),
            ("diskstats", "diskstats"),
        ] {
            fs::copy(fixtures.join(from), root.join(to)).unwrap();
        }
        root
    }

    fn config_for(root: &Path, extra: &str) -> String {
        format!(r#"{{"root": {:?}{extra}}}"#, root.display().to_string())
    }

    fn points<'a>(families: &'a [MetricFamily], name: &str) -> &'a [ScalarPoint] {
        let family = families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name}"));
        match &family.points {
            MetricPoints::Counter(p) | MetricPoints::Gauge(p) | MetricPoints::Untyped(p) => p,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn value(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: Vec<pharos_sdk::Label> = labels
            .iter()
            .map(|(n, v)| pharos_sdk::Label::new(*n, *v))
            .collect();
        points(families, name)
            .iter()
            .find(|p| p.labels == wanted)
            .unwrap_or_else(|| panic!("{name}{labels:?} missing"))
            .value
    }

    fn is_counter(families: &[MetricFamily], name: &str) -> bool {
        families
            .iter()
            .any(|f| f.name == name && matches!(f.points, MetricPoints::Counter(_)))
    }

    #[test]
    fn collects_node_metrics_from_a_proc_tree() {
        let root = fixture_root("all");
        let mut plugin = Procfs::from_config(&config_for(&root, "")).unwrap();
        let families = plugin.gather().unwrap();

        assert_eq!(
            value(
                &families,
                "node_cpu_seconds_total",
                &[("cpu", "1"), ("mode", "iowait")]
            ),
            11.11
        );
        assert_eq!(points(&families, "node_cpu_seconds_total").len(), 16);
        assert_eq!(
            value(
                &families,
                "node_cpu_guest_seconds_total",
                &[("cpu", "0"), ("mode", "user")]
            ),
            0.4
        );
        assert!(is_counter(&families, "node_cpu_seconds_total"));

        assert_eq!(
            value(&families, "node_boot_time_seconds", &[]),
            1_731_990_000.0
        );
        assert_eq!(
            value(&families, "node_context_switches_total", &[]),
            41_237_455.0
        );
        assert_eq!(value(&families, "node_forks_total", &[]), 802_211.0);
        assert_eq!(value(&families, "node_intr_total", &[]), 9_812_734.0);
        assert_eq!(value(&families, "node_procs_running", &[]), 3.0);
        assert_eq!(value(&families, "node_procs_blocked", &[]), 1.0);
        assert!(is_counter(&families, "node_forks_total"));
        assert!(!is_counter(&families, "node_procs_running"));

        assert_eq!(
            value(&families, "node_memory_MemTotal_bytes", &[]),
            16_318_412.0 * 1024.0
        );
        assert_eq!(
            value(&families, "node_memory_Buffers_bytes", &[]),
            412_300.0 * 1024.0
        );
        assert_eq!(value(&families, "node_memory_HugePages_Free", &[]), 0.0);

        assert_eq!(value(&families, "node_load1", &[]), 0.52);
        assert_eq!(value(&families, "node_load15", &[]), 1.05);

        let eth0 = [("device", "eth0")];
        assert_eq!(
            value(&families, "node_network_receive_bytes_total", &eth0),
            98_765_432.0
        );
        assert_eq!(
            value(&families, "node_network_receive_multicast_total", &eth0),
            77.0
        );
        assert_eq!(
            value(&families, "node_network_transmit_colls_total", &eth0),
            4.0
        );
        assert_eq!(
            value(&families, "node_network_transmit_carrier_total", &eth0),
            6.0
        );
        assert_eq!(
            points(&families, "node_network_receive_errs_total").len(),
            2
        );

        let nvme = [("device", "nvme0n1")];
        assert_eq!(
            value(&families, "node_disk_reads_completed_total", &nvme),
            150_000.0
        );
        assert_eq!(
            value(&families, "node_disk_read_bytes_total", &nvme),
            9_000_000.0 * 512.0
        );
        assert_eq!(
            value(&families, "node_disk_written_bytes_total", &nvme),
            24_000_000.0 * 512.0
        );
        assert_eq!(
            value(&families, "node_disk_read_time_seconds_total", &nvme),
            45.0
        );
        assert_eq!(
            value(&families, "node_disk_io_time_seconds_total", &nvme),
            98.0
        );
        assert_eq!(value(&families, "node_disk_io_now", &nvme), 2.0);
        assert_eq!(
            value(&families, "node_disk_flush_requests_total", &nvme),
            7000.0
        );
        // loop devices and partitions are ignored by default; sda's old
        // kernel format has no discard or flush counters.
        assert_eq!(
            points(&families, "node_disk_reads_completed_total").len(),
            2
        );
        assert_eq!(points(&families, "node_disk_flush_requests_total").len(), 1);
        assert!(!is_counter(&families, "node_disk_io_now"));

        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn collectors_and_ignore_patterns_are_configurable() {
        let root = fixture_root("some");
        let config = config_for(
            &root,
            r#", "collectors": ["netdev", "diskstats"], "disk_ignore": "", "netdev_ignore": "lo""#,
        );
        let families = Procfs::from_config(&config).unwrap().gather().unwrap();
        assert!(
            families
                .iter()
                .all(|f| f.name.starts_with("node_network_") || f.name.starts_with("node_disk_"))
        );
        assert_eq!(
            points(&families, "node_network_receive_bytes_total").len(),
            1
        );
        assert_eq!(
            points(&families, "node_disk_reads_completed_total").len(),
            4
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn missing_files_are_left_out_until_nothing_is_left() {
        let root = fixture_root("missing");
        fs::remove_file(root.join("diskstats")).unwrap();
        let families = Procfs::from_config(&config_for(&root, ""))
            .unwrap()
            .gather()
            .unwrap();
        assert!(families.iter().any(|f| f.name == "node_load1"));
        assert!(!families.iter().any(|f| f.name.starts_with("node_disk_")));

        let empty = root.join("empty");
        fs::create_dir_all(&empty).unwrap();
        let error = Procfs::from_config(&config_for(&empty, ""))
            .unwrap()
            .gather()
            .unwrap_err();
        assert!(matches!(error, PluginError::Transient(_)), "{error:?}");
        assert!(error.reason().contains("read_dirs"), "{error:?}");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn configuration_errors_are_reported() {
        for (config, reason) in [
            (r#"{"root": "proc"}"#, "`root`: must be an absolute path"),
            (r#"{"collectors": []}"#, "at least one collector"),
            (r#"{"collectors": ["cpus"]}"#, "unknown variant `cpus`"),
            (r#"{"disk_ignore": "("}"#, "`disk_ignore`"),
            (r#"{"rooot": "/proc"}"#, "unknown field `rooot`"),
        ] {
            let error = Procfs::from_config(config).unwrap_err();
            assert!(matches!(error, PluginError::InvalidConfig(_)), "{config}");
            assert!(
                error.reason().contains(reason),
                "{config}: {}",
                error.reason()
            );
        }
        assert!(Procfs::from_config("").is_ok());
    }

    #[test]
    fn default_disk_ignore_keeps_whole_disks() {
        let re = anchored("", DEFAULT_DISK_IGNORE).unwrap().unwrap();
        for ignored in [
            "loop0",
            "ram1",
            "zram0",
            "sda1",
            "vdb12",
            "nvme0n1p3",
            "mmcblk0p1",
            "fd0",
        ] {
            assert!(re.is_match(ignored), "{ignored}");
        }
        for kept in ["sda", "vdb", "nvme0n1", "mmcblk0", "dm-0", "md0"] {
            assert!(!re.is_match(kept), "{kept}");
        }
    }
}
