//! Parsers for the `/proc` files the exporter reads: plain functions from text
//! to values, so they can be tested on fixture text.
//!
//! Lines that do not have the expected shape are skipped rather than failing
//! the whole file: kernels add fields over time, and a partial answer is
//! more useful than none.

/// Clock ticks per second in `/proc/stat` (`USER_HZ`), which Linux fixes at
/// 100 for user space on every architecture.
pub const USER_HZ: f64 = 100.0;
/// `/proc/diskstats` counts in 512-byte sectors whatever the device's own
/// sector size.
pub const SECTOR_BYTES: f64 = 512.0;

/// The CPU modes of a `cpuN` line of `/proc/stat`, in column order.
pub const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// One `cpuN` line, in seconds.
#[derive(Debug, PartialEq)]
pub struct CpuTimes {
    /// The N of `cpuN`.
    pub cpu: String,
    /// Seconds per mode, in the order of [`CPU_MODES`]; modes a kernel does
    /// not report are missing from the end.
    pub modes: Vec<f64>,
    /// Seconds running guests, normal and niced, when reported. The kernel
    /// also counts them in `user` and `nice`.
    pub guest: Option<(f64, f64)>,
}

/// What `/proc/stat` holds.
#[derive(Debug, Default, PartialEq)]
pub struct Stat {
    pub cpus: Vec<CpuTimes>,
    pub interrupts: Option<f64>,
    pub context_switches: Option<f64>,
    pub boot_time: Option<f64>,
    pub forks: Option<f64>,
    pub procs_running: Option<f64>,
    pub procs_blocked: Option<f64>,
}

fn numbers(fields: &[&str]) -> Option<Vec<f64>> {
    fields.iter().map(|field| field.parse().ok()).collect()
}

/// The first number after the key of a line, e.g. `ctxt 123`.
fn first_number(fields: &[&str]) -> Option<f64> {
    fields.get(1).and_then(|field| field.parse().ok())
}

pub fn stat(text: &str) -> Stat {
    let mut stat = Stat::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(&key) = fields.first() else { continue };
        match key {
            "intr" => stat.interrupts = first_number(&fields),
            "ctxt" => stat.context_switches = first_number(&fields),
            "btime" => stat.boot_time = first_number(&fields),
            "processes" => stat.forks = first_number(&fields),
            "procs_running" => stat.procs_running = first_number(&fields),
            "procs_blocked" => stat.procs_blocked = first_number(&fields),
            // `cpu` alone is the sum over all CPUs, which node metrics leave
            // to queries.
            _ => {
                let Some(cpu) = key.strip_prefix("cpu").filter(|n| !n.is_empty()) else {
                    continue;
                };
                if !cpu.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let Some(ticks) = numbers(&fields[1..]) else {
                    continue;
                };
                let seconds: Vec<f64> = ticks.iter().map(|t| t / USER_HZ).collect();
                let modes = seconds.iter().copied().take(CPU_MODES.len()).collect();
                let guest = match (seconds.get(8), seconds.get(9)) {
                    (Some(&normal), Some(&nice)) => Some((normal, nice)),
                    (Some(&normal), None) => Some((normal, 0.0)),
                    _ => None,
                };
                stat.cpus.push(CpuTimes {
                    cpu: cpu.to_owned(),
                    modes,
                    guest,
                });
            }
        }
    }
    stat
}

/// One `/proc/meminfo` field, named as the metric suffix: `MemTotal_bytes`
/// for fields given in kB (converted to bytes), `HugePages_Total` for plain
/// counts.
#[derive(Debug, PartialEq)]
pub struct MemField {
    pub name: String,
    pub value: f64,
}

pub fn meminfo(text: &str) -> Vec<MemField> {
    let mut fields = Vec::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(value) = parts.next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let name = metric_safe(key.trim());
        if name.is_empty() {
            continue;
        }
        match parts.next() {
            Some("kB") => fields.push(MemField {
                name: format!("{name}_bytes"),
                value: value * 1024.0,
            }),
            None => fields.push(MemField { name, value }),
            Some(_) => {}
        }
    }
    fields
}

/// `Active(anon)` becomes `Active_anon`: characters a metric name cannot
/// hold become `_`, without a trailing one.
fn metric_safe(key: &str) -> String {
    let replaced: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    replaced.trim_end_matches('_').to_owned()
}

/// The three load averages of `/proc/loadavg`.
pub fn loadavg(text: &str) -> Option<[f64; 3]> {
    let mut parts = text.split_whitespace().map(|p| p.parse::<f64>().ok());
    Some([parts.next()??, parts.next()??, parts.next()??])
}

/// The receive and transmit columns of `/proc/net/dev`, as metric name parts.
pub const NETDEV_RECEIVE: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
pub const NETDEV_TRANSMIT: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

/// One interface of `/proc/net/dev`.
#[derive(Debug, PartialEq)]
pub struct NetDev {
    pub device: String,
    /// In the order of [`NETDEV_RECEIVE`].
    pub receive: Vec<f64>,
    /// In the order of [`NETDEV_TRANSMIT`].
    pub transmit: Vec<f64>,
}

