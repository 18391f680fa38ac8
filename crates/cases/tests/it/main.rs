//! The case store on both of its databases: SQLite (embedded default) and PostgreSQL (this
//! machine's server, each run in a schema of its own).

use std::collections::BTreeMap;

use hedui_cases::{
    CaseFilter, CaseStore, NewHit, Raised, RunRecord, Scope, State, Step, WorkflowConfig,
};

fn hit(rule: &str, subject: &str, fingerprint: &str) -> NewHit {
    NewHit {
        rule: rule.into(),
        subject: subject.into(),
        months: vec!["2025-04".into(), "2025-05".into()],
        amount_cents: Some(600_000),
        evidence: serde_json::json!([{"dataset": "pension_payments"}]),
        evidence_fingerprint: fingerprint.into(),
        region: Some("420502".into()),
    }
}

async fn exercise(store: &CaseStore) {
    let mut run = RunRecord {
        id: "run-1".into(),
        started_at: "2026-01-05T00:00:00Z".into(),
        lake_version: 27,
        rules: BTreeMap::from([("R1".into(), 1)]),
        params: BTreeMap::from([(
            "R1".into(),
            BTreeMap::from([("grace_months".into(), "0".into())]),
        )]),
        hits: 2,
        hits_fingerprint: "abc".into(),
        new_cases: 0,
        changed_since: Some(20),
    };
    store
        .record_run(&mut run, &[], &hedui_cases::Coverage::default())
        .await
        .unwrap();
    assert_eq!(store.run("run-1").await.unwrap(), run);
    assert!(store.run("run-9").await.is_err());

    let hits = [hit("R1", "A", "e1"), hit("R1", "B", "e2")];
    assert_eq!(
        store.raise("run-1", &hits).await.unwrap(),
        Raised {
            new: 2,
            already_open: 0,
            suppressed: 0,
            ..Default::default()
        }
    );
    // The same hits again: their cases are open, nothing new.
    assert_eq!(
        store.raise("run-2", &hits).await.unwrap(),
        Raised {
            new: 0,
            already_open: 2,
            suppressed: 0,
            ..Default::default()
        }
    );

    let all = Scope::all();
    let cases = store.cases().await.unwrap();
    let a = cases.iter().find(|c| c.subject == "A").unwrap().id.clone();
    assert_eq!(
        cases.iter().find(|c| c.subject == "A").unwrap().last_run,
        "run-2"
    );
    // A reviewer finds A a false positive.
    assert!(
        store
            .transition(
                &all,
                &a,
                &Step::to(State::Confirmed)
                    .by("rev")
                    .note("looked")
                    .amount_cents(1)
            )
            .await
            .is_err(),
        "new cannot jump to confirmed"
    );
    store
        .transition(
            &all,
            &a,
            &Step::to(State::Assigned)
                .by("lead")
                .assignee("grid-420502")
                .note("to the 西陵 grid"),
        )
        .await
        .unwrap();
    store
        .transition(
            &all,
            &a,
            &Step::to(State::Verifying)
                .by("rev")
                .note("home visit booked"),
        )
        .await
        .unwrap();
    assert!(
        store
            .transition(
                &all,
                &a,
                &Step::to(State::Rejected).by("rev").note("seen alive")
            )
            .await
            .is_err(),
        "a reason is required"
    );
    assert!(
        store
            .transition(
                &all,
                &a,
                &Step::to(State::Rejected)
                    .by("rev")
                    .reason("identity_mismatch")
            )
            .await
            .is_err(),
        "a note is required"
    );
    store
        .transition(
            &all,
            &a,
            &Step::to(State::Rejected)
                .by("rev")
                .note("seen alive; death record of a namesake")
                .reason("identity_mismatch"),
        )
        .await
        .unwrap();

    // Unchanged evidence: the rejected hit stays down; B is still open.
    assert_eq!(
        store.raise("run-3", &hits).await.unwrap(),
        Raised {
            new: 0,
            already_open: 1,
            suppressed: 1,
            ..Default::default()
        }
    );
    // New evidence for A (another payment): raised again as a new case.
    assert_eq!(
        store
            .raise("run-4", &[hit("R1", "A", "e1-more")])
            .await
            .unwrap(),
        Raised {
            new: 1,
            already_open: 0,
            suppressed: 0,
            ..Default::default()
        }
    );
    let cases = store.cases().await.unwrap();
    assert_eq!(cases.iter().filter(|c| c.subject == "A").count(), 2);
    let rejected = cases.iter().find(|c| c.id == a).unwrap();
    assert_eq!(rejected.state, State::Rejected);
    assert_eq!(rejected.reject_reason.as_deref(), Some("identity_mismatch"));
    workflow(store).await;
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cases.db").display());
    exercise(&CaseStore::open(&url).await.unwrap()).await;
    // Reopening keeps everything.
    let again = CaseStore::open(&url).await.unwrap();
    assert_eq!(again.cases().await.unwrap().len(), 5);
}

