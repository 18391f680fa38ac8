//! The endpoints beside SQL read through the same policies: household verification checks every
//! member, the person check shows only the rules whose datasets the caller may read, and a token
//! without the claims its role's policy needs gets nothing anywhere.

use super::*;

#[test]
fn side_doors_hold_the_same_scopes() {
    let srv = start_checked(None);
    let t = truth(&srv, DISTRICT);

    // A reviewer's token without a region claim: nothing on any interface.
    for role in ["reviewer", "dibao_reviewer"] {
        let claimless = token(&srv.lake, role, None);
        for via in EVERY_INTERFACE {
            assert!(
                ask(
                    &srv,
                    via,
                    &claimless,
                    None,
                    "SELECT CAST(count(*) AS VARCHAR) FROM persons"
                )
                .is_err(),
                "{role} {via:?}"
            );
        }
        let (s, _) = call(&srv, "GET", "/api/v1/cases", &claimless, None);
        assert_eq!(s, 403, "{role}: cases");
        let (s, _) = call(&srv, "GET", "/api/v1/cases/stats", &claimless, None);
        assert_eq!(s, 403, "{role}: case figures");
        let (s, _) = call(
            &srv,
            "GET",
            &format!(
                "/api/v1/persons/{}/check?purpose=CASE-2026-0011",
                t.inside_id
            ),
            &claimless,
            None,
        );
        assert!(s == 403 || s == 404, "{role}: person check {s}");
        let (s, _) = call(
            &srv,
            "POST",
            "/api/v1/households/verify",
            &claimless,
            Some(json!({"members": [t.inside_id], "authorisation": "SQ-2026-9"})),
        );
        assert_eq!(s, 403, "{role}: household verification");
    }

    // A household with a member from another region is not verified by the district's reviewer.
    let dibao = token(&srv.lake, "dibao_reviewer", Some(DISTRICT));
    let (s, body) = call(
        &srv,
        "POST",
        "/api/v1/households/verify",
        &dibao,
        Some(json!({"members": [t.inside_id, t.outside_id], "authorisation": "SQ-2026-10"})),
    );
    assert_eq!(s, 403, "{body}");
    assert!(
        secrets_in(&[body.to_string()], &t.outside).is_empty(),
        "{body}"
    );

    // The person check shows only rules over datasets the caller is granted: prison terms
    // (R4, incarcerations) for social-security reviewers, not for dibao reviewers.
    let rules_for = |token: &str| -> Vec<String> {
        let (s, body) = call(
            &srv,
            "GET",
            &format!(
                "/api/v1/persons/{}/check?purpose=CASE-2026-0012",
                t.inside_id
            ),
            token,
            None,
        );
        assert_eq!(s, 200, "{body}");
        body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rule"].as_str().unwrap().to_string())
            .collect()
    };
    let reviewer = token(&srv.lake, "reviewer", Some(DISTRICT));
    assert!(rules_for(&reviewer).contains(&"R4".to_string()));
    let dibao_rules = rules_for(&dibao);
    assert!(!dibao_rules.contains(&"R4".to_string()), "{dibao_rules:?}");
}
