use hedui_auth::Role;
use hedui_policy::Error;

use crate::common::*;

#[tokio::test]
async fn a_district_reviewer_sees_only_the_district_in_every_dataset() {
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
    let total = count(f, &admin, None, "SELECT count(*) FROM persons").await;
    assert!(
        in_district > 0 && in_district < total,
        "{in_district} of {total}"
    );
    assert_eq!(
        count(f, &reviewer, None, "SELECT count(*) FROM persons").await,
        in_district
    );
    let other = count(
        f,
        &reviewer,
        None,
        &format!("SELECT count(*) FROM persons WHERE NOT starts_with(region_code, '{DISTRICT}')"),
    )
    .await;
    assert_eq!(other, 0);
    // A dataset without a region column follows its person's registry region.
    let admin_pensions = count(
        f,
        &admin,
        None,
        &format!(
            "SELECT count(*) FROM pension_payments WHERE person_id_key IN \
             (SELECT person_id_key FROM persons WHERE starts_with(region_code, '{DISTRICT}'))"
        ),
    )
    .await;
    let all_pensions = count(f, &admin, None, "SELECT count(*) FROM pension_payments").await;
    let seen = count(f, &reviewer, None, "SELECT count(*) FROM pension_payments").await;
    assert_eq!(seen, admin_pensions);
    assert!(seen < all_pensions);
}

#[tokio::test]
async fn a_dibao_reviewer_sees_households_of_the_district_only() {
    let f = fixture().await;
    let admin = who(Role::Admin, None);
    // The district with the most dibao households.
    let district = strings(
        &rows(
            f,
            &admin,
            None,
            "SELECT substr(p.region_code, 1, 6) FROM dibao_households h JOIN persons p \
             ON h.head_id_key = p.person_id_key GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
        )
        .await
        .unwrap(),
        0,
    )[0]
    .clone()
    .unwrap();
    let reviewer = who(Role::DibaoReviewer, Some(&district));
    let expected = count(
        f,
        &admin,
        None,
        &format!(
            "SELECT count(*) FROM dibao_payments WHERE household_no IN (SELECT h.household_no FROM dibao_households h \
             JOIN persons p ON h.head_id_key = p.person_id_key WHERE starts_with(p.region_code, '{district}'))"
        ),
    )
    .await;
    let total = count(f, &admin, None, "SELECT count(*) FROM dibao_payments").await;
    assert!(expected > 0 && expected < total, "{expected} of {total}");
    assert_eq!(
        count(f, &reviewer, None, "SELECT count(*) FROM dibao_payments").await,
        expected
    );
    // Not their field: pensions-only datasets such as contributions are not granted.
    let err = rows(f, &reviewer, None, "SELECT count(*) FROM contributions")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused(m) if m.contains("contributions")),
        "{err}"
    );
}

#[tokio::test]
async fn a_region_policy_without_a_region_claim_shows_nothing() {
    let f = fixture().await;
    let reviewer = who(Role::Reviewer, None);
    let err = rows(f, &reviewer, None, "SELECT count(*) FROM persons")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err}");
}

#[tokio::test]
async fn derived_views_inherit_the_policy() {
    let f = fixture().await;
    let admin = who(Role::Admin, None);
    let reviewer = who(Role::Reviewer, Some(DISTRICT));
    let expected = count(
        f,
        &admin,
        None,
        &format!(
            "SELECT count(*) FROM deaths d JOIN persons p ON d.person_id_key = p.person_id_key \
             WHERE starts_with(p.region_code, '{DISTRICT}')"
        ),
    )
    .await;
    assert_eq!(
        count(f, &reviewer, None, "SELECT count(*) FROM deaths").await,
        expected
    );
}
