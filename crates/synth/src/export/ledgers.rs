//! The monthly ledgers and registers of social security, housing, the provident fund, market
//! regulation and tax.

use std::collections::HashMap;

use super::Exporter;
use super::breakage::{Breaker, Fates, emit};
use super::csv_out::{CsvOut, Enc};
use super::habits;
use crate::Result;
use crate::city::*;
use crate::names::COUNTIES;

fn person_no(i: u32) -> String {
    format!("4205{:010}", u64::from(i) * 7 + 1_000_003)
}

pub(super) fn pensions(ex: &mut Exporter) -> Result<()> {
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

pub(super) fn medical(ex: &mut Exporter) -> Result<()> {
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

pub(super) fn rural_coop(ex: &mut Exporter) -> Result<()> {
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
            // The older system wrote places as names, with or without the city, or as codes.
            match ex.rng.below(3) {
                0 => COUNTIES[r.county as usize].name.to_string(),
                1 => format!("宜昌市{}", COUNTIES[r.county as usize].name),
                _ => COUNTIES[r.county as usize].code.to_string(),
            },
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

pub(super) fn benefits(ex: &mut Exporter) -> Result<()> {
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

pub(super) fn contributions(ex: &mut Exporter) -> Result<()> {
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

pub(super) fn vehicles(ex: &mut Exporter) -> Result<()> {
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

pub(super) fn prisons(ex: &mut Exporter) -> Result<()> {
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

pub(super) fn properties(ex: &mut Exporter) -> Result<()> {
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

pub(super) fn provident(ex: &mut Exporter) -> Result<()> {
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

pub(super) fn businesses(ex: &mut Exporter) -> Result<()> {
    let rel = format!("市场监管/市场主体登记_{YEAR}1231.csv");
    let mut out = CsvOut::create(&ex.root, &rel, "businesses", Enc::Utf8)?;
    out.layout(&[
        "企业名称",
        "统一社会信用代码",
        "法定代表人",
        "法定代表人证件号",
        "注册资本(万元)",
        "登记状态",
        "成立日期",
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
            if ex.rng.chance(0.5) {
                b.founded.format("%Y-%m-%d").to_string()
            } else {
                b.founded.format("%Y年%m月%d日").to_string()
            },
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

pub(super) fn tax(ex: &mut Exporter) -> Result<()> {
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
