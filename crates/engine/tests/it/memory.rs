//! The rule suite inside a memory pool far smaller than its data: it completes by spilling,
//! gives exactly the hits it gives without a limit, and says how much it spilled. (A join whose
//! hash table does not fit, planned again with sort-merge joins, is tested in `spill.rs`.)

use std::collections::BTreeMap;

use hedui_engine::rules::RuleSet;
use hedui_engine::{Engine, EngineOptions};

use crate::city::city_lake;

/// Small enough that the city's joins and aggregations cannot hold their inputs (a fixed cost
/// of a few MiB per operator remains: DataFusion reserves room to merge what it spilled).
const POOL: usize = 4 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_suite_spills_in_a_small_pool_and_finds_the_same_hits() {
    let dir = tempfile::tempdir().unwrap();
    let unlimited = city_lake(dir.path()).await;
    let spill_dir = dir.path().join("spill");
    let limited = Engine::open_with(
        &dir.path().join("lake"),
        &EngineOptions {
            memory_limit: Some(POOL),
            spill_dir: Some(spill_dir.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let params = BTreeMap::new();
    let mut hits = 0;
    for rule in RuleSet::builtin().unwrap().iter() {
        let shown = |hits: Vec<hedui_engine::check::Hit>| {
            let mut all: Vec<String> = hits
                .into_iter()
                .map(|h| serde_json::to_string(&h).unwrap())
                .collect();
            all.sort();
            all
        };
        let want = shown(unlimited.run_rule(rule, &params).await.unwrap());
        let got = shown(
            limited
                .run_rule(rule, &params)
                .await
                .unwrap_or_else(|e| panic!("{} failed inside a {POOL}-byte pool: {e}", rule.id)),
        );
        assert_eq!(got, want, "{}: other hits inside the pool", rule.id);
        hits += want.len();
    }
    assert!(hits > 0, "the city has no hits to compare");
    let spilled = limited.spilled();
    assert!(
        spilled.bytes > 0 && spilled.files > 0,
        "nothing was spilled inside a {POOL}-byte pool: {spilled:?}"
    );
    assert!(
        spilled.describe().unwrap().contains("spilled"),
        "{spilled:?}"
    );
    assert_eq!(unlimited.spilled().bytes, 0, "spilled without a limit");
    // Spill files are temporary: none is left once the queries are done.
    let left = walk_files(&spill_dir);
    assert!(left.is_empty(), "spill files left behind: {left:?}");
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk_files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