#[tokio::test]
async fn postgres_store() {
    let base = std::env::var("HEDUI_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("hedui_test_{}_{}", std::process::id(), chrono_free_nanos());
    {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&base)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (database test)");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let url = format!("{base}?options=-c%20search_path%3D{schema}");
    exercise(&CaseStore::open(&url).await.unwrap()).await;
    let pool = sqlx::AnyPool::connect(&base).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

fn chrono_free_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn passwords_never_reach_messages() {
    assert_eq!(
        hedui_cases::redact("postgres://hedui:s3cret@db:5432/hub"),
        "postgres://hedui:***@db:5432/hub"
    );
    assert_eq!(
        hedui_cases::redact("sqlite://cases.db"),
        "sqlite://cases.db"
    );
}

/// The reviewer's side: worklist filters and scopes, dispatch, outcomes, history, deadlines and
/// escalation, and the dashboard's figures.
async fn workflow(store: &CaseStore) {
    let all = Scope::all();
    let mut h1 = hit("R5", "H1", "h1");
    h1.region = Some("420503".into());
    h1.amount_cents = Some(100);
    let mut c = hit("R2", "C", "c1");
    c.region = None;
    c.amount_cents = None;
    store.raise("run-5", &[h1, c]).await.unwrap();
    // R1 B, R1 A (new evidence), R5 H1 and R2 C are open; the first A is rejected.
    let open = CaseFilter {
        states: vec![State::New, State::Assigned, State::Verifying],
        ..Default::default()
    };
    assert_eq!(store.list(&all, &open).await.unwrap().total, 4);
    let r1 = CaseFilter {
        rule: Some("R1".into()),
        ..Default::default()
    };
    assert_eq!(store.list(&all, &r1).await.unwrap().total, 3);
    let big = CaseFilter {
        min_amount_cents: Some(1_000),
        ..Default::default()
    };
    assert!(
        store
            .list(&all, &big)
            .await
            .unwrap()
            .cases
            .iter()
            .all(|c| c.amount_cents.unwrap() >= 1_000)
    );
    let page = store
        .list(&all, &CaseFilter::default().limit(2))
        .await
        .unwrap();
    assert_eq!((page.total, page.cases.len()), (5, 2), "paged");

    // A reviewer of district 420503 sees only its case, and nothing outside it even by id.
    let district = Scope {
        rules: None,
        region: Some("420503".into()),
    };
    let theirs = store.list(&district, &CaseFilter::default()).await.unwrap();
    assert_eq!(theirs.total, 1);
    assert_eq!(theirs.cases[0].subject, "H1");
    let b = store
        .list(
            &all,
            &CaseFilter {
                subject: Some("B".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .cases[0]
        .id
        .clone();
    assert!(matches!(
        store.get(&district, &b).await,
        Err(hedui_cases::Error::NoCase(_))
    ));
    let step = Step::to(State::Verifying).by("x").note("n");
    assert!(store.transition(&district, &b, &step).await.is_err());
    // A queue limited to dibao rules sees only those.
    let dibao = Scope {
        rules: Some(vec!["R5".into(), "R7".into()]),
        region: None,
    };
    assert_eq!(
        store
            .list(&dibao, &CaseFilter::default())
            .await
            .unwrap()
            .total,
        1
    );

    // Dispatch by region: configured teams by longest prefix, else the region's grid queue.
    let cfg = WorkflowConfig {
        dispatch: vec![
            hedui_cases::DispatchRule {
                region: "4205".into(),
                assignee: "yichang-office".into(),
            },
            hedui_cases::DispatchRule {
                region: "420503".into(),
                assignee: "wujiagang-grid".into(),
            },
        ],
        ..Default::default()
    };
    assert_eq!(cfg.assignee_for(Some("420503")), "wujiagang-grid");
    assert_eq!(cfg.assignee_for(Some("420502")), "yichang-office");
    assert_eq!(cfg.assignee_for(Some("110101")), "grid-110101");
    assert_eq!(cfg.assignee_for(None), "city-office");
    assert_eq!(store.dispatch_new(&district, "lead").await.unwrap(), 1);
    let h1 = store.get(&all, &theirs.cases[0].id).await.unwrap();
    assert_eq!(h1.case.state, State::Assigned);
    assert_eq!(h1.case.assignee.as_deref(), Some("grid-420503"));

    // Confirmed with the amount to recover, then recovered with amount and date.
    let id = h1.case.id.clone();
    store
        .transition(
            &all,
            &id,
            &Step::to(State::Verifying).by("rev").note("入户调查"),
        )
        .await
        .unwrap();
    assert!(
        store
            .transition(
                &all,
                &id,
                &Step::to(State::Confirmed).by("rev").note("car seen")
            )
            .await
            .is_err(),
        "confirming needs the amount"
    );
    assert!(
        store
            .transition(
                &all,
                &id,
                &Step::to(State::Rejected)
                    .by("rev")
                    .note("n")
                    .reason("made up")
            )
            .await
            .is_err(),
        "reasons come from the list"
    );
    // More than the ¥1.00 found needs a reason.
    let over = Step::to(State::Confirmed)
        .by("rev")
        .note("car seen")
        .amount_cents(99_999_900);
    let err = store
        .transition(&all, &id, &over)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("excess_reason"), "{err}");
    store
        .transition(
            &all,
            &id,
            &Step::to(State::Confirmed)
                .by("rev")
                .note("car seen")
                .amount_cents(150)
                .excess_reason("入户核实：违规期间比比对发现的长两个月"),
        )
        .await
        .unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let future = chrono::Utc::now().date_naive() + chrono::Duration::days(400);
    let dated = |cents: i64, on: chrono::NaiveDate| {
        Step::to(State::Recovered)
            .by("rev")
            .note("paid back")
            .amount_cents(cents)
            .on(on)
    };
    let err = store
        .transition(&all, &id, &dated(60, future))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("future"), "{err}");
    // A partial recovery: the case stays confirmed; recoveries add up; never past the amount.
    assert_eq!(
        store.transition(&all, &id, &dated(60, day)).await.unwrap(),
        State::Confirmed
    );
    let err = store
        .transition(&all, &id, &dated(91, day))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("remains"), "{err}");
    assert!(
        store
            .transition(
                &all,
                &id,
                &Step::to(State::Recovered)
                    .by("rev")
                    .note("paid back")
                    .amount_cents(90)
            )
            .await
            .is_err(),
        "recovering needs the date"
    );
    assert_eq!(
        store.transition(&all, &id, &dated(90, day)).await.unwrap(),
        State::Recovered
    );
    let done = store.get(&all, &id).await.unwrap();
    assert_eq!(done.case.confirmed_cents, Some(150));
    assert_eq!(done.case.recovered_cents, Some(150));
    assert_eq!(done.case.recovered_on.as_deref(), Some("2026-03-02"));
    let steps: Vec<&str> = done.history.iter().map(|e| e.to_state.as_str()).collect();
    assert_eq!(
        steps,
        [
            "new",
            "assigned",
            "verifying",
            "confirmed",
            "confirmed",
            "recovered"
        ]
    );
    assert_eq!(done.history[1].actor, "lead");
    assert_eq!(done.evidence[0]["dataset"], "pension_payments");

    // Deadlines: nothing is late today; in 31 days every open case is, and climbs one level.
    assert!(store.escalate(chrono::Utc::now()).await.unwrap().is_empty());
    let later = chrono::Utc::now() + chrono::Duration::days(31);
    let escalated = store.escalate(later).await.unwrap();
    assert_eq!(escalated.len(), 3, "B, A again and C; H1 is recovered");
    assert!(escalated.iter().all(|(_, level)| *level == 1));
    let b_now = store.get(&all, &b).await.unwrap();
    assert_eq!(b_now.case.level, 1);
    assert!(b_now.history.last().unwrap().note.contains("街道"));
    // Again immediately: the new deadline has not passed.
    assert!(store.escalate(later).await.unwrap().is_empty());

    let stats = store.stats(&all, None).await.unwrap();
    let r5 = stats
        .by_rule_region
        .iter()
        .find(|r| r.rule == "R5")
        .unwrap();
    assert_eq!((r5.cases, r5.recovered_cents), (1, 150));
    assert_eq!(stats.recovered_by_month, vec![("2026-03".to_string(), 150)]);
    assert_eq!(
        stats.by_state.iter().map(|(_, n)| n).sum::<i64>(),
        5,
        "every case is in one state"
    );
    let district_stats = store.stats(&district, None).await.unwrap();
    assert_eq!(district_stats.by_rule_region.len(), 1);
}

fn run_record(id: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        started_at: "2026-01-05T00:00:00Z".into(),
        lake_version: 1,
        rules: BTreeMap::from([("R1".into(), 1)]),
        params: BTreeMap::new(),
        hits: 0,
        hits_fingerprint: "x".into(),
        new_cases: 0,
        changed_since: None,
    }
}

/// The version continuous verification starts from is the newest a run verified the whole rule
/// set on: a run of one rule, or of another version of a rule, does not move it.
#[tokio::test]
async fn the_verified_version_needs_every_rule_of_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cases.db").display());
    let store = CaseStore::open(&url).await.unwrap();
    let set = |rules: &[(&str, u32)]| -> BTreeMap<String, u32> {
        rules.iter().map(|(r, v)| (r.to_string(), *v)).collect()
    };
    let both = set(&[("R1", 1), ("R2", 1)]);
    assert_eq!(store.verified_version(&both).await.unwrap(), None);
    for (id, version, rules) in [
        ("run-a", 3, both.clone()),
        ("run-b", 5, set(&[("R1", 1)])),
        ("run-c", 7, set(&[("R1", 1), ("R2", 2)])),
    ] {
        let mut run = RunRecord {
            lake_version: version,
            rules,
            ..run_record(id)
        };
        store
            .record_run(&mut run, &[], &hedui_cases::Coverage::default())
            .await
            .unwrap();
    }
    assert_eq!(store.verified_version(&both).await.unwrap(), Some(3));
    assert_eq!(
        store.verified_version(&set(&[("R1", 1)])).await.unwrap(),
        Some(7)
    );
    assert_eq!(
        store
            .verified_version(&set(&[("R1", 1), ("R2", 2)]))
            .await
            .unwrap(),
        Some(7)
    );
    assert_eq!(
        store.verified_version(&set(&[("R3", 1)])).await.unwrap(),
        None
    );
}

