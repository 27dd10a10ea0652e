//! What a plugin call costs the host. Run with
//!
//! ```sh
//! cargo bench -p pharos-plugin-host --bench plugins
//! ```
//!
//! and it prints one table (figures in docs/plugins-runtime.md):
//!
//! - collect overhead of a 100-series Rust exporter: the host-side round trip
//!   minus the time the guest measured for its own work inside the call
//!   (wasi monotonic clock, reported back in the answer), for a guest that
//!   builds its series on each call and for one that returns a prebuilt list;
//! - relabel cost per series in steady state, for batches of 100 and 1000;
//! - hot-reload time (alternating two versions whose artifacts are cached:
//!   load, canary instance, configure, swap);
//! - load time of each test guest and first-party notifier: compiled without a
//!   cache, with a cold cache, from a warm cache, and shared with a loaded
//!   version of the same bytes.
//!
//! Words after `--` pick the measures whose names start with them (`collect`,
//! `relabel`, `reload`, `load`), so a profile or a quick check runs only what
//! it looks at: `cargo bench -p pharos-plugin-host --bench plugins -- collect`.

#[path = "../tests/support/guests.rs"]
mod guests;

use pharos_model::Labels;
use pharos_plugin_host::{Kind, Limits, PluginSpec, Points, Runtime, RuntimeOptions};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, String>;

fn spec(name: &str, kind: Kind, wasm: Arc<[u8]>, config: &str) -> PluginSpec {
    PluginSpec {
        name: name.to_owned(),
        kind,
        wasm,
        origin: "bench".to_owned(),
        config: config.to_owned(),
        limits: Limits {
            memory: 64 << 20,
            timeout: Duration::from_secs(5),
        },
        allow_hosts: Vec::new(),
        read_dirs: Vec::new(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn guest_ns(families: &[pharos_plugin_host::Family]) -> Result<f64> {
    let family = families
        .iter()
        .find(|f| f.name == "misbehave_guest_nanoseconds")
        .ok_or("the guest did not report its own time")?;
    match &family.points {
        Points::Gauge(points) => points
            .first()
            .map(|p| p.value)
            .ok_or_else(|| "empty".to_owned()),
        _ => Err("unexpected family type".to_owned()),
    }
}

/// Median round trip, median guest time and median difference, in µs.
async fn collect_overhead(rt: &Runtime, wasm: &Arc<[u8]>, mode: &str) -> Result<(f64, f64, f64)> {
    let plugin = rt
        .load(spec(
            mode,
            Kind::Exporter,
            wasm.clone(),
            &format!("mode={mode} series=100"),
        ))
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..300 {
        black_box(plugin.collect().await.map_err(|e| e.to_string())?);
    }
    let (mut total, mut guest, mut over) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3000 {
        let started = Instant::now();
        let families = plugin.collect().await.map_err(|e| e.to_string())?;
        let t = started.elapsed().as_nanos() as f64;
        let g = guest_ns(&families)?;
        total.push(t / 1e3);
        guest.push(g / 1e3);
        over.push((t - g) / 1e3);
    }
    Ok((median(total), median(guest), median(over)))
}

fn batch(n: usize) -> Vec<Labels> {
    (0..n)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "http_requests_total".to_owned()),
                ("instance", "10.0.0.1:9100".to_owned()),
                ("job", "api".to_owned()),
                ("method", "GET".to_owned()),
                ("path", format!("/v1/items/{}", i % 50)),
                ("code", "200".to_owned()),
            ])
        })
        .collect()
}

/// Median ns per series of a steady-state relabel call over `n` series.
async fn relabel_per_series(rt: &Runtime, wasm: &Arc<[u8]>, n: usize) -> Result<f64> {
    let plugin = rt
        .load(spec("tag", Kind::Relabeler, wasm.clone(), "tag=x"))
        .await
        .map_err(|e| e.to_string())?;
    let input = batch(n);
    let rounds = 200_000 / n;
    for _ in 0..rounds / 5 {
        black_box(plugin.relabel(&input).await.map_err(|e| e.to_string())?);
    }
    let mut per_series = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        black_box(plugin.relabel(&input).await.map_err(|e| e.to_string())?);
        per_series.push(started.elapsed().as_nanos() as f64 / n as f64);
    }
    Ok(median(per_series))
}

