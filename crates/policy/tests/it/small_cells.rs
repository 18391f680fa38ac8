use hedui_auth::Role;
use hedui_policy::Error;

use crate::common::*;

#[tokio::test]
async fn statisticians_get_aggregates_with_small_cells_suppressed() {
    let f = fixture().await;
    let stat = who(Role::Statistician, None);
    let admin = who(Role::Admin, None);
    let sql = "SELECT date_part('year', birth_date) AS y, count(*) AS n, sum(CAST(1 AS BIGINT)) AS s \
               FROM persons GROUP BY date_part('year', birth_date) ORDER BY y";
    let truth = rows(f, &admin, None, sql).await.unwrap();
    let shown = rows(f, &stat, None, sql).await.unwrap();
    let (regions, counts, sums) = (strings(&truth, 0), strings(&truth, 1), strings(&truth, 2));
    let (s_regions, s_counts, s_sums) =
        (strings(&shown, 0), strings(&shown, 1), strings(&shown, 2));
    assert_eq!(regions, s_regions, "group keys are shown");
    let mut small = 0;
    for i in 0..regions.len() {
        let n: i64 = counts[i].as_ref().unwrap().parse().unwrap();
        if n < 5 {
            small += 1;
            assert_eq!(s_counts[i].as_deref(), Some("<5"));
            assert_eq!(s_sums[i], None, "the sum of a small group is not shown");
        } else {
            assert_eq!(s_counts[i], counts[i]);
            assert_eq!(s_sums[i], sums[i]);
        }
    }
    assert!(small > 0, "the city has birth years with few persons");
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
