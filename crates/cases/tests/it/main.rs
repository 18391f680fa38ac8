//! The case store on both of its databases: SQLite (embedded default) and PostgreSQL (this
//! machine's server, each run in a schema of its own).

use std::collections::BTreeMap;

use hedui_cases::{CaseStore, NewHit, Raised, RunRecord, State};

fn hit(rule: &str, subject: &str, fingerprint: &str) -> NewHit {
    NewHit {
        rule: rule.into(),
        subject: subject.into(),
        months: vec!["2025-04".into(), "2025-05".into()],
        amount_cents: Some(600_000),
        evidence: serde_json::json!([{"dataset": "pension_payments"}]),
        evidence_fingerprint: fingerprint.into(),
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
    };
    store.record_run(&mut run, &[]).await.unwrap();
    assert_eq!(store.run("run-1").await.unwrap(), run);
    assert!(store.run("run-9").await.is_err());

    let hits = [hit("R1", "A", "e1"), hit("R1", "B", "e2")];
    assert_eq!(
        store.raise("run-1", &hits).await.unwrap(),
        Raised {
            new: 2,
            already_open: 0,
            suppressed: 0
        }
    );
    // The same hits again: their cases are open, nothing new.
    assert_eq!(
        store.raise("run-2", &hits).await.unwrap(),
        Raised {
            new: 0,
            already_open: 2,
            suppressed: 0
        }
    );

    let cases = store.cases().await.unwrap();
    let a = cases.iter().find(|c| c.subject == "A").unwrap().id.clone();
    assert_eq!(
        cases.iter().find(|c| c.subject == "A").unwrap().last_run,
        "run-2"
    );
    // A reviewer finds A a false positive.
    assert!(
        store
            .transition(&a, State::Confirmed, "rev", "looked", None, None)
            .await
            .is_err(),
        "new cannot jump to confirmed"
    );
    store
        .transition(&a, State::Assigned, "lead", "to the 西陵 grid", None, None)
        .await
        .unwrap();
    store
        .transition(&a, State::Verifying, "rev", "home visit booked", None, None)
        .await
        .unwrap();
    assert!(
        store
            .transition(&a, State::Rejected, "rev", "seen alive", None, None)
            .await
            .is_err(),
        "a reason is required"
    );
    assert!(
        store
            .transition(
                &a,
                State::Rejected,
                "rev",
                "",
                Some("identity mix-up"),
                None
            )
            .await
            .is_err(),
        "a note is required"
    );
    store
        .transition(
            &a,
            State::Rejected,
            "rev",
            "seen alive",
            Some("death record of a namesake"),
            None,
        )
        .await
        .unwrap();

    // Unchanged evidence: the rejected hit stays down; B is still open.
    assert_eq!(
        store.raise("run-3", &hits).await.unwrap(),
        Raised {
            new: 0,
            already_open: 1,
            suppressed: 1
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
            suppressed: 0
        }
    );
    let cases = store.cases().await.unwrap();
    assert_eq!(cases.iter().filter(|c| c.subject == "A").count(), 2);
    let rejected = cases.iter().find(|c| c.id == a).unwrap();
    assert_eq!(rejected.state, State::Rejected);
    assert_eq!(
        rejected.reject_reason.as_deref(),
        Some("death record of a namesake")
    );
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cases.db").display());
    exercise(&CaseStore::open(&url).await.unwrap()).await;
    // Reopening keeps everything.
    let again = CaseStore::open(&url).await.unwrap();
    assert_eq!(again.cases().await.unwrap().len(), 3);
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
