//! Block tests: round trips, query semantics against brute force, crash safety,
//! corruption, merging and tombstones.

use super::encoding::{Decbuf, ENC_RAW, crc32c, get_blob, put_uvarint};
use super::*;
use pharos_model::{Labels, MatchOp, Matcher};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// SplitMix64: a seeded generator, so failures reproduce.
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
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, PartialEq)]
struct OwnedChunk {
    min_time: i64,
    max_time: i64,
    encoding: u8,
    num_samples: u16,
    bytes: Vec<u8>,
}

impl OwnedChunk {
    fn data(&self) -> ChunkData<'_> {
        ChunkData {
            min_time: self.min_time,
            max_time: self.max_time,
            encoding: self.encoding,
            num_samples: self.num_samples,
            bytes: &self.bytes,
        }
    }
}

const NAMES: [&str; 5] = ["cpu", "disk", "mem", "net", "up"];
const JOBS: [&str; 3] = ["node", "prom", "push"];
const MODES: [&str; 4] = ["idle", "user", "system", "iowait"];
const ENVS: [&str; 2] = ["prod", "dev"];

fn gen_labels(rng: &mut Rng, n: usize) -> Vec<Labels> {
    let mut set = std::collections::BTreeSet::new();
    while set.len() < n {
        let mut pairs = vec![
            ("__name__", rng.pick(&NAMES).to_string()),
            ("job", rng.pick(&JOBS).to_string()),
        ];
        if !rng.chance(20) {
            pairs.push(("instance", format!("h{}:9100", rng.below(25))));
        }
        if rng.chance(40) {
            pairs.push(("mode", rng.pick(&MODES).to_string()));
        }
        if rng.chance(15) {
            pairs.push(("env", rng.pick(&ENVS).to_string()));
        }
        if rng.chance(5) {
            pairs.push(("device", format!("sd{}", rng.below(1000))));
        }
        set.insert(Labels::from_pairs(pairs));
    }
    set.into_iter().collect()
}

fn gen_chunks(rng: &mut Rng, max_chunks: u64, incompressible: bool) -> Vec<OwnedChunk> {
    let k = rng.below(max_chunks) + 1;
    (0..k)
        .map(|j| {
            let min_time = j as i64 * 10_000 + rng.below(100) as i64;
            let len = rng.below(300) as usize;
            let bytes = if incompressible {
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                // Half structure, half noise: compressible like real chunk data.
                (0..len)
                    .map(|i| {
                        if i % 2 == 0 {
                            (i / 8) as u8
                        } else {
                            rng.below(4) as u8
                        }
                    })
                    .collect()
            };
            OwnedChunk {
                min_time,
                max_time: min_time + rng.below(9_000) as i64,
                encoding: rng.below(4) as u8,
                num_samples: rng.below(300) as u16,
                bytes,
            }
        })
        .collect()
}

type Data = Vec<(Labels, Vec<OwnedChunk>)>;

fn gen_data(seed: u64, n: usize, max_chunks: u64, incompressible: bool) -> Data {
    let mut rng = Rng(seed);
    let labels = gen_labels(&mut rng, n);
    labels
        .into_iter()
        .map(|l| (l, gen_chunks(&mut rng, max_chunks, incompressible)))
        .collect()
}

const MAX_T: i64 = 1_000_000;

fn write(parent: &Path, data: &Data, opts: BlockOptions) -> BlockMeta {
    let mut w = BlockWriter::create_with(parent, 0, MAX_T, 1, &[], opts).unwrap();
    for (l, cs) in data {
        let cd: Vec<ChunkData<'_>> = cs.iter().map(OwnedChunk::data).collect();
        w.add_series(l, &cd).unwrap();
    }
    w.finish().unwrap()
}

fn small_opts() -> BlockOptions {
    BlockOptions {
        compression_level: 3,
        page_size: 2048,
        series_per_group: 7,
        chunk_file_size: 20_000,
    }
}

