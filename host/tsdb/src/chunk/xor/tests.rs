use super::*;
use crate::chunk::iter_bytes_with;

const BOTH: [Encoding; 2] = [Encoding::PrometheusXor, Encoding::PharosXor];
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// SplitMix64: a tiny seedable generator, so failures reproduce from the printed seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo.wrapping_add(self.below(hi.abs_diff(lo) + 1) as i64)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn encode(encoding: Encoding, samples: &[(i64, f64)]) -> XorChunk {
    let mut c = XorChunk::with_encoding(encoding);
    for &(t, v) in samples {
        c.append(t, v).unwrap();
    }
    c
}

/// Compares samples by value bits, so NaN payloads and signed zeros count.
fn assert_same(got: &[(i64, f64)], want: &[(i64, f64)], context: &str) {
    assert_eq!(got.len(), want.len(), "{context}: sample count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.0, w.0, "{context}: timestamp of sample {i}");
        assert_eq!(
            g.1.to_bits(),
            w.1.to_bits(),
            "{context}: value of sample {i}: {:?} vs {:?}",
            g.1,
            w.1
        );
    }
}

/// Builds expected chunk bytes from a readable bit string ("0 10 111…", spaces ignored),
/// independently of `BitWriter`.
fn golden(prefix: &[u8], bits: &str) -> Vec<u8> {
    let mut out = prefix.to_vec();
    for (n, c) in bits.chars().filter(|c| !c.is_whitespace()).enumerate() {
        if n % 8 == 0 {
            out.push(0);
        }
        if c == '1' {
            *out.last_mut().unwrap() |= 0x80 >> (n % 8);
        }
    }
    out
}

fn golden_samples() -> Vec<(i64, f64)> {
    vec![
        (1000, 1.0),
        (2000, 1.0),
        (3000, 2.0),
        (4001, 4.0),
        (5001, f64::from_bits(STALE_NAN)),
    ]
}

/// Header, t0 = 1000 as zig-zag varint (2000 → d0 0f), v0 = 1.0 raw, t1 - t0 = 1000 as
/// uvarint (e8 07): identical in both dialects.
const GOLDEN_PREFIX: [u8; 14] = [
    0x00, 0x05, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07,
];

/// The low 61 bits of 0x1ff0_0000_0000_0001: the significant bits of 4.0 XOR stale NaN.
fn stale_xor_bits() -> String {
    format!("{}{}1", "1".repeat(9), "0".repeat(51))
}

#[test]
fn prometheus_dialect_matches_prometheus_bytes() {
    let c = encode(Encoding::PrometheusXor, &golden_samples());
    let bits = format!(
        "0 \
         0 11 00001 001011 11111111111 \
         10 00000000000001 10 00000000001 \
         10 11111111111111 11 00010 111101 {}",
        stale_xor_bits()
    );
    // v1 same; t2 dod 0, v2 new window (lead 1, 11 bits); t3 dod +1 in 14 bits, v3 reuses
    // the window; t4 dod -1, v4 (stale NaN) does not fit the window: new one.
    assert_eq!(c.bytes(), golden(&GOLDEN_PREFIX, &bits));
}

#[test]
fn pharos_dialect_golden_bytes() {
    let c = encode(Encoding::PharosXor, &golden_samples());
    let bits = format!(
        "0 \
         0 111 00 00 001 \
         10 0001 111 00 00 010 \
         10 1111 110 00010 111101 {}",
        stale_xor_bits()
    );
    // v2 = 1.0 + 1 and v3 = 2.0 + 2 are decimal records (scale 0, 3-bit delta); dods of
    // ±1 take the 4-bit bucket; the stale NaN needs a new XOR window ('110').
    assert_eq!(c.bytes(), golden(&GOLDEN_PREFIX, &bits));
    assert_same(
        &iter_bytes(c.bytes(), 5).collect::<Vec<_>>(),
        &golden_samples(),
        "golden",
    );
}

