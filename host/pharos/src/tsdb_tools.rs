//! `pharos tsdb analyze|dump|import-openmetrics`: offline work on a TSDB directory.
//! `analyze` and `dump` only read persisted blocks, so they are safe beside a live
//! daemon (the head, still in the write-ahead log, is not included; it reaches blocks
//! within about three hours). `import-openmetrics` writes blocks.

use pharos_model::exposition::format_float;
use pharos_model::exposition::parse::{Entry, Format, Parser};
use pharos_model::{MatchOp, Matcher};
use pharos_tsdb::backfill::Backfill;
use pharos_tsdb::block::{self, Block};
use pharos_tsdb::chunk::{Encoding, iter_bytes_with};
use pharos_tsdb::{Db, DbOptions, Querier as _};
use std::io::Write;
use std::path::Path;

/// Prints series, samples, bytes per sample and the label cardinalities that drive
/// memory, for every block and for the whole directory.
pub fn analyze(dir: &Path, limit: usize, out: &mut impl Write) -> anyhow::Result<()> {
    let blocks = open_blocks(dir)?;
    if blocks.is_empty() {
        writeln!(out, "no blocks in {}", dir.display())?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<28} {:>15} {:>15} {:>10} {:>12} {:>14} {:>8}",
        "block", "min time", "max time", "series", "samples", "bytes", "B/sample"
    )?;
    let (mut samples, mut bytes) = (0u64, 0u64);
    for b in &blocks {
        let m = b.meta();
        let size = b.size_bytes();
        samples += m.stats.num_samples;
        bytes += size;
        writeln!(
            out,
            "{:<28} {:>15} {:>15} {:>10} {:>12} {:>14} {:>8.3}",
            m.id.to_string(),
            m.min_time,
            m.max_time,
            m.stats.num_series,
            m.stats.num_samples,
            size,
            per(size, m.stats.num_samples)
        )?;
    }
    writeln!(
        out,
        "total: {} blocks, {samples} samples, {bytes} bytes, {:.3} bytes per sample",
        blocks.len(),
        per(bytes, samples)
    )?;

    let newest = &blocks[blocks.len() - 1];
    writeln!(
        out,
        "\ncardinality of the newest block ({}):",
        newest.meta().id
    )?;
    let mut names: Vec<(usize, String)> = newest
        .label_names()
        .into_iter()
        .map(|n| (newest.label_values(n).len(), n.to_string()))
        .collect();
    names.sort_by(|a, b| b.cmp(a));
    writeln!(out, "label names with the most values:")?;
    for (n, name) in names.iter().take(limit) {
        writeln!(out, "  {n:>8} {name}")?;
    }
    let mut pairs: Vec<(usize, String)> = Vec::new();
    for (_, name) in &names {
        for value in newest.label_values(name) {
            let m = Matcher::new(MatchOp::Equal, name.as_str(), value)?;
            pairs.push((newest.select(&[m])?.len(), format!("{name}={value:?}")));
        }
    }
    pairs.sort_by(|a, b| b.cmp(a));
    writeln!(out, "label pairs in the most series:")?;
    for (n, pair) in pairs.iter().take(limit) {
        writeln!(out, "  {n:>8} {pair}")?;
    }
    Ok(())
}

/// Prints every sample in `[min_t, max_t]` as `{labels} value timestamp_ms`, block by
/// block, in the line format of `promtool tsdb dump`.
pub fn dump(dir: &Path, min_t: i64, max_t: i64, out: &mut impl Write) -> anyhow::Result<()> {
    for b in open_blocks(dir)? {
        let m = b.meta();
        if m.max_time <= min_t || m.min_time > max_t {
            continue;
        }
        for n in 0..b.num_series() {
            let (labels, chunks) = b.series(n)?;
            // The same line shape as `promtool tsdb dump`, so outputs can be compared.
            let pairs: Vec<String> = labels
                .iter()
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect();
            let series = format!("{{{}}}", pairs.join(", "));
            for meta in chunks
                .iter()
                .filter(|c| c.max_time >= min_t && c.min_time <= max_t)
            {
                let c = b.chunk(meta)?;
                let encoding = Encoding::from_code(c.encoding).ok_or_else(|| {
                    anyhow::anyhow!("block {}: unknown chunk encoding {:#04x}", m.id, c.encoding)
                })?;
                let mut it = iter_bytes_with(encoding, c.bytes(), c.num_samples);
                let mut line = String::new();
                for (t, v) in it.by_ref().filter(|(t, _)| (min_t..=max_t).contains(t)) {
                    line.clear();
                    format_float(&mut line, v);
                    writeln!(out, "{series} {line} {t}")?;
                }
                if let Some(e) = it.err() {
                    anyhow::bail!("block {} series {series}: {e}", m.id);
                }
            }
        }
    }
    Ok(())
}