/// A run brings an open case's evidence up to date when its hit grew, and marks it when the
/// hit is gone, but only for the subjects it evaluated; found again, the mark goes.
#[tokio::test]
async fn open_cases_follow_their_hits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cases.db").display());
    let store = CaseStore::open(&url).await.unwrap();
    let all = hedui_cases::Coverage::all(["R1".to_string()]);
    store
        .record_run(
            &mut run_record("run-1"),
            &[hit("R1", "A", "e1"), hit("R1", "B", "e2")],
            &all,
        )
        .await
        .unwrap();
    let mut grown = hit("R1", "A", "e1-more");
    grown.months.push("2025-06".into());
    grown.amount_cents = Some(900_000);
    let only_a = hedui_cases::Coverage {
        rules: vec![("R1".into(), Some(["A".to_string()].into_iter().collect()))],
    };
    let raised = store
        .record_run(&mut run_record("run-2"), &[grown], &only_a)
        .await
        .unwrap();
    assert_eq!((raised.new, raised.updated, raised.gone), (0, 1, 0));
    let cases = store.cases().await.unwrap();
    let a = cases.iter().find(|c| c.subject == "A").unwrap();
    assert_eq!(a.months.len(), 3);
    assert_eq!(a.amount_cents, Some(900_000));
    assert_eq!(cases.len(), 2, "an updated hit is the same case");

    // B's hit is gone, but this run evaluated only A: B is not marked.
    let raised = store
        .record_run(&mut run_record("run-3"), &[], &only_a)
        .await
        .unwrap();
    assert_eq!(raised.gone, 1);
    let cases = store.cases().await.unwrap();
    assert_eq!(
        cases
            .iter()
            .find(|c| c.subject == "A")
            .unwrap()
            .gone_run
            .as_deref(),
        Some("run-3")
    );
    assert!(
        cases
            .iter()
            .find(|c| c.subject == "B")
            .unwrap()
            .gone_run
            .is_none()
    );
    let raised = store
        .record_run(&mut run_record("run-4"), &[hit("R1", "A", "e1-more")], &all)
        .await
        .unwrap();
    assert_eq!(raised.gone, 1, "B is gone in a full run");
    let cases = store.cases().await.unwrap();
    assert!(
        cases
            .iter()
            .find(|c| c.subject == "A")
            .unwrap()
            .gone_run
            .is_none(),
        "found again"
    );
    assert_eq!(
        cases
            .iter()
            .find(|c| c.subject == "B")
            .unwrap()
            .gone_run
            .as_deref(),
        Some("run-4")
    );
}

