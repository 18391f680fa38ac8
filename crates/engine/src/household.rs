//! Household verification (居民家庭经济状况核对): for an applicant household's members, every
//! income and asset item each source holds, the per-capita monthly income against the dibao line,
//! the items that disqualify, and a verdict with its reasons. The same tests as rule R5, asked
//! before a household is admitted instead of after.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Months, NaiveDate};
use hedui_model::ResidentId;
use serde::Serialize;

use crate::check::EvidenceRef;
use crate::evidence::{EvidenceRow, evidence_row};
use crate::{Engine, Result};

/// The city's thresholds, from R5's parameters (which vehicles count is R5's `member_assets`).
#[derive(Debug, Clone)]
pub struct HouseholdTests {
    /// Yuan in cents per person per month.
    pub dibao_line_cents: i64,
    pub max_residential_properties: usize,
    /// Months of income averaged, ending with the latest month the income sources cover.
    pub income_months: u32,
}

impl HouseholdTests {
    /// From rule parameters as `hedui.toml` gives them (R5's names), defaults where absent.
    pub fn from_params(params: &BTreeMap<String, String>) -> HouseholdTests {
        let line = params
            .get("dibao_line")
            .and_then(|v| yuan_cents(v))
            .unwrap_or(80_000);
        HouseholdTests {
            dibao_line_cents: line,
            max_residential_properties: params
                .get("max_residential_properties")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(1),
            income_months: params
                .get("income_months")
                .and_then(|v| v.trim().parse().ok())
                .filter(|m| (1..=24).contains(m))
                .unwrap_or(6),
        }
    }
}

/// One income or asset item found for a member.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub kind: &'static str,
    /// What it is, for the report (Chinese first).
    pub label: String,
    pub month: Option<String>,
    pub amount_cents: Option<i64>,
    /// Why it disqualifies the household, if it does.
    pub disqualifies: Option<String>,
    /// The row, its source file and the source's as-of date.
    pub row: EvidenceRow,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub person_id: String,
    /// Found in the household registry.
    pub registered: bool,
    pub name: Option<String>,
    pub status: Option<String>,
    pub region_code: Option<String>,
    pub household_no: Option<String>,
    /// Income over the window, monthly average.
    pub monthly_income_cents: i64,
    pub income: Vec<Item>,
    pub assets: Vec<Item>,
    /// Things the reviewer must look at that do not by themselves disqualify.
    pub notes: Vec<String>,
    /// Counted in the household's size and income. A member who is deceased, not in the
    /// registry, moved out or on another dibao household's roster is not, and makes the
    /// verdict 需核实 (`irregular` says why).
    pub counted: bool,
    pub irregular: Vec<String>,
    /// The dibao household whose roster lists the member, if any.
    pub dibao_household: Option<String>,
    /// The earliest death date a death source (or the registry) records.
    pub died: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceAsOf {
    pub dataset: String,
    pub title_zh: String,
    pub department: String,
    /// The newest as-of date of the source's live batches.
    pub as_of: Option<NaiveDate>,
    pub batches: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct HouseholdReport {
    pub lake_version: u64,
    /// The income months averaged (YYYY-MM).
    pub window: Vec<String>,
    pub size: usize,
    pub monthly_income_cents: i64,
    pub per_capita_cents: i64,
    pub line_cents: i64,
    pub members: Vec<Member>,
    /// `eligible` (no disqualifying item found; a home visit still confirms), `ineligible`, or
    /// `needs_review` (nothing disqualifies, but some members cannot be counted as given).
    pub verdict: &'static str,
    pub verdict_zh: &'static str,
    pub reasons: Vec<String>,
    pub sources: Vec<SourceAsOf>,
}

/// Where each source keeps the person: dataset, its resident-ID key column, kind.
const SOURCES: &[(&str, &str, &str)] = &[
    ("persons", "person_id_key", "registry"),
    ("tax_income", "person_id_key", "income"),
    ("pension_payments", "person_id_key", "income"),
    ("unemployment_benefits", "person_id_key", "income"),
    ("provident_fund", "person_id_key", "income"),
    ("vehicles", "owner_id_key", "asset"),
    ("properties", "owner_id_key", "asset"),
    ("businesses", "legal_rep_id_key", "asset"),
    ("dibao_members", "person_id_key", "dibao"),
    ("cremations", "person_id_key", "death"),
    ("death_certificates", "person_id_key", "death"),
];

/// The datasets a verification reads: a caller's policy must grant them all, in clear with the
/// applicant's authorisation, for the caller to verify households.
pub fn source_datasets() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().map(|(d, _, _)| *d)
}

