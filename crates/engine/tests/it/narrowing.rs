//! Continuous verification runs a rule again only for the changed subjects that can have a hit
//! ([`Engine::could_hit`]): a subject it leaves out must have no hit, whatever the rule.

use std::collections::{BTreeMap, BTreeSet};

use hedui_engine::rules::SubjectKind;

use crate::city::{city_lake, rules_with_city_rule, texts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subject_with_a_hit_is_narrowed_away() {
    let dir = tempfile::tempdir().unwrap();
    let engine = city_lake(dir.path()).await;
    let persons = texts(&engine, "SELECT person_id FROM persons").await;
    let households = texts(&engine, "SELECT household_no FROM dibao_members").await;
    let set = rules_with_city_rule(dir.path());
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
    // Paid after death needs a death: few of everyone. (Once one clause has left fewer than a
    // run cut down to their rows takes, no more are checked: R6's two schemes are not both.)
    let (could, all) = narrowed["R1"];
    assert!(could * 10 < all, "R1: {could} of {all} subjects left");
    let (could, all) = narrowed["R6"];
    assert!(could * 2 < all, "R6: {could} of {all} subjects left");
    let (could, all) = narrowed["R90"];
    assert_eq!(
        could, all,
        "R90: a left join's optional side narrowed its subjects"
    );
}
