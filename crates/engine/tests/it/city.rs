//! A generated city ingested into a lake, for the tests that run rules on it.

use std::collections::BTreeSet;
use std::path::Path;

use hedui_engine::Engine;
use hedui_engine::rules::RuleSet;

pub(crate) async fn city_lake(dir: &Path) -> Engine {
    let city = generated_city(dir);
    let lake = dir.join("lake");
    ingest(&city.join("data"), &lake);
    Engine::open(&lake).await.unwrap()
}

/// The test city's files (4,000 persons), generated under `dir`.
pub(crate) fn generated_city(dir: &Path) -> std::path::PathBuf {
    let city = dir.join("city");
    hedui_synth::generate(
        &hedui_synth::CityConfig {
            persons: 4000,
            seed: 7,
        },
        &city,
    )
    .unwrap();
    city
}

/// Ingest the files of `data` not yet in the lake at `lake` (created if new).
pub(crate) fn ingest(data: &Path, lake: &Path) {
    let connectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
    hedui_ingest::ingest(
        &hedui_ingest::load_mappings(&connectors).unwrap(),
        &hedui_ingest::IngestOptions {
            data_dir: data.to_path_buf(),
            lake_dir: lake.to_path_buf(),
            threads: 0,
        },
    )
    .unwrap();
}

pub(crate) async fn texts(engine: &Engine, sql: &str) -> BTreeSet<String> {
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

/// The built-in rules and a city rule whose right side is optional (R90: everyone, with a
/// death if any): the dead do not narrow its subjects.
pub(crate) fn rules_with_city_rule(dir: &Path) -> RuleSet {
    let rules = dir.join("rules");
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
    RuleSet::builtin().unwrap().with_dir(&rules).unwrap()
}
