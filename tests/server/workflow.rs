//! The case workflow through the API, on a generated city whose rules have run: who sees which
//! cases, filters, assignment by region, every step with what it needs, the history, the audit
//! trail, and escalation of late cases.

use serde_json::{Value, json};

use super::*;

fn ids(page: &Value) -> Vec<String> {
    page["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn rules_of(page: &Value) -> std::collections::BTreeSet<String> {
    page["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rule_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn reviewers_work_their_cases_through_every_step() {
    let srv = start_checked(None);
    let reviewer = token(&srv.lake, "reviewer", Some(CITY));
    let dibao = token(&srv.lake, "dibao_reviewer", Some(CITY));
    let auditor = token(&srv.lake, "auditor", None);
    let analyst = token(&srv.lake, "analyst", None);
    let connector = token(&srv.lake, "connector", None);

    // Each reviewer sees the rules of their queue.
    let (s, mine) = call(&srv, "GET", "/api/v1/cases?limit=1000", &reviewer, None);
    assert_eq!(s, 200, "{mine}");
    let social: Vec<&str> = vec!["R1", "R2", "R3", "R4", "R6"];
    assert_eq!(
        rules_of(&mine),
        social.iter().map(|s| s.to_string()).collect(),
        "social-security reviewers work R1-R4 and R6"
    );
    let (_, theirs) = call(&srv, "GET", "/api/v1/cases?limit=1000", &dibao, None);
    assert_eq!(
        rules_of(&theirs),
        ["R5", "R7"].iter().map(|s| s.to_string()).collect()
    );
    // Every planted hit of those rules is a case in the queue.
    let truth = city().truth();
    let planted = |rules: &[&str]| -> i64 {
        rules
            .iter()
            .map(|r| {
                truth["rules"][r]["hits"]
                    .as_array()
                    .map_or(0, |h| h.len() as i64)
            })
            .sum()
    };
    assert_eq!(mine["total"].as_i64().unwrap(), planted(&social));
    assert_eq!(theirs["total"].as_i64().unwrap(), planted(&["R5", "R7"]));
    // Analysts get figures, not cases; connectors neither.
    assert_eq!(call(&srv, "GET", "/api/v1/cases", &analyst, None).0, 403);
    assert_eq!(
        call(&srv, "GET", "/api/v1/cases/stats", &analyst, None).0,
        200
    );
    assert_eq!(
        call(&srv, "GET", "/api/v1/cases/stats", &connector, None).0,
        403
    );

    // Filters: a rule, an amount, a region.
    let (_, r1) = call(
        &srv,
        "GET",
        "/api/v1/cases?rule=R1&limit=1000",
        &reviewer,
        None,
    );
    assert!(r1["total"].as_i64().unwrap() > 0);
    assert_eq!(rules_of(&r1).len(), 1);
    let (_, big) = call(
        &srv,
        "GET",
        "/api/v1/cases?min_amount=3000&limit=1000",
        &reviewer,
        None,
    );
    assert!(
        big["cases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["amount_cents"].as_i64().unwrap() >= 300_000)
    );
    assert!(big["total"].as_i64() < mine["total"].as_i64());
    let region = mine["cases"][0]["region"].as_str().unwrap().to_string();
    let (_, here) = call(
        &srv,
        "GET",
        &format!("/api/v1/cases?region={region}&limit=1000"),
        &reviewer,
        None,
    );
    assert!(
        here["cases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["region"] == region.as_str())
    );
    assert_eq!(
        call(
            &srv,
            "GET",
            "/api/v1/cases?min_amount=lots",
            &reviewer,
            None
        )
        .0,
        400
    );

    // A reviewer of that district sees only its cases; others' are "no such case".
    let local = token(&srv.lake, "reviewer", Some(&region));
    let (_, local_page) = call(&srv, "GET", "/api/v1/cases?limit=1000", &local, None);
    assert_eq!(local_page["total"], here["total"]);
    let elsewhere = mine["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["region"] != region.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        call(
            &srv,
            "GET",
            &format!("/api/v1/cases/{elsewhere}"),
            &local,
            None
        )
        .0,
        404
    );

    // One R1 case from new to recovered.
    let id = ids(&r1)[0].clone();
    let path = format!("/api/v1/cases/{id}");
    let (s, case) = call(&srv, "GET", &path, &reviewer, None);
    assert_eq!(s, 200);
    assert_eq!(case["state"], "new");
    let evidence = case["evidence"].as_array().unwrap();
    assert!(evidence.iter().any(|e| e["dataset"] == "pension_payments"));
    assert!(
        evidence
            .iter()
            .all(|e| e["source"].as_str().is_some_and(|s| !s.is_empty()) && !e["as_of"].is_null()),
        "every evidence row names its source file and as-of date"
    );
    assert!(case["rule"]["legal_basis"].as_str().unwrap().len() > 4);

    let step = |body: Value| {
        call(
            &srv,
            "POST",
            &format!("{path}/transition"),
            &reviewer,
            Some(body),
        )
    };
    // By region: to the subject's grid queue.
    let (s, assigned) = call(
        &srv,
        "POST",
        &format!("{path}/assign"),
        &reviewer,
        Some(json!({})),
    );
    assert_eq!(s, 200, "{assigned}");
    assert_eq!(assigned["state"], "assigned");
    assert_eq!(
        assigned["assignee"].as_str().unwrap(),
        format!("grid-{}", case["region"].as_str().unwrap())
    );
    // By hand, to a person.
    let (s, by_hand) = call(
        &srv,
        "POST",
        &format!("{path}/assign"),
        &reviewer,
        Some(json!({"assignee": "wang.li", "note": "熟悉该社区"})),
    );
    assert_eq!(s, 200, "{by_hand}");
    assert_eq!(by_hand["assignee"], "wang.li");
    assert_eq!(
        step(json!({"to": "verifying", "note": ""})).0,
        422,
        "a note is required"
    );
    assert_eq!(
        step(json!({"to": "recovered", "note": "x", "amount": "1", "on": "2026-01-01"})).0,
        409,
        "assigned cannot jump to recovered"
    );
    assert_eq!(
        step(json!({"to": "verifying", "note": "入户调查已预约"})).0,
        200
    );
    assert_eq!(
        step(json!({"to": "confirmed", "note": "家属承认冒领"})).0,
        422,
        "confirming needs the amount to recover"
    );
    let (s, confirmed) =
        step(json!({"to": "confirmed", "note": "家属承认冒领", "amount": "1234.50"}));
    assert_eq!(s, 200, "{confirmed}");
    assert_eq!(confirmed["confirmed_cents"], 123_450);
    assert_eq!(
        step(json!({"to": "recovered", "note": "已退回", "amount": "1234.50"})).0,
        422,
        "recovering needs the date"
    );
    let (s, done) = step(
        json!({"to": "recovered", "note": "已退回财政专户", "amount": "1234.50", "on": "2026-11-20"}),
    );
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["recovered_cents"], 123_450);
    assert_eq!(done["recovered_on"], "2026-11-20");
    let history: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "new",
            "assigned",
            "assigned",
            "verifying",
            "confirmed",
            "recovered"
        ]
    );
    assert!(
        done["history"]
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
            .all(|e| e["actor"].as_str().unwrap().starts_with("reviewer@"))
    );

    // A false positive: rejected with a reason from the list only.
    let other = ids(&r1)[1].clone();
    let opath = format!("/api/v1/cases/{other}/transition");
    assert_eq!(
        call(
            &srv,
            "POST",
            &opath,
            &reviewer,
            Some(json!({"to": "verifying", "note": "核查"}))
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &srv,
            "POST",
            &opath,
            &reviewer,
            Some(json!({"to": "rejected", "note": "n", "reason": "felt like it"}))
        )
        .0,
        422
    );
    let (s, rejected) = call(
        &srv,
        "POST",
        &opath,
        &reviewer,
        Some(
            json!({"to": "rejected", "note": "死亡记录为同名他人", "reason": "identity_mismatch"}),
        ),
    );
    assert_eq!(s, 200);
    assert_eq!(rejected["reject_reason"], "identity_mismatch");

    // Auditors read, never change; the dibao queue cannot touch social-security cases.
    assert_eq!(call(&srv, "GET", &path, &auditor, None).0, 200);
    assert_eq!(
        call(
            &srv,
            "POST",
            &format!("{path}/transition"),
            &auditor,
            Some(json!({"to": "closed", "note": "x"}))
        )
        .0,
        403
    );
    assert_eq!(call(&srv, "GET", &path, &dibao, None).0, 404);

    // Dispatch assigns every remaining new case in the caller's scope.
    let (s, dispatched) = call(&srv, "POST", "/api/v1/cases/dispatch", &dibao, None);
    assert_eq!(s, 200);
    assert_eq!(dispatched["assigned"], theirs["total"]);
    let (_, still_new) = call(&srv, "GET", "/api/v1/cases?state=new", &dibao, None);
    assert_eq!(still_new["total"], 0);

    // The figures see the recovery: exact for those who read cases (an auditor); for those who
    // see figures only (an analyst), with noise and its error bars, never the exact amount, and
    // each look spends their privacy budget.
    let (_, stats) = call(&srv, "GET", "/api/v1/cases/stats", &auditor, None);
    let recovered: i64 = stats["by_rule_region"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recovered_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(recovered, 123_450);
    assert_eq!(stats["recovered_by_month"][0], json!(["2026-11", 123_450]));
    assert!(stats["privacy"].is_null());
    let (_, noisy) = call(&srv, "GET", "/api/v1/cases/stats", &analyst, None);
    let p = &noisy["privacy"];
    assert!(p["epsilon"].as_f64().unwrap() > 0.0, "{noisy}");
    assert!(p["cases_error_95"].as_f64().unwrap() > 0.0);
    let (_, again) = call(&srv, "GET", "/api/v1/cases/stats", &analyst, None);
    assert!(
        again["privacy"]["spent"].as_f64().unwrap() > p["spent"].as_f64().unwrap(),
        "the budget is spent: {again}"
    );
    let noisy_recovered: Vec<&Value> = noisy["recovered_by_month"]
        .as_array()
        .unwrap()
        .iter()
        .chain(again["recovered_by_month"].as_array().unwrap())
        .collect();
    assert!(
        noisy_recovered.iter().all(|m| m[1] != json!(123_450)),
        "an exact figure reached a figures-only role: {noisy_recovered:?}"
    );
    // Figures-only cells under the threshold are left out, not shown exactly.
    for r in noisy["by_rule_region"].as_array().unwrap() {
        assert!(r["cases"].as_i64().unwrap() >= 5, "{r}");
    }

    // Every change is in the audit log with who did it, refusals too.
    let entries = audit_entries(&srv);
    let steps: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "POST /api/v1/cases/{id}/transition")
        .filter(|e| e["statement"].as_str().unwrap_or("").contains(&id))
        .collect();
    assert!(steps.len() >= 6, "{}", steps.len());
    assert!(steps.iter().any(
        |e| e["statement"].as_str().unwrap().ends_with("-> recovered")
            && e["outcome"] == "ok"
            && e["actor"].as_str().unwrap().starts_with("reviewer@")
    ));
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "POST /api/v1/cases/{id}/transition"
                && e["outcome"] == "refused"
                && e["roles"][0] == "auditor")
    );
}

