//! Statements of one shape (the same query for another person) are planned once and judged every
//! time: each caller gets exactly the answer and the verdict of the statement planned afresh.
//! A literal in parentheses is not taken out of its statement, so `person_id = ('…')` is the
//! same question planned the ordinary way (as is a statement with no literal to take out).

use hedui_auth::Role;
use hedui_policy::Error;

use crate::common::*;

/// Every column of the answer as text, or the error's kind and message; and whether the
/// statement was planned from its shape's template.
async fn ask(
    role: Role,
    region: Option<&str>,
    purpose: Option<&str>,
    sql: &str,
) -> (Result<Vec<Vec<Option<String>>>, String>, bool) {
    let f = fixture().await;
    let session = f.policy.session(&who(role, region), purpose).await.unwrap();
    let query = match session.plan(sql).await {
        Ok(q) => q,
        Err(e) => return (Err(describe(&e)), false),
    };
    let from_shape = query.info.from_shape;
    let mut stream = session.execute(query).await.unwrap();
    let mut batches = Vec::new();
    while let Some(b) = futures::StreamExt::next(&mut stream).await {
        match b {
            Ok(b) => batches.push(b),
            Err(e) => return (Err(describe(&e)), from_shape),
        }
    }
    let columns = batches.first().map_or(0, |b| b.num_columns());
    let answer = (0..columns).map(|c| strings(&batches, c)).collect();
    (Ok(answer), from_shape)
}

fn describe(e: &Error) -> String {
    let kind = match e {
        Error::Refused(_) => "refused",
        Error::Query(_) => "query",
        Error::Limit(_) => "limit",
        _ => "other",
    };
    format!("{kind}: {e}")
}

async fn some_persons() -> Vec<String> {
    let f = fixture().await;
    let batches = rows(
        f,
        &who(Role::Admin, None),
        Some("CASE-2025-0042"),
        "SELECT person_id FROM persons WHERE person_id IS NOT NULL ORDER BY person_id_key LIMIT 8",
    )
    .await
    .unwrap();
    strings(&batches, 0).into_iter().flatten().collect()
}

#[tokio::test]
async fn a_point_query_planned_from_its_shape_answers_as_one_planned_afresh() {
    let persons = some_persons().await;
    assert!(persons.len() >= 4);
    let callers = [
        (Role::Admin, None, Some("CASE-2025-0042")),
        (Role::Reviewer, Some(DISTRICT), Some("CASE-2025-0042")),
        (Role::Analyst, None, Some("CASE-2025-0042")),
        (Role::Analyst, None, None),
    ];
    for (role, region, purpose) in callers {
        for (i, id) in persons.iter().enumerate() {
            let columns = "person_id, name, sex, birth_date, region_code, household_no";
            let shaped = format!("SELECT {columns} FROM persons WHERE person_id = '{id}'");
            let afresh = format!("SELECT {columns} FROM persons WHERE person_id = ('{id}')");
            let (got, from_shape) = ask(role, region, purpose, &shaped).await;
            let (want, fresh) = ask(role, region, purpose, &afresh).await;
            assert!(!fresh, "a parenthesised literal stays in its statement");
            assert_eq!(got, want, "{role:?} {purpose:?}: {shaped}");
            if got.is_ok() && i > 0 {
                assert!(from_shape, "{role:?} asked the same shape again: {shaped}");
            }
        }
    }
}

#[tokio::test]
async fn a_shape_planned_for_one_caller_lends_no_verdict_to_another() {
    let persons = some_persons().await;
    let shaped =
        |id: &str| format!("SELECT name, birth_date FROM persons WHERE person_id = '{id}'");
    // Planned and answered for an administrator with a purpose ...
    let (answer, _) = ask(
        Role::Admin,
        None,
        Some("CASE-2025-0042"),
        &shaped(&persons[0]),
    )
    .await;
    assert!(answer.is_ok());
    // ... the same shape still needs a purpose from a reviewer, before and after the reviewer
    // has asked it with one.
    for purpose in [None, Some("CASE-2025-0042"), None] {
        let (answer, _) = ask(
            Role::Reviewer,
            Some(DISTRICT),
            purpose,
            &shaped(&persons[1]),
        )
        .await;
        match purpose {
            None => {
                let err = answer.unwrap_err();
                assert!(
                    err.starts_with("refused") && err.contains("purpose"),
                    "{err}"
                );
            }
            Some(_) => assert!(answer.is_ok(), "{answer:?}"),
        }
    }
    // A role that sees aggregates only has its statements rewritten (small cells suppressed)
    // and planned afresh, whatever was planned before.
    let count = |id: &str| format!("SELECT count(*) FROM persons WHERE region_code = '{id}'");
    let (answer, _) = ask(Role::Admin, None, Some("CASE-2025-0042"), &count(DISTRICT)).await;
    assert!(answer.is_ok());
    // (Its figures carry fresh noise each time: only that it is answered is compared.)
    let (answer, from_shape) = ask(Role::Statistician, None, None, &count(DISTRICT)).await;
    assert!(answer.is_ok() && !from_shape, "{answer:?}");
}

#[tokio::test]
async fn values_are_bound_as_their_column_s_type_or_get_the_errors_of_a_fresh_plan() {
    let admin = (Role::Admin, None, Some("CASE-2025-0042"));
    for value in ["1950-01-01", "1980-06-30", "not a date", "2025-13-45"] {
        let shaped = format!("SELECT count(*) FROM persons WHERE birth_date > '{value}'");
        let afresh = format!("SELECT count(*) FROM persons WHERE birth_date > ('{value}')");
        let (got, _) = ask(admin.0, admin.1, admin.2, &shaped).await;
        let (want, _) = ask(admin.0, admin.1, admin.2, &afresh).await;
        assert_eq!(got, want, "{shaped}");
    }
    let (answer, from_shape) = ask(
        admin.0,
        admin.1,
        admin.2,
        "SELECT count(*) FROM persons WHERE birth_date > '1990-01-01'",
    )
    .await;
    assert!(answer.is_ok() && from_shape, "{answer:?}");
    // A household number list of another length is another shape, and answers as planned afresh.
    let (got, _) = ask(
        admin.0,
        admin.1,
        admin.2,
        "SELECT count(*) FROM dibao_members WHERE household_no IN ('DB001', 'DB002', 'DB003')",
    )
    .await;
    let (want, _) = ask(
        admin.0,
        admin.1,
        admin.2,
        "SELECT count(*) FROM dibao_members WHERE household_no IN (('DB001'), 'DB002', 'DB003')",
    )
    .await;
    assert_eq!(got, want);
}