/// Median reload time in ms, alternating between two cached versions.
async fn reload_ms(cache: &std::path::Path, wasm: &Arc<[u8]>) -> Result<f64> {
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.to_owned()),
    })
    .map_err(|e| e.to_string())?;
    let a = spec(
        "swap",
        Kind::Exporter,
        guests::variant(wasm, "a"),
        "mode=ok series=100 build=1",
    );
    let mut b = a.clone();
    b.wasm = guests::variant(wasm, "b");
    b.config = "mode=ok series=100 build=2".to_owned();
    let plugin = rt.load(a.clone()).await.map_err(|e| e.to_string())?;
    plugin.reload(b.clone()).await.map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for i in 0..40 {
        let next = if i % 2 == 0 { a.clone() } else { b.clone() };
        let started = Instant::now();
        plugin.reload(next).await.map_err(|e| e.to_string())?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(times))
}

/// Load time in ms without a cache, with a cold cache (compile and write), from
/// the warm cache in a fresh runtime, and of the same bytes again while a loaded
/// version runs them (shared in memory: a receiver's notifier entry).
async fn compile_ms(
    name: &str,
    kind: Kind,
    config: &str,
    wasm: &[u8],
    rounds: usize,
    cache: &std::path::Path,
) -> Result<[f64; 4]> {
    let timed = |rt: Runtime, s: PluginSpec| async move {
        let started = Instant::now();
        let plugin = rt.load(s).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((started.elapsed().as_secs_f64() * 1e3, plugin))
    };
    let none = Runtime::new(RuntimeOptions::default()).map_err(|e| e.to_string())?;
    let cached = RuntimeOptions {
        cache_dir: Some(cache.to_owned()),
    };
    let mut results = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        let wasm = guests::variant(wasm, &format!("compile-{round}"));
        let (ms, held) = timed(none.clone(), spec(name, kind, wasm.clone(), config)).await?;
        results[0].push(ms);
        let again = format!("{name}-again");
        results[3].push(
            timed(none.clone(), spec(&again, kind, wasm.clone(), config))
                .await?
                .0,
        );
        drop(held);
        let cold = Runtime::new(cached.clone()).map_err(|e| e.to_string())?;
        results[1].push(timed(cold, spec(name, kind, wasm.clone(), config)).await?.0);
        let warm = Runtime::new(cached.clone()).map_err(|e| e.to_string())?;
        results[2].push(timed(warm, spec(name, kind, wasm, config)).await?.0);
    }
    Ok(results.map(median))
}

/// Prints what [`compile_ms`] measured for `what`.
fn print_loads(what: &str, [none, cold, warm, shared]: [f64; 4]) {
    println!(
        "{:<58} {:>9.1} ms",
        format!("load {what}, no cache (compile)"),
        none
    );
    println!("{:<58} {:>9.1} ms", "  cold cache (compile + write)", cold);
    println!("{:<58} {:>9.1} ms", "  warm cache (load artifact)", warm);
    println!(
        "{:<58} {:>9.1} ms",
        "  same bytes while loaded (shared)", shared
    );
}

/// Whether the measure `name` was asked for: no words (beside the `--bench`
/// flag cargo passes) means every measure.
fn wanted(name: &str) -> bool {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    words.is_empty() || words.iter().any(|w| name.starts_with(w.as_str()))
}

