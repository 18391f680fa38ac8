//! A rule run for some subjects only ([`Engine::run_rule_on`], every scan cut down to their
//! rows) gives exactly their hits of a full run; evidence rows a case already holds are reused,
//! the others read from the lake.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hedui_engine::check::{Hit, SubjectRun};
use hedui_engine::rules::SubjectKind;

use crate::city::{city_lake, rules_with_city_rule, texts};

/// Subject -> the hit as a reviewer would compare it (months, amount, evidence, details).
fn by_subject(hits: Vec<Hit>) -> BTreeMap<String, String> {
    hits.into_iter()
        .map(|h| {
            let shown =
                serde_json::to_string(&(h.months_text(), h.amount_text(), &h.evidence, &h.details))
                    .unwrap();
            (h.subject, shown)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_run_for_some_subjects_gives_their_hits_of_a_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let engine = city_lake(dir.path()).await;
    let persons = texts(&engine, "SELECT person_id FROM persons").await;
    let households = texts(&engine, "SELECT household_no FROM dibao_members").await;
    let set = rules_with_city_rule(dir.path());
    let params = BTreeMap::new();
    for rule in set.iter() {
        let everyone = match rule.subject {
            SubjectKind::Person => &persons,
            SubjectKind::Household => &households,
        };
        let full = by_subject(engine.run_rule(rule, &params).await.unwrap());
        let hit: Vec<&String> = full.keys().collect();
        let others: Vec<&String> = everyone.iter().filter(|s| !full.contains_key(*s)).collect();
        // A few (the files' bloom filters prune to them) and many (hash sets while decoding),
        // each with subjects that have no hit.
        let few: BTreeSet<String> = hit
            .iter()
            .take(8)
            .chain(others.iter().take(8))
            .map(|s| s.to_string())
            .collect();
        let many: BTreeSet<String> = hit
            .iter()
            .chain(others.iter().take(500))
            .map(|s| s.to_string())
            .collect();
        let runs = [SubjectRun::CutDown, SubjectRun::WholeRule]
            .into_iter()
            .flat_map(|how| [(how, few.clone()), (how, many.clone())]);
        for (how, subjects) in runs {
            let got = by_subject(
                engine
                    .run_rule_on_as(rule, &params, &subjects, how)
                    .await
                    .unwrap(),
            );
            let want: BTreeMap<String, String> = full
                .iter()
                .filter(|(s, _)| subjects.contains(*s))
                .map(|(s, h)| (s.clone(), h.clone()))
                .collect();
            assert!(!want.is_empty(), "{}: no hit among the subjects", rule.id);
            assert_eq!(
                got,
                want,
                "{}: run for {} subjects ({how:?}) differs from the full run",
                rule.id,
                subjects.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_a_case_holds_is_reused_and_its_freshness_judged_anew() {
    let dir = tempfile::tempdir().unwrap();
    let engine = city_lake(dir.path()).await;
    let set = rules_with_city_rule(dir.path());
    let rule = set.select(&["R1".to_string()]).unwrap().remove(0);
    let hits = engine.run_rule(rule, &BTreeMap::new()).await.unwrap();
    let read = engine.load_evidence(&hits).await.unwrap();
    let refs: BTreeSet<_> = hits.iter().flat_map(|h| &h.evidence).collect();
    assert_eq!(read.len(), refs.len(), "every reference has its row");
    for (r, row) in &read {
        assert_eq!(&row.reference(), r);
        assert_eq!(
            row.values.get("_row").and_then(|v| v.as_i64()),
            Some(r.row),
            "the row read is the one referenced"
        );
    }
    // A row the case store shows, as it showed it (marked here so its origin can be told).
    let held_ref = (*refs.iter().next().unwrap()).clone();
    let mut held = read[&held_ref].clone();
    held.values
        .insert("held_by_case".into(), serde_json::Value::Bool(true));
    held.stale = Some("judged when the case was raised".into());
    let known = HashMap::from([(held_ref.clone(), held)]);
    let again = engine.load_evidence_reusing(&hits, known).await.unwrap();
    assert_eq!(again.len(), read.len());
    assert_eq!(
        again[&held_ref].values.get("held_by_case"),
        Some(&serde_json::Value::Bool(true)),
        "the held row was read again instead of reused"
    );
    assert_eq!(
        again[&held_ref].stale, read[&held_ref].stale,
        "the held row's freshness was not judged anew"
    );
    for (r, row) in &read {
        if *r != held_ref {
            assert_eq!(again[r].values, row.values);
        }
    }
}
