use hedui_auth::Role;
use hedui_policy::{AccessConfig, Error};

use crate::common::*;

async fn refused(role: Role, region: Option<&str>, purpose: Option<&str>, sql: &str) -> String {
    let f = fixture().await;
    match rows(f, &who(role, region), purpose, sql).await {
        Err(Error::Refused(m)) => m,
        other => panic!("{sql}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn writing_creating_and_settings_are_refused_for_every_role() {
    for role in [Role::Admin, Role::Analyst] {
        for sql in [
            "INSERT INTO persons (person_id) VALUES ('x')",
            "CREATE TABLE t AS SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "DROP TABLE persons",
            "COPY (SELECT 1) TO '/tmp/hedui-escape.csv'",
            "SET datafusion.execution.batch_size = 1",
            "CREATE EXTERNAL TABLE f STORED AS CSV LOCATION '/etc/passwd'",
        ] {
            let m = refused(role, None, None, sql).await;
            assert!(m.contains("read-only"), "{role} {sql}: {m}");
        }
    }
    assert!(!std::path::Path::new("/tmp/hedui-escape.csv").exists());
}

#[tokio::test]
async fn file_paths_cannot_be_read_through_sql() {
    let f = fixture().await;
    for sql in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM 'lake/persons/x.parquet'",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
    ] {
        let err = rows(f, &who(Role::Admin, None), None, sql)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Query(_) | Error::Refused(_)),
            "{sql}: {err:?}"
        );
    }
    // EXPLAIN would print storage paths.
    let m = refused(Role::Analyst, None, None, "EXPLAIN SELECT * FROM persons").await;
    assert!(m.contains("EXPLAIN"), "{m}");
    // ... and works for administrators: the plan's lines, with the policy's view inside.
    let plan = rows(
        f,
        &who(Role::Admin, None),
        None,
        "EXPLAIN SELECT count(*) FROM persons",
    )
    .await
    .unwrap();
    let text = strings(&plan, 1)
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("Aggregate"), "{text}");
    // No engine setting shows where the data lives.
    let settings = rows(
        f,
        &who(Role::Analyst, None),
        None,
        "SELECT name, value FROM information_schema.df_settings",
    )
    .await
    .unwrap();
    for v in strings(&settings, 1).into_iter().flatten() {
        assert!(
            !v.contains("/tmp") && !v.contains("lake"),
            "setting shows a path: {v}"
        );
    }
}

#[tokio::test]
async fn person_lookups_need_a_purpose() {
    for sql in [
        "SELECT * FROM persons WHERE person_id = '420502199001011234'",
        "SELECT * FROM pension_payments WHERE person_id_key = 42050219900101123",
        "SELECT * FROM persons WHERE name LIKE '张%'",
        "SELECT count(*) FROM persons WHERE starts_with(person_id, '420502')",
        "SELECT * FROM persons WHERE person_id_key IN (SELECT person_id_key FROM pension_payments WHERE person_id = '420502199001011234')",
    ] {
        let m = refused(Role::Reviewer, Some(DISTRICT), None, sql).await;
        assert!(m.contains("purpose"), "{sql}: {m}");
    }
    let household = "SELECT * FROM dibao_members WHERE household_no IN ('DB001', 'DB002')";
    let m = refused(Role::DibaoReviewer, Some(DISTRICT), None, household).await;
    assert!(m.contains("purpose"), "{m}");
    let f = fixture().await;
    // With a purpose it runs; aggregate questions never needed one.
    rows(
        f,
        &who(Role::Reviewer, Some(DISTRICT)),
        Some("CASE-2025-0042"),
        "SELECT * FROM persons WHERE person_id = '420502199001011234'",
    )
    .await
    .unwrap();
    rows(
        f,
        &who(Role::Analyst, None),
        None,
        "SELECT region_code, count(*) FROM persons GROUP BY region_code",
    )
    .await
    .unwrap();
    // A purpose must look like a reference.
    let err = f
        .policy
        .session(&who(Role::Reviewer, Some(DISTRICT)), Some("x"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Refused(m) if m.contains("purpose")));
}

