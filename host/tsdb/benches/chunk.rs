//! Chunk encoding benchmark on a node_exporter-shaped workload.
//!
//! Run with `cargo bench -p pharos-tsdb --bench chunk`. It prints, for every chunk encoding,
//! bytes per sample (overall and per kind of series, at several amounts of scrape jitter)
//! both raw and after page compression as a block stores them, then encode and decode
//! throughput. A plain `main` rather than criterion: the figures that matter are sizes,
//! which need no statistics, and the timings are best-of-N wall-clock runs over the whole
//! workload.
//!
//! The workload: 1,000 series × 720 samples (2 hours at a 10 s interval) from 4 targets.
//! All series of a target share its scrape timestamps, which jitter by ±J ms around the
//! schedule and occasionally skip a scrape. Series kinds, in node_exporter proportions as
//! best we can tell: constants (info metrics, sizes), rarely-moving counters (errors,
//! drops), CPU seconds (USER_HZ ticks / 100), byte/packet counters, page-granular memory
//! gauges, two- or three-decimal gauges (load, temperatures) and a few full-entropy floats
//! (durations). Chunks are cut at 120 samples, as the head does.
//!
//! "Paged" sizes mimic the block writer (`block/chunks.rs`): each chunk becomes a record
//! `encoding u8 · num_samples uvarint · len uvarint · payload`, records of consecutive
//! chunks (series by series, in workload order) fill pages of up to 64 KiB, each page is
//! compressed with zstd level 9 and costs its compressed size plus a 13-byte page header
//! and checksum. Per-kind paged figures compress each kind's chunks on their own pages.

use std::hint::black_box;
use std::time::Instant;

use pharos_tsdb::chunk::{ColumnarChunk, Encoding, XorChunk, iter_bytes_with};

const SERIES: usize = 1_000;
const SAMPLES: usize = 720;
const TARGETS: usize = 4;
const INTERVAL_MS: i64 = 10_000;
const CHUNK_SAMPLES: usize = 120;
const RUNS: usize = 7;
const ENCODINGS: [Encoding; 3] = [
    Encoding::PrometheusXor,
    Encoding::PharosXor,
    Encoding::PharosColumnar,
];
/// What the block writer uses: 64 KiB pages, zstd level 9.
const PAGE_SIZE: usize = 64 << 10;
const ZSTD_LEVEL: i32 = 9;
/// Page header (encoding, raw and stored lengths) and trailing CRC.
const PAGE_OVERHEAD: usize = 9 + 4;

/// SplitMix64, so the workload is identical on every run and machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next_u64() as usize % items.len()]
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Constant,
    RareCounter,
    CpuSeconds,
    ByteCounter,
    MemoryGauge,
    DecimalGauge,
    Noise,
}

/// Kinds with their share of the series.
const KINDS: [(Kind, f64); 7] = [
    (Kind::Constant, 0.30),
    (Kind::RareCounter, 0.15),
    (Kind::CpuSeconds, 0.20),
    (Kind::ByteCounter, 0.15),
    (Kind::MemoryGauge, 0.10),
    (Kind::DecimalGauge, 0.08),
    (Kind::Noise, 0.02),
];

struct Series {
    kind: Kind,
    samples: Vec<(i64, f64)>,
}

