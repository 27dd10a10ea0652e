//! The persistence file: every group, written whole to a temporary file that is
//! synced and renamed over the old one, so a crash leaves the old file or the new one,
//! never half of either.
//!
//! Layout: the 8-byte magic `PHPG` + version, the groups as length-delimited protobuf
//! messages (the families as `io.prometheus.client.MetricFamily`, so the file is read
//! with the same message types as a protobuf push), then the xxh3-64 of everything
//! before it. A file that fails any check is moved aside, not dropped (see
//! [`load`]). Upstream's file is a Go `gob` stream, which only Go reads; groups from an
//! upstream gateway come over by pushing them again.

use std::path::{Path, PathBuf};

use crate::fsutil::move_aside;

use pharos_model::exposition::parse::proto;
use prost::Message as _;

use super::family::{Family, Kind, from_proto_metric, to_proto_metric};
use super::grouping::GroupingKey;
use super::store::{Restored, Store, StoredFamily};

const MAGIC: &[u8; 8] = b"PHPG\x00\x00\x00\x01";

#[derive(Clone, PartialEq, prost::Message)]
struct PersistedGroup {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<proto::LabelPair>,
    #[prost(message, repeated, tag = "2")]
    families: Vec<PersistedFamily>,
    #[prost(int64, optional, tag = "3")]
    ttl_ns: Option<i64>,
    #[prost(int64, tag = "4")]
    touched_ns: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PersistedFamily {
    #[prost(message, optional, tag = "1")]
    family: Option<proto::MetricFamily>,
    #[prost(int64, tag = "2")]
    pushed_at_ns: i64,
    /// Whether the family has a HELP (an empty one differs from none).
    #[prost(bool, tag = "3")]
    has_help: bool,
}

/// The whole store as file contents.
pub fn encode(store: &Store) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (key, g) in store.groups() {
        let families = g
            .families
            .iter()
            .map(|(name, f)| PersistedFamily {
                has_help: f.family.help.is_some(),
                pushed_at_ns: f.pushed_at_ns,
                family: Some(proto::MetricFamily {
                    name: name.clone(),
                    help: f.family.help.as_deref().unwrap_or_default().to_owned(),
                    r#type: f.family.kind.to_proto() as i32,
                    metric: f
                        .family
                        .metrics
                        .iter()
                        .map(|m| {
                            let labels: Vec<(&str, &str)> =
                                m.labels.iter().map(|(n, v)| (&**n, &**v)).collect();
                            to_proto_metric(&labels, m)
                        })
                        .collect(),
                    unit: String::new(),
                }),
            })
            .collect();
        let group = PersistedGroup {
            labels: key
                .iter()
                .map(|(n, v)| proto::LabelPair {
                    name: n.clone(),
                    value: v.clone(),
                })
                .collect(),
            families,
            ttl_ns: g.ttl_ns,
            touched_ns: g.touched_ns,
        };
        // Encoding into a Vec cannot run out of space.
        let _ = group.encode_length_delimited(&mut out);
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// File contents back into groups; `Err` names what is wrong.
pub fn decode(data: &[u8]) -> Result<Vec<(GroupingKey, Restored)>, String> {
    let body_len = data
        .len()
        .checked_sub(8)
        .filter(|&n| n >= MAGIC.len())
        .ok_or("file too short")?;
    let (body, sum) = data.split_at(body_len);
    if !body.starts_with(MAGIC) {
        return Err("not a Pharos pushgateway file (bad magic or version)".into());
    }
    let mut want = [0u8; 8];
    want.copy_from_slice(sum);
    if xxhash_rust::xxh3::xxh3_64(body) != u64::from_le_bytes(want) {
        return Err("checksum mismatch".into());
    }
    let mut rest = &body[MAGIC.len()..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let g = PersistedGroup::decode_length_delimited(&mut rest)
            .map_err(|e| format!("group {}: {e}", out.len()))?;
        let key: GroupingKey = g.labels.into_iter().map(|l| (l.name, l.value)).collect();
        let mut families = Vec::with_capacity(g.families.len());
        for f in g.families {
            let mf = f.family.ok_or("family without content")?;
            let kind = Kind::from_proto(mf.r#type).ok_or("unknown family type")?;
            families.push((
                mf.name,
                StoredFamily {
                    family: Family {
                        help: f.has_help.then(|| mf.help.into_boxed_str()),
                        kind,
                        metrics: mf
                            .metric
                            .into_iter()
                            .map(|m| from_proto_metric(m, kind))
                            .collect(),
                    },
                    pushed_at_ns: f.pushed_at_ns,
                },
            ));
        }
        out.push((
            key,
            Restored {
                families,
                ttl_ns: g.ttl_ns,
                touched_ns: g.touched_ns,
            },
        ));
    }
    Ok(out)
}

/// What reading the file at start-up found.
#[derive(Debug)]
pub enum Loaded {
    /// No file yet.
    Missing,
    Groups(Vec<(GroupingKey, Restored)>),
    /// The file could not be read; it was moved to `moved_to` (when the move worked)
    /// so nothing is lost and the next write does not overwrite it.
    Corrupt {
        reason: String,
        moved_to: Option<PathBuf>,
    },
}

/// Reads the file; a corrupt one is renamed `<file>.corrupt-<ms>`.
pub fn load(path: &Path, now_ms: i64) -> Loaded {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => {
            return Loaded::Corrupt {
                reason: e.to_string(),
                moved_to: None,
            };
        }
    };
    match decode(&data) {
        Ok(groups) => Loaded::Groups(groups),
        Err(reason) => {
            let moved_to = move_aside(path, now_ms);
            Loaded::Corrupt { reason, moved_to }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::write_atomically;
    use crate::pushgateway::store::{Push, Settings};

    fn store() -> Store {
        let mut s = Store::default();
        let families = crate::pushgateway::text::parse(
            b"# HELP a An a.\n# TYPE a counter\na{x=\"1\"} 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 3\nh_count 4\n",
        )
        .unwrap();
        let key: GroupingKey = [("job".to_owned(), "j".to_owned())].into();
        let settings = Settings {
            consistency_check: true,
            ..Settings::default()
        };
        s.push(
            Push {
                key,
                families,
                replace: true,
                ttl_ns: Some(5_000_000_000),
            },
            1_000,
            &settings,
            &[],
        )
        .unwrap();
        s
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg.data");
        let s = store();
        write_atomically(&path, &encode(&s)).unwrap();
        let Loaded::Groups(groups) = load(&path, 0) else {
            panic!("not loaded")
        };
        let mut back = Store::default();
        for (k, g) in groups {
            back.restore(k, g, &Settings::default());
        }
        let (k1, g1) = s.groups().next().unwrap();
        let (k2, g2) = back.groups().next().unwrap();
        assert_eq!(k1, k2);
        assert_eq!(g1.families, g2.families);
        assert_eq!((g1.ttl_ns, g1.touched_ns), (g2.ttl_ns, g2.touched_ns));
        // Only the file itself is left in the directory: the temporary was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg.data");
        let mut data = encode(&store());
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        let Loaded::Corrupt { reason, moved_to } = load(&path, 42) else {
            panic!("accepted a corrupt file")
        };
        assert_eq!(reason, "checksum mismatch");
        assert_eq!(moved_to, Some(dir.path().join("pg.data.corrupt-42")));
        assert!(!path.exists());
        assert_eq!(
            std::fs::read(dir.path().join("pg.data.corrupt-42")).unwrap(),
            data
        );
        assert!(matches!(load(&path, 43), Loaded::Missing));
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(load(&path, 44), Loaded::Corrupt { .. }));
    }
}
