//! `kill -9` at any moment leaves the lake consistent, and re-running finishes the job with no
//! partial batch and no duplicate row.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hedui_model::Catalog;

use crate::common::*;

/// Rows per (dataset, source file) of the lake.
fn rows_by_source(lake: &Path) -> BTreeMap<(String, String), i64> {
    let query = Catalog::builtin()
        .iter()
        .map(|d| {
            format!(
                "SELECT '{0}' AS d, _source AS s, count(*) AS n FROM {0} GROUP BY _source",
                d.name
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    sql(lake, &query)
        .into_iter()
        .map(|r| {
            (
                (
                    r["d"].as_str().unwrap().to_string(),
                    r["s"].as_str().unwrap().to_string(),
                ),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn ingest_command(data: &Path, lake: &Path) -> std::process::Command {
    let mut c = hedui();
    c.arg("ingest")
        .arg("--connectors")
        .arg(connectors_dir())
        .arg("--data")
        .arg(data)
        .arg("--lake")
        .arg(lake);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

#[test]
fn killing_ingest_at_random_moments_leaves_no_partial_batch_and_no_duplicate() {
    let city = city();
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    let started = Instant::now();
    run_ok(&mut ingest_command(&city.data(), &reference));
    let full = started.elapsed();
    let expected = rows_by_source(&reference);

    let lake = dir.path().join("lake");
    const KILLS: u32 = 8;
    for i in 0..KILLS {
        // Spread the kills over the whole run, at uneven offsets.
        let at = full.mul_f64((f64::from(i) + 0.37 * f64::from(i % 3)) / f64::from(KILLS));
        let mut child = ingest_command(&city.data(), &lake).spawn().unwrap();
        std::thread::sleep(at.max(Duration::from_millis(5)));
        let _ = child.kill();
        child.wait().unwrap();
        if !lake.join("_log").exists() {
            continue;
        }
        // Whatever is visible is whole: each source file has all its rows or none.
        for (key, n) in rows_by_source(&lake) {
            assert_eq!(
                Some(&n),
                expected.get(&key),
                "after kill {i}: partial or foreign rows for {key:?}"
            );
        }
    }
    run_ok(&mut ingest_command(&city.data(), &lake));
    assert_eq!(
        rows_by_source(&lake),
        expected,
        "re-running finishes the job exactly"
    );

    for def in Catalog::builtin().iter() {
        let dup = sql(
            &lake,
            &format!(
                "SELECT count(*) AS n FROM (SELECT _source, _row FROM {} GROUP BY _source, _row HAVING count(*) > 1)",
                def.name
            ),
        );
        assert_eq!(dup[0]["n"], 0, "duplicate rows in {}", def.name);
    }
    // No file is left that no commit lists.
    let log: String = std::fs::read_dir(lake.join("_log"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    for entry in files_under(&lake) {
        if entry.extension().is_some_and(|x| x == "parquet") {
            let rel = entry
                .strip_prefix(&lake)
                .unwrap()
                .to_string_lossy()
                .to_string();
            assert!(log.contains(&rel), "orphan file {rel}");
        }
    }
}
