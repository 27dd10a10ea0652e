use super::*;
use crate::chunk::{XorChunk, header_num_samples, iter_bytes_with};

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// SplitMix64: a tiny seedable generator, so failures reproduce from the seed.
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

fn encode(samples: &[(i64, f64)]) -> ColumnarChunk {
    ColumnarChunk::encode(samples).unwrap()
}

fn decode(bytes: &[u8], n: u16) -> (Vec<(i64, f64)>, Option<ChunkError>) {
    let mut it = ColumnarIter::new(bytes, n);
    let got: Vec<_> = it.by_ref().collect();
    (got, it.err().cloned())
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

fn assert_round_trip(samples: &[(i64, f64)], context: &str) -> ColumnarChunk {
    let c = encode(samples);
    assert_eq!(usize::from(c.num_samples()), samples.len(), "{context}");
    let (got, err) = decode(c.bytes(), c.num_samples());
    assert_eq!(err, None, "{context}");
    assert_same(&got, samples, context);
    assert_same(&c.iter().collect::<Vec<_>>(), samples, context);
    let mut it = iter_bytes_with(Encoding::PharosColumnar, c.bytes(), c.num_samples());
    assert_same(&it.by_ref().collect::<Vec<_>>(), samples, context);
    assert!(it.err().is_none(), "{context}");
    c
}

/// The value column's mode byte: right after the timestamp column.
fn value_mode(c: &ColumnarChunk) -> u8 {
    let bytes = c.bytes();
    let mut pos = HEADER_LEN;
    Column::parse(bytes, &mut pos, usize::from(c.num_samples())).unwrap();
    bytes[pos]
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

#[test]
fn golden_bytes() {
    // The worked example of docs/tsdb-chunks.md, assembled by hand.
    let want: Vec<u8> = [
        &[0x00, 0x05][..],
        // Timestamps: t0 = 1000, median delta 1000, divisor 1, no low bytes, residuals
        // 0 0 +1 0 zig-zagged.
        &[0xd0, 0x0f, 0xd0, 0x0f, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00],
        // Values: decimal, scale 0, one exception at index 4 (the stale NaN)...
        &[0x01, 0x00, 0x01, 0x04],
        &[0x7f, 0xf0, 0, 0, 0, 0, 0, 0x02],
        // ...then the integers 1 1 2 4: first 1, median delta 1, divisor 1, no low
        // bytes, residuals -1 0 +1 zig-zagged.
        &[0x02, 0x02, 0x01, 0x00, 0x01, 0x00, 0x02],
    ]
    .concat();
    let c = assert_round_trip(&golden_samples(), "golden");
    assert_eq!(c.bytes(), want);
    assert_eq!(c.min_time(), Some(1000));
    assert_eq!(c.max_time(), Some(5001));
    assert_eq!(c.encoding(), Encoding::PharosColumnar);
    assert_eq!(header_num_samples(c.bytes()), Some(5));
}

#[test]
fn empty_chunk() {
    let c = encode(&[]);
    assert_eq!(c.bytes(), &[0, 0]);
    assert_eq!((c.min_time(), c.max_time()), (None, None));
    assert_eq!(decode(c.bytes(), 0), (vec![], None));
    assert_eq!(c.iter().seek(0), None);
}

#[test]
fn invalid_input_is_refused() {
    assert_eq!(
        ColumnarChunk::encode(&[(5, 1.0), (5, 2.0)]),
        Err(ChunkError::OutOfOrder { last: 5, t: 5 })
    );
    assert_eq!(
        ColumnarChunk::encode(&[(5, 1.0), (9, 2.0), (7, 2.0)]),
        Err(ChunkError::OutOfOrder { last: 9, t: 7 })
    );
    let too_many: Vec<(i64, f64)> = (0..=i64::from(u16::MAX)).map(|t| (t, 0.0)).collect();
    assert_eq!(ColumnarChunk::encode(&too_many), Err(ChunkError::Full));
    assert_round_trip(&too_many[1..], "full chunk");
}

#[test]
fn xor_types_refuse_the_columnar_encoding() {
    let c = XorChunk::with_encoding(Encoding::PharosColumnar);
    assert_eq!(c.encoding(), Encoding::PharosXor);
    assert!(
        XorChunk::from_bytes(
            Encoding::PharosColumnar,
            encode(&golden_samples()).bytes().to_vec()
        )
        .is_err()
    );
    assert_eq!(Encoding::from_code(0x82), Some(Encoding::PharosColumnar));
    assert_eq!(Encoding::PharosColumnar.code(), 0x82);
    assert!(!Encoding::PharosColumnar.is_xor());
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
        0x7ff0_0000_0000_0000, // +inf
        0xfff0_0000_0000_0000, // -inf
        0x0000_0000_0000_0001, // smallest subnormal
        0x000f_ffff_ffff_ffff, // largest subnormal
        0x7fef_ffff_ffff_ffff, // f64::MAX
        0xffef_ffff_ffff_ffff, // f64::MIN
        0x3ff0_0000_0000_0000, // 1.0
        0x3fd3_3333_3333_3334, // 0.1 + 0.2
        0x4341_c379_37e0_8000, // 1e16 (beyond 2^53)
        0x4340_0000_0000_0000, // 2^53
        0x3b5f_5b3a_8b12_6c1f, // about 1e-22: the largest decimal scale
    ]
    .into_iter()
    .map(f64::from_bits)
    .collect();
    let mut modes = [0; 3];
    for &a in &specials {
        for &b in &specials {
            // Mostly decimals with one or two specials (exceptions), then the specials
            // alone (float or constant mode).
            for values in [
                vec![a, 12.5, b, 13.75, 0.5, b],
                vec![a, b, a, b],
                vec![a, a, a],
                vec![b],
            ] {
                let samples: Vec<(i64, f64)> = values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i as i64 * 15_000, v))
                    .collect();
                let c = assert_round_trip(&samples, &format!("{a:?} {b:?}"));
                modes[usize::from(value_mode(&c))] += 1;
            }
        }
    }
    assert!(
        modes.iter().all(|&m| m > 0),
        "every mode exercised: {modes:?}"
    );
}

