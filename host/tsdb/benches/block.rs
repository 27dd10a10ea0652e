//! Block format benchmark: `cargo bench -p pharos-tsdb --bench block`.
//!
//! Writes a block of 10,000 node_exporter-shaped series × 720 samples (15 s scrape
//! interval, 3 h, chunks of 120 samples) and prints index bytes per series, chunk-page
//! compression, write time, `select` latency and read times.
//!
//! The chunk payloads are the chunk module's real encodings of synthetic node_exporter-like
//! samples (constants, integer counters, centisecond CPU counters, wandering gauges, rare
//! ms scrape jitter):
//!
//! * `random`: 156 random bytes per 120-sample chunk (1.3 B/sample), incompressible — the
//!   worst case for page compression, kept as a reference point;
//! * `PharosXor`: the head's bit-packed XOR chunks, as they would be stored unchanged;
//! * `PharosColumnar`: the byte-aligned columnar chunks blocks are written with.
//!
//! Set `PHAROS_BENCH_SERIES` to change the series count.

use pharos_model::{Labels, MatchOp, Matcher};
use pharos_tsdb::block::{Block, BlockOptions, BlockWriter, ChunkData, block_dir, merge_series};
use pharos_tsdb::chunk::{ColumnarChunk, Encoding, XorChunk, iter_bytes_with};
use std::time::{Duration, Instant};

const SAMPLES: usize = 720;
const PER_CHUNK: usize = 120;
const INTERVAL_MS: i64 = 15_000;
const T0: i64 = 1_700_000_000_000;

/// SplitMix64, seeded: every run measures the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How a synthetic series' values move.
#[derive(Clone, Copy)]
enum Shape {
    Constant,
    /// Integer counter (bytes, packets).
    Counter,
    /// Float seconds counter with 2 decimals (node_cpu_seconds_total).
    FloatCounter,
    /// Integer gauge wandering around a level (memory, filesystem bytes).
    Gauge,
}