fn check_round_trip(data: &Data, opts: BlockOptions) {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), data, opts);
    let b = Block::open(&block_dir(dir.path(), meta.id)).unwrap();
    assert_eq!(b.meta(), &meta);
    assert_eq!(meta.stats.num_series, data.len() as u64);
    assert_eq!(
        meta.stats.num_chunks,
        data.iter().map(|(_, c)| c.len() as u64).sum::<u64>()
    );
    assert_eq!(
        meta.stats.num_samples,
        data.iter()
            .flat_map(|(_, c)| c)
            .map(|c| u64::from(c.num_samples))
            .sum::<u64>()
    );
    assert_eq!(meta.compaction.sources, vec![meta.id]);
    assert_eq!(b.num_series() as usize, data.len());
    for (n, (labels, chunks)) in data.iter().enumerate() {
        let (l, metas) = b.series(n as u32).unwrap();
        assert_eq!(&l, labels);
        assert_eq!(metas.len(), chunks.len());
        for (m, c) in metas.iter().zip(chunks) {
            assert_eq!((m.min_time, m.max_time), (c.min_time, c.max_time));
            let got = b.chunk(m).unwrap();
            assert_eq!(got.bytes(), &c.bytes[..]);
            assert_eq!((got.encoding, got.num_samples), (c.encoding, c.num_samples));
            assert_eq!(got.as_chunk_data(), c.data());
        }
    }
    assert!(matches!(
        b.series(data.len() as u32),
        Err(Error::Invalid(_))
    ));
    let on_disk: u64 = walk_files(&b.dir().to_path_buf())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(b.size_bytes(), on_disk);
}

fn walk_files(dir: &PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn round_trip_many_series_small_pages_and_files() {
    let data = gen_data(1, 3000, 8, false);
    check_round_trip(&data, small_opts());
}

#[test]
fn round_trip_default_options_and_incompressible_payloads() {
    check_round_trip(&gen_data(2, 2000, 4, false), BlockOptions::default());
    check_round_trip(&gen_data(3, 500, 4, true), BlockOptions::default());
    check_round_trip(
        &gen_data(4, 300, 3, false),
        BlockOptions {
            series_per_group: 1,
            page_size: 1,
            ..small_opts()
        },
    );
}

#[test]
fn multiple_chunk_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), &gen_data(5, 1000, 6, true), small_opts());
    let files = fs::read_dir(block_dir(dir.path(), meta.id).join(CHUNKS_DIR))
        .unwrap()
        .count();
    assert!(files > 5, "{files} chunk files");
}

#[test]
fn empty_block() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), &Vec::new(), BlockOptions::default());
    let b = Block::open(&block_dir(dir.path(), meta.id)).unwrap();
    assert_eq!(b.num_series(), 0);
    assert!(b.label_names().is_empty());
    assert!(b.select(&[]).unwrap().is_empty());
    let m = Matcher::new(MatchOp::NotEqual, "a", "b").unwrap();
    assert!(b.select(&[m]).unwrap().is_empty());
    assert_eq!(merge_series(&[&b]).count(), 0);
}

#[test]
fn series_without_chunks_are_skipped_but_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::create(dir.path(), 0, 100, 1, &[]).unwrap();
    let a = Labels::from_pairs([("a", "1")]);
    let b = Labels::from_pairs([("a", "2")]);
    let c = ChunkData {
        min_time: 1,
        max_time: 2,
        encoding: 1,
        num_samples: 2,
        bytes: b"",
    };
    w.add_series(&b, &[]).unwrap();
    assert!(matches!(w.add_series(&a, &[c]), Err(Error::Invalid(_))));
    w.add_series(&Labels::from_pairs([("a", "3")]), &[c])
        .unwrap();
    let meta = w.finish().unwrap();
    assert_eq!(meta.stats.num_series, 1);
    let blk = Block::open(&block_dir(dir.path(), meta.id)).unwrap();
    assert_eq!(blk.label_values("a"), ["3"]);
    let (_, metas) = blk.series(0).unwrap();
    assert_eq!(blk.chunk(&metas[0]).unwrap().bytes(), b"");
}