/// The month column of an income source.
fn income_month_column(dataset: &str) -> Option<&'static str> {
    match dataset {
        "tax_income" => Some("period"),
        "pension_payments" | "unemployment_benefits" | "provident_fund" => Some("month"),
        _ => None,
    }
}

/// "123.4" or "123" (yuan) -> cents, as the lake's money columns are read everywhere.
fn yuan_cents(v: &str) -> Option<i64> {
    hedui_model::Money::parse(v)
        .ok()
        .map(hedui_model::Money::cents)
}

fn cents_of(v: Option<&serde_json::Value>) -> Option<i64> {
    match v? {
        serde_json::Value::String(s) => yuan_cents(s),
        serde_json::Value::Number(n) => yuan_cents(&n.to_string()),
        _ => None,
    }
}

fn text(values: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    match values.get(key)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn date(values: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<NaiveDate> {
    text(values, key).and_then(|s| NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok())
}

fn month_of(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

impl Engine {
    /// Verify one household (see the module docs). Members not in the registry are still
    /// looked up in every source: an applicant may have moved in from elsewhere.
    ///
    /// What counts as income and which assets disqualify is not decided here: it is the
    /// `member_income` and `member_assets` views of `definition` (R5), read through
    /// `rule_source` (the caller's session with the rules' function set), so the verification
    /// and the rule cannot drift apart.
    pub async fn verify_household(
        &self,
        members: &[ResidentId],
        tests: &HouseholdTests,
        definition: &crate::rules::RuleDef,
        params: &BTreeMap<String, String>,
        source: &dyn crate::RowSource,
        rule_source: &dyn crate::RowSource,
    ) -> Result<HouseholdReport> {
        let snapshot = self.snapshot();
        let commits: HashMap<&str, &hedui_lake::Commit> = snapshot
            .commits()
            .iter()
            .map(|c| (c.batch.as_str(), c))
            .collect();
        let live: Vec<&hedui_lake::Commit> = snapshot.live_commits().collect();
        // The window ends with the newest month the income sources say they cover.
        let income_as_of = live
            .iter()
            .filter(|c| {
                c.files.iter().any(|f| {
                    SOURCES
                        .iter()
                        .any(|(d, _, kind)| *kind == "income" && f.dataset == *d)
                })
            })
            .filter_map(|c| c.as_of)
            .max()
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        let last = income_as_of.with_day(1).expect("day 1");
        let first = last - Months::new(tests.income_months - 1);
        let window: Vec<String> = (0..tests.income_months)
            .map(|i| month_of(first + Months::new(i)))
            .collect();

        let keys: Vec<String> = members.iter().map(|m| m.key().to_string()).collect();
        let key_list = keys.join(", ");
        let catalog = hedui_model::Catalog::builtin();
        let queries = SOURCES.iter().map(|(dataset, key, _)| {
            // Income outside the window is not read: monthly files and month-ordered row groups
            // outside it are skipped by their statistics.
            let window_sql = income_month_column(dataset)
                .map(|col| format!(" AND {col} BETWEEN DATE '{first}' AND DATE '{last}'"))
                .unwrap_or_default();
            let sql = format!("SELECT * FROM {dataset} WHERE {key} IN ({key_list}){window_sql}");
            async move {
                (
                    *dataset,
                    *key,
                    crate::evidence::json_rows(source, &sql).await,
                )
            }
        });
        // The sources are independent: ask them all at once.
        let answers = futures::future::join_all(queries).await;
        let month_end = (last + Months::new(1)).pred_opt().expect("a day before");
        let reference = |view: &str, extra: &str, filter: &str| {
            definition.render_select(
                &format!("SELECT k{extra}, ev FROM {view} WHERE k IN ({key_list}) AND {filter}"),
                params,
            )
        };
        let income_sql = reference(
            "member_income",
            ", amt",
            &format!("month BETWEEN DATE '{first}' AND DATE '{last}'"),
        )?;
        let assets_sql = reference(
            "member_assets",
            ", kind, detail",
            &format!(
                "(valid_from IS NULL OR valid_from <= DATE '{month_end}') AND (valid_to IS NULL OR valid_to >= DATE '{last}')"
            ),
        )?;
        let (counted_income, counting_assets) = futures::future::join(
            crate::evidence::json_rows(rule_source, &income_sql),
            crate::evidence::json_rows(rule_source, &assets_sql),
        )
        .await;
        // Row reference -> (member key, amount) and -> (member key, kind, detail).
        // (Struct fields are read here, not with get_field: the planner folds get_field of a
        // named_struct into the lineage column, which the policy's views then name twice.)
        let empty = serde_json::Map::new();
        let row_ref = |v: &serde_json::Map<String, serde_json::Value>| {
            let ev = v.get("ev").and_then(|e| e.as_object()).unwrap_or(&empty);
            EvidenceRef {
                dataset: text(ev, "dataset").unwrap_or_default(),
                batch: text(ev, "batch").unwrap_or_default(),
                sheet: text(ev, "sheet"),
                row: ev
                    .get("row_no")
                    .and_then(|r| r.as_i64())
                    .unwrap_or_default(),
            }
        };
        let mut income_of: HashMap<EvidenceRef, i64> = HashMap::new();
        for v in counted_income? {
            income_of.insert(row_ref(&v), cents_of(v.get("amt")).unwrap_or(0));
        }
        let mut asset_of: HashMap<EvidenceRef, (String, String)> = HashMap::new();
        for v in counting_assets? {
            asset_of.insert(
                row_ref(&v),
                (
                    text(&v, "kind").unwrap_or_default(),
                    text(&v, "detail").unwrap_or_default(),
                ),
            );
        }
        let ref_of = |row: &EvidenceRow| EvidenceRef {
            dataset: row.dataset.clone(),
            batch: row.batch.clone(),
            sheet: row.sheet.clone(),
            row: row.row,
        };
        let mut by_member: HashMap<i64, Vec<(&str, EvidenceRow)>> = HashMap::new();
        for (dataset, key, rows) in answers {
            for values in rows? {
                let k = values.get(key).and_then(|v| v.as_i64()).unwrap_or_default();
                by_member
                    .entry(k)
                    .or_default()
                    .push((dataset, evidence_row(dataset, values, &commits)));
            }
        }

        let mut out_members = Vec::new();
        let mut reasons = Vec::new();
        let mut household_income = 0i64;
        for m in members {
            let rows = by_member.remove(&m.key()).unwrap_or_default();
            let mut member = Member {
                person_id: m.as_str().to_string(),
                registered: false,
                name: None,
                status: None,
                region_code: None,
                household_no: None,
                monthly_income_cents: 0,
                income: Vec::new(),
                assets: Vec::new(),
                notes: Vec::new(),
                counted: true,
                irregular: Vec::new(),
                dibao_household: None,
                died: None,
            };
            let mut residential = Vec::new();
            let mut window_income = 0i64;
            for (dataset, row) in rows {
                let v = &row.values;
                match dataset {
                    "persons" => {
                        member.registered = true;
                        member.name = text(v, "name");
                        member.status = text(v, "status");
                        member.region_code = text(v, "region_code");
                        member.household_no = text(v, "household_no");
                        if member.status.as_deref() == Some("deceased")
                            && let Some(d) = date(v, "cancel_date")
                        {
                            member.died = Some(member.died.map_or(d, |x| x.min(d)));
                        }
                        if member.status.as_deref().is_some_and(|s| s != "active") {
                            member.notes.push(format!(
                                "户籍状态 registry status: {} {}",
                                member.status.clone().unwrap_or_default(),
                                text(v, "cancel_date").unwrap_or_default()
                            ));
                        }
                    }
                    "dibao_members" => {
                        member.dibao_household = text(v, "household_no");
                    }
                    "cremations" | "death_certificates" => {
                        if let Some(d) = date(v, "death_date") {
                            member.died = Some(member.died.map_or(d, |x| x.min(d)));
                        }
                    }
                    "tax_income"
                    | "pension_payments"
                    | "unemployment_benefits"
                    | "provident_fund" => {
                        let (month_col, amount_col, label) = match dataset {
                            "tax_income" => {
                                ("period", "income", "工资薪金等应税收入 taxable income")
                            }
                            "pension_payments" => ("month", "amount", "养老金 pension"),
                            "unemployment_benefits" => {
                                ("month", "amount", "失业保险金 unemployment benefit")
                            }
                            _ => ("month", "base", "公积金缴存基数 provident-fund base"),
                        };
                        let month = date(v, month_col).map(month_of);
                        // Income is what R5's `member_income` counts, nothing else.
                        let Some(counted) = income_of.get(&ref_of(&row)) else {
                            continue;
                        };
                        let amount = cents_of(v.get(amount_col)).or(Some(*counted));
                        window_income += counted;
                        member.income.push(Item {
                            kind: "income",
                            label: label.into(),
                            month,
                            amount_cents: amount,
                            disqualifies: None,
                            row,
                        });
                    }
                    "vehicles" => {
                        let ty = text(v, "vehicle_type").unwrap_or_default();
                        let why = asset_of.get(&ref_of(&row)).map(|(_, detail)| {
                            format!("登记在用的机动车 registered vehicle ({ty}): {detail}")
                        });
                        member.assets.push(Item {
                            kind: "vehicle",
                            label: format!(
                                "机动车 vehicle {} {ty} {}",
                                text(v, "plate").unwrap_or_default(),
                                text(v, "status").unwrap_or_default()
                            ),
                            month: None,
                            amount_cents: None,
                            disqualifies: why,
                            row,
                        });
                    }
                    "properties" => {
                        let usage = text(v, "usage").unwrap_or_default();
                        if asset_of
                            .get(&ref_of(&row))
                            .is_some_and(|(kind, _)| kind == "residential")
                        {
                            residential.push(member.assets.len());
                        }
                        member.assets.push(Item {
                            kind: "property",
                            label: format!(
                                "不动产 property {} {usage} {}㎡",
                                text(v, "location").unwrap_or_default(),
                                text(v, "floor_area").unwrap_or_default()
                            ),
                            month: None,
                            amount_cents: None,
                            disqualifies: None,
                            row,
                        });
                    }
                    "businesses" => {
                        let status = text(v, "status").unwrap_or_default();
                        let name = text(v, "name").unwrap_or_default();
                        let counts = asset_of.contains_key(&ref_of(&row));
                        member.assets.push(Item {
                            kind: "business",
                            label: format!("企业法定代表人 legal representative of {name} ({status})"),
                            month: None,
                            amount_cents: cents_of(v.get("registered_capital")),
                            disqualifies: counts
                                .then(|| format!("在营企业法定代表人 legal representative of active business {name}")),
                            row,
                        });
                    }
                    _ => {}
                }
            }
            if residential.len() > tests.max_residential_properties {
                for &i in &residential {
                    member.assets[i].disqualifies = Some(format!(
                        "住宅 {} 套，超过 {} 套 residential properties over the limit",
                        residential.len(),
                        tests.max_residential_properties
                    ));
                }
            }
            member
                .income
                .sort_by(|a, b| (&a.month, a.label.as_str()).cmp(&(&b.month, b.label.as_str())));
            member.monthly_income_cents = window_income / i64::from(tests.income_months);
            if !member.registered {
                member
                    .notes
                    .push("户籍中未找到 not in the household registry".into());
            }
            out_members.push(member);
        }
        // The roster the household is on: the applicant's (the member given first). A member
        // on any other roster is already provided for by another household.
        let roster = out_members.first().and_then(|m| m.dibao_household.clone());
        let mut irregular = Vec::new();
        for member in &mut out_members {
            let who = member
                .name
                .clone()
                .unwrap_or_else(|| member.person_id.clone());
            if !member.registered {
                member
                    .irregular
                    .push("户籍中未找到 not in the household registry".into());
            }
            if let Some(d) = member.died {
                member.irregular.push(format!("已死亡 deceased {d}"));
            } else if member.status.as_deref() == Some("deceased") {
                member.irregular.push("户籍已注销（死亡）deceased".into());
            }
            if member.status.as_deref() == Some("moved_out") {
                member.irregular.push("户籍已迁出 moved out".into());
            }
            if let Some(h) = member
                .dibao_household
                .as_ref()
                .filter(|h| Some(*h) != roster.as_ref())
            {
                member.irregular.push(format!(
                    "已是另一低保家庭 {h} 的成员 on another dibao household's roster"
                ));
            }
            member.counted = member.irregular.is_empty();
            if !member.counted {
                irregular.push(format!(
                    "{who}: {}，未计入家庭人口 (not counted in the household)",
                    member.irregular.join("；")
                ));
                continue;
            }
            household_income += member.monthly_income_cents;
            for a in &member.assets {
                if let Some(why) = &a.disqualifies
                    && !reasons.contains(&format!("{who}: {why}"))
                {
                    reasons.push(format!("{who}: {why}"));
                }
            }
        }
        let counted = out_members.iter().filter(|m| m.counted).count();
        let per_capita = household_income / counted.max(1) as i64;
        if counted > 0 && per_capita > tests.dibao_line_cents {
            reasons.insert(
                0,
                format!(
                    "家庭人均月收入 {} 元，高于低保标准 {} 元 per-capita monthly income above the line",
                    yuan(per_capita),
                    yuan(tests.dibao_line_cents)
                ),
            );
        }
        let eligible = reasons.is_empty();
        let (verdict, verdict_zh) = if !eligible {
            ("ineligible", "不符合低保条件")
        } else if !irregular.is_empty() || counted == 0 {
            ("needs_review", "需核实：部分成员情况异常，未计入家庭人口")
        } else {
            ("eligible", "未发现不符合条件的收入或财产（待入户调查确认）")
        };
        reasons.extend(irregular);
        let mut sources: Vec<SourceAsOf> = SOURCES
            .iter()
            .map(|(dataset, _, _)| {
                let mine: Vec<_> = live
                    .iter()
                    .filter(|c| c.files.iter().any(|f| f.dataset == *dataset))
                    .collect();
                let def = catalog.get(dataset).ok();
                SourceAsOf {
                    dataset: dataset.to_string(),
                    title_zh: def.map(|d| d.title_zh.clone()).unwrap_or_default(),
                    department: def.map(|d| d.department.clone()).unwrap_or_default(),
                    as_of: mine.iter().filter_map(|c| c.as_of).max(),
                    batches: mine.len(),
                }
            })
            .collect();
        sources.sort_by(|a, b| a.dataset.cmp(&b.dataset));
        Ok(HouseholdReport {
            lake_version: snapshot.version(),
            window,
            size: counted,
            monthly_income_cents: household_income,
            per_capita_cents: per_capita,
            line_cents: tests.dibao_line_cents,
            members: out_members,
            verdict,
            verdict_zh,
            reasons,
            sources,
        })
    }
}

/// Cents as yuan text: 123456 -> "1234.56".
pub fn yuan(cents: i64) -> String {
    hedui_model::Money::from_cents(cents).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_citys_tests_come_from_r5s_parameters() {
        let t = HouseholdTests::from_params(&BTreeMap::new());
        assert_eq!(t.dibao_line_cents, 80_000);
        assert_eq!(t.max_residential_properties, 1);
        assert_eq!(t.income_months, 6);
        let t = HouseholdTests::from_params(&BTreeMap::from([
            ("dibao_line".to_string(), "850.5".to_string()),
            (
                "vehicle_types".to_string(),
                "passenger_car, truck".to_string(),
            ),
            ("income_months".to_string(), "12".to_string()),
        ]));
        assert_eq!(t.dibao_line_cents, 85_050);
        assert_eq!(t.income_months, 12);
    }

    #[test]
    fn money_is_read_exactly() {
        assert_eq!(yuan_cents("2555"), Some(255_500));
        assert_eq!(yuan_cents("12.3"), Some(1_230));
        assert_eq!(yuan_cents("-0.50"), Some(-50));
        assert_eq!(cents_of(Some(&serde_json::json!(33.7))), Some(3_370));
        assert_eq!(cents_of(Some(&serde_json::json!("x"))), None);
        assert_eq!(yuan(123_456), "1234.56");
    }
}