/// The label sets of one node_exporter target, with the shape of each series.
fn node_exporter_target(instance: &str) -> Vec<(Labels, Shape)> {
    let mut out = Vec::new();
    let mut add = |pairs: Vec<(&str, String)>, shape| {
        let mut p = pairs;
        p.push(("instance", instance.to_string()));
        p.push(("job", "node".to_string()));
        out.push((Labels::from_pairs(p), shape));
    };
    let name = |n: &str| ("__name__", n.to_string());
    for cpu in 0..8 {
        for mode in [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ] {
            add(
                vec![
                    name("node_cpu_seconds_total"),
                    ("cpu", cpu.to_string()),
                    ("mode", mode.into()),
                ],
                Shape::FloatCounter,
            );
        }
    }
    for dev in ["dm-0", "nvme0n1", "sda", "sdb"] {
        for m in [
            "node_disk_io_now",
            "node_disk_io_time_seconds_total",
            "node_disk_read_bytes_total",
            "node_disk_read_time_seconds_total",
            "node_disk_reads_completed_total",
            "node_disk_write_time_seconds_total",
            "node_disk_writes_completed_total",
            "node_disk_written_bytes_total",
        ] {
            let shape = if m.ends_with("io_now") {
                Shape::Gauge
            } else {
                Shape::Counter
            };
            add(vec![name(m), ("device", dev.into())], shape);
        }
    }
    for dev in ["docker0", "eth0", "eth1", "lo", "veth1a2b3c"] {
        for m in [
            "node_network_mtu_bytes",
            "node_network_receive_bytes_total",
            "node_network_receive_drop_total",
            "node_network_receive_errs_total",
            "node_network_receive_packets_total",
            "node_network_transmit_bytes_total",
            "node_network_transmit_drop_total",
            "node_network_transmit_errs_total",
            "node_network_transmit_packets_total",
            "node_network_up",
        ] {
            let shape = if m.contains("mtu")
                || m.ends_with("_up")
                || m.contains("errs")
                || m.contains("drop")
            {
                Shape::Constant
            } else {
                Shape::Counter
            };
            add(vec![name(m), ("device", dev.into())], shape);
        }
    }
    for (dev, fs, mp) in [
        ("/dev/nvme0n1p1", "ext4", "/"),
        ("/dev/nvme0n1p2", "vfat", "/boot/efi"),
        ("/dev/sda1", "xfs", "/data"),
        ("tmpfs", "tmpfs", "/run"),
        ("tmpfs", "tmpfs", "/run/user/1000"),
    ] {
        for m in [
            "node_filesystem_avail_bytes",
            "node_filesystem_device_error",
            "node_filesystem_files",
            "node_filesystem_files_free",
            "node_filesystem_free_bytes",
            "node_filesystem_readonly",
            "node_filesystem_size_bytes",
        ] {
            let shape = if m.contains("avail") || m.contains("free") {
                Shape::Gauge
            } else {
                Shape::Constant
            };
            add(
                vec![
                    name(m),
                    ("device", dev.into()),
                    ("fstype", fs.into()),
                    ("mountpoint", mp.into()),
                ],
                shape,
            );
        }
    }
    for m in [
        "Active",
        "Active_anon",
        "Active_file",
        "AnonHugePages",
        "AnonPages",
        "Bounce",
        "Buffers",
        "Cached",
        "CommitLimit",
        "Committed_AS",
        "DirectMap1G",
        "DirectMap2M",
        "DirectMap4k",
        "Dirty",
        "HugePages_Free",
        "HugePages_Rsvd",
        "HugePages_Surp",
        "HugePages_Total",
        "Hugepagesize",
        "Inactive",
        "Inactive_anon",
        "Inactive_file",
        "KernelStack",
        "Mapped",
        "MemAvailable",
        "MemFree",
        "MemTotal",
        "Mlocked",
        "NFS_Unstable",
        "PageTables",
        "SReclaimable",
        "SUnreclaim",
        "Shmem",
        "Slab",
        "SwapCached",
        "SwapFree",
        "SwapTotal",
        "Unevictable",
        "VmallocChunk",
        "VmallocTotal",
        "VmallocUsed",
        "Writeback",
        "WritebackTmp",
    ] {
        let shape = if m.contains("Total")
            || m.contains("Huge")
            || m.starts_with("Vmalloc")
            || m.starts_with("Direct")
        {
            Shape::Constant
        } else {
            Shape::Gauge
        };
        add(vec![name(&format!("node_memory_{m}_bytes"))], shape);
    }
    for (m, shape) in [
        ("node_boot_time_seconds", Shape::Constant),
        ("node_context_switches_total", Shape::Counter),
        ("node_entropy_available_bits", Shape::Gauge),
        ("node_forks_total", Shape::Counter),
        ("node_intr_total", Shape::Counter),
        ("node_load1", Shape::Gauge),
        ("node_load15", Shape::Gauge),
        ("node_load5", Shape::Gauge),
        ("node_procs_blocked", Shape::Gauge),
        ("node_procs_running", Shape::Gauge),
        ("node_time_seconds", Shape::FloatCounter),
        ("scrape_duration_seconds", Shape::Gauge),
        ("scrape_samples_post_metric_relabeling", Shape::Constant),
        ("scrape_samples_scraped", Shape::Constant),
        ("scrape_series_added", Shape::Constant),
        ("up", Shape::Constant),
    ] {
        add(vec![name(m)], shape);
    }
    for i in 0..24 {
        add(
            vec![name(&format!("node_vmstat_stat{i:02}"))],
            if i % 3 == 0 {
                Shape::Gauge
            } else {
                Shape::Counter
            },
        );
        add(
            vec![name(&format!("node_netstat_Tcp_stat{i:02}"))],
            if i % 4 == 0 {
                Shape::Constant
            } else {
                Shape::Counter
            },
        );
    }
    out
}