/// Prints every sample of blocks and head together, merged per series, in the format of
/// [`dump`]. Opens the directory as a database (replaying the log), so no daemon may be
/// using it.
pub fn dump_with_head(
    dir: &Path,
    min_t: i64,
    max_t: i64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (db, _) = Db::open(dir, DbOptions::default())?;
    let db = std::sync::Arc::new(db);
    let all = Matcher::new(MatchOp::Regex, "__name__", ".+")?;
    let mut line = String::new();
    for series in db.querier().select(&[all], min_t, max_t)? {
        let pairs: Vec<String> = series
            .labels
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect();
        let name = format!("{{{}}}", pairs.join(", "));
        for s in series.samples() {
            line.clear();
            format_float(&mut line, s.v);
            writeln!(out, "{name} {line} {}", s.t)?;
        }
    }
    Ok(())
}

/// Builds blocks in `dir` from an OpenMetrics file whose samples all carry timestamps
/// (as `promtool tsdb create-blocks-from openmetrics` does), then compacts them with
/// whatever the directory already holds. Run it against a directory no daemon is using.
pub fn import_openmetrics(dir: &Path, file: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let body =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    // Samples go straight from the parser into the backfill rather than through a
    // parsed copy of the whole body: a file of 100 k series over two hours holds tens of
    // millions of samples, and a label set per sample would not fit in memory beside
    // the one per series the backfill keeps.
    let mut parser = Parser::new(Format::OpenMetrics, &body);
    let mut backfill = Backfill::default();
    while let Some(entry) = parser
        .next_entry()
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
    {
        let Entry::Sample(s) = entry else { continue };
        let Some(t) = s.timestamp_ms else {
            anyhow::bail!(
                "{}: sample {} has no timestamp; every imported sample needs one",
                file.display(),
                s.to_labels()
            );
        };
        backfill.add(s.to_labels(), t, s.value);
    }
    let range = DbOptions::default().block_range;
    let stats = backfill.write_blocks(dir, range)?;
    writeln!(
        out,
        "imported {} samples of {} series into {} blocks ({} duplicate timestamps dropped)",
        stats.samples, stats.series, stats.blocks, stats.duplicates
    )?;
    let (db, _) = Db::open(dir, DbOptions::default())?;
    let m = db.maintain()?;
    db.sync()?;
    writeln!(
        out,
        "compaction wrote {} blocks; {} blocks in {}",
        m.blocks_compacted,
        db.blocks().len(),
        dir.display()
    )?;
    Ok(())
}

fn open_blocks(dir: &Path) -> anyhow::Result<Vec<Block>> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    block::list_blocks(dir)?
        .into_iter()
        .map(|info| {
            Block::open(&info.path).map_err(|e| anyhow::anyhow!("{}: {e}", info.path.display()))
        })
        .collect()
}

fn per(bytes: u64, samples: u64) -> f64 {
    if samples == 0 {
        0.0
    } else {
        bytes as f64 / samples as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::Labels;
    use pharos_tsdb::{Db, DbOptions};
    use std::sync::Arc;

    #[test]
    fn analyze_and_dump_read_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Arc::new(Db::open(dir.path(), DbOptions::default()).unwrap().0);
            for i in 0..(4 * 240) {
                let mut app = db.appender();
                for inst in ["a", "b"] {
                    let l = Labels::from_pairs([("__name__", "up"), ("instance", inst)]);
                    app.append(None, &l, i * 15_000, 1.0).unwrap();
                }
                app.commit().unwrap();
            }
            db.maintain().unwrap();
        }
        let mut out = Vec::new();
        analyze(dir.path(), 5, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("total: 1 blocks, 960 samples"), "{text}");
        assert!(text.contains("       2 instance"), "{text}");
        assert!(text.contains("       2 __name__=\"up\""), "{text}");

        let mut out = Vec::new();
        dump(dir.path(), 0, 30_000, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{__name__=\"up\", instance=\"a\"} 1 0\n{__name__=\"up\", instance=\"a\"} 1 15000\n\
             {__name__=\"up\", instance=\"a\"} 1 30000\n{__name__=\"up\", instance=\"b\"} 1 0\n\
             {__name__=\"up\", instance=\"b\"} 1 15000\n{__name__=\"up\", instance=\"b\"} 1 30000\n"
        );
    }

    #[test]
    fn import_builds_compacted_blocks_and_refuses_untimed_samples() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.om");
        let mut body = String::from("# TYPE temp gauge\n");
        for i in 0..(7 * 60) {
            body.push_str(&format!("temp{{room=\"a\"}} {i}.5 {}\n", i * 60));
        }
        body.push_str("# EOF\n");
        std::fs::write(&file, body).unwrap();
        let data = dir.path().join("data");
        let mut out = Vec::new();
        import_openmetrics(&data, &file, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("imported 420 samples of 1 series into 4 blocks"),
            "{text}"
        );
        let mut dumped = Vec::new();
        dump(&data, 60_000, 60_000, &mut dumped).unwrap();
        assert_eq!(
            String::from_utf8(dumped).unwrap(),
            "{__name__=\"temp\", room=\"a\"} 1.5 60000\n"
        );

        std::fs::write(&file, "temp 1\n# EOF\n").unwrap();
        let e = import_openmetrics(&data, &file, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("has no timestamp"), "{e}");
        std::fs::write(&file, "temp 1 1\n").unwrap();
        let e = import_openmetrics(&data, &file, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("in.om"), "{e}");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(analyze(Path::new("/nonexistent/tsdb"), 5, &mut Vec::new()).is_err());
    }
}
