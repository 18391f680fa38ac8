//! SQL attacks on every interface: rebuilding IDs, calling the policy's functions, reading
//! other regions through error text, singling persons out without a purpose, and aggregate roles
//! isolating persons.

use super::*;

#[test]
fn sql_attacks_fail_on_every_interface() {
    let srv = start_checked(None);
    let t = truth(&srv, DISTRICT);
    let analyst = token(&srv.lake, "analyst", None);
    let reviewer = token(&srv.lake, "reviewer", Some(DISTRICT));
    let statistician = token(&srv.lake, "statistician", None);
    let mut identifying = t.ids.clone();
    identifying.extend(t.keys.iter().cloned());
    identifying.extend(t.names.iter().cloned());

    for via in EVERY_INTERFACE {
        // The rebuild that worked on the old masks: region prefix, birth date, last four digits.
        let rebuild = "SELECT concat(substr(person_id, 1, 6), to_char(birth_date, '%Y%m%d'), \
                       substr(person_id, 15, 4)) AS id, CAST(person_id_key AS VARCHAR) AS k, \
                       person_id_raw AS raw, name FROM persons";
        let cells = ask(&srv, via, &analyst, None, rebuild).expect("the analyst may run it");
        assert!(cells.len() > 1000, "{via:?}: {} cells", cells.len());
        let found = secrets_in(&cells, &identifying);
        assert!(
            found.is_empty(),
            "{via:?} rebuilt {:?}",
            &found[..found.len().min(3)]
        );

        // The policy's functions are not there to call.
        for f in [
            "SELECT CAST(hedui_pseudonym(42050219500101123) AS VARCHAR)",
            "SELECT CAST(hedui_policy_pseudonym_key(42050219500101123) AS VARCHAR)",
        ] {
            let e = ask(&srv, via, &analyst, None, f).unwrap_err();
            assert!(!e.is_empty(), "{via:?} {f}");
        }

        // Another region's rows never reach an expression, so no error quotes them.
        for dataset in ["incarcerations", "persons", "pension_payments"] {
            let steer = format!(
                "SELECT CAST(count(*) AS VARCHAR) FROM {dataset} WHERE CAST(CASE WHEN _row > 1 \
                 THEN concat_ws('|', person_id, name) ELSE '1' END AS INT) = 1"
            );
            for purpose in [None, Some("CASE-2026-0009")] {
                match ask(&srv, via, &reviewer, purpose, &steer) {
                    Ok(cells) => assert!(secrets_in(&cells, &t.outside).is_empty()),
                    Err(e) => assert!(carries_no_data(&e), "{via:?} {dataset}: {e}"),
                }
            }
        }

        // Singling a person out in disguise needs a purpose.
        let id = &t.inside_id;
        for form in [
            format!("SELECT name FROM persons WHERE nullif(person_id, '{id}') IS NULL"),
            format!("SELECT name FROM persons WHERE person_id IN (SELECT '{id}')"),
            format!("SELECT name FROM persons WHERE person_id = (SELECT '{id}')"),
            format!("SELECT name FROM persons WHERE person_id IS NOT DISTINCT FROM '{id}'"),
            format!(
                "SELECT p.name FROM persons p JOIN (VALUES ('{id}')) v(x) ON p.person_id = v.x"
            ),
            format!("SELECT name FROM persons WHERE array_has(make_array('{id}'), person_id)"),
        ] {
            let e = ask(&srv, via, &reviewer, None, &form).unwrap_err();
            assert!(e.contains("purpose"), "{via:?} {form}: {e}");
        }

        // Aggregate roles: an alias does not hide an identifier; a cell of one is not shown.
        let alias = "SELECT concat(person_id_key, '') AS p, CAST(sum(income) AS VARCHAR) AS s \
                     FROM tax_income GROUP BY 1";
        let e = ask(&srv, via, &statistician, None, alias).unwrap_err();
        assert!(e.contains("aggregates only"), "{via:?}: {e}");
        let single = "SELECT CAST(income AS VARCHAR) AS i, n FROM (SELECT income, count(*) AS n \
                      FROM tax_income GROUP BY income HAVING count(*) = 1)";
        match ask(&srv, via, &statistician, None, single) {
            Ok(cells) => {
                let counts: Vec<&String> = cells
                    .iter()
                    .filter(|c| c.starts_with('<') || c.parse::<i64>().is_ok())
                    .collect();
                assert!(
                    counts.iter().all(|c| c.as_str() == "<5"),
                    "{via:?}: {counts:?}"
                );
            }
            Err(e) => assert!(e.contains("aggregates only"), "{via:?}: {e}"),
        }
    }

    // Bound values are seen for what they are: a lookup by a `$1` needs a purpose too.
    let lookup = "SELECT name FROM persons WHERE person_id = $1";
    let e = prepared(&srv, &reviewer, None, lookup, &[&t.inside_id]).unwrap_err();
    assert!(e.contains("purpose"), "{e}");
    let found = prepared(
        &srv,
        &reviewer,
        Some("CASE-2026-0010"),
        lookup,
        &[&t.inside_id],
    )
    .expect("with a purpose");
    assert_eq!(found.len(), 1, "{found:?}");
    let other = prepared(
        &srv,
        &reviewer,
        Some("CASE-2026-0010"),
        lookup,
        &[&t.outside_id],
    )
    .expect("with a purpose");
    assert!(other.is_empty(), "another region's person: {other:?}");
}