/// Kept hits move on only from the version a run started from: a run that started from hits
/// another run has since moved on drops them (to be kept again by the next full run) rather
/// than mixing two runs' work.
#[tokio::test]
async fn kept_hits_move_on_only_from_the_version_a_run_started_from() {
    use hedui_cases::{Coverage, HitsUpdate, RuleHits};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cases.db").display());
    let store = CaseStore::open(&url).await.unwrap();
    let update = |from: Option<u64>, subject: &str| HitsUpdate {
        rules: vec![RuleHits {
            rule: "R1".into(),
            rule_version: 1,
            params: "{}".into(),
            from,
            subjects: vec![(subject.into(), Some(format!("state of {subject}")))],
        }],
        ..HitsUpdate::default()
    };
    let record = |id: &str, version: u64, kept: HitsUpdate| {
        let store = &store;
        let id = id.to_string();
        async move {
            let mut run = run_record(&id);
            run.lake_version = version;
            store
                .record_run_keeping(&mut run, &[], &Coverage::default(), &kept)
                .await
                .unwrap();
        }
    };
    record("run-full", 3, update(None, "A")).await;
    assert_eq!(store.kept_hits().await.unwrap()["R1"].lake_version, 3);
    // From 3 to 5: A's hit stays, B's is added.
    record("run-inc", 5, update(Some(3), "B")).await;
    assert_eq!(store.kept_hits().await.unwrap()["R1"].lake_version, 5);
    let held = store.kept_hits_of("R1", &["A", "B"]).await.unwrap();
    assert_eq!(held.len(), 2, "{held:?}");
    // A run that started from 3 again, after the kept hits moved on to 5: dropped.
    record("run-late", 6, update(Some(3), "C")).await;
    assert!(
        !store.kept_hits().await.unwrap().contains_key("R1"),
        "a run from a version the kept hits had left moved them on"
    );
}