#[test]
fn writer_rejects_contract_violations_and_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::create(dir.path(), 1000, 2000, 1, &[]).unwrap();
    let l1 = Labels::from_pairs([("__name__", "b")]);
    let ok = ChunkData {
        min_time: 1000,
        max_time: 1999,
        encoding: 1,
        num_samples: 1,
        bytes: b"x",
    };
    w.add_series(&l1, &[ok]).unwrap();
    let bad_cases: Vec<(Labels, Vec<ChunkData<'_>>)> = vec![
        (l1.clone(), vec![ok]),                              // equal labels
        (Labels::from_pairs([("__name__", "a")]), vec![ok]), // descending
        (Labels::default(), vec![ok]),                       // no labels
        (
            Labels::from_pairs([("__name__", "c")]),
            vec![ChunkData {
                max_time: 2000,
                ..ok
            }],
        ), // max exclusive
        (
            Labels::from_pairs([("__name__", "c")]),
            vec![ChunkData {
                min_time: 999,
                ..ok
            }],
        ),
        (
            Labels::from_pairs([("__name__", "c")]),
            vec![ChunkData {
                min_time: 1500,
                max_time: 1400,
                ..ok
            }],
        ),
        (
            Labels::from_pairs([("__name__", "c")]),
            vec![
                ChunkData {
                    min_time: 1500,
                    ..ok
                },
                ChunkData {
                    min_time: 1200,
                    ..ok
                },
            ],
        ),
    ];
    for (l, cs) in &bad_cases {
        assert!(matches!(w.add_series(l, cs), Err(Error::Invalid(_))), "{l}");
    }
    w.add_series(&Labels::from_pairs([("__name__", "c")]), &[ok, ok])
        .unwrap();
    let meta = w.finish().unwrap();
    assert_eq!(meta.stats.num_series, 2);
    assert_eq!(meta.stats.num_chunks, 3);
    assert!(BlockWriter::create(dir.path(), 5, 5, 1, &[]).is_err());
    let bad_opts = BlockOptions {
        page_size: 0,
        ..BlockOptions::default()
    };
    assert!(BlockWriter::create_with(dir.path(), 0, 5, 1, &[], bad_opts).is_err());
}

