//! The accounting a data officer relies on: every row read is loaded, quarantined or a
//! duplicate, and the quarantine holds exactly the rows the generator broke.

use std::collections::{BTreeMap, BTreeSet};

use hedui_model::Catalog;
use serde_json::Value;

use crate::common::*;

#[test]
fn quarantine_holds_exactly_the_broken_rows_and_every_file_adds_up() {
    let city = city();
    let lake = tempfile::tempdir().unwrap();
    let lake = lake.path().join("lake");
    let report = ingest(&city.data(), &lake);
    let truth = city.truth();

    let files = report["files"].as_array().unwrap();
    let mut duplicates_per_file: BTreeMap<String, u64> = BTreeMap::new();
    for f in files {
        let n = |k: &str| f[k].as_u64().unwrap();
        assert_eq!(
            n("rows_read"),
            n("rows_loaded") + n("rows_quarantined") + n("rows_duplicate"),
            "{f}"
        );
        duplicates_per_file.insert(f["file"].as_str().unwrap().to_string(), n("rows_duplicate"));
        let status = f["status"].as_str().unwrap();
        assert!(status == "loaded" || status == "unchanged", "{f}");
        // Rows read: every data row the generator wrote (broken and repeated ones included).
        if let Some(t) = truth["files"].get(f["file"].as_str().unwrap()) {
            assert_eq!(
                n("rows_read"),
                t["data_rows"].as_u64().unwrap(),
                "{}",
                f["file"]
            );
        }
    }

    let expected: BTreeSet<(String, Option<String>, i64, String)> = truth["broken_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["file"].as_str().unwrap().into(),
                b["sheet"].as_str().map(Into::into),
                b["row"].as_i64().unwrap(),
                b["problem"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(expected.len() > 20, "the city has broken rows to find");
    let rows = sql(
        &lake,
        "SELECT source_file, source_sheet, source_row, reason_codes, reasons, raw FROM quarantine",
    );
    let mut found = BTreeSet::new();
    for r in &rows {
        let codes = r["reason_codes"].as_str().unwrap();
        assert!(
            !r["reasons"].as_str().unwrap().is_empty()
                && serde_json::from_str::<Value>(r["raw"].as_str().unwrap()).is_ok()
        );
        let key = (
            r["source_file"].as_str().unwrap().to_string(),
            r["source_sheet"].as_str().map(Into::into),
            r["source_row"].as_i64().unwrap(),
        );
        let problem = expected
            .iter()
            .find(|e| (&e.0, &e.1, e.2) == (&key.0, &key.1, key.2))
            .map(|e| e.3.clone());
        let problem =
            problem.unwrap_or_else(|| panic!("quarantined a row the generator did not break: {r}"));
        assert!(
            codes.split(',').any(|c| c == problem),
            "{key:?}: expected {problem}, got {codes}"
        );
        found.insert((key.0, key.1, key.2, problem));
    }
    assert_eq!(found, expected, "every broken row is quarantined, once");
    assert_eq!(rows.len(), expected.len());

    let mut truth_dups: BTreeMap<String, u64> = BTreeMap::new();
    for d in truth["duplicate_rows"].as_array().unwrap() {
        *truth_dups
            .entry(d["file"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for (file, n) in &duplicates_per_file {
        assert_eq!(
            *n,
            truth_dups.get(file).copied().unwrap_or(0),
            "duplicates in {file}"
        );
    }

    // Every canonical dataset got rows, and the identical re-delivery was recognised.
    for def in Catalog::builtin().iter() {
        assert!(count(&lake, &def.name) > 0, "dataset {} is empty", def.name);
    }
    for again in truth["redelivered_files"].as_array().unwrap() {
        let f = files.iter().find(|f| f["file"] == *again).unwrap();
        assert_eq!(f["status"], "unchanged");
    }
}

#[test]
fn ids_are_normalised_and_raw_values_kept() {
    let city = city();
    let lake = tempfile::tempdir().unwrap();
    let lake = lake.path().join("lake");
    ingest(&city.data(), &lake);
    // Every loaded ID is canonical and its key is its first 17 digits.
    let bad = sql(
        &lake,
        "SELECT count(*) AS n FROM persons WHERE length(person_id) <> 18 OR CAST(substr(person_id, 1, 17) AS BIGINT) <> person_id_key",
    );
    assert_eq!(bad[0]["n"], 0);
    // Legacy 15-digit numbers were upgraded, and the raw value kept beside the canonical one.
    let legacy = sql(
        &lake,
        "SELECT person_id, person_id_raw FROM persons WHERE length(person_id_raw) = 15 LIMIT 5",
    );
    assert!(
        !legacy.is_empty(),
        "the registry exports some legacy numbers"
    );
    for r in legacy {
        let (id, raw) = (
            r["person_id"].as_str().unwrap(),
            r["person_id_raw"].as_str().unwrap(),
        );
        assert_eq!(format!("{}{}", &id[..6], &id[8..17]), raw);
    }
    // Full-width and apostrophe forms normalise to the same person as the registry's.
    let joined = sql(
        &lake,
        "SELECT count(*) AS n FROM pension_payments p LEFT JOIN persons r ON p.person_id_key = r.person_id_key WHERE r.person_id IS NULL",
    );
    assert_eq!(
        joined[0]["n"], 0,
        "every pension recipient is found in the registry"
    );
}

#[test]
fn demo_generates_ingests_and_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        hedui()
            .args(["demo", "--no-serve", "--persons", "1500", "--dir"])
            .arg(dir.path()),
    );
    assert!(
        out.contains("every file adds up (read = loaded + quarantined + duplicate): yes"),
        "{out}"
    );
    assert!(out.contains("pension_payments"), "{out}");
    assert!(
        dir.path().join("connectors/persons.toml").exists(),
        "the mappings are written out to edit"
    );
    // Running it again starts from a fresh lake and gives the same numbers.
    let again = run_ok(
        hedui()
            .args(["demo", "--no-serve", "--persons", "1500", "--dir"])
            .arg(dir.path()),
    );
    let totals = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("合计 total"))
            .map(str::to_string)
    };
    assert_eq!(totals(&out), totals(&again));
}

#[test]
fn the_generated_city_is_deterministic_and_plants_every_rule() {
    let city = city();
    let truth = city.truth();
    for rule in ["R1", "R2", "R3", "R4", "R5", "R6", "R7"] {
        let r = &truth["rules"][rule];
        assert!(
            !r["hits"].as_array().unwrap().is_empty(),
            "{rule} has planted hits"
        );
        assert!(
            !r["decoys"].as_array().unwrap().is_empty(),
            "{rule} has near misses"
        );
        for hit in r["hits"].as_array().unwrap() {
            let subject = hit["subject"].as_str().unwrap();
            if !rule.starts_with("R5") && !rule.starts_with("R7") {
                assert!(
                    hedui_model::ResidentId::parse(subject).is_ok_and(|id| id.as_str() == subject),
                    "{hit}"
                );
            }
            assert!(!hit["months"].as_array().unwrap().is_empty());
        }
    }
    // The same seed writes the same bytes.
    let again = generate(4000, 7);
    let files = |root: &std::path::Path| -> BTreeMap<String, Vec<u8>> {
        files_under(root)
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (files(city.dir.path()), files(again.dir.path()));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{name} differs between two runs with the same seed"
        );
    }
}