#[tokio::test]
async fn roles_see_only_their_datasets() {
    let m = refused(Role::Auditor, None, None, "SELECT count(*) FROM persons").await;
    assert!(m.contains("persons") && m.contains("auditor"), "{m}");
    refused(
        Role::Connector,
        None,
        None,
        "SELECT count(*) FROM pension_payments",
    )
    .await;
    refused(Role::Analyst, None, None, "SELECT count(*) FROM quarantine").await;
    let m = refused(Role::Analyst, None, None, "SELECT count(*) FROM audit_log").await;
    assert!(m.contains("audit_log"), "{m}");
    let f = fixture().await;
    // information_schema lists what the caller may read, nothing else.
    let tables = strings(
        &rows(
            f,
            &who(Role::Auditor, None),
            None,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .await
        .unwrap(),
        0,
    );
    assert_eq!(tables, vec![Some("audit_log".to_string())]);
}

#[tokio::test]
async fn results_stop_at_the_row_limit_and_slow_queries_at_the_time_limit() {
    let mut config = AccessConfig::default();
    config.limits.max_rows = 7;
    config.limits.timeout = "1s".into();
    let f = build(config).await;
    let session = f
        .policy
        .session(&who(Role::Analyst, None), None)
        .await
        .unwrap();
    let (_, batches, _, truncated) = session.run("SELECT * FROM persons").await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 7);
    assert!(truncated);
    let started = std::time::Instant::now();
    let err = session
        .run(
            "SELECT count(*) FROM contributions a, contributions b, contributions c \
             WHERE a.base + b.base + c.base > 0",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err:?}");
    assert!(started.elapsed().as_secs() < 10, "stopped near the limit");
}

#[tokio::test]
async fn a_query_beyond_its_memory_limit_is_stopped_with_a_clear_error() {
    let mut config = AccessConfig::default();
    config.limits.memory = "256KiB".into();
    let f = build(config).await;
    let session = f
        .policy
        .session(&who(Role::Analyst, None), None)
        .await
        .unwrap();
    let err = session
        .run("SELECT array_agg(concat(c.employer_name, c.person_id)) FROM contributions c")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Limit(m) if m.contains("memory")),
        "{err:?}"
    );
    // A small query still runs in the same session.
    session.run("SELECT count(*) FROM persons").await.unwrap();
}

#[tokio::test]
async fn values_doubled_through_a_chain_of_ctes_are_stopped_at_the_memory_limit() {
    let mut config = AccessConfig::default();
    config.limits.memory = "64MiB".into();
    let f = build(config).await;
    let session = f
        .policy
        .session(&who(Role::Analyst, None), None)
        .await
        .unwrap();
    // Each step doubles every value: 40 steps would be a trillion times the names.
    let mut sql = String::from("WITH s0 AS (SELECT name AS v FROM persons)");
    for i in 1..=40 {
        sql.push_str(&format!(
            ", s{i} AS (SELECT concat(v, v) AS v FROM s{})",
            i - 1
        ));
    }
    sql.push_str(" SELECT max(length(v)) FROM s40");
    let started = std::time::Instant::now();
    let err = session.run(&sql).await.unwrap_err();
    assert!(
        matches!(&err, Error::Limit(m) if m.contains("memory")),
        "{err:?}"
    );
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    // Functions that grow a value by a factor the caller picks do not exist for callers.
    for sql in [
        "SELECT lpad('x', 2000000000)",
        "SELECT replace(name, 'a', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb') FROM persons",
        "SELECT regexp_replace(name, '.', 'bbbbbbbb', 'g') FROM persons",
    ] {
        let err = session.run(sql).await.unwrap_err();
        assert!(
            matches!(&err, Error::Query(m) if m.contains("nvalid function")),
            "{sql}: {err:?}"
        );
    }
    session.run("SELECT count(*) FROM persons").await.unwrap();
}
