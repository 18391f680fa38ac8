//! The rules against the generator's truth: every planted case found, no decoy flagged.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::*;

type Key = (String, Vec<String>, Option<String>);

fn hits_by_rule(hits: &[Value]) -> BTreeMap<String, BTreeSet<Key>> {
    let mut out: BTreeMap<String, BTreeSet<Key>> = BTreeMap::new();
    for h in hits {
        let months = h["months"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap()[..7].to_string())
            .collect();
        let amount = h["amount_cents"]
            .as_i64()
            .map(|c| format!("{}.{:02}", c / 100, c % 100));
        out.entry(h["rule"].as_str().unwrap().to_string())
            .or_default()
            .insert((h["subject"].as_str().unwrap().to_string(), months, amount));
    }
    out
}

#[test]
fn check_finds_every_planted_case_and_flags_no_decoy() {
    for (persons, seed) in [(20_000, 2024), (8_000, 11)] {
        check_city(persons, seed);
    }
}

fn check_city(persons: u64, seed: u64) {
    let city = generate(persons, seed);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city.data(), &lake);
    let out = run_ok(
        hedui()
            .args(["check", "--format", "json", "--lake"])
            .arg(&lake),
    );
    let hits: Vec<Value> = serde_json::from_str(&out).unwrap();
    let found = hits_by_rule(&hits);
    let truth = city.truth();
    let mut report = Vec::new();
    for (rule, t) in truth["rules"].as_object().unwrap() {
        let expected: BTreeSet<Key> = t["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let months = h["months"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap().to_string())
                    .collect();
                (
                    h["subject"].as_str().unwrap().to_string(),
                    months,
                    h["amount"].as_str().map(str::to_string),
                )
            })
            .collect();
        let got = found.get(rule).cloned().unwrap_or_default();
        let true_pos = got.intersection(&expected).count();
        let precision = if got.is_empty() {
            1.0
        } else {
            true_pos as f64 / got.len() as f64
        };
        let recall = if expected.is_empty() {
            1.0
        } else {
            true_pos as f64 / expected.len() as f64
        };
        report.push(format!(
            "{rule}: precision {precision:.3} recall {recall:.3} ({} expected, {} found)",
            expected.len(),
            got.len()
        ));
        let missing: Vec<_> = expected.difference(&got).take(3).collect();
        let extra: Vec<_> = got.difference(&expected).take(3).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{rule}: missing {missing:?}\nextra {extra:?}"
        );
        let flagged: BTreeSet<&str> = got.iter().map(|k| k.0.as_str()).collect();
        for d in t["decoys"].as_array().unwrap() {
            assert!(
                !flagged.contains(d["subject"].as_str().unwrap()),
                "{rule} flagged decoy {d}"
            );
        }
    }
    println!("seed {seed}:\n{}", report.join("\n"));
    assert_eq!(
        found.len(),
        7,
        "every rule found its planted cases: {report:?}"
    );
    every_evidence_row_belongs_to_its_subject(&lake, &hits);
}