#[test]
fn label_names_and_values_match_the_data() {
    let data = gen_data(6, 800, 2, false);
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), &data, small_opts());
    let b = Block::open(&block_dir(dir.path(), meta.id)).unwrap();
    let mut expect: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (l, _) in &data {
        for lb in l {
            expect
                .entry(lb.name.clone())
                .or_default()
                .insert(lb.value.clone());
        }
    }
    assert_eq!(
        b.label_names(),
        expect.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (name, values) in &expect {
        assert_eq!(
            b.label_values(name),
            values.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }
    assert!(b.label_values("nope").is_empty());
}

fn brute_force(data: &Data, ms: &[Matcher]) -> Vec<u32> {
    data.iter()
        .enumerate()
        .filter(|(_, (l, _))| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
        .map(|(i, _)| i as u32)
        .collect()
}

fn random_matcher(rng: &mut Rng) -> Matcher {
    let name = rng.pick(&[
        "__name__", "job", "instance", "mode", "env", "device", "absent",
    ]);
    let op = [
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::Regex,
        MatchOp::NotRegex,
    ][rng.below(4) as usize];
    let literal = match name {
        "__name__" => rng.pick(&NAMES).to_string(),
        "job" => rng.pick(&JOBS).to_string(),
        "instance" => format!("h{}:9100", rng.below(30)),
        "mode" => rng.pick(&MODES).to_string(),
        "env" => rng.pick(&ENVS).to_string(),
        _ => "x".to_string(),
    };
    let value = match op {
        MatchOp::Equal | MatchOp::NotEqual => {
            if rng.chance(20) {
                String::new()
            } else {
                literal
            }
        }
        _ => match rng.below(9) {
            0 => ".*".into(),
            1 => ".+".into(),
            2 => String::new(),
            3 => format!("{literal}|"),
            4 => "h1.*".into(),
            5 => "(idle|user)".into(),
            6 => format!("{literal}|{}", rng.pick(&NAMES)),
            7 => "[a-m].*".into(),
            _ => literal,
        },
    };
    Matcher::new(op, name, value).unwrap()
}

#[test]
fn select_agrees_with_brute_force() {
    let data = gen_data(7, 1500, 1, false);
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), &data, small_opts());
    let b = Block::open(&block_dir(dir.path(), meta.id)).unwrap();
    let mut rng = Rng(99);
    let mut nonempty = 0;
    for _ in 0..3000 {
        let k = rng.below(4) as usize;
        let ms: Vec<Matcher> = (0..k).map(|_| random_matcher(&mut rng)).collect();
        let got = b.select(&ms).unwrap();
        let want = brute_force(&data, &ms);
        assert_eq!(
            got,
            want,
            "matchers {:?}",
            ms.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        nonempty += usize::from(!got.is_empty());
    }
    assert!(
        nonempty > 500,
        "too few non-empty results ({nonempty}) to mean much"
    );
}

#[test]
fn select_empty_match_semantics() {
    let data: Data = [
        vec![("__name__", "up"), ("job", "a")],
        vec![("__name__", "up"), ("job", "b"), ("env", "prod")],
        vec![("__name__", "up"), ("env", "dev")],
        vec![("__name__", "x")],
    ]
    .into_iter()
    .map(|p| {
        (
            Labels::from_pairs(p),
            vec![OwnedChunk {
                min_time: 0,
                max_time: 1,
                encoding: 0,
                num_samples: 1,
                bytes: vec![1],
            }],
        )
    })
    .collect::<std::collections::BTreeMap<_, _>>()
    .into_iter()
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), &data, BlockOptions::default());
    let b = Block::open(&block_dir(dir.path(), meta.id)).unwrap();
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    use MatchOp::*;
    let cases = [
        vec![m(Equal, "env", "")],
        vec![m(NotEqual, "env", "")],
        vec![m(Regex, "env", ".*")],
        vec![m(Regex, "env", ".+")],
        vec![m(Regex, "env", "prod|")],
        vec![m(NotRegex, "env", "prod")],
        vec![m(NotRegex, "env", ".+")],
        vec![m(NotRegex, "env", ".*")],
        vec![m(Equal, "nope", "")],
        vec![m(NotEqual, "nope", "x")],
        vec![m(Equal, "nope", "x")],
        vec![m(Regex, "nope", ".+")],
        vec![m(Equal, "__name__", "up"), m(NotEqual, "job", "a")],
        vec![m(Equal, "__name__", "up"), m(Equal, "job", "")],
        vec![],
    ];
    for ms in &cases {
        assert_eq!(b.select(ms).unwrap(), brute_force(&data, ms), "{ms:?}");
    }
    // Spot-check the semantics themselves, not just agreement.
    let names = |ids: Vec<u32>| {
        ids.iter()
            .map(|&i| data[i as usize].0.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(b.select(&[m(Equal, "env", "")]).unwrap()),
        [r#"up{job="a"}"#, "x{}"]
    );
    assert_eq!(b.select(&[m(Regex, "env", "prod|")]).unwrap().len(), 3);
}

#[test]
fn finish_is_atomic_and_debris_is_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path();
    let data = gen_data(8, 50, 2, false);
    let mut w = BlockWriter::create(parent, 0, MAX_T, 1, &[]).unwrap();
    for (l, cs) in &data {
        let cd: Vec<_> = cs.iter().map(OwnedChunk::data).collect();
        w.add_series(l, &cd).unwrap();
    }
    let tmp = parent.join(format!("{}{TMP_CREATE_SUFFIX}", w.id()));
    assert!(tmp.is_dir());
    assert!(!w.final_dir().exists());
    // A writer in progress is neither listed nor cleaned away.
    assert!(list_blocks(parent).unwrap().is_empty());
    assert!(tmp.is_dir());
    drop(w);
    assert!(
        !tmp.exists(),
        "dropping an unfinished writer removes its directory"
    );

    // Debris of a crash: half-written and half-deleted blocks.
    let id = ulid::Ulid::new();
    for suffix in [TMP_CREATE_SUFFIX, TMP_DELETE_SUFFIX] {
        let d = parent.join(format!("{id}{suffix}"));
        fs::create_dir_all(d.join(CHUNKS_DIR)).unwrap();
        fs::write(d.join(INDEX_FILE), b"half").unwrap();
    }
    fs::create_dir(parent.join("wal")).unwrap();
    fs::write(parent.join("lock"), b"").unwrap();
    let meta = write(parent, &data, BlockOptions::default());
    let listed = list_blocks(parent).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].meta, meta);
    let mut left: Vec<_> = fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut want = vec![meta.id.to_string(), "lock".into(), "wal".into()];
    want.sort();
    assert_eq!(left, want);
}