#[test]
fn decodes_a_chunk_written_by_prometheus() {
    // One sample (7 200 000 ms, 12000.0) as written by Prometheus, first exactly, then with
    // the spurious trailing zero byte older Prometheus versions sometimes appended.
    let exact = [
        0x00, 0x01, 0x80, 0xf4, 0xee, 0x06, 0x40, 0xc7, 0x70, 0, 0, 0, 0, 0,
    ];
    let mut padded = exact.to_vec();
    padded.push(0);
    for bytes in [&exact[..], &padded] {
        let mut it = iter_bytes_with(Encoding::PrometheusXor, bytes, 1);
        assert_eq!(it.next(), Some((7_200_000, 12_000.0)));
        assert_eq!(it.next(), None);
        assert!(it.err().is_none());
    }
    let c = encode(Encoding::PrometheusXor, &[(7_200_000, 12_000.0)]);
    assert_eq!(c.bytes(), exact);
}

#[test]
fn empty_chunk() {
    for enc in BOTH {
        let c = XorChunk::with_encoding(enc);
        assert_eq!(c.num_samples(), 0);
        assert_eq!(c.min_time(), None);
        assert_eq!(c.max_time(), None);
        assert_eq!(c.bytes(), &[0, 0]);
        let mut it = c.iter();
        assert_eq!(it.next(), None);
        assert!(it.err().is_none());
        assert_eq!(XorChunk::from_bytes(enc, vec![0, 0]).unwrap(), c);
    }
    assert_eq!(XorChunk::default().encoding(), Encoding::PharosXor);
}

#[test]
fn special_floats_round_trip_bit_exact() {
    let specials: Vec<f64> = [
        0x0000_0000_0000_0000, // +0
        0x8000_0000_0000_0000, // -0
        STALE_NAN,             // Prometheus staleness marker
        0x7ff8_0000_0000_0001, // quiet NaN, Prometheus's "normal" NaN
        0x7ff8_0000_0000_0000, // canonical quiet NaN
        0xfff8_0000_0000_0000, // negative NaN
        0x7ff0_0000_0000_0001, // signalling NaN
        0x7fff_ffff_ffff_ffff, // NaN, all payload bits
        0xffff_ffff_ffff_ffff, // negative NaN, all payload bits
        0x7ff0_0000_0000_0000, // +inf
        0xfff0_0000_0000_0000, // -inf
        0x0000_0000_0000_0001, // smallest subnormal
        0x000f_ffff_ffff_ffff, // largest subnormal
        0x0010_0000_0000_0000, // smallest normal
        0x7fef_ffff_ffff_ffff, // f64::MAX
        0xffef_ffff_ffff_ffff, // f64::MIN
        0x3ff0_0000_0000_0000, // 1.0
        0x3fd3_3333_3333_3334, // 0.1 + 0.2
        0x4341_c379_37e0_8000, // 1e16 (beyond 2^53)
    ]
    .into_iter()
    .map(f64::from_bits)
    .collect();
    // Every ordered pair, so each value follows each other one (XOR windows, decimal
    // records next to NaN/inf/-0...).
    let mut values = Vec::new();
    for &a in &specials {
        for &b in &specials {
            values.extend([a, b, b, 0.5, a, 12.34]);
        }
    }
    for enc in BOTH {
        for chunk in values.chunks(600) {
            let samples: Vec<(i64, f64)> = chunk
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as i64 * 15_000, v))
                .collect();
            let c = encode(enc, &samples);
            assert_same(&c.iter().collect::<Vec<_>>(), &samples, "specials");
        }
    }
}

#[test]
fn extreme_timestamps_round_trip() {
    let ts = [
        i64::MIN,
        i64::MIN + 1,
        -1_000_000_000_000,
        -1,
        0,
        1,
        2,
        1 << 40,
        (1 << 40) + 1,
        i64::MAX - 1,
        i64::MAX,
    ];
    for enc in BOTH {
        let samples: Vec<(i64, f64)> = ts.iter().map(|&t| (t, t as f64)).collect();
        let c = encode(enc, &samples);
        assert_same(&c.iter().collect::<Vec<_>>(), &samples, "extremes");
        assert_eq!(c.min_time(), Some(i64::MIN));
        assert_eq!(c.max_time(), Some(i64::MAX));
        // A maximal jump as the very first delta.
        let samples = [(i64::MIN, 1.0), (i64::MAX, 2.0)];
        let c = encode(enc, &samples);
        assert_same(&c.iter().collect::<Vec<_>>(), &samples, "first delta");
    }
}

