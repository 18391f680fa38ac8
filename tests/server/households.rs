//! Household verification through the API: a household the generator planted as disqualified
//! (an R5 case) is found ineligible with the item that disqualifies it; every item names its
//! source and as-of date; the arithmetic adds up; no authorisation, no verification.

use serde_json::{Value, json};

use super::*;

#[test]
fn a_household_is_verified_against_every_source_with_its_authorisation() {
    let srv = start_checked(None);
    let dibao = token(&srv.lake, "dibao_reviewer", Some(CITY));
    // A household R5 flagged: its verification must find the same kind of item.
    let (_, r5) = call(
        &srv,
        "GET",
        "/api/v1/cases?rule=R5&limit=1000",
        &dibao,
        None,
    );
    let case = &r5["cases"][0];
    let household = case["subject"].as_str().unwrap();
    let members = household_members(&srv, household);
    assert!(!members.is_empty());
    let verify = |token: &str, body: Value| {
        call(&srv, "POST", "/api/v1/households/verify", token, Some(body))
    };

    // Refused without the signed authorisation's reference, and for the wrong roles.
    let (s, e) = verify(&dibao, json!({"members": members}));
    assert_eq!(s, 403);
    assert!(e["error"]["message"].as_str().unwrap().contains("授权"));
    for role in ["reviewer", "analyst", "statistician"] {
        let t = token(&srv.lake, role, None);
        assert_eq!(
            verify(&t, json!({"members": members, "authorisation": "SQ-1"})).0,
            403,
            "{role}"
        );
    }
    assert_eq!(
        verify(
            &dibao,
            json!({"members": ["12345"], "authorisation": "SQ-1"})
        )
        .0,
        400
    );

    let (s, report) = verify(
        &dibao,
        json!({"members": members, "authorisation": "SQ-2026-000123"}),
    );
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["authorisation"], "SQ-2026-000123");
    assert_eq!(report["size"].as_u64().unwrap() as usize, members.len());
    assert_eq!(report["window"].as_array().unwrap().len(), 6);
    // Every item with its source file and the source's as-of date.
    let mut items = 0;
    for m in report["members"].as_array().unwrap() {
        assert!(m["registered"].as_bool().unwrap());
        for item in m["income"]
            .as_array()
            .unwrap()
            .iter()
            .chain(m["assets"].as_array().unwrap())
        {
            items += 1;
            assert!(!item["row"]["source"].as_str().unwrap().is_empty());
            assert!(!item["row"]["as_of"].is_null());
        }
        // A member's monthly income is the window's income over its months.
        let sum: i64 = m["income"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["amount_cents"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(m["monthly_income_cents"].as_i64().unwrap(), sum / 6);
    }
    assert!(items > 0);
    let total: i64 = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["monthly_income_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(report["monthly_income_cents"].as_i64().unwrap(), total);
    assert_eq!(
        report["per_capita_cents"].as_i64().unwrap(),
        total / members.len() as i64
    );
    assert_eq!(report["line_cents"], 80_000);
    assert!(
        report["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| !s["as_of"].is_null()),
        "each source's as-of date"
    );
    // R5's finding, asked before admission: disqualified, with reasons; each reason is either the
    // income line or a disqualifying item in the report.
    let details = case["subject"].as_str().unwrap();
    assert_eq!(
        report["verdict"], "ineligible",
        "household {details}: {report}"
    );
    let reasons = report["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty());
    let disqualifying = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["assets"].as_array().unwrap().iter())
        .filter(|a| !a["disqualifies"].is_null())
        .count();
    let over_line = report["per_capita_cents"].as_i64() > report["line_cents"].as_i64();
    assert!(disqualifying > 0 || over_line);

    // The kept report prints again, for the reviewer and auditors, not for others.
    let id = report["id"].as_str().unwrap();
    let path = format!("/api/v1/households/verifications/{id}");
    let (s, again) = call(&srv, "GET", &path, &dibao, None);
    assert_eq!(s, 200);
    assert_eq!(again["verdict"], report["verdict"]);
    assert_eq!(again["members"], report["members"]);
    let auditor = token(&srv.lake, "auditor", None);
    assert_eq!(call(&srv, "GET", &path, &auditor, None).0, 200);
    let analyst = token(&srv.lake, "analyst", None);
    assert_eq!(call(&srv, "GET", &path, &analyst, None).0, 403);

    // A reviewer of another district verifies only applicants registered there.
    let applicant_region = report["members"][0]["region_code"].as_str().unwrap();
    let other = if applicant_region == "420502" {
        "420503"
    } else {
        "420502"
    };
    let local = token(&srv.lake, "dibao_reviewer", Some(other));
    assert_eq!(
        verify(&local, json!({"members": members, "authorisation": "SQ-9"})).0,
        403
    );
    assert_eq!(call(&srv, "GET", &path, &local, None).0, 404);

    // Audited with the authorisation as the purpose and every member's ID.
    let entries = audit_entries(&srv);
    let made = entries
        .iter()
        .find(|e| e["action"] == "POST /api/v1/households/verify" && e["outcome"] == "ok")
        .unwrap();
    assert_eq!(made["purpose"], "授权书 SQ-2026-000123");
    for m in &members {
        assert!(made["statement"].as_str().unwrap().contains(m.as_str()));
    }
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "POST /api/v1/households/verify" && e["outcome"] == "refused")
    );

    // A person no source knows is outside every region's registry: a reviewer of a region
    // cannot verify them (their session shows nothing of them); a city-wide one can, and
    // nothing disqualifies, pending the home visit.
    let stranger = json!({"members": ["11010519491231002X"], "authorisation": "SQ-7"});
    let (s, refused) = verify(&dibao, stranger.clone());
    assert_eq!(s, 403, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("not in the household registry of your region")
    );
    let admin = token(&srv.lake, "admin", None);
    let (s, report) = verify(&admin, stranger);
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["verdict"], "needs_review", "nobody can be counted");
    assert_eq!(report["per_capita_cents"], 0);
    assert_eq!(report["size"], 0);
    let m = &report["members"][0];
    assert_eq!(m["registered"], false);
    assert!(
        m["notes"][0]
            .as_str()
            .unwrap()
            .contains("not in the household registry")
    );
}

