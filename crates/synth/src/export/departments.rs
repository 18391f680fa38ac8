//! One writer per department export of department-exports.md.

use chrono::Datelike;

use super::Exporter;
use super::breakage::{Breaker, Fate, Fates, emit};
use super::csv_out::{CsvOut, Enc};
use super::habits;
use super::xlsx_out::{SheetOut, XCell, workbook};
use crate::city::*;
use crate::names::{self, COUNTIES};
use crate::truth::FileTruth;
use crate::{Error, Result};

/// Save a workbook under the data directory and record what it holds in the truth.
fn save_workbook(
    ex: &mut Exporter,
    wb: &mut rust_xlsxwriter::Workbook,
    rel: String,
    dataset: Vec<String>,
    data_rows: u64,
) -> Result<()> {
    let path = ex.path(&rel);
    std::fs::create_dir_all(path.parent().expect("dir")).map_err(|e| Error::io(&path, e))?;
    wb.save(&path)?;
    ex.truth.files.insert(
        rel,
        FileTruth {
            dataset,
            data_rows,
            encoding: "xlsx".into(),
        },
    );
    Ok(())
}

pub fn write_all(ex: &mut Exporter) -> Result<()> {
    use super::ledgers::*;
    registry(ex)?;
    cremations(ex)?;
    death_certificates(ex)?;
    dibao_roster(ex)?;
    dibao_payments(ex)?;
    pensions(ex)?;
    medical(ex)?;
    rural_coop(ex)?;
    benefits(ex)?;
    contributions(ex)?;
    vehicles(ex)?;
    prisons(ex)?;
    properties(ex)?;
    provident(ex)?;
    businesses(ex)?;
    tax(ex)?;
    Ok(())
}

/// The registry is exported by the city's two public-security systems, 城区 (the districts) and
/// 县市 (the counties and county-level cities): one delivery in two files.
fn registry(ex: &mut Exporter) -> Result<()> {
    let header = [
        "公民身份号码",
        "姓名",
        "性别",
        "出生日期",
        "户号",
        "住址",
        "行政区划代码",
        "人口状态",
        "注销日期",
    ];
    let mut parts = Vec::new();
    for part in ["城区", "县市"] {
        let rel = format!("公安/户籍人口_{part}_{}0105.csv", YEAR + 1);
        let mut out = CsvOut::create(&ex.root, &rel, "persons", Enc::Utf8Bom)?;
        out.layout(&header)?;
        parts.push((out, Fates::new()));
    }
    let city = ex.city;
    for (i, p) in city.persons.iter().enumerate() {
        let i = i as u32;
        let hh = &city.households[p.household as usize];
        // The districts' codes are 420502-420506; the rest are counties and county-level cities.
        let urban = COUNTIES[hh.county as usize].code.starts_with("42050");
        let (out, fates) = &mut parts[usize::from(!urban)];
        let (status, cancel) = match (city.death_of(i).and_then(|d| d.registry), p.moved_out) {
            (Some(d), _) => ("死亡", d.format("%Y%m%d").to_string()),
            (None, Some(m)) => ("迁出", m.format("%Y%m%d").to_string()),
            _ => ("正常", String::new()),
        };
        let row = vec![
            habits::id(&mut ex.rng, &p.id, p.legacy15),
            city.name(i),
            if p.sex == hedui_model::Sex::Male {
                "男"
            } else {
                "女"
            }
            .to_string(),
            p.birth.format("%Y%m%d").to_string(),
            hh.no.clone(),
            city.address(p.household),
            COUNTIES[hh.county as usize].code.to_string(),
            status.to_string(),
            cancel,
        ];
        let breakers = [Breaker::Check, Breaker::Misaligned(5), Breaker::Code(7)];
        emit(
            out,
            fates,
            &mut ex.rng,
            row,
            0,
            if p.legacy15 {
                &breakers[1..]
            } else {
                &breakers
            },
        )?;
    }
    for (out, _) in parts {
        out.finish(ex.truth)?;
    }
    Ok(())
}