#[test]
fn modes_are_chosen_by_shape() {
    let ts = |i: i64| 1_700_000_000_000 + i * 15_000;
    let constant: Vec<_> = (0..120).map(|i| (ts(i), 4096.0)).collect();
    assert_eq!(
        value_mode(&assert_round_trip(&constant, "constant")),
        MODE_CONSTANT
    );
    let stale: Vec<_> = (0..120)
        .map(|i| (ts(i), f64::from_bits(STALE_NAN)))
        .collect();
    assert_eq!(
        value_mode(&assert_round_trip(&stale, "stale")),
        MODE_CONSTANT
    );

    // CPU seconds: USER_HZ ticks / 100, ending in a staleness marker.
    let mut cpu: Vec<_> = (0..119)
        .map(|i| (ts(i), (123_456_789 + i * 997) as f64 / 100.0))
        .collect();
    cpu.push((ts(119), f64::from_bits(STALE_NAN)));
    let c = assert_round_trip(&cpu, "cpu");
    assert_eq!(value_mode(&c), MODE_DECIMAL);
    // Zero residuals: about a byte per timestamp and per value before compression.
    assert!(c.bytes().len() < 3 * 120, "{} bytes", c.bytes().len());

    // Seconds derived from µs and ns counters (node_pressure_*, node_schedstat_*) stay
    // decimal, at scales 6 and 9.
    for (divisor, scale) in [(1e6, 6), (1e9, 9)] {
        let samples: Vec<_> = (0..120)
            .map(|i| (ts(i), (98_765_432_101 + i * 7_654_321) as f64 / divisor))
            .collect();
        let c = assert_round_trip(&samples, "µs/ns");
        let (bytes, mut pos) = (c.bytes(), HEADER_LEN);
        Column::parse(bytes, &mut pos, 120).unwrap();
        assert_eq!(&bytes[pos..pos + 2], &[MODE_DECIMAL, scale]);
    }

    let mut rng = Rng(5);
    let noise: Vec<_> = (0..120)
        .map(|i| {
            (
                ts(i),
                0.001 + (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64,
            )
        })
        .collect();
    assert_eq!(value_mode(&assert_round_trip(&noise, "noise")), MODE_FLOAT);
}

#[test]
fn columns_use_divisors_and_low_bytes() {
    // Memory in 4096-byte pages, moving by up to ±500 pages: the divisor takes out the
    // page size.
    let mut rng = Rng(11);
    let mut pages = 1_000_000i64;
    let samples: Vec<_> = (0..120)
        .map(|i| {
            pages += rng.range(-500, 500);
            (i * 10_000, (pages * 4096) as f64)
        })
        .collect();
    let c = assert_round_trip(&samples, "pages");
    let (bytes, mut pos) = (c.bytes(), HEADER_LEN);
    Column::parse(bytes, &mut pos, 120).unwrap();
    assert_eq!(&bytes[pos..pos + 3], &[MODE_DECIMAL, 0, 0]);
    pos += 3;
    let col = Column::parse(bytes, &mut pos, 120).unwrap();
    assert_eq!(col.gcd, 4096);
    // Residuals of a few hundred: one low byte each.
    assert_eq!(col.low, 1);

    // Wide residuals at both ends of the range, and divisors that do not fit i64.
    for values in [
        vec![i64::MIN, i64::MAX, i64::MIN, 0, i64::MAX],
        vec![0, i64::MIN, 0, i64::MIN],
        vec![1, 1 << 62, -(1 << 62), 7],
    ] {
        let mut out = Vec::new();
        write_column(&mut out, &values);
        let mut pos = 0;
        let mut col = Column::parse(&out, &mut pos, values.len()).unwrap();
        assert_eq!(pos, out.len());
        let got: Vec<i64> = (0..values.len()).map(|_| col.next(&out).unwrap()).collect();
        assert_eq!(got, values);
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
    let samples: Vec<(i64, f64)> = ts.iter().map(|&t| (t, t as f64)).collect();
    let c = assert_round_trip(&samples, "extremes");
    assert_eq!(c.min_time(), Some(i64::MIN));
    assert_eq!(c.max_time(), Some(i64::MAX));
    assert_round_trip(&[(i64::MIN, 1.0), (i64::MAX, 2.0)], "first delta");
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
    let scale = [1.0, 10.0, 100.0, 1000.0, 1e6, 1e9][rng.below(6) as usize];
    let mut ticks = rng.range(-1_000_000, 1 << 40);
    let value_kind = rng.below(7);
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
            5 => {
                ticks = ticks.wrapping_mul(3).wrapping_add(rng.range(0, 1 << 20));
                ticks as f64
            }
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
    for case in 0..1_000 {
        let len = [1, 2, 3, 120, 500][case % 5];
        let samples = random_series(&mut rng, len);
        let context = format!("case {case}");
        let c = assert_round_trip(&samples, &context);
        // Any prefix decodes on its own.
        let k = rng.below(samples.len() as u64 + 1) as usize;
        let (prefix, err) = decode(c.bytes(), k as u16);
        assert_eq!(err, None, "{context}");
        assert_same(&prefix, &samples[..k], &context);
    }
}

#[test]
fn decimals_are_bit_exact() {
    let mut rng = Rng(99);
    for _ in 0..300 {
        let scale = [1.0, 10.0, 100.0, 1000.0, 1e6, 1e9][rng.below(6) as usize];
        let mut m = rng.range(-(1 << 52), 1 << 52);
        let samples: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                m += rng.range(-40_000, 40_000);
                let mut v = m as f64 / scale;
                if rng.chance(10) {
                    // One ulp off a decimal: must not be mistaken for it.
                    v = f64::from_bits(v.to_bits() ^ 1);
                }
                (i * 10_000, v)
            })
            .collect();
        assert_round_trip(&samples, "decimal");
    }
}

