use hedui_auth::{Identity, Role};
use hedui_policy::Error;

use crate::common::*;

fn numbers(batches: &[arrow::array::RecordBatch], col: usize) -> Vec<Option<f64>> {
    strings(batches, col)
        .into_iter()
        .map(|v| v.and_then(|s| s.parse().ok()))
        .collect()
}

#[tokio::test]
async fn statisticians_get_noisy_aggregates_and_no_small_groups() {
    let f = fixture().await;
    let stat = who(Role::Statistician, None);
    let admin = who(Role::Admin, None);
    // Large groups (sex) are shown, with noise; small ones (birth years of a 1,500-person city,
    // a few dozen each) are not shown at all, not even as a key.
    for (sql, large) in [
        (
            "SELECT sex AS k, count(*) AS n, avg(CAST(1 AS DOUBLE)) AS a FROM persons GROUP BY sex ORDER BY k",
            true,
        ),
        (
            "SELECT CAST(date_part('year', birth_date) AS VARCHAR) AS k, count(*) AS n, avg(CAST(1 AS DOUBLE)) AS a \
             FROM persons GROUP BY date_part('year', birth_date) ORDER BY k",
            false,
        ),
    ] {
        let truth = rows(f, &admin, None, sql).await.unwrap();
        let (keys, counts) = (strings(&truth, 0), numbers(&truth, 1));
        let mut answers = Vec::new();
        for _ in 0..2 {
            let shown = rows(f, &stat, None, sql).await.unwrap();
            let (s_keys, s_counts, s_avgs) =
                (strings(&shown, 0), numbers(&shown, 1), numbers(&shown, 2));
            for (i, k) in s_keys.iter().enumerate() {
                let t = keys
                    .iter()
                    .position(|x| x == k)
                    .expect("a shown group exists");
                let true_n = counts[t].unwrap();
                assert!(
                    true_n >= 5.0,
                    "a group of {true_n} persons was shown: {k:?}"
                );
                // Laplace noise of scale 8 (the defaults): 160 is twenty scales.
                let n = s_counts[i].unwrap();
                assert!((n - true_n).abs() < 160.0, "{k:?}: {n} for {true_n}");
                // An average is shown (a noisy sum over a noisy count; its error is the sum's
                // over the group's size: large here, as a person's mean of 1 is far inside
                // the default bound).
                assert!(s_avgs[i].is_some_and(f64::is_finite), "{k:?}: no average");
            }
            if large {
                assert_eq!(s_keys, keys, "large groups are all shown");
            } else {
                assert!(
                    counts.iter().all(|n| n.unwrap() < 100.0) && s_keys.is_empty(),
                    "small groups are left out: {s_keys:?}"
                );
            }
            answers.push(s_counts);
        }
        if large {
            assert_ne!(
                answers[0]
                    .iter()
                    .chain(&answers[1])
                    .copied()
                    .collect::<Vec<_>>(),
                counts.iter().chain(&counts).copied().collect::<Vec<_>>(),
                "figures carry noise"
            );
            assert_ne!(answers[0], answers[1], "each answer draws fresh noise");
        }
    }
    // The single row of an ungrouped aggregate is always there; a small one reads `<5`.
    let one = rows(
        f,
        &stat,
        None,
        "SELECT count(*) AS n FROM persons WHERE date_part('year', birth_date) = 1900",
    )
    .await
    .unwrap();
    let n = strings(&one, 0);
    assert_eq!(n.len(), 1);
    assert!(
        n[0].as_deref() == Some("<5")
            || n[0]
                .as_deref()
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < 160),
        "{n:?}"
    );
}

#[tokio::test]
async fn one_person_cannot_be_steered_into_a_sum_or_averaged_out_of_the_noise() {
    let f = fixture().await;
    let stat = who(Role::Statistician, None);
    // A sum over everyone, steered by a CASE on a public column towards the biggest earner,
    // is still clamped per person and noised: the answer does not tell the top income.
    let admin = who(Role::Admin, None);
    let top = rows(f, &admin, None, "SELECT max(income) FROM tax_income")
        .await
        .unwrap();
    let top: f64 = strings(&top, 0)[0].as_ref().unwrap().parse().unwrap();
    let sql = format!(
        "SELECT sum(CASE WHEN income >= {top} THEN income ELSE 0 END) AS s FROM tax_income"
    );
    let mut seen = Vec::new();
    for _ in 0..5 {
        let shown = rows(f, &stat, None, &sql).await.unwrap();
        seen.push(numbers(&shown, 0)[0]);
    }
    assert!(
        seen.iter().all(|s| s.is_none_or(|s| (s - top).abs() > 0.5)),
        "the top income {top} came back: {seen:?}"
    );
    // Differencing: the same count with and without one group differs by noise, not by the
    // group's size alone (two answers never both exact).
    let all = rows(f, &stat, None, "SELECT count(*) AS n FROM persons")
        .await
        .unwrap();
    let again = rows(f, &stat, None, "SELECT count(*) AS n FROM persons")
        .await
        .unwrap();
    assert_ne!(
        strings(&all, 0),
        strings(&again, 0),
        "repeated answers differ"
    );
}

#[tokio::test]
async fn each_answer_spends_the_budget_until_it_is_spent() {
    let f = build(hedui_policy::AccessConfig {
        privacy: hedui_policy::PrivacyConfig {
            budget: 3.0,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let stat = who(Role::Statistician, None);
    let session = f.policy.session(&stat, None).await.unwrap();
    for spent in 1..=3 {
        let (_, _, info, _) = session
            .run("SELECT sex, count(*) FROM persons GROUP BY sex")
            .await
            .unwrap();
        assert!(
            info.policies
                .iter()
                .any(|p| p.contains(&format!("({spent}.00 of 3 in the period)"))),
            "{:?}",
            info.policies
        );
    }
    let err = session
        .run("SELECT sex, count(*) FROM persons GROUP BY sex")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused(m) if m.contains("privacy budget is spent")),
        "{err:?}"
    );
    // Another statistician has their own budget; a refused question spent nothing.
    let other = Identity {
        subject: "another-statistician".into(),
        ..stat.clone()
    };
    assert!(
        f.policy
            .session(&other, None)
            .await
            .unwrap()
            .run("SELECT count(*) FROM persons")
            .await
            .is_ok()
    );
    assert!((f.policy.privacy().budget.spent(&stat.subject).unwrap() - 3.0).abs() < 1e-9);
    // The spends are on disk beside the audit log.
    let ledger = std::fs::read_to_string(f.dir().join("privacy-budget.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 4);
}

#[tokio::test]
async fn statisticians_cannot_see_rows_single_values_or_group_by_person() {
    let f = fixture().await;
    let stat = who(Role::Statistician, None);
    for sql in [
        "SELECT * FROM persons",
        "SELECT region_code FROM persons",
        "SELECT max(birth_date) FROM persons",
        "SELECT person_id_key, count(*) FROM pension_payments GROUP BY person_id_key",
        "SELECT region_code, count(*) FROM persons GROUP BY region_code UNION ALL SELECT name, 1 FROM persons",
        "SELECT (SELECT name FROM persons LIMIT 1), count(*) FROM persons",
    ] {
        let err = rows(f, &stat, None, sql).await.unwrap_err();
        assert!(
            matches!(&err, Error::Refused(m) if m.contains("aggregates only")),
            "{sql}: {err:?}"
        );
    }
}