#[test]
fn list_sorted_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path();
    let l = Labels::from_pairs([("a", "b")]);
    let mut ids = Vec::new();
    for start in [3000i64, 1000, 2000] {
        let mut w = BlockWriter::create(parent, start, start + 1000, 1, &[]).unwrap();
        w.add_series(
            &l,
            &[ChunkData {
                min_time: start,
                max_time: start + 10,
                encoding: 0,
                num_samples: 1,
                bytes: b"z",
            }],
        )
        .unwrap();
        ids.push((start, w.finish().unwrap().id));
    }
    let listed = list_blocks(parent).unwrap();
    assert_eq!(
        listed.iter().map(|b| b.meta.min_time).collect::<Vec<_>>(),
        [1000, 2000, 3000]
    );
    let victim = listed[1].path.clone();
    let open = Block::open(&victim).unwrap();
    delete_block(&victim).unwrap();
    assert!(!victim.exists());
    // A reader that had the block open keeps working on its mappings.
    let (_, metas) = open.series(0).unwrap();
    assert_eq!(open.chunk(&metas[0]).unwrap().bytes(), b"z");
    assert_eq!(
        list_blocks(parent)
            .unwrap()
            .iter()
            .map(|b| b.meta.min_time)
            .collect::<Vec<_>>(),
        [1000, 3000]
    );
    // A block whose meta.json is broken is reported, not skipped.
    fs::write(listed[0].path.join(META_FILE), b"{").unwrap();
    let err = list_blocks(parent).unwrap_err();
    assert!(err.to_string().contains("meta.json"), "{err}");
}

#[test]
fn compaction_level_and_sources_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let a = ulid::Ulid::new();
    let b = ulid::Ulid::new();
    let w = BlockWriter::create(dir.path(), 0, 10, 3, &[b, a, b]).unwrap();
    let meta = w.finish().unwrap();
    assert_eq!(meta.compaction.level, 3);
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(meta.compaction.sources, want);
    let json = fs::read_to_string(block_dir(dir.path(), meta.id).join(META_FILE)).unwrap();
    for key in [
        "\"ulid\"",
        "\"minTime\"",
        "\"maxTime\"",
        "\"numSeries\"",
        "\"numSamples\"",
        "\"numChunks\"",
        "\"level\"",
        "\"sources\"",
        "\"version\"",
    ] {
        assert!(json.contains(key), "{key} missing from {json}");
    }
}

#[test]
fn tombstones_round_trip_through_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let data = gen_data(9, 40, 2, false);
    let meta = write(dir.path(), &data, BlockOptions::default());
    let bdir = block_dir(dir.path(), meta.id);
    assert!(Block::open(&bdir).unwrap().tombstones().is_empty());
    let mut t = Tombstones::new();
    t.add(
        3,
        Interval {
            min_time: 100,
            max_time: 200,
        },
    );
    t.add(
        39,
        Interval {
            min_time: -5,
            max_time: 5,
        },
    );
    t.add(
        3,
        Interval {
            min_time: 150,
            max_time: 300,
        },
    );
    write_tombstones(&bdir, &t).unwrap();
    let b = Block::open(&bdir).unwrap();
    assert_eq!(b.tombstones(), &t);
    assert_eq!(
        b.tombstones().get(3),
        [Interval {
            min_time: 100,
            max_time: 300
        }]
    );
    assert!(!bdir.join("tombstones.tmp").exists());
    let mut beyond = t.clone();
    beyond.add(
        40,
        Interval {
            min_time: 0,
            max_time: 1,
        },
    );
    write_tombstones(&bdir, &beyond).unwrap();
    assert!(matches!(
        Block::open(&bdir),
        Err(Error::Corrupt {
            section: "tombstones",
            ..
        })
    ));
}