#[test]
fn out_of_order_append_is_an_error_and_changes_nothing() {
    for enc in BOTH {
        let mut c = XorChunk::with_encoding(enc);
        c.append(1_000, 1.0).unwrap();
        c.append(2_000, 2.0).unwrap();
        let before = c.clone();
        assert_eq!(
            c.append(2_000, 3.0),
            Err(ChunkError::OutOfOrder {
                last: 2_000,
                t: 2_000
            })
        );
        assert_eq!(
            c.append(-5, 3.0),
            Err(ChunkError::OutOfOrder { last: 2_000, t: -5 })
        );
        assert_eq!(c, before);
        c.append(3_000, 3.0).unwrap();
        let got: Vec<_> = c.iter().collect();
        assert_same(&got, &[(1_000, 1.0), (2_000, 2.0), (3_000, 3.0)], "after");
    }
}

#[test]
fn full_chunk_rejects_appends() {
    let mut c = XorChunk::new();
    for i in 0..u16::MAX {
        c.append(i64::from(i) * 10_000, f64::from(i % 7)).unwrap();
    }
    let before = c.clone();
    assert_eq!(c.append(i64::MAX, 1.0), Err(ChunkError::Full));
    assert_eq!(c, before);
    assert_eq!(c.num_samples(), u16::MAX);
    let mut it = c.iter();
    assert_eq!(it.by_ref().count(), usize::from(u16::MAX));
    assert!(it.err().is_none());
}

#[test]
fn struct_stays_small() {
    assert!(std::mem::size_of::<XorChunk>() <= 56);
}

/// A random series: timestamps and values from a mix of regimes seen in practice and
/// adversarial ones.
fn random_series(rng: &mut Rng, len: usize) -> Vec<(i64, f64)> {
    let mut t = match rng.below(4) {
        0 => rng.next_u64() as i64,
        1 => -(rng.below(1 << 50) as i64),
        _ => 1_700_000_000_000 + rng.range(0, 1 << 30),
    };
    let interval = [1, 15, 1_000, 10_000, 15_000, 60_000][rng.below(6) as usize];
    let jitter = [0, 1, 3, 25, 5_000][rng.below(5) as usize];
    let scale = [1.0, 10.0, 100.0, 1000.0, 10_000.0][rng.below(5) as usize];
    let mut ticks = rng.range(-1_000_000, 1 << 40);
    let value_kind = rng.below(6);
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let step = if rng.chance(2) {
            rng.range(1, 1 << 45)
        } else {
            (interval + rng.range(-jitter, jitter)).max(1)
        };
        match t.checked_add(step) {
            Some(next) => t = next,
            None => break,
        }
        let v = match value_kind {
            0 => f64::from_bits(rng.next_u64()),
            1 => 42.0,
            2 => {
                ticks += rng.range(0, 2_000);
                ticks as f64 / scale
            }
            3 => {
                ticks += rng.range(-30, 30);
                ticks as f64 / scale
            }
            4 => (ticks + rng.range(-3, 3)) as f64 * 4096.0,
            _ => rng.range(-5, 5) as f64 * 0.1,
        };
        let v = if rng.chance(3) {
            f64::from_bits(
                [STALE_NAN, 0x8000_0000_0000_0000, 0x7ff0_0000_0000_0000][rng.below(3) as usize],
            )
        } else {
            v
        };
        out.push((t, v));
    }
    out
}

#[test]
fn random_round_trips() {
    let mut rng = Rng(0x5eed);
    for case in 0..600 {
        let len = [1, 2, 3, 120, 500][case % 5];
        let samples = random_series(&mut rng, len);
        for enc in BOTH {
            let context = format!("case {case} {enc:?}");
            let c = encode(enc, &samples);
            assert_eq!(usize::from(c.num_samples()), samples.len());
            assert_same(&c.iter().collect::<Vec<_>>(), &samples, &context);
            let mut it = iter_bytes_with(enc, c.bytes(), c.num_samples());
            assert_same(&it.by_ref().collect::<Vec<_>>(), &samples, &context);
            assert!(it.err().is_none());

            // Any prefix decodes on its own.
            let k = rng.below(samples.len() as u64 + 1) as usize;
            let prefix: Vec<_> = iter_bytes_with(enc, c.bytes(), k as u16).collect();
            assert_same(&prefix, &samples[..k], &context);

            // Resuming from persisted bytes continues the stream exactly.
            let head = encode(enc, &samples[..k]);
            let mut resumed = XorChunk::from_bytes(enc, head.bytes().to_vec()).unwrap();
            assert_eq!(resumed, head, "{context}");
            for &(t, v) in &samples[k..] {
                resumed.append(t, v).unwrap();
            }
            assert_eq!(resumed.bytes(), c.bytes(), "{context}");
        }
    }
}