async fn run() -> Result<()> {
    let misbehave = guests::guest("misbehave")?;
    let relabel = guests::guest("relabel")?;
    let rt = Runtime::new(RuntimeOptions::default()).map_err(|e| e.to_string())?;
    let cache = tempfile::tempdir().map_err(|e| e.to_string())?;

    println!("{:<58} {:>12}", "measure", "median");
    let collect_modes: &[&str] = if wanted("collect") {
        &["ok", "prebuilt"]
    } else {
        &[]
    };
    for &mode in collect_modes {
        let (total, guest, over) = collect_overhead(&rt, &misbehave, mode).await?;
        let what = if mode == "ok" {
            "builds"
        } else {
            "clones prebuilt"
        };
        println!(
            "{:<58} {:>9.1} µs",
            format!("collect, 100 series, guest {what}: round trip"),
            total
        );
        println!(
            "{:<58} {:>9.1} µs",
            "  guest's own work (measured inside)", guest
        );
        println!(
            "{:<58} {:>9.1} µs",
            "  host overhead (round trip - guest)", over
        );
    }
    let relabel_batches: &[usize] = if wanted("relabel") { &[100, 1000] } else { &[] };
    for &n in relabel_batches {
        let ns = relabel_per_series(&rt, &relabel, n).await?;
        println!(
            "{:<58} {:>9.0} ns",
            format!("relabel per series, batch of {n}"),
            ns
        );
    }
    if wanted("reload") {
        let reload = reload_ms(&cache.path().join("reload"), &misbehave).await?;
        println!(
            "{:<58} {:>9.2} ms",
            "hot reload (cached artifact, canary, configure, swap)", reload
        );
    }
    if !wanted("load") {
        return Ok(());
    }
    for (name, kind, config) in [
        ("misbehave", Kind::Exporter, "mode=ok"),
        ("relabel", Kind::Relabeler, "tag=x"),
        ("notify", Kind::Notifier, "url=http://127.0.0.1:1/"),
    ] {
        let wasm = guests::guest(name)?;
        let wasm_kib = wasm.len() / 1024;
        let times = compile_ms(name, kind, config, &wasm, 3, &cache.path().join("compile")).await?;
        print_loads(&format!("{name} ({wasm_kib} KiB)"), times);
    }
    // First-party notifiers: webhook (HTTP through the host) and email (its own
    // SMTP client and a TLS stack in the component, so the largest plugin).
    for (name, config) in [
        ("webhook", r#"{"url": "http://127.0.0.1:1/"}"#),
        ("email", r#"{"require_tls": false}"#),
    ] {
        let Some(first) = pharos_artifacts::first_party()
            .iter()
            .find(|p| p.name == name)
        else {
            println!("{name}: not embedded; skipped");
            continue;
        };
        let kib = first.wasm.len() / 1024;
        let times = compile_ms(
            name,
            Kind::Notifier,
            config,
            first.wasm,
            3,
            &cache.path().join("compile"),
        )
        .await?;
        print_loads(&format!("first-party {name} ({kib} KiB)"), times);
    }
    // The example exporters in other languages, when scripts/setup has built them.
    // Python and JavaScript components carry their language's runtime, so one
    // compile takes seconds: one round each.
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins");
    for (lang, file) in [
        ("c", "c-example.wasm"),
        ("python", "python-example.wasm"),
        ("javascript", "js-example.wasm"),
    ] {
        let path = examples.join(lang).join("build").join(file);
        let config = examples.join(lang).join("config.example.json");
        let (Ok(wasm), Ok(config)) = (std::fs::read(&path), std::fs::read_to_string(&config))
        else {
            println!(
                "{lang}: {} not built (run scripts/setup); skipped",
                path.display()
            );
            continue;
        };
        let kib = wasm.len() / 1024;
        let rounds = if lang == "c" { 3 } else { 1 };
        let times = compile_ms(
            file,
            Kind::Exporter,
            &config,
            &wasm,
            rounds,
            &cache.path().join("compile"),
        )
        .await?;
        print_loads(&format!("{lang} example ({kib} KiB)"), times);
    }
    Ok(())
}

/// The daemon's process allocator, so the measured lift and validation allocate as
/// they do in `pharos`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