#[test]
fn merge_series_streams_the_union_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let datas: Vec<Data> = (0..3u64)
        .map(|s| gen_data(20 + s, 400 + 100 * s as usize, 3, false))
        .collect();
    let blocks: Vec<Block> = datas
        .iter()
        .map(|d| {
            Block::open(&block_dir(
                dir.path(),
                write(dir.path(), d, small_opts()).id,
            ))
            .unwrap()
        })
        .collect();
    let refs: Vec<&Block> = blocks.iter().collect();
    let mut expect: BTreeMap<Labels, Vec<(usize, OwnedChunk)>> = BTreeMap::new();
    for (i, d) in datas.iter().enumerate() {
        for (l, cs) in d {
            expect
                .entry(l.clone())
                .or_default()
                .extend(cs.iter().map(|c| (i, c.clone())));
        }
    }
    let merged: Vec<MergedSeries> = merge_series(&refs).collect::<Result<_>>().unwrap();
    assert_eq!(merged.len(), expect.len());
    assert!(merged.windows(2).all(|w| w[0].labels < w[1].labels));
    let mut shared = 0;
    for (m, (l, want)) in merged.iter().zip(&expect) {
        assert_eq!(&m.labels, l);
        shared += usize::from(m.sources.len() > 1);
        for &(i, n) in &m.sources {
            assert_eq!(blocks[i].series(n).unwrap().0, *l);
        }
        assert!(
            m.chunks
                .windows(2)
                .all(|w| (w[0].1.min_time, w[0].0) <= (w[1].1.min_time, w[1].0))
        );
        let mut got: Vec<(usize, Vec<u8>, i64)> = m
            .chunks
            .iter()
            .map(|(i, c)| {
                (
                    *i,
                    blocks[*i].chunk(c).unwrap().bytes().to_vec(),
                    c.min_time,
                )
            })
            .collect();
        let mut w: Vec<(usize, Vec<u8>, i64)> = want
            .iter()
            .map(|(i, c)| (*i, c.bytes.clone(), c.min_time))
            .collect();
        got.sort();
        w.sort();
        assert_eq!(got, w);
    }
    assert!(
        shared > 10,
        "generator should produce series shared between blocks"
    );

    // The compaction flow: stream the merge into a new block, copying chunks verbatim.
    let mut w = BlockWriter::create(dir.path(), 0, MAX_T, 2, &[]).unwrap();
    for s in merge_series(&refs) {
        let s = s.unwrap();
        let bytes: Vec<ChunkBytes> = s
            .chunks
            .iter()
            .map(|(i, c)| blocks[*i].chunk(c).unwrap())
            .collect();
        let cd: Vec<ChunkData<'_>> = bytes.iter().map(ChunkBytes::as_chunk_data).collect();
        w.add_series(&s.labels, &cd).unwrap();
    }
    let meta = w.finish().unwrap();
    assert_eq!(meta.stats.num_series, expect.len() as u64);
    assert_eq!(
        meta.stats.num_chunks,
        datas
            .iter()
            .flatten()
            .map(|(_, c)| c.len() as u64)
            .sum::<u64>()
    );
}

#[test]
fn block_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Block>();
    assert_send_sync::<ChunkBytes>();
    assert_send_sync::<Error>();
    let data = gen_data(10, 300, 3, false);
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), &data, small_opts());
    let b = Block::open(&block_dir(dir.path(), meta.id)).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let (b, data) = (&b, &data);
            s.spawn(move || {
                for n in (t..b.num_series()).step_by(3) {
                    let (_, metas) = b.series(n).unwrap();
                    for (m, c) in metas.iter().zip(&data[n as usize].1) {
                        assert_eq!(b.chunk(m).unwrap().bytes(), &c.bytes[..]);
                    }
                }
            });
        }
    });
}

// ---- corruption -------------------------------------------------------------------------

/// Opens the block and reads everything; returns whether any step failed. Must never
/// panic, whatever the files hold.
fn read_everything(dir: &Path) -> bool {
    let Ok(b) = Block::open(dir) else { return true };
    let mut failed = false;
    for n in 0..b.num_series() {
        match b.series(n) {
            Ok((_, metas)) => {
                for m in &metas {
                    failed |= b.chunk(m).is_err();
                }
            }
            Err(_) => failed = true,
        }
    }
    for name in b.label_names() {
        let _ = b.label_values(name);
    }
    for ms in [
        vec![Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()],
        vec![Matcher::new(MatchOp::NotEqual, "job", "node").unwrap()],
        vec![Matcher::new(MatchOp::Equal, "mode", "idle").unwrap()],
    ] {
        failed |= b.select(&ms).is_err();
    }
    failed |= merge_series(&[&b]).any(|r| r.is_err());
    failed
}

fn fixture(opts: BlockOptions, incompressible: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), &gen_data(11, 120, 3, incompressible), opts);
    let bdir = block_dir(dir.path(), meta.id);
    (dir, bdir)
}

fn block_files(bdir: &Path) -> Vec<PathBuf> {
    let mut files = walk_files(&bdir.to_path_buf());
    files.sort();
    files
}