fn cremations(ex: &mut Exporter) -> Result<()> {
    let rel = format!("民政/殡葬火化登记_{YEAR}.xlsx");
    let city = ex.city;
    let mut wb = workbook()?;
    let header = [
        "序号",
        "逝者姓名",
        "身份证号码",
        "性别",
        "死亡日期",
        "火化日期",
        "殡仪馆",
    ];
    let mut total_rows = 0;
    for (half, months) in [("上半年", 0..6u32), ("下半年", 6..12u32)] {
        let title = format!("宜昌市{YEAR}年殡葬火化登记表（{half}）");
        let ws = wb.add_worksheet();
        let mut sheet = SheetOut::new(
            ws,
            &rel,
            half,
            "cremations",
            &title,
            "填报单位：宜昌市民政局殡葬管理所",
            &header,
        )?;
        let mut n = 0;
        let mut fates = Fates::new();
        for d in city.deaths.iter().filter(|d| {
            d.cremation
                .is_some_and(|c| c.year() == YEAR && months.contains(&c.month0()))
        }) {
            let day = d.cremation.expect("filtered");
            let p = &city.persons[d.person as usize];
            n += 1;
            let death_cell = if ex.rng.chance(0.7) {
                XCell::Date(day)
            } else {
                XCell::Text(habits::date(&mut ex.rng, day, &["cn", "dot", "iso"]))
            };
            let cells = |id: XCell, death: XCell| {
                vec![
                    XCell::Number(n as f64),
                    XCell::Text(city.name(d.person)),
                    id,
                    XCell::Text(
                        if p.sex == hedui_model::Sex::Male {
                            "男"
                        } else {
                            "女"
                        }
                        .into(),
                    ),
                    death,
                    XCell::Date(day + chrono::Duration::days(2)),
                    XCell::Text(
                        names::FUNERAL_HOMES[d.person as usize % names::FUNERAL_HOMES.len()].into(),
                    ),
                ]
            };
            if fates.next(&mut ex.rng) == Fate::Break {
                if ex.rng.chance(0.5) {
                    // Typed into a General cell: Excel keeps 15 digits and shows 4.20502E+17.
                    let number: f64 = p.id.as_str()[..17].parse::<f64>().expect("digits") * 10.0;
                    sheet.broken(
                        &cells(XCell::Number(number), XCell::Date(day)),
                        "id.scientific_notation",
                        "ID stored as a number by Excel",
                    )?;
                } else {
                    sheet.broken(
                        &cells(
                            XCell::Text(p.id.to_string()),
                            XCell::Text(format!("{YEAR}年2月30日")),
                        ),
                        "date.invalid",
                        "a death date that does not exist",
                    )?;
                }
            }
            sheet.row(&cells(
                XCell::Text(habits::id(&mut ex.rng, &p.id, false)),
                death_cell,
            ))?;
        }
        sheet.total(&[
            XCell::Text("合计".into()),
            XCell::Text(String::new()),
            XCell::Text(format!("共{n}人")),
        ])?;
        total_rows += sheet.finish(ex.truth);
    }
    save_workbook(ex, &mut wb, rel, vec!["cremations".into()], total_rows)
}

fn death_certificates(ex: &mut Exporter) -> Result<()> {
    const PAGE: usize = 500;
    let city = ex.city;
    let records: Vec<&Death> = city
        .deaths
        .iter()
        .filter(|d| d.certificate.is_some())
        .collect();
    let total = records.len();
    let pages = total.div_ceil(PAGE).max(1);
    let mut fates = Fates::new();
    for page in 0..pages {
        let rel = format!("卫健/死亡医学证明/page-{:04}.json", page + 1);
        let mut list = Vec::new();
        let mut broken = Vec::new();
        for d in records.iter().skip(page * PAGE).take(PAGE) {
            let p = &city.persons[d.person as usize];
            let day = d.certificate.expect("filtered");
            let rec = |sfzh: String, swrq: String| {
                serde_json::json!({
                    "xm": city.name(d.person),
                    "sfzh": sfzh,
                    "swrq": swrq,
                    "swyy": names::CAUSES[d.person as usize % names::CAUSES.len()],
                    "jgmc": names::HOSPITALS[d.person as usize % names::HOSPITALS.len()],
                })
            };
            let swrq = if ex.rng.chance(0.5) {
                day.format("%Y-%m-%d").to_string()
            } else {
                day.format("%Y%m%d").to_string()
            };
            if fates.next(&mut ex.rng) == Fate::Break {
                list.push(rec(habits::broken_id(&p.id), swrq.clone()));
                broken.push(crate::truth::BrokenRow {
                    file: rel.clone(),
                    sheet: None,
                    row: list.len() as u64,
                    dataset: "death_certificates".into(),
                    problem: "id.bad_check".into(),
                    what: "ID typed with a wrong check character".into(),
                });
            }
            list.push(rec(p.id.to_string(), swrq));
        }
        let n = list.len();
        let doc = serde_json::json!({
            "code": 0,
            "msg": "成功",
            "data": { "total": total, "pageNo": page + 1, "pageSize": PAGE, "list": list }
        });
        let path = ex.path(&rel);
        std::fs::create_dir_all(path.parent().expect("dir")).map_err(|e| Error::io(&path, e))?;
        let body = serde_json::to_vec_pretty(&doc).expect("json");
        std::fs::write(&path, &body).map_err(|e| Error::io(&path, e))?;
        ex.truth.broken_rows.extend(broken);
        ex.truth.files.insert(
            rel.clone(),
            FileTruth {
                dataset: vec!["death_certificates".into()],
                data_rows: n as u64,
                encoding: "UTF-8".into(),
            },
        );
        if page == 0 {
            // The API was pulled twice: the same page arrives again, byte for byte.
            let again = "卫健/死亡医学证明/重新推送/page-0001.json".to_string();
            let p2 = ex.path(&again);
            std::fs::create_dir_all(p2.parent().expect("dir")).map_err(|e| Error::io(&p2, e))?;
            std::fs::write(&p2, &body).map_err(|e| Error::io(&p2, e))?;
            ex.truth.redelivered_files.push(again);
        }
    }
    Ok(())
}

