//! Evaluating rules on new rows alone ([`hedui_engine::delta`]): the hits found before a month's
//! pensions arrived, with the hits of the new rows added (through the text the case store keeps
//! them as), are exactly a full run's hits after it; and the scans whose changes could withdraw
//! or alter earlier hits are never evaluated so.

use std::collections::BTreeMap;
use std::path::Path;

use hedui_engine::Engine;
use hedui_engine::check::Hit;
use hedui_engine::delta::NewRows;

use crate::city::{generated_city, ingest, rules_with_city_rule};

type Comparable = (
    String,
    Vec<String>,
    Option<i128>,
    Vec<hedui_engine::check::EvidenceRef>,
    Vec<String>,
);

fn comparable(hits: impl IntoIterator<Item = Hit>) -> BTreeMap<String, Comparable> {
    hits.into_iter()
        .map(|h| {
            (
                h.subject.clone(),
                (
                    h.subject.clone(),
                    h.months_text(),
                    h.amount_cents,
                    h.evidence,
                    h.details,
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_months_pensions_added_to_the_hits_before_give_a_full_runs_hits() {
    let dir = tempfile::tempdir().unwrap();
    let city = generated_city(dir.path());
    let december = hedui_synth_file(&city.join("data"), "养老金发放明细_202512");
    let aside = dir.path().join("aside.csv");
    std::fs::rename(&december, &aside).unwrap();
    let lake = dir.path().join("lake");
    ingest(&city.join("data"), &lake);
    let set = rules_with_city_rule(dir.path());
    let params = BTreeMap::new();
    let before = Engine::open(&lake).await.unwrap();
    let mut earlier = BTreeMap::new();
    for rule in set.iter() {
        let states: BTreeMap<String, String> = before
            .run_rule(rule, &params)
            .await
            .unwrap()
            .into_iter()
            .map(|h| (h.subject.clone(), h.state()))
            .collect();
        earlier.insert(rule.id.clone(), states);
    }

    std::fs::rename(&aside, &december).unwrap();
    ingest(&city.join("data"), &lake);
    let now = Engine::open(&lake).await.unwrap();
    let changes = now.changes_since(before.snapshot()).await.unwrap();
    let pensions = &changes.by_dataset["pension_payments"];
    assert!(pensions.only_added(), "{pensions:?}");
    let data: Vec<_> = changes
        .datasets
        .iter()
        .filter(|d| *d != "quarantine")
        .collect();
    assert_eq!(data, ["pension_payments"]);

    let mut rows = NewRows::default();
    let mut grown = 0;
    for rule in set.iter() {
        let plan = now.delta_plan(rule, &params).await.unwrap();
        let additive = plan.additive_datasets();
        let reads = now.rule_datasets(rule, &params).await.unwrap();
        match rule.id.as_str() {
            // Paid after death, in prison, two pensions: every pension row is a row of its own.
            "R1" | "R4" | "R6" => assert!(additive.contains("pension_payments"), "{}", rule.id),
            // A member's pension counts towards the household's income, summed per payment.
            "R5" => assert!(!additive.contains("pension_payments")),
            _ => {}
        }
        // The death month is the minimum over three sources; the roster beside a payment and
        // the optional side of a left join can change an earlier result.
        for never in ["cremations", "death_certificates", "dibao_members"] {
            assert!(!additive.contains(never), "{}: {never}", rule.id);
        }
        if rule.id == "R90" {
            assert!(
                !additive.contains("persons"),
                "R90: a left join's optional side"
            );
        }
        if matches!(rule.id.as_str(), "R5" | "R7") {
            assert!(additive.contains("dibao_payments"), "{}", rule.id);
        }
        if !reads.contains("pension_payments") || !additive.contains("pension_payments") {
            continue;
        }
        let source = now
            .new_rows(&mut rows, "pension_payments", &pensions.new_batches)
            .await
            .unwrap();
        let added = BTreeMap::from([("pension_payments".to_string(), source)]);
        let more = now.run_rule_delta(rule, &plan, &added).await.unwrap();
        grown += more.len();
        let mut merged: BTreeMap<String, Hit> = earlier[&rule.id]
            .iter()
            .map(|(s, state)| (s.clone(), Hit::from_state(rule, s, state).unwrap()))
            .collect();
        for h in more {
            match merged.get_mut(&h.subject) {
                Some(was) => was.merge(h),
                None => {
                    merged.insert(h.subject.clone(), h);
                }
            }
        }
        let full = now.run_rule(rule, &params).await.unwrap();
        let (merged, full) = (comparable(merged.into_values()), comparable(full));
        let differ: Vec<_> = full
            .iter()
            .filter(|(s, h)| merged.get(*s) != Some(h))
            .map(|(s, _)| s)
            .chain(merged.keys().filter(|s| !full.contains_key(*s)))
            .take(3)
            .collect();
        assert!(
            differ.is_empty(),
            "{}: the hits before with the new rows' hits are not a full run's, e.g. {differ:?}",
            rule.id
        );
    }
    assert!(
        grown > 0,
        "December's pensions added no hit rows: the test proves nothing"
    );
}

/// The one file of the generated city whose name contains `name`.
fn hedui_synth_file(data: &Path, name: &str) -> std::path::PathBuf {
    let mut stack = vec![data.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(name) {
                return p;
            }
        }
    }
    panic!("no file {name} in {}", data.display());
}