pub fn netdev(text: &str) -> Vec<NetDev> {
    let mut devices = Vec::new();
    // The two header lines have a `|` and no `:` before it.
    for line in text.lines() {
        let Some((device, counters)) = line.split_once(':') else {
            continue;
        };
        let device = device.trim();
        if device.is_empty() || device.contains('|') {
            continue;
        }
        let Some(values) = numbers(&counters.split_whitespace().collect::<Vec<_>>()) else {
            continue;
        };
        if values.len() < 16 {
            continue;
        }
        devices.push(NetDev {
            device: device.to_owned(),
            receive: values[..8].to_vec(),
            transmit: values[8..16].to_vec(),
        });
    }
    devices
}

/// One device of `/proc/diskstats`: the counters after major, minor and
/// name, as the kernel reports them (11, 15 or 17 of them, by kernel age).
#[derive(Debug, PartialEq)]
pub struct DiskStats {
    pub device: String,
    pub counters: Vec<f64>,
}

pub fn diskstats(text: &str) -> Vec<DiskStats> {
    let mut disks = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 + 11 {
            continue;
        }
        let Some(counters) = numbers(&fields[3..]) else {
            continue;
        };
        disks.push(DiskStats {
            device: fields[2].to_owned(),
            counters,
        });
    }
    disks
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = include_str!("../fixtures/stat");
    const MEMINFO: &str = include_str!("../fixtures/meminfo");
    const NETDEV: &str = include_str!("../fixtures/netdev");
    const DISKSTATS: &str = include_str!("../fixtures/diskstats");

    #[test]
    fn stat_has_per_cpu_seconds_and_system_counters() {
        let stat = stat(STAT);
        assert_eq!(stat.cpus.len(), 2);
        let cpu0 = &stat.cpus[0];
        assert_eq!(cpu0.cpu, "0");
        assert_eq!(
            cpu0.modes,
            [241.05, 1.5, 52.01, 4400.72, 11.0, 0.0, 4.5, 0.6]
        );
        assert_eq!(cpu0.guest, Some((0.4, 0.0)));
        assert_eq!(stat.interrupts, Some(9_812_734.0));
        assert_eq!(stat.context_switches, Some(41_237_455.0));
        assert_eq!(stat.boot_time, Some(1_731_990_000.0));
        assert_eq!(stat.forks, Some(802_211.0));
        assert_eq!(stat.procs_running, Some(3.0));
        assert_eq!(stat.procs_blocked, Some(1.0));
    }

    #[test]
    fn old_kernels_report_fewer_cpu_modes() {
        let stat = stat("cpu0 100 0 50 1000\ncpuX 1 2 3\ncpu1 1 x 2\n");
        assert_eq!(stat.cpus.len(), 1);
        assert_eq!(stat.cpus[0].modes, [1.0, 0.0, 0.5, 10.0]);
        assert_eq!(stat.cpus[0].guest, None);
        assert_eq!(stat.boot_time, None);
    }

    #[test]
    fn meminfo_names_follow_node_metrics() {
        let fields = meminfo(MEMINFO);
        let get = |name: &str| fields.iter().find(|f| f.name == name).map(|f| f.value);
        assert_eq!(get("MemTotal_bytes"), Some(16_318_412.0 * 1024.0));
        assert_eq!(get("MemAvailable_bytes"), Some(9_876_544.0 * 1024.0));
        assert_eq!(get("Active_anon_bytes"), Some(3_000_000.0 * 1024.0));
        assert_eq!(get("SwapFree_bytes"), Some(4_100_000.0 * 1024.0));
        assert_eq!(get("HugePages_Total"), Some(0.0));
        assert_eq!(get("Hugepagesize_bytes"), Some(2048.0 * 1024.0));
        assert_eq!(fields.len(), 12);
        assert!(meminfo("garbage\nX: y kB\n: 1 kB\n").is_empty());
    }

    #[test]
    fn loadavg_reads_three_numbers() {
        assert_eq!(
            loadavg("0.52 0.78 1.05 2/913 41234\n"),
            Some([0.52, 0.78, 1.05])
        );
        assert_eq!(loadavg("0.5 x"), None);
        assert_eq!(loadavg(""), None);
    }

    #[test]
    fn netdev_splits_receive_and_transmit() {
        let devices = netdev(NETDEV);
        assert_eq!(devices.len(), 2);
        let eth0 = &devices[1];
        assert_eq!(eth0.device, "eth0");
        assert_eq!(
            eth0.receive,
            [98_765_432.0, 654_321.0, 2.0, 5.0, 0.0, 1.0, 0.0, 77.0]
        );
        assert_eq!(
            eth0.transmit,
            [12_345_678.0, 210_987.0, 0.0, 3.0, 0.0, 4.0, 6.0, 0.0]
        );
    }

    #[test]
    fn diskstats_keeps_every_counter() {
        let disks = diskstats(DISKSTATS);
        let names: Vec<&str> = disks.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(names, ["loop0", "nvme0n1", "nvme0n1p1", "sda"]);
        assert_eq!(disks[1].counters.len(), 17);
        assert_eq!(disks[3].counters.len(), 11);
        assert_eq!(disks[1].counters[2], 9_000_000.0);
        assert!(diskstats("8 0 sda 1 2 3\n").is_empty());
    }
}