fn dibao_roster(ex: &mut Exporter) -> Result<()> {
    let rel = format!("民政/低保家庭名册_{YEAR}12.xlsx");
    let city = ex.city;
    let mut wb = workbook()?;
    let mut households_rows = 0;
    {
        let ws = wb.add_worksheet();
        let header = [
            "户编号",
            "户主姓名",
            "户主身份证号",
            "保障人数",
            "月保障金额",
            "街道",
            "社区",
            "起始年月",
        ];
        let mut sheet = SheetOut::new(
            ws,
            &rel,
            "低保家庭",
            "dibao_households",
            "宜昌市城乡最低生活保障家庭名册",
            "单位：人、元",
            &header,
        )?;
        let (mut people, mut money) = (0.0, 0.0);
        for d in &city.dibao {
            let head = d.members[0];
            let amount = (i64::from(d.roster_covered) * d.cents_per_person) as f64 / 100.0;
            people += f64::from(d.roster_covered);
            money += amount;
            let covered = if ex.rng.chance(0.3) {
                XCell::Text(d.roster_covered.to_string())
            } else {
                XCell::Number(f64::from(d.roster_covered))
            };
            sheet.row(&[
                XCell::Text(d.no.clone()),
                XCell::Text(habits::name(&mut ex.rng, &city.name(head))),
                XCell::Text(habits::id(
                    &mut ex.rng,
                    &city.persons[head as usize].id,
                    false,
                )),
                covered,
                XCell::Number(amount),
                XCell::Text(city.subdistrict(d.household).into()),
                XCell::Text(city.community(d.household)),
                XCell::Text(habits::month(
                    &mut ex.rng,
                    d.start.year(),
                    d.start.month(),
                    &["iso", "compact"],
                )),
            ])?;
        }
        sheet.total(&[
            XCell::Text("合计".into()),
            XCell::Text(String::new()),
            XCell::Text(String::new()),
            XCell::Number(people),
            XCell::Number(money),
        ])?;
        households_rows += sheet.finish(ex.truth);
    }
    let mut member_rows = 0;
    {
        let ws = wb.add_worksheet();
        let header = ["户编号", "成员姓名", "成员身份证号", "与户主关系"];
        let mut sheet = SheetOut::new(
            ws,
            &rel,
            "家庭成员",
            "dibao_members",
            "低保家庭成员名单",
            "",
            &header,
        )?;
        let mut fates = Fates::new();
        for d in &city.dibao {
            for (k, &m) in d.members.iter().enumerate() {
                let relation = match k {
                    0 => "户主",
                    1 => "配偶",
                    _ => "子女",
                };
                let id = &city.persons[m as usize].id;
                let cells = |id_text: String| {
                    vec![
                        XCell::Text(d.no.clone()),
                        XCell::Text(city.name(m)),
                        XCell::Text(id_text),
                        XCell::Text(relation.into()),
                    ]
                };
                if fates.next(&mut ex.rng) == Fate::Break {
                    sheet.broken(
                        &cells(habits::broken_id(id)),
                        "id.bad_check",
                        "ID typed with a wrong check character",
                    )?;
                }
                sheet.row(&cells(habits::id(&mut ex.rng, id, false)))?;
            }
        }
        member_rows += sheet.finish(ex.truth);
    }
    save_workbook(
        ex,
        &mut wb,
        rel,
        vec!["dibao_households".into(), "dibao_members".into()],
        households_rows + member_rows,
    )
}

fn dibao_payments(ex: &mut Exporter) -> Result<()> {
    let rel = format!("民政/低保金发放明细_{YEAR}.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "dibao_payments", Enc::Gbk)?;
    out.layout(&["户编号", "发放年月", "发放金额", "保障人数"])?;
    let mut fates = Fates::new();
    for k in 0..12usize {
        for d in &ex.city.dibao {
            if d.covered[k] == 0 {
                continue;
            }
            let row = vec![
                d.no.clone(),
                habits::month(&mut ex.rng, YEAR, k as u32 + 1, &["iso", "compact", "cn"]),
                habits::money(&mut ex.rng, d.payment_cents(k), true),
                d.covered[k].to_string(),
            ];
            emit(
                &mut out,
                &mut fates,
                &mut ex.rng,
                row,
                0,
                &[Breaker::Month(1)],
            )?;
        }
    }
    out.finish(ex.truth)
}
