use hedui_auth::Role;

use crate::common::*;

#[tokio::test]
async fn analysts_see_ids_and_names_masked_and_addresses_not_at_all() {
    let f = fixture().await;
    let analyst = who(Role::Analyst, None);
    let b = rows(
        f,
        &analyst,
        None,
        "SELECT person_id, name, address, person_id_raw FROM persons ORDER BY person_id LIMIT 50",
    )
    .await
    .unwrap();
    let ids = strings(&b, 0);
    assert_eq!(ids.len(), 50);
    for id in ids.iter().flatten() {
        assert_eq!(id.chars().count(), 18, "{id}");
        assert_eq!(&id[6..14], "********", "{id}");
        assert!(id[..6].bytes().all(|c| c.is_ascii_digit()), "{id}");
    }
    for name in strings(&b, 1).iter().flatten() {
        assert_eq!(name.chars().count(), 2, "{name}");
        assert!(name.ends_with('*'), "{name}");
    }
    assert!(
        strings(&b, 2).iter().all(Option::is_none),
        "addresses hidden"
    );
    assert!(strings(&b, 3).iter().all(Option::is_none), "raw IDs hidden");
}

#[tokio::test]
async fn masked_keys_are_pseudonyms_that_still_join() {
    let f = fixture().await;
    let admin = who(Role::Admin, None);
    let analyst = who(Role::Analyst, None);
    let join = "SELECT count(*) FROM pension_payments p JOIN persons s ON p.person_id_key = s.person_id_key";
    assert_eq!(
        count(f, &analyst, None, join).await,
        count(f, &admin, None, join).await,
        "the same pairs join through pseudonyms"
    );
    let distinct = "SELECT count(DISTINCT person_id_key) FROM persons";
    assert_eq!(
        count(f, &analyst, None, distinct).await,
        count(f, &admin, None, distinct).await
    );
    // No pseudonym is a real key.
    // An administrator sees real keys only with a stated purpose.
    let admin_keys = strings(
        &rows(
            f,
            &admin,
            Some("AUDIT-2025-7"),
            "SELECT person_id_key FROM persons ORDER BY 1 LIMIT 200",
        )
        .await
        .unwrap(),
        0,
    );
    let analyst_keys = strings(
        &rows(f, &analyst, None, "SELECT person_id_key FROM persons")
            .await
            .unwrap(),
        0,
    );
    let leaked: Vec<_> = admin_keys
        .iter()
        .filter(|k| analyst_keys.contains(k))
        .collect();
    assert!(
        leaked.is_empty(),
        "real keys shown to an analyst: {leaked:?}"
    );
    let pairs = rows(
        f,
        &admin,
        Some("AUDIT-2025-7"),
        "SELECT person_id, person_id_key FROM persons LIMIT 50",
    )
    .await
    .unwrap();
    for (id, key) in strings(&pairs, 0).into_iter().zip(strings(&pairs, 1)) {
        assert_eq!(
            id.unwrap()[..17],
            key.unwrap(),
            "with a purpose the key is the ID's digits"
        );
    }
}

#[tokio::test]
async fn a_stated_purpose_unmasks_for_reviewers_but_never_for_analysts() {
    let f = fixture().await;
    let reviewer = who(Role::Reviewer, Some(DISTRICT));
    let sql = "SELECT person_id, name FROM persons ORDER BY person_id LIMIT 5";
    let masked = strings(&rows(f, &reviewer, None, sql).await.unwrap(), 0);
    assert!(masked.iter().flatten().all(|id| id.contains("********")));
    let clear = strings(
        &rows(f, &reviewer, Some("CASE-2025-0001"), sql)
            .await
            .unwrap(),
        0,
    );
    assert!(
        clear
            .iter()
            .flatten()
            .all(|id| !id.contains('*') && id.len() == 18)
    );
    let analyst = who(Role::Analyst, None);
    let still = strings(
        &rows(f, &analyst, Some("CASE-2025-0001"), sql)
            .await
            .unwrap(),
        0,
    );
    assert!(still.iter().flatten().all(|id| id.contains("********")));
}
