//! Random queries over the policy views, for every masked role: whatever the projection,
//! filter, function, join or aggregate, no answer and no error carries an identifier in clear,
//! and a region-scoped caller never gets a value of a row outside their region.

use std::collections::HashSet;
use std::sync::OnceLock;

use arrow::array::RecordBatch;
use hedui_auth::{Identity, Role};
use hedui_policy::Error;
use proptest::prelude::*;

use crate::common::*;

/// Datasets with their person key and a few columns of each kind.
const TABLES: &[(&str, &[&str])] = &[
    (
        "persons",
        &[
            "person_id",
            "name",
            "birth_date",
            "household_no",
            "address",
            "region_code",
            "status",
            "sex",
        ],
    ),
    (
        "pension_payments",
        &[
            "person_id",
            "person_no",
            "name",
            "scheme",
            "month",
            "amount",
        ],
    ),
    ("tax_income", &["person_id", "period", "income"]),
    (
        "vehicles",
        &[
            "owner_id",
            "owner_name",
            "plate",
            "vehicle_type",
            "first_registered",
        ],
    ),
    (
        "properties",
        &["owner_id", "owner_name", "location", "usage", "floor_area"],
    ),
    (
        "death_certificates",
        &["person_id", "name", "death_date", "cause"],
    ),
];

fn key_of(table: &str) -> &'static str {
    match table {
        "vehicles" | "properties" => "owner_id_key",
        _ => "person_id_key",
    }
}

/// An expression over a column, as an attacker would try to get at its value.
fn wrapped(col: String) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(col.clone()),
        Just(format!("CAST({col} AS VARCHAR)")),
        Just(format!("concat({col}, '')")),
        Just(format!("upper(CAST({col} AS VARCHAR))")),
        Just(format!("CAST(CAST({col} AS VARCHAR) AS INT)")),
        Just(format!("substr(CAST({col} AS VARCHAR), 7, 8)")),
        Just(format!(
            "CASE WHEN {col} IS NULL THEN 'x' ELSE CAST({col} AS VARCHAR) END"
        )),
        Just(format!("coalesce(CAST({col} AS VARCHAR), '')")),
        Just(format!("arrow_typeof({col})")),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let table = (0..TABLES.len()).prop_map(|i| TABLES[i]);
    table.prop_flat_map(|(t, cols)| {
        let col = (0..cols.len()).prop_map(move |i| format!("t.{}", cols[i]));
        let shape = 0..4usize;
        (Just(t), col.clone().prop_flat_map(wrapped), col.prop_flat_map(wrapped), shape)
    })
    .prop_map(|(t, a, b, shape)| match shape {
        0 => format!("SELECT {a}, {b} FROM {t} t LIMIT 50"),
        1 => format!("SELECT {a} FROM {t} t WHERE {b} IS NOT NULL ORDER BY {a} LIMIT 50"),
        2 => format!(
            "SELECT {a}, p.name, p.birth_date FROM {t} t JOIN persons p ON t.{} = p.person_id_key LIMIT 50",
            key_of(t)
        ),
        _ => format!("SELECT {a} AS g, count(*) AS n, count(DISTINCT {b}) AS d FROM {t} t GROUP BY {a} LIMIT 50"),
    })
}

struct Secrets {
    ids: HashSet<String>,
    keys: HashSet<String>,
    names: HashSet<String>,
    /// IDs, keys and names of persons outside the district.
    outside: HashSet<String>,
}

fn secrets(rt: &tokio::runtime::Runtime) -> &'static Secrets {
    static S: OnceLock<Secrets> = OnceLock::new();
    S.get_or_init(|| {
        rt.block_on(async {
            let f = fixture().await;
            let b = rows(
                f,
                &who(Role::Admin, None),
                Some("TEST-SECRETS-1"),
                "SELECT person_id, name, region_code FROM persons",
            )
            .await
            .unwrap();
            let (ids, names, regions) = (strings(&b, 0), strings(&b, 1), strings(&b, 2));
            let mut s = Secrets {
                ids: HashSet::new(),
                keys: HashSet::new(),
                names: HashSet::new(),
                outside: HashSet::new(),
            };
            let mut inside_names = HashSet::new();
            let mut outside_names = HashSet::new();
            for ((id, name), region) in ids.into_iter().zip(names).zip(regions) {
                let (id, name) = (id.unwrap(), name.unwrap());
                if region.unwrap_or_default().starts_with(DISTRICT) {
                    inside_names.insert(name.clone());
                } else {
                    s.outside.insert(id.clone());
                    s.outside.insert(id[..17].to_string());
                    if name.chars().count() >= 2 {
                        outside_names.insert(name.clone());
                    }
                }
                s.keys.insert(id[..17].to_string());
                s.ids.insert(id);
                if name.chars().count() >= 2 {
                    s.names.insert(name);
                }
            }
            // A name also borne by someone of the district is no sign of a leak.
            s.outside
                .extend(outside_names.difference(&inside_names).cloned());
            s
        })
    })
}

/// Every cell of an answer as text.
fn cells(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        for c in 0..b.num_columns() {
            out.extend(strings(std::slice::from_ref(b), c).into_iter().flatten());
        }
    }
    out
}

/// What a caller must not see: identifiers in clear (masked callers) and anything of a person
/// outside their region (scoped callers).
fn leaked<'a>(texts: &'a [String], s: &Secrets, masked: bool, scoped: bool) -> Option<&'a String> {
    texts.iter().find(|t| {
        let words: Vec<&str> = t
            .split(|c: char| !(c.is_alphanumeric()))
            .filter(|w| !w.is_empty())
            .collect();
        words.iter().any(|w| {
            (masked && (s.ids.contains(*w) || s.keys.contains(*w) || s.names.contains(*w)))
                || (scoped && s.outside.contains(*w))
        })
    })
}

/// Each caller with its purpose, whether it sees masked columns and whether it is scoped.
fn callers() -> Vec<(Identity, Option<&'static str>, bool, bool)> {
    vec![
        (who(Role::Analyst, None), None, true, false),
        (who(Role::Statistician, None), None, true, false),
        (who(Role::Reviewer, Some(DISTRICT)), None, true, true),
        (who(Role::DibaoReviewer, Some(DISTRICT)), None, true, true),
        (
            who(Role::Reviewer, Some(DISTRICT)),
            Some("CASE-2026-0003"),
            false,
            true,
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_random_query_shows_an_identifier_or_another_regions_row(sql in query()) {
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        let rt = RT.get_or_init(|| tokio::runtime::Runtime::new().unwrap());
        let s = secrets(rt);
        for (id, purpose, masked, scoped) in callers() {
            let answer = rt.block_on(async {
                let f = fixture().await;
                rows(f, &id, purpose, &sql).await
            });
            let texts = match answer {
                Ok(b) => cells(&b),
                Err(Error::Refused(m)) | Err(Error::Query(m)) | Err(Error::Limit(m)) => vec![m],
                Err(other) => vec![other.to_string()],
            };
            if let Some(t) = leaked(&texts, s, masked, scoped) {
                prop_assert!(false, "{} ran `{sql}` and got `{t}`", id.roles_text());
            }
        }
    }
}