#[test]
fn late_cases_climb_a_level_with_a_new_deadline() {
    // Deadlines of zero days: every case is late a second after it is raised.
    let srv = start_checked(Some(
        "[cases.workflow]\ndefault_deadline_days = 0\nescalation_days = 3\n[cases.workflow.deadline_days]\nR5 = 60\n",
    ));
    let admin = token(&srv.lake, "admin", None);
    let reviewer = token(&srv.lake, "reviewer", Some(CITY));
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let (_, overdue) = call(
        &srv,
        "GET",
        "/api/v1/cases?overdue=true&limit=1000",
        &admin,
        None,
    );
    let late = overdue["total"].as_i64().unwrap();
    assert!(late > 0);
    assert!(!rules_of(&overdue).contains("R5"), "R5 has 60 days");
    assert!(overdue["cases"][0]["overdue"].as_bool().unwrap());

    assert_eq!(
        call(&srv, "POST", "/api/v1/cases/escalate", &reviewer, None).0,
        403
    );
    let (s, escalated) = call(&srv, "POST", "/api/v1/cases/escalate", &admin, None);
    assert_eq!(s, 200);
    assert_eq!(
        escalated["escalated"].as_array().unwrap().len() as i64,
        late
    );
    let id = escalated["escalated"][0][0].as_str().unwrap();
    let (_, case) = call(&srv, "GET", &format!("/api/v1/cases/{id}"), &admin, None);
    assert_eq!(case["level"], 1);
    assert_eq!(case["overdue"], false, "three more days at the next level");
    assert!(case["level_name"].as_str().unwrap().contains("街道"));
    let last = case["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "hedui");
    assert!(last["note"].as_str().unwrap().contains("升级"));
    // The level above sees what climbed to it.
    let (_, climbed) = call(
        &srv,
        "GET",
        "/api/v1/cases?min_level=1&limit=1000",
        &admin,
        None,
    );
    assert_eq!(climbed["total"].as_i64().unwrap(), late);
    // Not again until the new deadline passes.
    let (_, again) = call(&srv, "POST", "/api/v1/cases/escalate", &admin, None);
    assert_eq!(again["escalated"].as_array().unwrap().len(), 0);
    let (_, wf) = call(&srv, "GET", "/api/v1/workflow", &admin, None);
    let r5 = wf["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "R5")
        .unwrap()
        .clone();
    assert_eq!(r5["deadline_days"], 60);
}