#[test]
fn seek_positions_on_first_sample_at_or_after() {
    let samples: Vec<(i64, f64)> = (1..=10).map(|i| (i * 100, i as f64)).collect();
    let c = encode(&samples);
    let mut it = iter_bytes_with(Encoding::PharosColumnar, c.bytes(), c.num_samples());
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
    assert!(it.err().is_none());
}

#[test]
fn header_count_mismatch_and_trailing_bytes_are_corrupt() {
    let c = encode(&golden_samples());
    let (got, err) = decode(c.bytes(), 6);
    assert!(got.is_empty());
    assert!(matches!(err, Some(ChunkError::Corrupt(_))));
    for short in [&[][..], &[0][..]] {
        assert!(decode(short, 0).1.is_some());
    }
    let mut padded = c.bytes().to_vec();
    padded.push(0);
    assert!(decode(&padded, 5).1.is_some());
    assert!(decode(&[0, 0, 0], 0).1.is_some());
}

#[test]
fn truncated_chunks_report_corruption() {
    let mut rng = Rng(17);
    for case in 0..200 {
        let samples = random_series(&mut rng, [1, 2, 5, 120][case % 4]);
        let c = encode(&samples);
        for len in 0..c.bytes().len() {
            let (got, err) = decode(&c.bytes()[..len], c.num_samples());
            assert!(
                got.len() < samples.len() || samples.is_empty(),
                "case {case} len {len}"
            );
            assert!(err.is_some(), "case {case} len {len}");
        }
    }
}

#[test]
fn damaged_and_random_bytes_never_panic() {
    let mut rng = Rng(23);
    for case in 0..600 {
        let samples = random_series(&mut rng, 120);
        let c = encode(&samples);
        let mut bytes = c.bytes().to_vec();
        for _ in 0..=rng.below(3) {
            if rng.chance(50) {
                let bit = rng.below(bytes.len() as u64 * 8) as usize;
                bytes[bit / 8] ^= 0x80 >> (bit % 8);
            } else {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] = rng.next_u64() as u8;
            }
        }
        let n = header_num_samples(&bytes).unwrap();
        let mut it = ColumnarIter::new(&bytes, n);
        let got = it.by_ref().count();
        assert!(got == usize::from(n) || it.err().is_some(), "case {case}");
        let mut it = ColumnarIter::new(&bytes, n);
        it.seek(rng.next_u64() as i64);
    }
    for _ in 0..20_000 {
        let len = rng.below(64) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if bytes.len() >= 2 && rng.chance(80) {
            // Small counts reach further into the structure.
            bytes[0] = 0;
            bytes[1] = rng.below(8) as u8;
        }
        let n = if rng.chance(50) {
            header_num_samples(&bytes).unwrap_or(0)
        } else {
            rng.below(300) as u16
        };
        let mut it = ColumnarIter::new(&bytes, n);
        let got = it.by_ref().count();
        assert!(got == usize::from(n) || it.err().is_some());
    }
}

