//! The attacks of issue 10, run against the policy sessions themselves: rebuilding IDs from what
//! masked views show, calling the policy's functions, reading other regions through error text,
//! singling persons out without a purpose or inside an aggregate.

use std::collections::{BTreeMap, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type};
use hedui_auth::Role;
use hedui_model::Catalog;
use hedui_policy::Error;

use crate::common::*;

/// What an attacker can read off a row's visible values: its dates as YYYYMMDD, and the digit
/// runs of its text.
#[derive(Default, Clone)]
struct Seen {
    dates: HashSet<String>,
    digits: Vec<String>,
}

fn read_row(batch: &RecordBatch, row: usize, out: &mut Seen) {
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        // Lineage (`_batch`, `_sheet`, ...) is written by the lake, the same for every row of a
        // delivery: its digits (a batch's sequence and hash) are nobody's.
        if col.is_null(row) || field.name().starts_with('_') {
            continue;
        }
        match col.data_type() {
            DataType::Date32 => {
                let d = col.as_primitive::<Date32Type>().value_as_date(row).unwrap();
                out.dates.insert(d.format("%Y%m%d").to_string());
            }
            DataType::Utf8 => {
                let mut run = String::new();
                for ch in col.as_string::<i32>().value(row).chars().chain([' ']) {
                    if ch.is_ascii_digit() || ch == 'X' {
                        run.push(ch);
                    } else if !run.is_empty() {
                        out.digits.push(std::mem::take(&mut run));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether `id` can be rebuilt from what is seen of its holder: the region prefix is public, so
/// the birth date and the sequence-and-check tail are what must not be readable. The tail is
/// read off a digit run that is the ID's end (a mask that keeps the last digits) or that holds
/// the birth date and tail together; four digits that happen to occur inside a longer run (a
/// pseudonym's hex) say nothing about which four they are.
fn rebuilt(seen: &Seen, id: &str) -> bool {
    let tail_shown =
        |d: &String| (d.len() >= 4 && id.ends_with(d.as_str())) || d.contains(&id[6..18]);
    seen.dates.contains(&id[6..14]) && seen.digits.iter().any(tail_shown)
}

#[test]
fn the_rebuild_attack_works_where_the_digits_are_shown() {
    // The old mask kept digits 15-18 and the birth date was shown: that rebuilt every ID.
    let id = "420502195001011234";
    let old = Seen {
        dates: ["19500101".to_string()].into(),
        digits: vec!["420502".into(), "1234".into()],
    };
    assert!(rebuilt(&old, id));
    let new = Seen {
        dates: ["19500101".to_string()].into(),
        digits: vec!["420502".into()],
    };
    assert!(!rebuilt(&new, id));
    // A mask keeping the last six digits gives the tail away too; the same four digits inside
    // a pseudonym's hex do not.
    let last_six = Seen {
        digits: vec!["011234".into()],
        ..new.clone()
    };
    assert!(rebuilt(&last_six, id));
    let by_chance = Seen {
        digits: vec!["9123457".into()],
        ..new
    };
    assert!(!rebuilt(&by_chance, id));
}

/// What an analyst can see of each person, joined across all datasets through the pseudonymous
/// keys (and households through their pseudonymous numbers), tried against the person's real ID.
#[tokio::test]
async fn no_id_can_be_rebuilt_from_any_combination_of_visible_columns() {
    let f = fixture().await;
    let admin = who(Role::Admin, None);
    let analyst = who(Role::Analyst, None);
    // Whose pseudonym is whose: the same registry row, seen by both.
    let lineage = "SELECT _batch, CAST(_row AS VARCHAR), CAST(person_id_key AS VARCHAR), person_id FROM persons";
    let real = rows(f, &admin, Some("TEST-REBUILD-1"), lineage)
        .await
        .unwrap();
    let masked = rows(f, &analyst, None, lineage).await.unwrap();
    let row_of = |b: &[RecordBatch], value: usize| -> BTreeMap<(String, String), String> {
        strings(b, 0)
            .into_iter()
            .zip(strings(b, 1))
            .zip(strings(b, value))
            .map(|((batch, row), v)| ((batch.unwrap(), row.unwrap()), v.unwrap()))
            .collect()
    };
    let ids = row_of(&real, 3);
    let pseudonym_of: BTreeMap<String, String> = row_of(&masked, 2)
        .into_iter()
        .map(|(at, pseudonym)| (pseudonym, ids[&at].clone()))
        .collect();
    assert!(pseudonym_of.len() > 1000);

    let mut by_person: BTreeMap<String, Seen> = BTreeMap::new();
    let mut by_household: BTreeMap<String, Seen> = BTreeMap::new();
    let mut members: Vec<(String, String)> = Vec::new();
    for def in Catalog::builtin().iter().filter(|d| !d.system) {
        let batches = rows(f, &analyst, None, &format!("SELECT * FROM {}", def.name))
            .await
            .unwrap();
        for b in &batches {
            let schema = b.schema();
            let key = schema
                .fields()
                .iter()
                .position(|f| f.name().ends_with("_key"));
            let household = schema.index_of("household_no").ok();
            let text = |i: usize| arrow::compute::cast(b.column(i), &DataType::Utf8).unwrap();
            let keys = key.map(text);
            let households = household.map(text);
            for row in 0..b.num_rows() {
                let value = |c: &Option<arrow::array::ArrayRef>| {
                    c.as_ref()
                        .map(|c| c.as_string::<i32>())
                        .filter(|c| c.is_valid(row))
                        .map(|c| c.value(row).to_string())
                };
                let mut seen = Seen::default();
                read_row(b, row, &mut seen);
                let (k, h) = (value(&keys), value(&households));
                if let (Some(k), Some(h)) = (&k, &h) {
                    members.push((h.clone(), k.clone()));
                }
                for (map, at) in [(&mut by_person, k), (&mut by_household, h)] {
                    if let Some(at) = at {
                        let e = map.entry(at).or_default();
                        e.dates.extend(seen.dates.iter().cloned());
                        e.digits.extend(seen.digits.iter().cloned());
                    }
                }
            }
        }
    }
    for (h, k) in members {
        if let Some(d) = by_household.get(&h).cloned() {
            let e = by_person.entry(k).or_default();
            e.dates.extend(d.dates);
            e.digits.extend(d.digits);
        }
    }
    let mut tried = 0;
    let mut rebuilt_ids = Vec::new();
    for (pseudonym, seen) in &by_person {
        if let Some(id) = pseudonym_of.get(pseudonym) {
            tried += 1;
            if rebuilt(seen, id) {
                rebuilt_ids.push(id.clone());
            }
        }
    }
    assert!(tried > 1000, "persons tried: {tried}");
    assert!(
        rebuilt_ids.is_empty(),
        "the analyst rebuilt {} IDs, e.g. {:?}",
        rebuilt_ids.len(),
        &rebuilt_ids[..rebuilt_ids.len().min(3)]
    );
    // And no visible value is a real ID or ID key.
    let keys: HashSet<String> = ids.values().map(|i| i[..17].to_string()).collect();
    let all: HashSet<String> = ids.values().cloned().collect();
    for def in Catalog::builtin().iter().filter(|d| !d.system) {
        let batches = rows(f, &analyst, None, &format!("SELECT * FROM {}", def.name))
            .await
            .unwrap();
        for b in &batches {
            for c in 0..b.num_columns() {
                for v in strings(std::slice::from_ref(b), c).into_iter().flatten() {
                    assert!(
                        !all.contains(&v) && !keys.contains(&v),
                        "the analyst sees {}.{} in clear",
                        def.name,
                        b.schema().field(c).name()
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_policy_functions_cannot_be_called() {
    let f = fixture().await;
    for role in [Role::Analyst, Role::Admin, Role::Statistician] {
        for sql in [
            "SELECT hedui_pseudonym(42050219500101123)",
            "SELECT hedui_policy_pseudonym_key(42050219500101123)",
            "SELECT hedui_policy_pseudonym_text('DB001')",
            "SELECT hedui_policy_id_prefix('420502195001011234')",
            "SELECT repeat('a', 100000000)",
            "SELECT array_repeat(1, 250000000)",
            "SELECT * FROM generate_series(1, 1000000000000)",
        ] {
            let err = rows(f, &who(role, None), None, sql).await.unwrap_err();
            assert!(matches!(err, Error::Query(_)), "{role} {sql}: {err:?}");
        }
    }
    // Public functions still work.
    let b = rows(
        f,
        &who(Role::Analyst, None),
        None,
        "SELECT upper('a'), concat('a', 'b'), date_trunc('month', now()) IS NOT NULL, abs(-1)",
    )
    .await
    .unwrap();
    assert_eq!(strings(&b, 1), vec![Some("ab".to_string())]);
}

/// No digits of an ID or key and no Chinese name in a message.
fn carries_no_data(message: &str) -> bool {
    let mut run = 0;
    for ch in message.chars() {
        if ('\u{4e00}'..='\u{9fff}').contains(&ch) {
            return false;
        }
        run = if ch.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 6 {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn a_region_scope_holds_before_any_expression_and_errors_carry_no_data() {
    let f = fixture().await;
    let admin = who(Role::Admin, None);
    let reviewer = who(Role::Reviewer, Some(DISTRICT));
    let in_district = count(
        f,
        &admin,
        None,
        &format!("SELECT count(*) FROM persons WHERE starts_with(region_code, '{DISTRICT}')"),
    )
    .await;
    // Out-of-region rows would make the cast fail; the scan never yields them.
    let steered = format!(
        "SELECT count(*) FROM persons WHERE CAST(CASE WHEN NOT starts_with(region_code, '{DISTRICT}') \
         THEN concat_ws('|', person_id, name) ELSE '1' END AS INT) = 1"
    );
    assert_eq!(
        count(f, &reviewer, Some("CASE-2026-0004"), &steered).await,
        in_district
    );
    for dataset in [
        "incarcerations",
        "pension_payments",
        "cremations",
        "persons",
    ] {
        let sql = format!(
            "SELECT count(*) FROM {dataset} WHERE CAST(CASE WHEN _row > 1 \
             THEN concat_ws('|', person_id, name) ELSE '1' END AS INT) = 1"
        );
        for purpose in [None, Some("CASE-2026-0001")] {
            match rows(f, &reviewer, purpose, &sql).await {
                Ok(_) => {}
                Err(e) => {
                    let m = e.to_string();
                    assert!(carries_no_data(&m), "{dataset}: {m}");
                    // Without a purpose the masked name in a condition reads as a lookup.
                    assert!(
                        m.contains("E_CAST") || (purpose.is_none() && m.contains("purpose")),
                        "{dataset}: {m}"
                    );
                }
            }
        }
    }
    // A join's keys, a scalar subquery and a sort see only the region too.
    let joined = format!(
        "SELECT count(*) FROM pension_payments p JOIN persons s ON p.person_id_key = s.person_id_key \
         WHERE NOT starts_with(s.region_code, '{DISTRICT}')"
    );
    assert_eq!(count(f, &reviewer, None, &joined).await, 0);
}

#[tokio::test]
async fn every_form_of_singling_out_needs_a_purpose() {
    let f = fixture().await;
    let admin = who(Role::Admin, None);
    let id = strings(
        &rows(
            f,
            &admin,
            Some("TEST-PURPOSE-1"),
            &format!(
                "SELECT person_id FROM persons WHERE starts_with(region_code, '{DISTRICT}') LIMIT 1"
            ),
        )
        .await
        .unwrap(),
        0,
    )[0]
    .clone()
    .unwrap();
    let key = &id[..17];
    let reviewer = who(Role::Reviewer, Some(DISTRICT));
    for sql in [
        format!("SELECT * FROM persons WHERE nullif(person_id, '{id}') IS NULL"),
        format!("SELECT * FROM persons WHERE person_id IN (SELECT '{id}')"),
        format!("SELECT * FROM persons WHERE person_id = (SELECT '{id}')"),
        format!("SELECT * FROM persons WHERE CASE WHEN person_id = '{id}' THEN 1 ELSE 0 END = 1"),
        format!("SELECT * FROM persons WHERE CASE person_id WHEN '{id}' THEN true END"),
        format!("SELECT * FROM persons WHERE person_id IS NOT DISTINCT FROM '{id}'"),
        format!("SELECT * FROM persons WHERE array_has(make_array('{id}'), person_id)"),
        format!("SELECT p.* FROM persons p JOIN (VALUES ('{id}')) v(x) ON p.person_id = v.x"),
        format!("SELECT * FROM persons WHERE concat(person_id, '') = '{id}'"),
        format!("SELECT * FROM persons WHERE person_id_key + 0 = {key}"),
        format!("SELECT * FROM persons WHERE strpos(person_id, '{id}') > 0"),
        format!(
            "SELECT * FROM persons WHERE greatest(person_id, '{id}') = '{id}' AND least(person_id, '{id}') = '{id}'"
        ),
        format!("SELECT sum(CASE WHEN person_id = '{id}' THEN 1 END) FROM persons"),
        format!("SELECT person_id = '{id}' AS me, name FROM persons ORDER BY me DESC LIMIT 1"),
        format!("SELECT * FROM persons ORDER BY person_id = '{id}' DESC LIMIT 1"),
        format!("SELECT * FROM persons WHERE EXISTS (SELECT 1 WHERE person_id = '{id}')"),
        format!("SELECT count(*) FILTER (WHERE person_id = '{id}') FROM persons"),
        format!(
            "SELECT * FROM (SELECT concat(person_id, '') AS p, name FROM persons) t WHERE t.p = '{id}'"
        ),
        format!("SELECT * FROM persons WHERE person_id = ANY(SELECT '{id}')"),
        "SELECT * FROM persons WHERE name LIKE '张%'".to_string(),
        "SELECT * FROM persons WHERE length(name) = 2 AND substr(name, 1, 1) = '张'".to_string(),
    ] {
        match rows(f, &reviewer, None, &sql).await {
            Err(Error::Refused(m)) => assert!(m.contains("purpose"), "{sql}: {m}"),
            Err(Error::Query(_)) => {} // DataFusion does not plan every form (e.g. ANY).
            other => panic!("{sql}: {other:?}"),
        }
    }
    // Joins between datasets and questions about everyone need none.
    for sql in [
        "SELECT count(*) FROM pension_payments p JOIN persons s ON p.person_id_key = s.person_id_key",
        "SELECT count(*) FROM persons WHERE person_id IS NOT NULL",
        "SELECT person_id, name FROM persons ORDER BY person_id LIMIT 5",
        "SELECT count(DISTINCT person_id_key) FROM pension_payments",
        "SELECT count(*) FROM deaths",
        "SELECT * FROM persons WHERE person_id_key IN (SELECT person_id_key FROM pension_payments)",
    ] {
        rows(f, &reviewer, None, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
}

#[tokio::test]
async fn aggregate_roles_cannot_single_anyone_out() {
    let f = fixture().await;
    let stat = who(Role::Statistician, None);
    for (sql, purpose) in [
        (
            "SELECT concat(person_id_key, '') AS p, sum(income) FROM tax_income GROUP BY p",
            None,
        ),
        (
            "SELECT person_id_key + 0 AS p, sum(income) FROM tax_income GROUP BY 1",
            None,
        ),
        (
            "SELECT CASE WHEN person_id_key > 0 THEN person_id_key END AS p, count(*) FROM tax_income GROUP BY 1",
            None,
        ),
        (
            "SELECT sum(CASE WHEN person_id_key = 5 THEN income END) FROM tax_income",
            Some("CASE-2026-0002"),
        ),
        (
            "SELECT count(*) FROM tax_income WHERE person_id_key = 5",
            Some("CASE-2026-0002"),
        ),
        (
            "SELECT region_code, count(*) FROM persons WHERE household_no = 'P0' GROUP BY region_code",
            None,
        ),
    ] {
        match rows(f, &stat, purpose, sql).await {
            Err(Error::Refused(m)) => assert!(m.contains("aggregates only"), "{sql}: {m}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    // HAVING count(*) = 1 finds only cells that are suppressed anyway.
    let b = rows(
        f,
        &stat,
        None,
        "SELECT income, count(*) AS n, sum(income) AS s FROM tax_income GROUP BY income HAVING count(*) = 1",
    )
    .await
    .unwrap();
    assert!(
        strings(&b, 0).is_empty(),
        "groups of one person were shown: {:?}",
        strings(&b, 0)
    );
}

#[tokio::test]
async fn aggregate_roles_cannot_spread_one_persons_value_over_everyone() {
    let f = fixture().await;
    let stat = who(Role::Statistician, None);
    // Each would put one person's value (is anyone's income above a million?) into every row,
    // where a count of the rows would tell it however each person's part is bounded.
    for sql in [
        "SELECT count(*) FROM persons p JOIN tax_income t ON t.income > 1000000",
        "SELECT count(*) FROM persons p CROSS JOIN tax_income t WHERE t.income > 1000000",
        "SELECT count(*) FROM persons WHERE EXISTS (SELECT 1 FROM tax_income WHERE income > 1000000)",
        "SELECT count(*) FROM persons WHERE (SELECT sum(income) FROM tax_income) > 1000000",
        "SELECT count(*) FROM persons p JOIN (SELECT sum(income) AS s FROM tax_income) x ON x.s > 1000000",
        "SELECT count(*) FROM (SELECT person_id_key, sum(income) OVER () AS s FROM tax_income) WHERE s > 1000000",
        "SELECT count(*) FROM persons p JOIN tax_income t ON p.region_code = CAST(t.income AS VARCHAR)",
    ] {
        match rows(f, &stat, None, sql).await {
            Err(Error::Refused(m)) => assert!(m.contains("aggregates only"), "{sql}: {m}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    // Joining a person to their own rows, or aggregating per person first, is what statistics
    // are made of.
    for sql in [
        "SELECT p.sex, count(*) FROM persons p JOIN tax_income t ON p.person_id_key = t.person_id_key GROUP BY p.sex",
        "SELECT count(*) FROM persons p, tax_income t WHERE p.person_id_key = t.person_id_key",
        "SELECT count(*) FROM (SELECT person_id_key, sum(income) AS s FROM tax_income GROUP BY person_id_key) WHERE s > 100000",
    ] {
        let answer = rows(f, &stat, None, sql).await;
        assert!(answer.is_ok(), "{sql}: {answer:?}");
    }
}

#[tokio::test]
async fn small_cells_count_persons_not_rows() {
    let f = fixture().await;
    let admin = who(Role::Admin, None);
    // Cells with many rows from few persons: one person's monthly records.
    let sql = "SELECT income, count(*) AS n FROM tax_income GROUP BY income";
    let truth = rows(
        f,
        &admin,
        None,
        "SELECT income, count(*) AS n, count(DISTINCT person_id_key) AS p FROM tax_income GROUP BY income",
    )
    .await
    .unwrap();
    let (incomes, n, p) = (strings(&truth, 0), strings(&truth, 1), strings(&truth, 2));
    let few_persons: Vec<usize> = (0..incomes.len())
        .filter(|i| {
            n[*i].as_ref().unwrap().parse::<i64>().unwrap() >= 5
                && p[*i].as_ref().unwrap().parse::<i64>().unwrap() < 5
        })
        .collect();
    assert!(
        !few_persons.is_empty(),
        "the city has incomes paid many months to few persons"
    );
    let shown = rows(f, &who(Role::Statistician, None), None, sql)
        .await
        .unwrap();
    let shown: BTreeMap<Option<String>, Option<String>> = strings(&shown, 0)
        .into_iter()
        .zip(strings(&shown, 1))
        .collect();
    // Such a cell is not shown at all: neither its count nor its key.
    for i in few_persons {
        assert_eq!(
            shown.get(&incomes[i]),
            None,
            "income {:?}: {} rows of {} persons",
            incomes[i],
            n[i].as_deref().unwrap(),
            p[i].as_deref().unwrap()
        );
    }
}

#[tokio::test]
async fn quarantined_raw_values_are_masked_like_their_columns() {
    let f = fixture().await;
    let admin = who(Role::Admin, None);
    let ids: HashSet<String> = strings(
        &rows(
            f,
            &admin,
            Some("TEST-QUARANTINE-1"),
            "SELECT person_id FROM persons",
        )
        .await
        .unwrap(),
        0,
    )
    .into_iter()
    .flatten()
    .collect();
    let sql = "SELECT raw, raw_masked, reasons FROM quarantine";
    let masked = rows(f, &admin, None, sql).await.unwrap();
    let (raw, shown) = (strings(&masked, 0), strings(&masked, 1));
    assert!(shown.len() > 10, "the generator broke rows");
    assert!(raw.iter().all(Option::is_none), "raw values need a purpose");
    for v in shown.iter().flatten() {
        let doc: serde_json::Value = serde_json::from_str(v).unwrap();
        for value in doc.as_object().unwrap().values().filter_map(|v| v.as_str()) {
            let full_id = value.chars().count() == 18
                && value
                    .chars()
                    .skip(6)
                    .all(|c| c.is_ascii_digit() || c == 'X');
            assert!(
                !(ids.contains(value) || full_id),
                "a full ID in the masked raw values: {value}"
            );
        }
    }
    // With a purpose the raw row is there as delivered.
    let clear = rows(f, &admin, Some("TEST-QUARANTINE-1"), sql)
        .await
        .unwrap();
    assert!(strings(&clear, 0).iter().all(Option::is_some));
}
