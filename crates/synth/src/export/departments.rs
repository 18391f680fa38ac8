//! One writer per department export of department-exports.md.

use std::collections::HashMap;

use chrono::Datelike;
use rust_xlsxwriter::Workbook;

use super::Exporter;
use super::csv_out::{CsvOut, Enc};
use super::habits;
use super::xlsx_out::{SheetOut, XCell};
use crate::city::*;
use crate::names::{self, COUNTIES};
use crate::rng::Rng;
use crate::truth::FileTruth;
use crate::{Error, Result};

/// What happens to the next row of a file: written, written twice, or preceded by a broken copy.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Normal,
    Duplicate,
    Break,
}

struct Fates {
    n: u64,
    broke: bool,
}

impl Fates {
    fn new() -> Self {
        Fates { n: 0, broke: false }
    }

    fn next(&mut self, rng: &mut Rng) -> Fate {
        self.n += 1;
        // Every file of some size gets at least one broken row, early on.
        if !self.broke && self.n == 7 {
            self.broke = true;
            return Fate::Break;
        }
        match rng.below(1500) {
            0..=1 => Fate::Break,
            2 => Fate::Duplicate,
            _ => Fate::Normal,
        }
    }
}

/// A workbook stamped with a fixed creation time: the same seed must give the same bytes.
fn workbook() -> Result<Workbook> {
    let mut wb = Workbook::new();
    let created = rust_xlsxwriter::ExcelDateTime::from_ymd(YEAR as u16 + 1, 1, 5)?;
    let props = rust_xlsxwriter::DocProperties::new()
        .set_author("宜昌市民政局")
        .set_creation_datetime(&created);
    wb.set_properties(&props);
    Ok(wb)
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Write a CSV row with its fate. `id_col` is where the resident ID is; `breakers` are the ways
/// this file's rows get broken, chosen in turn.
fn emit(
    out: &mut CsvOut,
    fates: &mut Fates,
    rng: &mut Rng,
    row: Vec<String>,
    id_col: usize,
    breakers: &[Breaker],
) -> Result<()> {
    match fates.next(rng) {
        Fate::Normal => out.row(&refs(&row)).map(|_| ()),
        Fate::Duplicate => {
            out.row(&refs(&row))?;
            out.duplicate(&refs(&row))
        }
        Fate::Break => {
            let b = breakers[rng.below(breakers.len())];
            let mut bad = row.clone();
            match b {
                Breaker::Check => {
                    let id = hedui_model::ResidentId::parse(&row[id_col])
                        .expect("generated IDs are valid");
                    bad[id_col] = habits::broken_id(&id);
                    out.broken(
                        &refs(&bad),
                        "id.bad_check",
                        "ID typed with a wrong check character",
                    )?;
                }
                Breaker::Missing => {
                    bad[id_col] = String::new();
                    out.broken(&refs(&bad), "value.missing", "ID left empty")?;
                }
                Breaker::Short => {
                    let id = hedui_model::ResidentId::parse(&row[id_col]).expect("valid");
                    bad[id_col] = id.as_str()[..17].to_string();
                    out.broken(
                        &refs(&bad),
                        "id.bad_length",
                        "ID missing its last character",
                    )?;
                }
                Breaker::Date(col) => {
                    bad[col] = "2025-02-30".into();
                    out.broken(&refs(&bad), "date.invalid", "a date that does not exist")?;
                }
                Breaker::Month(col) => {
                    bad[col] = "2025-13".into();
                    out.broken(&refs(&bad), "month.form", "a month that does not exist")?;
                }
                Breaker::Code(col) => {
                    bad[col] = "待定".into();
                    out.broken(
                        &refs(&bad),
                        "code.unknown",
                        "a code the department never defined",
                    )?;
                }
                Breaker::Misaligned(col) => out.misaligned(&refs(&bad), col)?,
            }
            out.row(&refs(&row)).map(|_| ())
        }
    }
}

#[derive(Clone, Copy)]
enum Breaker {
    Check,
    Missing,
    Short,
    Date(usize),
    Month(usize),
    Code(usize),
    Misaligned(usize),
}

pub fn write_all(ex: &mut Exporter) -> Result<()> {
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

fn registry(ex: &mut Exporter) -> Result<()> {
    let rel = format!("公安/户籍人口_{}0105.csv", YEAR + 1);
    let mut out = CsvOut::create(&ex.root, &rel, "persons", Enc::Utf8Bom)?;
    out.layout(&[
        "公民身份号码",
        "姓名",
        "性别",
        "出生日期",
        "户号",
        "住址",
        "行政区划代码",
        "人口状态",
        "注销日期",
    ])?;
    let mut fates = Fates::new();
    let city = ex.city;
    for (i, p) in city.persons.iter().enumerate() {
        let i = i as u32;
        let hh = &city.households[p.household as usize];
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
            &mut out,
            &mut fates,
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
    out.finish(ex.truth)
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
    let path = ex.path(&rel);
    std::fs::create_dir_all(path.parent().expect("dir")).map_err(|e| Error::io(&path, e))?;
    wb.save(&path)?;
    ex.truth.files.insert(
        rel,
        FileTruth {
            dataset: vec!["cremations".into()],
            data_rows: total_rows,
            encoding: "xlsx".into(),
        },
    );
    Ok(())
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
    let path = ex.path(&rel);
    std::fs::create_dir_all(path.parent().expect("dir")).map_err(|e| Error::io(&path, e))?;
    wb.save(&path)?;
    ex.truth.files.insert(
        rel,
        FileTruth {
            dataset: vec!["dibao_households".into(), "dibao_members".into()],
            data_rows: households_rows + member_rows,
            encoding: "xlsx".into(),
        },
    );
    Ok(())
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

fn person_no(i: u32) -> String {
    format!("4205{:010}", u64::from(i) * 7 + 1_000_003)
}

fn pensions(ex: &mut Exporter) -> Result<()> {
    let city = ex.city;
    for k in 0..12u32 {
        let rel = format!("人社/养老金发放明细_{YEAR}{:02}.csv", k + 1);
        let enc = if k % 2 == 0 { Enc::Gbk } else { Enc::Utf8 };
        let mut out = CsvOut::create(&ex.root, &rel, "pension_payments", enc)?;
        out.layout(&[
            "个人编号",
            "姓名",
            "公民身份号码",
            "险种",
            "发放年月",
            "发放金额",
        ])?;
        let mut fates = Fates::new();
        let codes = k >= 9;
        for p in city.pensions.iter().filter(|p| p.months & (1 << k) != 0) {
            let scheme = match (p.scheme, codes) {
                (PensionScheme::Enterprise, false) => "企业职工基本养老保险",
                (PensionScheme::Enterprise, true) => "110",
                (PensionScheme::Resident, false) => "城乡居民基本养老保险",
                (PensionScheme::Resident, true) => "170",
            };
            let row = vec![
                person_no(p.person),
                city.name(p.person),
                habits::id(&mut ex.rng, &city.persons[p.person as usize].id, false),
                scheme.into(),
                format!("{YEAR}{:02}", k + 1),
                crate::city::yuan(p.cents),
            ];
            emit(
                &mut out,
                &mut fates,
                &mut ex.rng,
                row,
                2,
                &[Breaker::Check, Breaker::Missing, Breaker::Code(3)],
            )?;
        }
        out.finish(ex.truth)?;
    }
    Ok(())
}

fn scheme_name(s: MedScheme) -> &'static str {
    match s {
        MedScheme::Employee => "职工基本医疗保险",
        MedScheme::UrbanResident => "城镇居民基本医疗保险",
        MedScheme::UrbanRural => "城乡居民基本医疗保险",
    }
}

fn medical(ex: &mut Exporter) -> Result<()> {
    let rel = format!("人社/医疗保险参保登记_{YEAR}1231.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "medical_enrolments", Enc::Utf8)?;
    out.layout(&[
        "身份证号",
        "姓名",
        "险种",
        "参保地行政区划",
        "参保日期",
        "终止日期",
    ])?;
    let mut fates = Fates::new();
    let city = ex.city;
    for e in &city.enrolments {
        let row = vec![
            habits::id(&mut ex.rng, &city.persons[e.person as usize].id, false),
            city.name(e.person),
            scheme_name(e.scheme).into(),
            e.region.into(),
            habits::date(&mut ex.rng, e.start, &["slash", "iso"]),
            e.end
                .map(|d| habits::date(&mut ex.rng, d, &["slash", "iso"]))
                .unwrap_or_default(),
        ];
        emit(
            &mut out,
            &mut fates,
            &mut ex.rng,
            row,
            0,
            &[Breaker::Check, Breaker::Date(4)],
        )?;
    }
    out.finish(ex.truth)
}

fn rural_coop(ex: &mut Exporter) -> Result<()> {
    let rel = "卫健/新农合参合登记_2014-2016.csv".to_string();
    let mut out = CsvOut::create(&ex.root, &rel, "rural_coop_enrolments", Enc::Gbk)?;
    out.layout(&["身份证号", "姓名", "参合年度", "参合地"])?;
    let mut fates = Fates::new();
    let city = ex.city;
    for r in &city.rural_coop {
        let row = vec![
            habits::id(
                &mut ex.rng,
                &city.persons[r.person as usize].id,
                city.persons[r.person as usize].legacy15,
            ),
            city.name(r.person),
            r.year.to_string(),
            COUNTIES[r.county as usize].name.into(),
        ];
        emit(
            &mut out,
            &mut fates,
            &mut ex.rng,
            row,
            0,
            &[Breaker::Missing],
        )?;
    }
    out.finish(ex.truth)
}

fn benefits(ex: &mut Exporter) -> Result<()> {
    let rel = format!("人社/失业保险金发放_{YEAR}.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "unemployment_benefits", Enc::Utf8)?;
    out.layout(&["身份证号", "姓名", "发放年月", "金额"])?;
    let mut fates = Fates::new();
    let city = ex.city;
    for k in 0..12u32 {
        for b in city.benefits.iter().filter(|b| b.months & (1 << k) != 0) {
            let row = vec![
                habits::id(&mut ex.rng, &city.persons[b.person as usize].id, false),
                city.name(b.person),
                habits::month(&mut ex.rng, YEAR, k + 1, &["iso", "compact"]),
                crate::city::yuan(b.cents),
            ];
            emit(
                &mut out,
                &mut fates,
                &mut ex.rng,
                row,
                0,
                &[Breaker::Check, Breaker::Month(2)],
            )?;
        }
    }
    out.finish(ex.truth)
}

fn contributions(ex: &mut Exporter) -> Result<()> {
    let rel = format!("人社/社会保险缴费记录_{YEAR}.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "contributions", Enc::Utf8)?;
    out.layout(&[
        "身份证号",
        "单位名称",
        "统一社会信用代码",
        "缴费年月",
        "缴费基数",
    ])?;
    let mut fates = Fates::new();
    let city = ex.city;
    for k in 0..12u32 {
        for e in city.employments.iter().filter(|e| e.months & (1 << k) != 0) {
            let employer = &city.employers[e.employer as usize];
            let row = vec![
                habits::id(&mut ex.rng, &city.persons[e.person as usize].id, false),
                employer.name.clone(),
                employer.credit_code.clone(),
                format!("{YEAR}{:02}", k + 1),
                crate::city::yuan(e.base_cents),
            ];
            emit(
                &mut out,
                &mut fates,
                &mut ex.rng,
                row,
                0,
                &[Breaker::Check, Breaker::Short],
            )?;
        }
    }
    out.finish(ex.truth)
}

fn vehicles(ex: &mut Exporter) -> Result<()> {
    let rel = format!("公安/机动车登记_{YEAR}1231.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "vehicles", Enc::Gbk)?;
    out.layout(&[
        "号牌号码",
        "车辆类型",
        "所有人",
        "所有人身份证明号码",
        "初次登记日期",
        "注销日期",
        "车辆状态",
    ])?;
    let mut fates = Fates::new();
    let city = ex.city;
    let mut plates: HashMap<&str, u32> = HashMap::new();
    for v in &city.vehicles {
        // Plates are unique; a reused random plate gets a suffix.
        let n = plates.entry(v.plate.as_str()).or_insert(0);
        *n += 1;
        let plate = if *n > 1 {
            format!("{}{}", &v.plate, n)
        } else {
            v.plate.clone()
        };
        let kind = match v.kind {
            VehicleKind::Car => *ex
                .rng
                .pick(&["小型轿车", "小型普通客车", "K33", "小型越野客车"]),
            VehicleKind::Motorcycle => *ex.rng.pick(&["普通二轮摩托车", "M21"]),
            VehicleKind::ThreeWheeler => *ex.rng.pick(&["正三轮摩托车", "三轮汽车"]),
            VehicleKind::Truck => *ex.rng.pick(&["轻型普通货车", "H31"]),
        };
        let row = vec![
            plate,
            kind.into(),
            city.name(v.owner),
            habits::id(&mut ex.rng, &city.persons[v.owner as usize].id, false),
            habits::date(&mut ex.rng, v.registered, &["iso", "compact"]),
            v.deregistered
                .map(|d| habits::date(&mut ex.rng, d, &["iso", "compact"]))
                .unwrap_or_default(),
            if v.deregistered.is_some() {
                "注销"
            } else {
                "正常"
            }
            .into(),
        ];
        emit(
            &mut out,
            &mut fates,
            &mut ex.rng,
            row,
            3,
            &[Breaker::Check, Breaker::Code(1)],
        )?;
    }
    out.finish(ex.truth)
}

fn prisons(ex: &mut Exporter) -> Result<()> {
    let rel = format!("司法/服刑人员_{YEAR}.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "incarcerations", Enc::Utf8)?;
    out.layout(&["身份证号", "姓名", "入监日期", "刑满日期"])?;
    let mut fates = Fates::new();
    let city = ex.city;
    for t in &city.prisons {
        let row = vec![
            habits::id(&mut ex.rng, &city.persons[t.person as usize].id, false),
            city.name(t.person),
            habits::date(&mut ex.rng, t.entry, &["dot", "iso"]),
            t.release
                .map(|d| habits::date(&mut ex.rng, d, &["dot", "iso"]))
                .unwrap_or_default(),
        ];
        emit(
            &mut out,
            &mut fates,
            &mut ex.rng,
            row,
            0,
            &[Breaker::Date(2)],
        )?;
    }
    out.finish(ex.truth)
}

fn properties(ex: &mut Exporter) -> Result<()> {
    let rel = format!("住建/不动产登记_{YEAR}1231.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "properties", Enc::Utf8Bom)?;
    out.layout(&[
        "权利人",
        "权利人证件号",
        "坐落",
        "建筑面积",
        "用途",
        "登记日期",
    ])?;
    let mut fates = Fates::new();
    let city = ex.city;
    for p in &city.properties {
        let area = crate::city::yuan(p.area_centi);
        let usage = match p.usage {
            Usage::Residential => *ex.rng.pick(&["住宅", "成套住宅"]),
            Usage::Commercial => "商业",
            Usage::Parking => "车库",
        };
        let row = vec![
            city.name(p.owner),
            habits::id(&mut ex.rng, &city.persons[p.owner as usize].id, false),
            p.location.clone(),
            if ex.rng.chance(0.3) {
                format!("{area}㎡")
            } else {
                area
            },
            usage.into(),
            habits::date(&mut ex.rng, p.registered, &["iso", "cn"]),
        ];
        emit(
            &mut out,
            &mut fates,
            &mut ex.rng,
            row,
            1,
            &[Breaker::Check, Breaker::Code(4)],
        )?;
    }
    out.finish(ex.truth)
}

fn provident(ex: &mut Exporter) -> Result<()> {
    let rel = format!("公积金/住房公积金缴存_{YEAR}.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "provident_fund", Enc::Gbk)?;
    out.layout(&["身份证号", "姓名", "缴存年月", "缴存基数", "月缴存额"])?;
    let mut fates = Fates::new();
    let city = ex.city;
    let lines: Vec<(u32, Months, i64)> = city
        .employments
        .iter()
        .filter(|e| e.provident)
        .map(|e| (e.person, e.months, e.base_cents))
        .chain(
            city.extra_provident
                .iter()
                .map(|x| (x.person, x.months, x.cents)),
        )
        .collect();
    for k in 0..12u32 {
        for &(person, months, base) in lines.iter().filter(|l| l.1 & (1 << k) != 0) {
            let _ = months;
            let row = vec![
                habits::id(&mut ex.rng, &city.persons[person as usize].id, false),
                city.name(person),
                format!("{YEAR}-{:02}", k + 1),
                habits::money(&mut ex.rng, base, true),
                crate::city::yuan(base * 24 / 100),
            ];
            emit(&mut out, &mut fates, &mut ex.rng, row, 0, &[Breaker::Check])?;
        }
    }
    out.finish(ex.truth)
}

fn businesses(ex: &mut Exporter) -> Result<()> {
    let rel = format!("市场监管/市场主体登记_{YEAR}1231.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "businesses", Enc::Utf8)?;
    out.layout(&[
        "企业名称",
        "统一社会信用代码",
        "法定代表人",
        "法定代表人证件号",
        "注册资本(万元)",
        "登记状态",
    ])?;
    let mut fates = Fates::new();
    let city = ex.city;
    for b in &city.businesses {
        let status = match b.status {
            BizStatus::Active => *ex.rng.pick(&["存续", "在业"]),
            BizStatus::Revoked => "吊销",
            BizStatus::Cancelled => "注销",
        };
        let row = vec![
            b.name.clone(),
            b.credit_code.clone(),
            city.name(b.rep),
            habits::id(&mut ex.rng, &city.persons[b.rep as usize].id, false),
            format!("{}", b.capital_wan_centi / 10_000),
            status.into(),
        ];
        emit(
            &mut out,
            &mut fates,
            &mut ex.rng,
            row,
            3,
            &[Breaker::Check, Breaker::Code(5)],
        )?;
    }
    out.finish(ex.truth)
}

fn tax(ex: &mut Exporter) -> Result<()> {
    let rel = format!("税务/个人所得税_{YEAR}.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "tax_income", Enc::Utf8)?;
    out.layout(&["纳税人识别号", "所得期间", "收入额"])?;
    let mut fates = Fates::new();
    let city = ex.city;
    let lines: Vec<(u32, Months, i64)> = city
        .employments
        .iter()
        .filter(|e| e.taxed)
        .map(|e| (e.person, e.months, e.base_cents))
        .chain(city.extra_tax.iter().map(|x| (x.person, x.months, x.cents)))
        .collect();
    for k in 0..12u32 {
        for &(person, _, cents) in lines.iter().filter(|l| l.1 & (1 << k) != 0) {
            let row = vec![
                habits::id(&mut ex.rng, &city.persons[person as usize].id, false),
                habits::month(&mut ex.rng, YEAR, k + 1, &["iso", "compact"]),
                crate::city::yuan(cents),
            ];
            emit(
                &mut out,
                &mut fates,
                &mut ex.rng,
                row,
                0,
                &[Breaker::Check, Breaker::Month(1)],
            )?;
        }
    }
    out.finish(ex.truth)
}