#[test]
fn every_single_byte_change_is_decoded_or_reported() {
    // Exhaustive over one chunk of each mode: every byte, every value.
    let float: Vec<_> = (0..6).map(|i| (i * 10, 0.1 * i as f64 + 0.7)).collect();
    let constant: Vec<_> = (0..6).map(|i| (i * 10, 3.0)).collect();
    for samples in [golden_samples(), float, constant] {
        let c = encode(&samples);
        for at in 0..c.bytes().len() {
            for b in 0..=255u8 {
                let mut bytes = c.bytes().to_vec();
                bytes[at] = b;
                let n = c.num_samples();
                let (got, err) = decode(&bytes, n);
                assert!(
                    got.len() == usize::from(n) || err.is_some(),
                    "byte {at} = {b}"
                );
                // A seek on the damaged chunk terminates without panicking.
                let _ = ColumnarIter::new(&bytes, n).seek(i64::MAX);
            }
        }
    }
}

#[test]
fn counter_chunk_stays_compact() {
    // Sizes after page compression are the benchmark's business (benches/chunk.rs); this
    // only pins that a typical counter chunk stays compact as raw bytes.
    let samples: Vec<_> = (0..120)
        .map(|i| {
            (
                1_700_000_000_000 + i * 15_000,
                (1_000_000 + i * 1_234) as f64,
            )
        })
        .collect();
    let c = assert_round_trip(&samples, "counter");
    assert!(
        c.bytes().len() <= 2 + 12 + 120 + 20 + 120,
        "{}",
        c.bytes().len()
    );
}

#[test]
fn seek_and_decode_into_agree_with_plain_iteration() {
    // `seek` skips values without converting them and `decode_into` decodes a time range
    // in one loop; both must give exactly what stepping through every sample gives.
    let mut rng = Rng(0xdec0de);
    for case in 0..600 {
        let len = [1, 2, 3, 17, 120, 500][case % 6];
        let samples = random_series(&mut rng, len);
        let c = encode(&samples);
        let context = format!("case {case}");
        for _ in 0..6 {
            let pick = |rng: &mut Rng| match rng.below(3) {
                0 => rng.next_u64() as i64,
                _ => samples[rng.below(samples.len() as u64) as usize].0 + rng.range(-1, 1),
            };
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            let (lo, hi) = (a.min(b), a.max(b));
            let want: Vec<(i64, f64)> = samples
                .iter()
                .copied()
                .filter(|&(t, _)| t >= lo && t <= hi)
                .collect();
            let mut got = Vec::new();
            c.iter().decode_into(lo, hi, &mut got);
            assert_same(&got, &want, &format!("{context} decode_into {lo}..={hi}"));
            let mut it = c.iter();
            let first = it.seek(lo);
            let want_first = samples.iter().copied().find(|&(t, _)| t >= lo);
            assert_same(
                first.as_slice(),
                want_first.as_slice(),
                &format!("{context} seek {lo}"),
            );
            let rest: Vec<(i64, f64)> = it.collect();
            let want_rest: Vec<(i64, f64)> =
                samples.iter().copied().filter(|&(t, _)| t >= lo).collect();
            assert_same(&rest, &want_rest, &format!("{context} after seek {lo}"));
        }
    }
}

#[test]
fn skipping_varints_word_wise_checks_what_reading_them_checks() {
    let mut rng = Rng(0x5c1b);
    for case in 0..20_000 {
        let len = rng.below(40) as usize;
        // Mostly continuation bytes in some cases, so long and invalid varints occur.
        let cont = [10, 50, 90, 97][case % 4];
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let b = (rng.next_u64() & 0x7f) as u8;
                if rng.below(100) < cont {
                    b | 0x80
                } else {
                    b & [0x7f, 0x01][case % 2]
                }
            })
            .collect();
        let start = rng.below(4) as usize;
        let count = rng.below(12) as usize;
        let mut pos = start;
        let mut want = Some(());
        for _ in 0..count {
            if read_uvarint(&bytes, &mut pos).is_none() {
                want = None;
                break;
            }
        }
        let want = want.map(|()| pos);
        assert_eq!(
            super::skip_uvarints(&bytes, start, count),
            want,
            "case {case}: {bytes:02x?} from {start}, {count} varints"
        );
    }
}