#[test]
fn truncation_anywhere_is_an_error_not_a_panic() {
    let (_keep, bdir) = fixture(small_opts(), false);
    assert!(!read_everything(&bdir));
    for file in block_files(&bdir) {
        let orig = fs::read(&file).unwrap();
        let len = orig.len();
        // Every cut near the ends (header, checksums, table of contents) and a sweep
        // through the middle, which crosses every section boundary.
        let cuts: Vec<usize> = (0..len.min(64))
            .chain(len.saturating_sub(128)..len)
            .chain((0..len).step_by((len / 200).max(1)))
            .collect();
        for cut in cuts {
            fs::write(&file, &orig[..cut]).unwrap();
            let failed = read_everything(&bdir);
            // A shorter meta.json can still be valid JSON only if nothing was cut.
            assert!(
                failed,
                "{} cut at {cut} of {len} went unnoticed",
                file.display()
            );
        }
        fs::write(&file, &orig).unwrap();
    }
    assert!(!read_everything(&bdir));
}

#[test]
fn flipped_bytes_are_detected() {
    let (_keep, bdir) = fixture(small_opts(), false);
    let mut rng = Rng(5);
    for file in block_files(&bdir) {
        let is_meta = file.ends_with(META_FILE);
        let orig = fs::read(&file).unwrap();
        let positions: Vec<usize> = (0..orig.len().min(40))
            .chain(orig.len().saturating_sub(120)..orig.len())
            .chain((0..150).map(|_| rng.below(orig.len() as u64) as usize))
            .collect();
        for pos in positions {
            let mut b = orig.clone();
            b[pos] ^= 1 << rng.below(8);
            fs::write(&file, &b).unwrap();
            let failed = read_everything(&bdir);
            // meta.json has no checksum: a flipped digit is still valid JSON. It only must
            // not panic.
            assert!(
                failed || is_meta,
                "{} flip at {pos} went unnoticed",
                file.display()
            );
        }
        fs::write(&file, &orig).unwrap();
    }
    assert!(
        !read_everything(&bdir),
        "restoring the files restores the block"
    );
}

#[test]
fn errors_name_the_file_and_section() {
    let (_keep, bdir) = fixture(small_opts(), false);
    let index = bdir.join(INDEX_FILE);
    let orig = fs::read(&index).unwrap();
    let mut b = orig.clone();
    b[20] ^= 0xff; // inside the symbols section
    fs::write(&index, &b).unwrap();
    let e = Block::open(&bdir).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("index") && msg.contains("symbols"), "{msg}");
    fs::write(&index, &orig).unwrap();

    let chunk = bdir.join(CHUNKS_DIR).join("000001");
    let mut c = fs::read(&chunk).unwrap();
    let last = c.len() - 10;
    c[last] ^= 0xff;
    fs::write(&chunk, &c).unwrap();
    let blk = Block::open(&bdir).unwrap();
    let err = (0..blk.num_series())
        .flat_map(|n| blk.series(n).unwrap().1)
        .find_map(|m| blk.chunk(&m).err())
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("000001") && msg.contains("chunk page") && msg.contains("checksum"),
        "{msg}"
    );
}

/// The index with every compressed part stored raw, so tests can corrupt the structures
/// behind the checksums and compression.
struct RawIndex {
    symbols: Vec<u8>,
    groups: Vec<Vec<u8>>,
    postings: Vec<u8>,
    labels: Vec<u8>,
    counts: [u32; 3],
}

fn read_raw_index(data: &[u8]) -> RawIndex {
    let toc = &data[data.len() - reader::TOC_LEN..];
    let mut d = Decbuf::new(toc);
    let mut secs = Vec::new();
    for _ in 0..5 {
        let off = d.u64_le().unwrap() as usize;
        let len = d.u64_le().unwrap() as usize;
        secs.push(&data[off..off + len]);
    }
    let counts = [
        d.u32_le().unwrap(),
        d.u32_le().unwrap(),
        d.u32_le().unwrap(),
    ];
    let mut offs: Vec<usize> = secs[2]
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();
    offs.push(secs[1].len());
    let groups = offs
        .windows(2)
        .map(|w| get_blob(&secs[1][w[0]..w[1]], usize::MAX).unwrap())
        .collect();
    RawIndex {
        symbols: get_blob(secs[0], usize::MAX).unwrap(),
        groups,
        postings: secs[3].to_vec(),
        labels: get_blob(secs[4], usize::MAX).unwrap(),
        counts,
    }
}