fn workload(jitter_ms: i64) -> Vec<Series> {
    let mut rng = Rng(42);
    let times: Vec<Vec<i64>> = (0..TARGETS)
        .map(|target| {
            let start = 1_700_000_000_000 + target as i64 * 2_345;
            let mut ts = Vec::with_capacity(SAMPLES);
            let mut slot = 0;
            while ts.len() < SAMPLES {
                slot += 1;
                if rng.chance(0.002) {
                    continue; // a missed scrape
                }
                ts.push(start + slot * INTERVAL_MS + rng.range(-jitter_ms, jitter_ms));
            }
            ts
        })
        .collect();

    (0..SERIES)
        .map(|i| {
            let mut roll = rng.unit();
            let kind = KINDS
                .iter()
                .find(|(_, share)| {
                    roll -= share;
                    roll < 0.0
                })
                .map_or(Kind::Noise, |(kind, _)| *kind);
            let ts = &times[i % TARGETS];
            let mut values: Box<dyn FnMut(&mut Rng) -> f64> = match kind {
                Kind::Constant => {
                    let v = match rng.range(0, 3) {
                        0 => 1.0,
                        1 => 0.0,
                        2 => rng.range(1, 1 << 40) as f64,
                        _ => 4096.0 * rng.range(1, 1 << 20) as f64,
                    };
                    Box::new(move |_| v)
                }
                Kind::RareCounter => {
                    let mut v = rng.range(0, 50) as f64;
                    Box::new(move |rng| {
                        if rng.chance(0.01) {
                            v += 1.0;
                        }
                        v
                    })
                }
                Kind::CpuSeconds => {
                    // Ticks per interval by CPU mode: idle, iowait, user, system, steal, irq.
                    let rate = rng.pick(&[990.0, 2.0, 30.0, 5.0, 0.0, 1.0]);
                    let mut ticks = rng.range(100_000, 500_000_000);
                    Box::new(move |rng| {
                        ticks += (rate * (0.8 + 0.4 * rng.unit())).round() as i64;
                        ticks as f64 / 100.0
                    })
                }
                Kind::ByteCounter => {
                    let mean = rng.pick(&[100.0, 10_000.0, 1_000_000.0]);
                    let mut v = rng.range(0, 1 << 40);
                    Box::new(move |rng| {
                        v += (mean * (0.7 + 0.6 * rng.unit())) as i64;
                        v as f64
                    })
                }
                Kind::MemoryGauge => {
                    let mut pages = rng.range(1_000, 4_000_000);
                    Box::new(move |rng| {
                        if rng.chance(0.5) {
                            pages += rng.range(-500, 500);
                        }
                        (pages * 4096) as f64
                    })
                }
                Kind::DecimalGauge => {
                    let divisor = rng.pick(&[100.0, 1000.0]);
                    let mut x = rng.range(0, 5_000);
                    Box::new(move |rng| {
                        if rng.chance(0.6) {
                            x = (x + rng.range(-20, 20)).max(0);
                        }
                        x as f64 / divisor
                    })
                }
                Kind::Noise => Box::new(|rng| 0.001 + rng.unit() * 0.05),
            };
            let samples = ts.iter().map(|&t| (t, values(&mut rng))).collect();
            Series { kind, samples }
        })
        .collect()
}

/// An encoded chunk in any encoding.
enum Chunk {
    Xor(XorChunk),
    Columnar(ColumnarChunk),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Xor(c) => c.bytes(),
            Chunk::Columnar(c) => c.bytes(),
        }
    }

    fn num_samples(&self) -> u16 {
        match self {
            Chunk::Xor(c) => c.num_samples(),
            Chunk::Columnar(c) => c.num_samples(),
        }
    }
}

fn encode_chunk(encoding: Encoding, part: &[(i64, f64)]) -> Chunk {
    if encoding.is_xor() {
        let mut chunk = XorChunk::with_encoding(encoding);
        for &(t, v) in part {
            if let Err(err) = chunk.append(t, v) {
                panic!("append failed: {err}");
            }
        }
        chunk.shrink_to_fit();
        Chunk::Xor(chunk)
    } else {
        Chunk::Columnar(
            ColumnarChunk::encode(part).unwrap_or_else(|err| panic!("encode failed: {err}")),
        )
    }
}

fn encode(encoding: Encoding, data: &[Series]) -> Vec<Vec<Chunk>> {
    data.iter()
        .map(|series| {
            series
                .samples
                .chunks(CHUNK_SAMPLES)
                .map(|part| encode_chunk(encoding, part))
                .collect()
        })
        .collect()
}