#[test]
fn decimal_records_are_bit_exact() {
    let mut rng = Rng(99);
    for _ in 0..200 {
        let scale = [1.0, 10.0, 100.0, 1000.0][rng.below(4) as usize];
        let base = rng.range(-(1 << 52), 1 << 52);
        let mut samples = Vec::new();
        let mut m = base;
        for i in 0..120 {
            m += rng.range(-40_000, 40_000);
            let mut v = m as f64 / scale;
            if rng.chance(10) {
                // One ulp off a decimal: must not be mistaken for it.
                v = f64::from_bits(v.to_bits() ^ 1);
            }
            samples.push((i * 10_000, v));
        }
        let c = encode(Encoding::PharosXor, &samples);
        assert_same(&c.iter().collect::<Vec<_>>(), &samples, "decimal");
    }
}

#[test]
fn pharos_dialect_is_smaller_on_decimal_counters() {
    // CPU seconds as node_exporter reports them: USER_HZ ticks / 100, with a few ms of
    // scrape jitter.
    let mut rng = Rng(3);
    let mut ticks = 123_456_789i64;
    let samples: Vec<(i64, f64)> = (0..120)
        .map(|i| {
            ticks += rng.range(800, 1_200);
            (i * 10_000 + rng.range(-2, 2), ticks as f64 / 100.0)
        })
        .collect();
    let prom = encode(Encoding::PrometheusXor, &samples).bytes().len();
    let pharos = encode(Encoding::PharosXor, &samples).bytes().len();
    assert!(
        pharos * 3 < prom * 2,
        "pharos {pharos} B vs prometheus {prom} B"
    );
}

#[test]
fn seek_positions_on_first_sample_at_or_after() {
    let samples: Vec<(i64, f64)> = (1..=10).map(|i| (i * 100, i as f64)).collect();
    let c = encode(Encoding::PharosXor, &samples);

    let mut it = c.iter();
    assert_eq!(it.seek(i64::MIN), Some((100, 1.0)));
    assert_eq!(it.next(), Some((100, 1.0)));
    assert_eq!(it.seek(350), Some((400, 4.0)));
    assert_eq!(it.seek(400), Some((400, 4.0)), "seeking again stays put");
    assert_eq!(it.seek(0), Some((400, 4.0)), "never moves backwards");
    assert_eq!(it.size_hint(), (1, Some(7)));
    assert_eq!(it.next(), Some((400, 4.0)));
    assert_eq!(it.next(), Some((500, 5.0)));
    assert_eq!(it.seek(1_000), Some((1_000, 10.0)));
    assert_eq!(it.seek(1_001), None);
    assert_eq!(it.next(), None);
    assert!(it.err().is_none());

    let mut it = c.iter();
    assert_eq!(it.seek(1_001), None);
    assert_eq!(XorChunk::new().iter().seek(0), None);
}

#[test]
fn header_count_mismatch_is_corrupt() {
    let c = encode(Encoding::PharosXor, &golden_samples());
    let mut it = iter_bytes(c.bytes(), 6);
    assert_eq!(it.next(), None);
    assert!(matches!(it.err(), Some(ChunkError::Corrupt(_))));
    for short in [&[][..], &[0][..]] {
        let mut it = iter_bytes(short, 0);
        assert_eq!(it.next(), None);
        assert!(it.err().is_some());
        assert!(XorChunk::from_bytes(Encoding::PharosXor, short.to_vec()).is_err());
    }
    assert_eq!(header_num_samples(c.bytes()), Some(5));
    assert_eq!(header_num_samples(&[1]), None);
}