fn raw_blob(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![ENC_RAW];
    put_uvarint(&mut out, raw.len() as u64);
    out.extend_from_slice(raw);
    out
}

fn write_raw_index(r: &RawIndex) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"PHIX");
    out.extend_from_slice(&[1, 0, 0, 0]);
    let mut series = Vec::new();
    let mut offs = Vec::new();
    for g in &r.groups {
        offs.extend_from_slice(&(series.len() as u64).to_le_bytes());
        series.extend_from_slice(&raw_blob(g));
    }
    let mut toc = Vec::new();
    for body in [
        raw_blob(&r.symbols),
        series,
        offs,
        r.postings.clone(),
        raw_blob(&r.labels),
    ] {
        toc.extend_from_slice(&(out.len() as u64).to_le_bytes());
        toc.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32c(&body).to_le_bytes());
    }
    for c in r.counts {
        toc.extend_from_slice(&c.to_le_bytes());
    }
    let crc = crc32c(&toc);
    toc.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&toc);
    out
}

#[test]
fn garbage_behind_valid_checksums_never_panics() {
    // Incompressible payloads keep chunk pages raw, so they too can be corrupted with the
    // checksum fixed up in place.
    let (_keep, bdir) = fixture(small_opts(), true);
    let index = bdir.join(INDEX_FILE);
    let orig = fs::read(&index).unwrap();
    let raw = read_raw_index(&orig);
    // Rewriting with raw blobs is itself a valid index.
    fs::write(&index, write_raw_index(&raw)).unwrap();
    assert!(!read_everything(&bdir));
    let mut rng = Rng(77);
    let mut failures = 0;
    for round in 0..1200 {
        let mut r = RawIndex {
            symbols: raw.symbols.clone(),
            groups: raw.groups.clone(),
            postings: raw.postings.clone(),
            labels: raw.labels.clone(),
            counts: raw.counts,
        };
        if round % 5 == 3 {
            // Lie about the counts in the table of contents.
            let i = rng.below(3) as usize;
            r.counts[i] = match rng.below(4) {
                0 => 0,
                1 => u32::MAX,
                2 => r.counts[i] + 1,
                _ => r.counts[i].saturating_sub(1),
            };
        } else {
            let g = rng.below(r.groups.len() as u64) as usize;
            let target: &mut Vec<u8> = match round % 5 {
                0 => &mut r.symbols,
                1 => &mut r.postings,
                2 => &mut r.labels,
                _ => &mut r.groups[g],
            };
            for _ in 0..=rng.below(3) {
                if target.is_empty() {
                    break;
                }
                let pos = rng.below(target.len() as u64) as usize;
                match rng.below(4) {
                    0 => target[pos] ^= 1 << rng.below(8),
                    1 => target[pos] = 0xff,
                    2 => target[pos] = 0,
                    _ => target.truncate(pos),
                }
            }
        }
        fs::write(&index, write_raw_index(&r)).unwrap();
        failures += usize::from(read_everything(&bdir));
    }
    assert!(failures > 400, "only {failures} corruptions detected");
    fs::write(&index, &orig).unwrap();

    // Chunk pages: corrupt the records and fix the CRC.
    let chunk = bdir.join(CHUNKS_DIR).join("000001");
    let orig = fs::read(&chunk).unwrap();
    let mut pages = Vec::new();
    let mut pos = 8;
    while pos < orig.len() {
        let stored = u32::from_le_bytes(orig[pos + 5..pos + 9].try_into().unwrap()) as usize;
        assert_eq!(orig[pos], ENC_RAW, "fixture pages should be stored raw");
        pages.push((pos, stored));
        pos += 9 + stored + 4;
    }
    for _ in 0..300 {
        let mut c = orig.clone();
        let (p, stored) = pages[rng.below(pages.len() as u64) as usize];
        let at = p + 9 + rng.below(stored as u64) as usize;
        c[at] = rng.next() as u8;
        if rng.chance(20) {
            // Lie about the raw length too.
            c[p + 1..p + 5].copy_from_slice(&(rng.next() as u32).to_le_bytes());
        }
        let crc = crc32c(&c[p..p + 9 + stored]);
        c[p + 9 + stored..p + 13 + stored].copy_from_slice(&crc.to_le_bytes());
        fs::write(&chunk, &c).unwrap();
        read_everything(&bdir);
    }
}
