//! Aggregate-only roles against differencing and repetition: every answer carries fresh noise
//! and spends the caller's privacy budget on whatever interface it is asked, and a spent budget
//! refuses everywhere. And who may read cases is the configuration's, not the code's.

use super::*;

const CONFIG: &str = r#"
[access.privacy]
budget = 4.0
epsilon_per_query = 1.0

# Analysts read cases here; auditors get no case at all.
[[access.cases]]
roles = ["admin"]
access = "act"
rules = "all"
[[access.cases]]
roles = ["analyst"]
access = "read"
rules = "all"
"#;

#[test]
fn answers_are_noisy_and_spend_a_budget_on_every_interface() {
    let srv = start_checked(Some(CONFIG));
    let stat = token_as(&srv.lake, "statistician", "stat-budget");
    let sql = "SELECT CAST(count(*) AS VARCHAR) AS n FROM persons";
    let mut answers = Vec::new();
    for via in EVERY_INTERFACE {
        let cells = ask(&srv, via, &stat, None, sql).unwrap_or_else(|e| panic!("{via:?}: {e}"));
        answers.push(cells);
    }
    let distinct: HashSet<&Vec<String>> = answers.iter().collect();
    assert!(
        distinct.len() > 1,
        "four answers to one question were all the same: {answers:?}"
    );
    // Four answers spent the budget of four: the fifth is refused whatever the interface.
    let ledger = std::fs::read_to_string(srv.lake.parent().unwrap().join("privacy-budget.jsonl"))
        .unwrap_or_default();
    assert_eq!(ledger.lines().count(), 4, "{ledger}");
    for via in EVERY_INTERFACE {
        let e = ask(&srv, via, &stat, None, sql)
            .map(|a| format!("{via:?} answered {a:?}"))
            .unwrap_err();
        assert!(e.contains("privacy budget is spent"), "{via:?}: {e}");
    }
    // The case figures draw on the same budget.
    let (s, body) = call(&srv, "GET", "/api/v1/cases/stats", &stat, None);
    assert_eq!(s, 403, "{body}");
    // Each spend is in the audit log with its answer; the refusals too.
    let entries = audit_entries(&srv);
    let spent = entries
        .iter()
        .filter(|e| e["actor"] == "stat-budget" && e["outcome"] == "ok")
        .filter(|e| {
            e["policies"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p.as_str().unwrap_or("").contains("ε=1 spent"))
            })
        })
        .count();
    assert_eq!(spent, 4, "every answer's spend is audited");
    assert!(entries.iter().any(|e| e["actor"] == "stat-budget"
        && e["outcome"] == "refused"
        && e["reason"].as_str().unwrap_or("").contains("budget")));
    // A colleague has a budget of their own.
    let other = token_as(&srv.lake, "statistician", "stat-other");
    assert!(ask(&srv, Via::Http, &other, None, sql).is_ok());

    // Case access follows `[[access.cases]]`: analysts read cases, auditors have none.
    let analyst = token(&srv.lake, "analyst", None);
    let (s, page) = call(&srv, "GET", "/api/v1/cases", &analyst, None);
    assert_eq!(s, 200, "{page}");
    assert!(page["total"].as_i64().unwrap() > 0);
    let case = page["cases"][0]["id"].as_str().unwrap();
    let (s, _) = call(
        &srv,
        "POST",
        &format!("/api/v1/cases/{case}/transition"),
        &analyst,
        Some(json!({"to": "assigned", "note": "x", "assignee": "someone"})),
    );
    assert_eq!(s, 403, "reading is not acting");
    let auditor = token(&srv.lake, "auditor", None);
    assert_eq!(call(&srv, "GET", "/api/v1/cases", &auditor, None).0, 403);
    assert_eq!(
        call(&srv, "GET", "/api/v1/cases/stats", &auditor, None).0,
        403
    );
}