fn generate_series(n: usize) -> Vec<(Labels, Shape)> {
    let mut all = Vec::new();
    let mut host = 0;
    while all.len() < n {
        all.extend(node_exporter_target(&format!(
            "10.0.{}.{}:9100",
            host / 250,
            host % 250 + 1
        )));
        host += 1;
    }
    all.truncate(n);
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// 720 timestamps with occasional scrape jitter and values of the given shape.
fn samples(rng: &mut Rng, shape: Shape) -> (Vec<i64>, Vec<f64>) {
    let mut ts = Vec::with_capacity(SAMPLES);
    let mut vs = Vec::with_capacity(SAMPLES);
    let offset = rng.below(INTERVAL_MS as u64) as i64;
    let busy = rng.below(10) < 6;
    let rate = 10f64.powf(rng.unit() * 5.0);
    let level = (10f64.powf(3.0 + rng.unit() * 7.0)).round();
    let utilisation = if rng.below(8) == 0 {
        0.6 + rng.unit() * 0.4
    } else {
        rng.unit() * 0.05
    };
    let mut v = match shape {
        Shape::Constant => [0.0, 1.0, 1500.0, level][rng.below(4) as usize],
        Shape::Counter => level,
        Shape::FloatCounter => (rng.unit() * 1e6).round() / 100.0,
        Shape::Gauge => level,
    };
    for i in 0..SAMPLES {
        // Prometheus aligns scrape timestamps within a small tolerance, so jitter is rare.
        let jitter = if rng.below(20) == 0 {
            rng.below(4) as i64
        } else {
            0
        };
        ts.push(T0 + offset + i as i64 * INTERVAL_MS + jitter);
        match shape {
            Shape::Constant => {}
            Shape::Counter if busy => v += (rate * (0.8 + 0.4 * rng.unit())).round(),
            Shape::Counter => {
                if rng.below(10) == 0 {
                    v += (1 + rng.below(20)) as f64
                }
            }
            // USER_HZ = 100: CPU seconds move in centiseconds.
            Shape::FloatCounter => {
                v = ((v + 15.0 * utilisation * (0.9 + 0.2 * rng.unit())) * 100.0).round() / 100.0
            }
            Shape::Gauge => {
                if rng.below(4) == 0 {
                    v = (v + (rng.unit() - 0.5) * level * 0.002).round().max(0.0);
                }
            }
        }
        vs.push(v);
    }
    (ts, vs)
}

/// One chunk payload, as handed to the block writer.
struct OwnedChunk {
    min_time: i64,
    max_time: i64,
    encoding: u8,
    num_samples: u16,
    bytes: Vec<u8>,
}

fn encode_chunk(encoding: Encoding, ts: &[i64], vs: &[f64]) -> OwnedChunk {
    let samples: Vec<(i64, f64)> = ts.iter().copied().zip(vs.iter().copied()).collect();
    let (num_samples, bytes) = if encoding.is_xor() {
        let mut c = XorChunk::with_encoding(encoding);
        for &(t, v) in &samples {
            c.append(t, v).unwrap_or_else(|e| panic!("{e}"));
        }
        (c.num_samples(), c.bytes().to_vec())
    } else {
        let c = ColumnarChunk::encode(&samples).unwrap_or_else(|e| panic!("{e}"));
        (c.num_samples(), c.bytes().to_vec())
    };
    OwnedChunk {
        min_time: ts[0],
        max_time: ts[ts.len() - 1],
        encoding: encoding.code(),
        num_samples,
        bytes,
    }
}

/// Chunk payloads of every series: `None` for the random stand-in, otherwise the
/// samples encoded in `encoding`.
fn payloads(series: &[(Labels, Shape)], encoding: Option<Encoding>) -> Vec<Vec<OwnedChunk>> {
    let mut rng = Rng(42);
    series
        .iter()
        .map(|(_, shape)| {
            let (ts, vs) = samples(&mut rng, *shape);
            ts.chunks(PER_CHUNK)
                .zip(vs.chunks(PER_CHUNK))
                .map(|(t, v)| match encoding {
                    Some(encoding) => encode_chunk(encoding, t, v),
                    None => OwnedChunk {
                        min_time: t[0],
                        max_time: t[t.len() - 1],
                        encoding: Encoding::PharosXor.code(),
                        num_samples: t.len() as u16,
                        bytes: (0..PER_CHUNK * 13 / 10).map(|_| rng.next() as u8).collect(),
                    },
                })
                .collect()
        })
        .collect()
}

fn write_block(
    parent: &std::path::Path,
    series: &[(Labels, Shape)],
    chunks: &[Vec<OwnedChunk>],
    opts: BlockOptions,
) -> (pharos_tsdb::block::BlockMeta, Duration) {
    let start = Instant::now();
    let max_t = T0 + (SAMPLES as i64 + 1) * INTERVAL_MS;
    let mut w =
        BlockWriter::create_with(parent, T0, max_t, 1, &[], opts).unwrap_or_else(|e| panic!("{e}"));
    for ((labels, _), cs) in series.iter().zip(chunks) {
        let cd: Vec<ChunkData<'_>> = cs
            .iter()
            .map(|c| ChunkData {
                min_time: c.min_time,
                max_time: c.max_time,
                encoding: c.encoding,
                num_samples: c.num_samples,
                bytes: &c.bytes,
            })
            .collect();
        w.add_series(labels, &cd).unwrap_or_else(|e| panic!("{e}"));
    }
    let meta = w.finish().unwrap_or_else(|e| panic!("{e}"));
    (meta, start.elapsed())
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        dir_size(&path)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn uvarint_len(v: u64) -> u64 {
    u64::from((64 - (v | 1).leading_zeros()).div_ceil(7))
}

fn main() {
    let n: usize = std::env::var("PHAROS_BENCH_SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let series = generate_series(n);
    let samples_total = (n * SAMPLES) as f64;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "block benchmark: {n} node_exporter-like series x {SAMPLES} samples ({} chunks of {PER_CHUNK})",
        n * SAMPLES / PER_CHUNK
    );
    println!("payloads: random bytes, then the chunk module's encodings\n");

    let mut detail_block = None;
    for encoding in [
        None,
        Some(Encoding::PharosXor),
        Some(Encoding::PharosColumnar),
    ] {
        let kind = encoding.map_or("random".to_string(), |e| format!("{e:?}"));
        let chunks = payloads(&series, encoding);
        let payload: u64 = chunks.iter().flatten().map(|c| c.bytes.len() as u64).sum();
        println!(
            "== payload `{kind}`: {:.3} B/sample before page compression",
            payload as f64 / samples_total
        );
        let mut configs = vec![("default (zstd 9, 64 KiB pages)", BlockOptions::default())];
        if encoding.is_some() {
            for (label, level, page) in [
                ("zstd 3, 64 KiB", 3, 64 << 10),
                ("zstd 19, 64 KiB", 19, 64 << 10),
                ("zstd 9, 16 KiB", 9, 16 << 10),
                ("zstd 9, 256 KiB", 9, 256 << 10),
            ] {
                configs.push((
                    label,
                    BlockOptions {
                        compression_level: level,
                        page_size: page,
                        ..BlockOptions::default()
                    },
                ));
            }
            for g in [16, 256] {
                configs.push((
                    if g == 16 {
                        "zstd 9, 64 KiB, 16 series/group"
                    } else {
                        "zstd 9, 64 KiB, 256 series/group"
                    },
                    BlockOptions {
                        series_per_group: g,
                        ..BlockOptions::default()
                    },
                ));
            }
        }
        for (label, opts) in configs {
            let parent = tmp.path().join(format!(
                "{kind}-{}-{}",
                opts.compression_level, opts.page_size
            ));
            std::fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("{e}"));
            let (meta, took) = write_block(&parent, &series, &chunks, opts);
            let dir = block_dir(&parent, meta.id);
            let chunk_bytes = dir_size(&dir.join("chunks"));
            let block = Block::open(&dir).unwrap_or_else(|e| panic!("{e}"));
            let idx = block.index_sizes();
            // Raw page bytes: each record adds encoding, count and length to the payload.
            let raw: u64 = chunks
                .iter()
                .flatten()
                .map(|c| {
                    1 + uvarint_len(u64::from(c.num_samples))
                        + uvarint_len(c.bytes.len() as u64)
                        + c.bytes.len() as u64
                })
                .sum();
            let (read, _) = time(5, || read_instance(&block, "10.0.0.7:9100"));
            println!(
                "  {label:30} write {:>6.0} ms | pages {:>9} B, ratio {:.2}x, {:.3} B/sample | index {:>7} B = {:.1} B/series | block {:.3} B/sample | read 1 instance {:.1} ms",
                took.as_secs_f64() * 1e3,
                chunk_bytes,
                raw as f64 / chunk_bytes as f64,
                chunk_bytes as f64 / samples_total,
                idx.total,
                idx.total as f64 / n as f64,
                block.size_bytes() as f64 / samples_total,
                read.as_secs_f64() * 1e3,
            );
            if opts == BlockOptions::default() && encoding.is_some() {
                let (took, samples) = time(3, || decode_all(&block));
                println!(
                    "  {:30} decode all {samples} samples: {:.1} ms ({:.1} M samples/s)",
                    "",
                    took.as_secs_f64() * 1e3,
                    samples as f64 / took.as_secs_f64() / 1e6
                );
                if encoding == Some(Encoding::PharosColumnar) {
                    detail_block = Some(block);
                }
            }
        }
        println!();
    }
    let Some(block) = detail_block else { return };
    report_index(&block, n);
    report_select(&block);
    report_reads(&block);
    report_merge(&block);
}

fn report_index(block: &Block, n: usize) {
    let idx = block.index_sizes();
    println!("== index breakdown (bytes): {idx:?}");
    println!(
        "   per series: symbols {:.1}, series entries {:.1}, offsets {:.2}, postings {:.1}, label index {:.2}",
        idx.symbols as f64 / n as f64,
        idx.series as f64 / n as f64,
        idx.series_offsets as f64 / n as f64,
        idx.postings as f64 / n as f64,
        idx.label_index as f64 / n as f64
    );
    // Postings encodings compared on this block's lists.
    let (mut deltas, mut roaring_bytes, mut lists, mut entries) = (0u64, 0u64, 0u64, 0u64);
    for name in block.label_names() {
        for value in block.label_values(name) {
            let m = Matcher::new(MatchOp::Equal, name, value).unwrap_or_else(|e| panic!("{e}"));
            let list = block.select(&[m]).unwrap_or_else(|e| panic!("{e}"));
            lists += 1;
            entries += list.len() as u64;
            let mut prev = None;
            let mut d = 2 + uvarint_len(list.len() as u64);
            for &v in &list {
                d += uvarint_len(u64::from(prev.map_or(v, |p| v - p - 1)));
                prev = Some(v);
            }
            deltas += d;
            let bm: roaring::RoaringBitmap = list.iter().copied().collect();
            roaring_bytes += bm.serialized_size() as u64;
        }
    }
    println!(
        "   postings: {lists} lists, {entries} entries; stored (per-list min of deltas/runs) {} B, deltas only {deltas} B, roaring serialized {roaring_bytes} B\n",
        idx.postings
    );
}

fn time<T>(iters: u32, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut out = f();
    let start = Instant::now();
    for _ in 0..iters {
        out = f();
    }
    (start.elapsed() / iters, out)
}

fn report_select(block: &Block) {
    println!("== select latency (mean over repeated calls, block open and warm)");
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap_or_else(|e| panic!("{e}"));
    use MatchOp::*;
    let cases: Vec<(&str, Vec<Matcher>)> = vec![
        (
            r#"{__name__="node_cpu_seconds_total"}"#,
            vec![m(Equal, "__name__", "node_cpu_seconds_total")],
        ),
        (
            r#"{__name__="node_cpu_seconds_total",mode!="idle"}"#,
            vec![
                m(Equal, "__name__", "node_cpu_seconds_total"),
                m(NotEqual, "mode", "idle"),
            ],
        ),
        (
            r#"{__name__="node_network_receive_bytes_total",device!~"lo|veth.*|docker.*"}"#,
            vec![
                m(Equal, "__name__", "node_network_receive_bytes_total"),
                m(NotRegex, "device", "lo|veth.*|docker.*"),
            ],
        ),
        (
            r#"{instance="10.0.0.7:9100"}"#,
            vec![m(Equal, "instance", "10.0.0.7:9100")],
        ),
        (
            r#"{job="node",__name__=~"node_filesystem_(avail|size)_bytes",fstype!="tmpfs"}"#,
            vec![
                m(Equal, "job", "node"),
                m(Regex, "__name__", "node_filesystem_(avail|size)_bytes"),
                m(NotEqual, "fstype", "tmpfs"),
            ],
        ),
        (
            r#"{__name__=~"node_disk_.*",instance=~"10.0.0.1.*"}"#,
            vec![
                m(Regex, "__name__", "node_disk_.*"),
                m(Regex, "instance", "10.0.0.1.*"),
            ],
        ),
        (r#"{__name__="up"}"#, vec![m(Equal, "__name__", "up")]),
        (r#"{job="node"}"#, vec![m(Equal, "job", "node")]),
    ];
    for (label, ms) in &cases {
        let (took, res) = time(300, || block.select(ms).unwrap_or_else(|e| panic!("{e}")));
        println!(
            "  {label:80} {:>6} series  {:>9.1} µs",
            res.len(),
            took.as_secs_f64() * 1e6
        );
    }
    println!();
}

fn report_reads(block: &Block) {
    let start = Instant::now();
    let (mut chunks, mut bytes) = (0u64, 0u64);
    for n in 0..block.num_series() {
        let (_, metas) = block.series(n).unwrap_or_else(|e| panic!("{e}"));
        for meta in &metas {
            let c = block.chunk(meta).unwrap_or_else(|e| panic!("{e}"));
            chunks += 1;
            bytes += c.bytes().len() as u64;
        }
    }
    let took = start.elapsed();
    println!(
        "== full scan: {} series, {chunks} chunks, {bytes} payload bytes in {:.1} ms ({:.0} ns/chunk)",
        block.num_series(),
        took.as_secs_f64() * 1e3,
        took.as_nanos() as f64 / chunks as f64
    );
    let (took, n) = time(20, || read_instance(block, "10.0.0.7:9100"));
    println!(
        "   one instance ({} series, all chunks): {:.2} ms",
        n.0,
        took.as_secs_f64() * 1e3
    );
    let m = Matcher::new(MatchOp::Equal, "__name__", "node_cpu_seconds_total")
        .unwrap_or_else(|e| panic!("{e}"));
    let (took, n) = time(20, || {
        let ids = block
            .select(std::slice::from_ref(&m))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut k = 0;
        for id in &ids {
            let (_, metas) = block.series(*id).unwrap_or_else(|e| panic!("{e}"));
            for meta in &metas {
                k += block.chunk(meta).map(|c| c.bytes().len()).unwrap_or(0);
            }
        }
        (ids.len(), k)
    });
    println!(
        "   one metric, node_cpu_seconds_total ({} series, all chunks): {:.2} ms",
        n.0,
        took.as_secs_f64() * 1e3
    );
}

/// Reads and decodes every chunk of the block; returns the number of samples.
fn decode_all(block: &Block) -> usize {
    let mut n = 0;
    let mut sum = 0.0;
    for s in 0..block.num_series() {
        let (_, metas) = block.series(s).unwrap_or_else(|e| panic!("{e}"));
        for meta in &metas {
            let c = block.chunk(meta).unwrap_or_else(|e| panic!("{e}"));
            let encoding = Encoding::from_code(c.encoding).unwrap_or_else(|| panic!("encoding"));
            let mut it = iter_bytes_with(encoding, c.bytes(), c.num_samples);
            for (_, v) in it.by_ref() {
                sum += v;
                n += 1;
            }
            assert!(it.err().is_none(), "decode error");
        }
    }
    std::hint::black_box(sum);
    n
}

/// Selects one target's series and reads all their chunks: the random-access pattern,
/// since a target's series are spread over the whole label-sorted block.
fn read_instance(block: &Block, instance: &str) -> (usize, usize) {
    let m = Matcher::new(MatchOp::Equal, "instance", instance).unwrap_or_else(|e| panic!("{e}"));
    let ids = block
        .select(std::slice::from_ref(&m))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut k = 0;
    for id in &ids {
        let (_, metas) = block.series(*id).unwrap_or_else(|e| panic!("{e}"));
        for meta in &metas {
            k += block.chunk(meta).map(|c| c.bytes().len()).unwrap_or(0);
        }
    }
    (ids.len(), k)
}

fn report_merge(block: &Block) {
    let start = Instant::now();
    let blocks = [block, block];
    let n = merge_series(&blocks).filter(|r| r.is_ok()).count();
    println!(
        "   merge_series of the block with itself: {n} series in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
}
