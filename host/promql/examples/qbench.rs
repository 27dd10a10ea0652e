//! In-process companion of `host/pharos/benches/query.rs`: runs the query benchmark's
//! queries through the engine (no HTTP, no Prometheus) against a data directory the
//! benchmark built, for profiling and for instruction counts while iterating.
//!
//! `cargo run --release -p pharos-promql --example qbench -- DIR START_S END_S [RUNS] [FILTER]`
//! where DIR is a copy of `$PHAROS_QUERY_BENCH_DIR/pharos` (the database is opened
//! read-write, so use a copy while a benchmark server may be running on the original)
//! and START_S/END_S are from `$PHAROS_QUERY_BENCH_DIR/data.json`. FILTER picks the
//! queries whose name or kind contains it (e.g. `instant`, `rate by instance range`).
//! Prints each query's time per run and a checksum of its answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use pharos_promql::{Engine, Value};
use pharos_tsdb::{Db, DbOptions};
use std::sync::Arc;
use std::time::Instant;

include!("../testdata/dashboard_queries.rs");

fn checksum(v: &Value) -> (usize, usize, f64) {
    match v {
        Value::Vector(s) => (
            s.len(),
            s.len(),
            s.iter().map(|x| x.v).filter(|x| x.is_finite()).sum(),
        ),
        Value::Matrix(m) => (
            m.len(),
            m.iter().map(|s| s.points.len()).sum(),
            m.iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .filter(|x| x.is_finite())
                .sum(),
        ),
        Value::Scalar(_, x) => (1, 1, *x),
        Value::String(..) => (1, 1, 0.0),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let start_s: i64 = args[2].parse().unwrap();
    let end_s: i64 = args[3].parse().unwrap();
    let runs: usize = args.get(4).map_or(3, |r| r.parse().unwrap());
    let filter = args.get(5).cloned().unwrap_or_default();
    let opts = DbOptions {
        retention_time: None,
        ..DbOptions::default()
    };
    let (db, _) = Db::open(&dir, opts).unwrap();
    let db = Arc::new(db);
    let engine = Engine::default();
    let (qs, qe) = ((start_s + 30) * 1000, (end_s - 30) * 1000);
    for &(name, expr) in QUERIES {
        for range in [false, true] {
            let kind = if range { "range" } else { "instant" };
            let label = format!("{name} {kind}");
            if !label.contains(&filter) {
                continue;
            }
            let mut times = Vec::new();
            let mut sum = None;
            for _ in 0..runs {
                let q = db.querier();
                let t0 = Instant::now();
                let v = if range {
                    engine.range(&q, expr, qs, qe, 60_000)
                } else {
                    engine.instant(&q, expr, qe)
                }
                .unwrap();
                times.push(t0.elapsed().as_secs_f64() * 1000.0);
                sum = Some(checksum(&v));
            }
            let (series, points, total) = sum.unwrap_or((0, 0, 0.0));
            let t: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
            println!(
                "{label:<30} series {series:>5} points {points:>7} sum {total:.9e}  ms {}",
                t.join(" ")
            );
        }
    }
}
