//! The storage component seen from outside: it opens the TSDB directory, reports its
//! metrics, reloads retention and refuses changes that need a restart.

use pharos_tests::Pharos;

fn config(path: &str, retention: &str) -> String {
    format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "{path}", "retention": {{"time": "{retention}"}}}}}}}}"#
    )
}

#[test]
fn opens_the_tsdb_and_reloads_retention_only() -> anyhow::Result<()> {
    let p = Pharos::start(&config("tsdb-data", "15d"))?;
    p.wait_ready()?;
    assert!(
        p.dir.path().join("tsdb-data/wal").is_dir(),
        "the WAL directory is created"
    );
    assert_eq!(p.metric("pharos_tsdb_head_series")?, 0.0);
    assert_eq!(p.metric("pharos_tsdb_blocks_loaded")?, 0.0);
    assert_eq!(
        p.metric("pharos_tsdb_maintenance_total{kind=\"failure\"}")?,
        0.0
    );

    std::fs::write(&p.config_path, config("tsdb-data", "30d"))?;
    assert_eq!(p.post("/-/reload")?.0, 200);
    assert_eq!(p.metric("pharos_config_last_reload_successful")?, 1.0);

    std::fs::write(&p.config_path, config("elsewhere", "30d"))?;
    let (status, body) = p.post("/-/reload")?;
    assert_eq!(status, 500);
    assert!(body.contains("reloading storage"), "{body}");
    assert!(body.contains("next restart"), "{body}");
    assert_eq!(p.metric("pharos_config_last_reload_successful")?, 0.0);
    assert!(!p.dir.path().join("elsewhere").exists());
    Ok(())
}

#[test]
fn a_bad_storage_section_is_named_with_its_path() -> anyhow::Result<()> {
    let p = Pharos::start(&config("tsdb-data", "15d"))?;
    p.wait_ready()?;
    std::fs::write(&p.config_path, config("tsdb-data", "forever"))?;
    let (status, body) = p.post("/-/reload")?;
    assert_eq!(status, 500);
    assert!(
        body.contains("storage.tsdb.retention.time: invalid duration \"forever\""),
        "{body}"
    );
    Ok(())
}
