//! Continuous verification runs a rule again only for the changed subjects that can have a hit
//! ([`Engine::could_hit`]): a subject it leaves out must have no hit, whatever the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hedui_engine::Engine;
use hedui_engine::rules::{RuleSet, SubjectKind};

async fn city_lake(dir: &Path) -> Engine {
    let city = dir.join("city");
    hedui_synth::generate(
        &hedui_synth::CityConfig {
            persons: 4000,
            seed: 7,
        },
        &city,
    )
    .unwrap();
    let connectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
    let lake = dir.join("lake");
    hedui_ingest::ingest(
        &hedui_ingest::load_mappings(&connectors).unwrap(),
        &hedui_ingest::IngestOptions {
            data_dir: city.join("data"),
            lake_dir: lake.clone(),
        },
    )
    .unwrap();
    Engine::open(&lake).await.unwrap()
}

async fn texts(engine: &Engine, sql: &str) -> BTreeSet<String> {
    let (_, batches) = engine.query(sql).await.unwrap();
    let mut out = BTreeSet::new();
    for b in &batches {
        let text = datafusion::arrow::compute::cast(
            b.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        use datafusion::arrow::array::AsArray;
        out.extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subject_with_a_hit_is_narrowed_away() {
    let dir = tempfile::tempdir().unwrap();
    let engine = city_lake(dir.path()).await;
    let persons = texts(&engine, "SELECT person_id FROM persons").await;
    let households = texts(&engine, "SELECT household_no FROM dibao_members").await;
    // A city rule whose right side is optional: the dead do not narrow its subjects.
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("R90_everyone.toml"),
        r#"id = "R90"
version = 1
title_zh = "全体人员"
title_en = "Everyone, dead or alive"
subject = "person"
legal_basis = "test"
description = "Every registered person, with a death if any."
[sql]
query = """
SELECT p.person_id AS subject, DATE '2025-01-01' AS month, CAST(NULL AS DECIMAL(12,2)) AS amount,
       make_array(named_struct('dataset', 'persons', 'batch', p._batch, 'sheet', p._sheet, 'row_no', p._row)) AS evidence,
       CAST(d.death_month AS VARCHAR) AS detail
FROM persons p LEFT JOIN deaths d ON p.person_id_key = d.person_id_key
"""
"#,
    )
    .unwrap();
    let set = RuleSet::builtin().unwrap().with_dir(&rules).unwrap();
    let params = BTreeMap::new();
    let mut narrowed = BTreeMap::new();
    for rule in set.iter() {
        let all = match rule.subject {
            SubjectKind::Person => &persons,
            SubjectKind::Household => &households,
        };
        let hit: BTreeSet<String> = engine
            .run_rule(rule, &params)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.subject)
            .collect();
        assert!(
            !hit.is_empty(),
            "{}: no hits, the test proves nothing",
            rule.id
        );
        let could = engine.could_hit(rule, &params, all).await.unwrap();
        let lost: Vec<_> = hit.difference(&could).collect();
        assert!(
            lost.is_empty(),
            "{}: {} subjects with a hit were narrowed away, e.g. {:?}",
            rule.id,
            lost.len(),
            &lost[..lost.len().min(3)]
        );
        narrowed.insert(rule.id.clone(), (could.len(), all.len()));
    }
    // Paid after death needs a death; two pensions need both schemes: few of everyone.
    for id in ["R1", "R6"] {
        let (could, all) = narrowed[id];
        assert!(could * 10 < all, "{id}: {could} of {all} subjects left");
    }
    let (could, all) = narrowed["R90"];
    assert_eq!(
        could, all,
        "R90: a left join's optional side narrowed its subjects"
    );
}