fn check_round_trip(encoding: Encoding, data: &[Series], chunks: &[Vec<Chunk>]) {
    for (series, chunks) in data.iter().zip(chunks) {
        let decoded = chunks
            .iter()
            .flat_map(|c| iter_bytes_with(encoding, c.bytes(), c.num_samples()));
        let mut n = 0;
        for ((t, v), (want_t, want_v)) in decoded.zip(&series.samples) {
            assert!(t == *want_t && v.to_bits() == want_v.to_bits(), "mismatch");
            n += 1;
        }
        assert_eq!(n, series.samples.len(), "sample count");
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes the chunks take in a block's chunk files: packed into pages and compressed as
/// the block writer does (see the module documentation).
fn paged_bytes<'a>(encoding: Encoding, chunks: impl Iterator<Item = &'a Chunk>) -> usize {
    let mut compressor =
        zstd::bulk::Compressor::new(ZSTD_LEVEL).unwrap_or_else(|e| panic!("zstd: {e}"));
    let mut stored = 0;
    let mut page = Vec::with_capacity(PAGE_SIZE + 1024);
    let mut flush = |page: &mut Vec<u8>| {
        if page.is_empty() {
            return;
        }
        let z = compressor
            .compress(page)
            .unwrap_or_else(|e| panic!("zstd: {e}"));
        // The writer stores a page raw when compression does not shrink it.
        stored += z.len().min(page.len()) + PAGE_OVERHEAD;
        page.clear();
    };
    let mut record = Vec::new();
    for c in chunks {
        record.clear();
        record.push(encoding.code());
        put_uvarint(&mut record, u64::from(c.num_samples()));
        put_uvarint(&mut record, c.bytes().len() as u64);
        record.extend_from_slice(c.bytes());
        if !page.is_empty() && page.len() + record.len() > PAGE_SIZE {
            flush(&mut page);
        }
        page.extend_from_slice(&record);
    }
    flush(&mut page);
    stored
}

fn best_of(mut f: impl FnMut()) -> f64 {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    println!(
        "workload: {SERIES} series x {SAMPLES} samples at {} s from {TARGETS} targets, chunks of {CHUNK_SAMPLES}",
        INTERVAL_MS / 1000
    );
    println!(
        "\nbytes per sample, raw (chunk bytes incl. headers / samples) and paged (64 KiB pages, zstd {ZSTD_LEVEL}):"
    );
    print!("{:>8} {:>15} {:>6} {:>7}", "jitter", "encoding", "", "all");
    for (kind, share) in KINDS {
        print!(" {:>15}", format!("{kind:?} {:.0}%", share * 100.0));
    }
    println!();
    for jitter in [0, 2, 5, 25] {
        let data = workload(jitter);
        let samples = data.iter().map(|s| s.samples.len()).sum::<usize>() as f64;
        let slot = |series: &Series| {
            KINDS
                .iter()
                .position(|(k, _)| *k == series.kind)
                .unwrap_or(0)
        };
        for encoding in ENCODINGS {
            let chunks = encode(encoding, &data);
            check_round_trip(encoding, &data, &chunks);
            let mut per_kind = [(0usize, 0usize, 0usize); KINDS.len()];
            for (series, chunks) in data.iter().zip(&chunks) {
                let k = &mut per_kind[slot(series)];
                k.0 += chunks.iter().map(|c| c.bytes().len()).sum::<usize>();
                k.1 += series.samples.len();
            }
            for (k, kind) in per_kind.iter_mut().enumerate() {
                let of_kind = data
                    .iter()
                    .zip(&chunks)
                    .filter(|(series, _)| slot(series) == k)
                    .flat_map(|(_, chunks)| chunks);
                kind.2 = paged_bytes(encoding, of_kind);
            }
            let raw: usize = per_kind.iter().map(|p| p.0).sum();
            let paged = paged_bytes(encoding, chunks.iter().flatten());
            let label = (format!("±{jitter} ms"), format!("{encoding:?}"));
            print!(
                "{:>8} {:>15} {:>6} {:>7.3}",
                label.0,
                label.1,
                "raw",
                raw as f64 / samples
            );
            for (b, n, _) in per_kind {
                print!(" {:>15.2}", b as f64 / n.max(1) as f64);
            }
            println!();
            print!(
                "{:>8} {:>15} {:>6} {:>7.3}",
                label.0,
                label.1,
                "paged",
                paged as f64 / samples
            );
            for (_, n, p) in per_kind {
                print!(" {:>15.2}", p as f64 / n.max(1) as f64);
            }
            println!();
        }
    }

    let data = workload(2);
    let samples: usize = data.iter().map(|s| s.samples.len()).sum();
    println!("\nthroughput at ±2 ms jitter, best of {RUNS} runs over {samples} samples:");
    for encoding in ENCODINGS {
        let encode_s = best_of(|| {
            black_box(encode(encoding, black_box(&data)));
        });
        let chunks = encode(encoding, &data);
        let decode_s = best_of(|| {
            let mut sum = 0.0;
            let mut last_t = 0;
            for chunk in chunks.iter().flatten() {
                for (t, v) in iter_bytes_with(encoding, chunk.bytes(), chunk.num_samples()) {
                    sum += v;
                    last_t = t;
                }
            }
            black_box((sum, last_t));
        });
        println!(
            "{:>14}: encode {:6.1} M samples/s = {:6.1} MB/s of raw (i64, f64) input; decode {:6.1} M samples/s",
            format!("{encoding:?}"),
            samples as f64 / encode_s / 1e6,
            samples as f64 * 16.0 / encode_s / 1e6,
            samples as f64 / decode_s / 1e6,
        );
    }
    println!(
        "\nsize_of::<XorChunk>() = {} bytes (+ encoded bytes on the heap)",
        std::mem::size_of::<XorChunk>()
    );
    println!(
        "size_of::<ChunkIter>() = {} bytes",
        std::mem::size_of::<pharos_tsdb::chunk::ChunkIter<'_>>()
    );
}