/// Each row a hit cites is about its subject: the person, or for a household a member of it
/// (or the household's own record). A reference that names the wrong sheet of a workbook shows
/// another person's record.
fn every_evidence_row_belongs_to_its_subject(lake: &std::path::Path, hits: &[Value]) {
    let members: BTreeMap<String, BTreeSet<String>> = {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in sql(lake, "SELECT household_no, person_id FROM dibao_members") {
            if let (Some(h), Some(p)) = (r["household_no"].as_str(), r["person_id"].as_str()) {
                m.entry(h.to_string()).or_default().insert(p.to_string());
            }
        }
        m
    };
    let mut wanted: BTreeMap<String, Vec<(&Value, &str)>> = BTreeMap::new();
    for h in hits {
        for e in h["evidence"].as_array().unwrap() {
            wanted
                .entry(e["dataset"].as_str().unwrap().to_string())
                .or_default()
                .push((e, h["subject"].as_str().unwrap()));
        }
    }
    let mut checked = 0;
    for (dataset, refs) in wanted {
        for chunk in refs.chunks(200) {
            let cond: Vec<String> = chunk
                .iter()
                .map(|(e, _)| {
                    let sheet = e["sheet"]
                        .as_str()
                        .map_or("_sheet IS NULL".to_string(), |s| format!("_sheet = '{s}'"));
                    format!(
                        "(_batch = '{}' AND {sheet} AND _row = {})",
                        e["batch"].as_str().unwrap(),
                        e["row"]
                    )
                })
                .collect();
            let rows = sql(
                lake,
                &format!("SELECT * FROM {dataset} WHERE {}", cond.join(" OR ")),
            );
            for (e, subject) in chunk {
                let found: Vec<&Value> = rows
                    .iter()
                    .filter(|r| {
                        r["_batch"] == e["batch"]
                            && r["_row"] == e["row"]
                            && r["_sheet"] == e["sheet"]
                    })
                    .collect();
                assert_eq!(found.len(), 1, "{dataset} {e}: one row per reference");
                // The row referenced, and the row the reviewer is shown, are both the subject's.
                for row in [found[0], &e["values"]] {
                    let row = row.as_object().unwrap();
                    // Identifying values of the row: resident IDs and the household number.
                    let ids: BTreeSet<&str> = row
                        .iter()
                        .filter(|(k, _)| {
                            (k.ends_with("_id") && row.contains_key(&format!("{k}_key")))
                                || k.as_str() == "household_no"
                        })
                        .filter_map(|(_, v)| v.as_str())
                        .collect();
                    let household = members.get(*subject);
                    let belongs = ids.contains(subject)
                        || household.is_some_and(|m| ids.iter().any(|id| m.contains(*id)));
                    assert!(belongs, "{dataset} row {row:?} cited for {subject}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}

#[test]
fn a_broken_city_rule_is_reported_with_its_file_before_anything_runs() {
    let city = city();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city.data(), &lake);
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let rule = |sql: &str, extra: &str| {
        format!(
            "id = \"C1\"\nversion = 1\ntitle_zh = \"测试\"\ntitle_en = \"test\"\nsubject = \"person\"\nlegal_basis = \"-\"\n{extra}\n[sql]\nquery = \"\"\"{sql}\"\"\"\n"
        )
    };
    let cases = [
        (rule("SELEC person_id FROM persons", ""), "C1.toml"),
        (
            rule("SELECT person_id AS subject FROM no_such_dataset", ""),
            "no_such_dataset",
        ),
        (
            rule("SELECT person_id AS subject, {{limit}} FROM persons", ""),
            "not a declared parameter",
        ),
        (
            rule("SELECT person_id AS subject FROM persons", ""),
            "no column `month`",
        ),
    ];
    for (text, expect) in cases {
        std::fs::write(rules.join("C1.toml"), &text).unwrap();
        let out = run(hedui()
            .args(["check", "--lake"])
            .arg(&lake)
            .arg("--rules-dir")
            .arg(&rules));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("C1.toml") && stderr.contains(expect),
            "{expect}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing ran");
    }
    let out = run(hedui()
        .args(["check", "--param", "dibao_lin=900", "--lake"])
        .arg(&lake));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown rule parameter `dibao_lin`"));
}

#[test]
fn a_city_parameter_changes_what_is_found() {
    let city = city();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city.data(), &lake);
    let count = |extra: &[&str]| -> usize {
        let out = run_ok(
            hedui()
                .args(["check", "--rule", "R5", "--format", "json", "--lake"])
                .arg(&lake)
                .args(extra),
        );
        serde_json::from_str::<Vec<Value>>(&out).unwrap().len()
    };
    let default = count(&[]);
    assert!(default > 0);
    // A very high line leaves only the households with assets; a tiny one flags every household
    // with any income.
    assert!(count(&["--param", "dibao_line=100000"]) < default);
    assert!(
        count(&["--param", "dibao_line=1"]) > default,
        "a tiny line makes every household with income a hit"
    );
}

#[test]
fn settings_come_from_hedui_toml_and_flags_override_them() {
    let city = city();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city.data(), &lake);
    let r5 = |args: &[&str]| -> usize {
        let out = run_ok(
            hedui()
                .current_dir(dir.path())
                .args(["check", "--rule", "R5", "--format", "json"])
                .args(args),
        );
        serde_json::from_str::<Vec<Value>>(&out).unwrap().len()
    };
    std::fs::write(dir.path().join("hedui.toml"), "[lake]\npath = \"lake\"\n\n[engine]\nmemory_limit = \"64MiB\"\n\n[rules.parameters]\ndibao_line = \"1\"\n").unwrap();
    let from_file = r5(&[]);
    let from_flag = r5(&["--param", "dibao_line=800"]);
    assert!(
        from_file > from_flag,
        "the file's line (1 yuan) flags more households than the flag's 800"
    );
    std::fs::write(
        dir.path().join("hedui.toml"),
        "[lake]\npath = \"lake\"\n[engine]\nmemory = \"1GiB\"\n",
    )
    .unwrap();
    let out = run(hedui().current_dir(dir.path()).args(["check"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("hedui.toml:4:") && stderr.contains("unknown field `memory`"),
        "{stderr}"
    );
}

#[test]
fn rules_are_listed_and_shown_with_the_sql_they_run() {
    let list = run_ok(hedui().args(["rules", "list"]));
    for id in ["R1", "R2", "R3", "R4", "R5", "R6", "R7"] {
        assert!(
            list.lines().any(|l| l.starts_with(id)),
            "{id} missing:\n{list}"
        );
    }
    let shown = run_ok(hedui().args(["rules", "show", "R5", "--param", "dibao_line=850"]));
    assert!(shown.contains("dibao_line = 850 (default 800"), "{shown}");
    assert!(shown.contains("低保家庭收入财产超标"), "{shown}");
    let sql = run_ok(hedui().args(["rules", "show", "R5", "--sql", "--param", "dibao_line=850"]));
    assert!(sql.starts_with("WITH"), "{sql}");
    assert!(sql.contains("850.00") && !sql.contains("{{"), "{sql}");
    let unknown = run(hedui().args(["rules", "show", "R99"]));
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("R1, R2"));
}