/// A household given with members who cannot be counted as given: one deceased, one the
/// registry does not know, one on another dibao household's roster. They are flagged with the
/// reason, left out of the size and the income, and the verdict is 需核实, not "nothing found".
#[test]
fn irregular_members_are_flagged_left_out_of_the_size_and_the_verdict_says_review() {
    let srv = start_checked(None);
    let admin = token(&srv.lake, "admin", None);
    let verify = |members: &[String]| verified(&srv, &admin, json!(members));
    let one = |sql: &str| -> String {
        run_ok(
            hedui()
                .args(["sql", "--format", "csv", "--lake"])
                .arg(&srv.lake)
                .arg(sql),
        )
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .to_string()
    };
    // A dibao household with nothing against it.
    let households = run_ok(
        hedui()
            .args(["sql", "--format", "csv", "--lake"])
            .arg(&srv.lake)
            .arg("SELECT household_no FROM dibao_households ORDER BY household_no LIMIT 40"),
    );
    let (household, members) = households
        .lines()
        .skip(1)
        .map(|h| (h.trim().to_string(), household_members(&srv, h.trim())))
        .find(|(_, m)| !m.is_empty() && verify(m)["verdict"] == "eligible")
        .expect("an eligible household");
    let deceased =
        one("SELECT person_id FROM persons WHERE status = 'deceased' ORDER BY person_id LIMIT 1");
    let elsewhere = one(&format!(
        "SELECT m.person_id FROM dibao_members m JOIN persons p ON m.person_id_key = p.person_id_key \
         WHERE m.household_no <> '{household}' AND p.status = 'active' ORDER BY m.person_id LIMIT 1"
    ));
    let unknown = "11010519491231002X".to_string();
    let mut given = members.clone();
    given.extend([deceased.clone(), unknown.clone(), elsewhere.clone()]);
    let report = verify(&given);
    assert_eq!(report["verdict"], "needs_review", "{report}");
    assert!(report["verdict_zh"].as_str().unwrap().contains("需核实"));
    assert_eq!(
        report["size"].as_u64().unwrap() as usize,
        members.len(),
        "only the regular members count"
    );
    let member = |id: &str| {
        report["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["person_id"] == id)
            .unwrap()
            .clone()
    };
    for (id, why) in [
        (&deceased, "已死亡"),
        (&unknown, "户籍中未找到"),
        (&elsewhere, "另一低保家庭"),
    ] {
        let m = member(id);
        assert_eq!(m["counted"], false, "{m}");
        assert!(m["irregular"].to_string().contains(why), "{m}");
        assert!(
            report["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains(why)),
            "{why} in {}",
            report["reasons"]
        );
    }
    for id in &members {
        assert_eq!(member(id)["counted"], true);
    }
    // The income is that of the counted members only.
    let counted_income: i64 = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["counted"] == true)
        .map(|m| m["monthly_income_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(
        report["monthly_income_cents"].as_i64().unwrap(),
        counted_income
    );
}

/// The generator's planted applications (a family plus members who died, moved away, are on
/// another dibao roster or are unknown to the registry): each irregular member is flagged for
/// the reason the generator knows, only the family is counted, and nothing reads "eligible".
#[test]
fn the_generators_mixed_households_are_verified_as_their_truth_says() {
    let srv = start_checked(None);
    let admin = token(&srv.lake, "admin", None);
    let truth = city().truth();
    let apps = truth["applications"].as_array().unwrap();
    assert!(!apps.is_empty(), "the generator plants mixed households");
    for app in apps {
        let report = verified(&srv, &admin, app["members"].clone());
        assert_ne!(report["verdict"], "eligible", "{}", report["reasons"]);
        let counted = app["counted"].as_array().unwrap();
        assert_eq!(report["size"].as_u64().unwrap() as usize, counted.len());
        for m in report["members"].as_array().unwrap() {
            let id = m["person_id"].as_str().unwrap();
            match app["irregular"][id].as_str() {
                None => assert_eq!(m["counted"], true, "{m}"),
                Some(kind) => {
                    let word = match kind {
                        "deceased" => "已死亡",
                        "unregistered" => "户籍中未找到",
                        "moved_out" => "迁出",
                        "other_roster" => "另一低保家庭",
                        other => panic!("unknown kind {other}"),
                    };
                    assert_eq!(m["counted"], false, "{m}");
                    assert!(m["irregular"].to_string().contains(word), "{kind}: {m}");
                }
            }
        }
    }
}

/// A verification that must succeed: its report.
fn verified(srv: &Server, token: &str, members: Value) -> Value {
    let body = json!({"members": members, "authorisation": "SQ-9"});
    let (s, report) = call(srv, "POST", "/api/v1/households/verify", token, Some(body));
    assert_eq!(s, 200, "{report}");
    report
}