#[test]
fn truncated_chunks_report_corruption() {
    let mut rng = Rng(17);
    for case in 0..150 {
        let samples = random_series(&mut rng, [1, 2, 5, 120][case % 4]);
        for enc in BOTH {
            let c = encode(enc, &samples);
            for len in 0..c.bytes().len() {
                let bytes = &c.bytes()[..len];
                let mut it = iter_bytes_with(enc, bytes, c.num_samples());
                let n = it.by_ref().count();
                assert!(n < samples.len(), "case {case} len {len}");
                assert!(it.err().is_some(), "case {case} len {len}");
                assert!(XorChunk::from_bytes(enc, bytes.to_vec()).is_err());
            }
        }
    }
}

#[test]
fn damaged_and_random_bytes_never_panic() {
    let mut rng = Rng(23);
    for case in 0..400 {
        let samples = random_series(&mut rng, 120);
        for enc in BOTH {
            let c = encode(enc, &samples);
            let mut bytes = c.bytes().to_vec();
            for _ in 0..=rng.below(3) {
                let bit = rng.below(bytes.len() as u64 * 8) as usize;
                bytes[bit / 8] ^= 0x80 >> (bit % 8);
            }
            let n = header_num_samples(&bytes).unwrap();
            let mut it = iter_bytes_with(enc, &bytes, n);
            let got = it.by_ref().count();
            assert!(got == usize::from(n) || it.err().is_some(), "case {case}");
            let mut it = iter_bytes_with(enc, &bytes, n);
            it.seek(rng.next_u64() as i64);
            if let Ok(mut resumed) = XorChunk::from_bytes(enc, bytes.clone()) {
                // Whatever decoded must stay appendable without panicking.
                let _ = resumed.append(i64::MAX, 1.0);
            }
        }
    }
    for _ in 0..3_000 {
        let len = rng.below(48) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        for enc in BOTH {
            let n = rng.below(300) as u16;
            let mut it = iter_bytes_with(enc, &bytes, n);
            let got = it.by_ref().count();
            assert!(got == usize::from(n) || it.err().is_some());
            let _ = XorChunk::from_bytes(enc, bytes.clone());
        }
    }
}

#[test]
fn from_bytes_drops_trailing_padding() {
    // Older Prometheus versions sometimes left an extra zero byte at the end of a chunk.
    let samples = golden_samples();
    let c = encode(Encoding::PrometheusXor, &samples[..3]);
    let mut padded = c.bytes().to_vec();
    padded.push(0);
    let mut resumed = XorChunk::from_bytes(Encoding::PrometheusXor, padded).unwrap();
    assert_eq!(resumed, c);
    for &(t, v) in &samples[3..] {
        resumed.append(t, v).unwrap();
    }
    assert_eq!(
        resumed.bytes(),
        encode(Encoding::PrometheusXor, &samples).bytes()
    );
}

#[test]
fn encoding_codes_round_trip() {
    for enc in BOTH {
        assert_eq!(Encoding::from_code(enc.code()), Some(enc));
    }
    assert_eq!(Encoding::PrometheusXor.code(), 1);
    assert_eq!(Encoding::from_code(0), None);
    assert_eq!(Encoding::from_code(2), None);
}

#[test]
fn shrink_and_into_iter() {
    let mut c = encode(Encoding::PharosXor, &golden_samples());
    let before = c.clone();
    c.shrink_to_fit();
    assert_eq!(c, before);
    let mut n = 0;
    for (_, _) in &c {
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn clear_keeps_last_sample() {
    let samples = golden_samples();
    let mut c = encode(Encoding::PharosXor, &samples);
    assert_eq!(XorChunk::new().last(), None);
    let (t, v) = samples[samples.len() - 1];
    assert_eq!(c.last(), Some((t, v.to_bits())));
    c.clear();
    assert_eq!(
        (c.num_samples(), c.min_time(), c.max_time()),
        (0, None, None)
    );
    assert_eq!(
        c.last(),
        Some((t, v.to_bits())),
        "clear keeps the last sample"
    );
    assert_eq!(c.capacity(), 2, "clear releases the buffer");
    // A cleared chunk encodes exactly as a new one.
    for &(t, v) in &samples {
        c.append(t, v).unwrap();
    }
    assert_eq!(c.bytes(), encode(Encoding::PharosXor, &samples).bytes());
}
