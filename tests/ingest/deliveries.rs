//! Deliveries: several files of one full extract, files two mappings would take, identical
//! copies, and as-of dates stated rather than guessed.

use std::path::Path;

use serde_json::Value;

use super::{cremation_workbook, file, ingest_report as ingest_dir, write};
use crate::common::*;

const REGISTRY_HEADER: &str =
    "公民身份号码,姓名,性别,出生日期,户号,住址,行政区划代码,人口状态,注销日期\n";
const ZHANG: &str = "11010519491231002X,张三,女,19491231,1,地址,110105,正常,\n";
const LI: &str = "440524188001010014,李四,男,18800101,2,地址,440524,正常,\n";
const WANG: &str = "440524188001010022,王五,男,18800101,3,地址,440524,正常,\n";

fn persons(lake: &Path) -> Vec<String> {
    sql(lake, "SELECT name FROM persons ORDER BY name")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_full_extract_sent_as_several_files_is_one_delivery_and_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));
    write(
        &data,
        "公安/户籍人口_城区_20250105.csv",
        &format!("{REGISTRY_HEADER}{ZHANG}"),
    );
    write(
        &data,
        "公安/户籍人口_县市_20250105.csv",
        &format!("{REGISTRY_HEADER}{LI}"),
    );
    let (out, report) = ingest_dir(&connectors_dir(), &data, &lake);
    assert!(out.status.success(), "{report}");
    assert_eq!(
        persons(&lake),
        ["张三", "李四"],
        "both files of the delivery are live"
    );

    // The next delivery, again in two files, replaces both; the old files stay in the folder.
    write(
        &data,
        "公安/户籍人口_城区_20260105.csv",
        &format!("{REGISTRY_HEADER}{ZHANG}"),
    );
    write(
        &data,
        "公安/户籍人口_县市_20260105.csv",
        &format!("{REGISTRY_HEADER}{WANG}"),
    );
    let (out, _) = ingest_dir(&connectors_dir(), &data, &lake);
    assert!(out.status.success());
    assert_eq!(
        persons(&lake),
        ["张三", "王五"],
        "李四 left with the old delivery"
    );

    // Running again changes nothing: the old delivery does not come back to replace the new.
    let (_, report) = ingest_dir(&connectors_dir(), &data, &lake);
    for f in report["files"].as_array().unwrap() {
        assert_eq!(f["status"], "unchanged", "{f}");
    }
    assert_eq!(persons(&lake), ["张三", "王五"]);

    // A delivery one of whose files cannot be read is held back whole.
    write(
        &data,
        "公安/户籍人口_城区_20270105.csv",
        &format!("{REGISTRY_HEADER}{ZHANG}{LI}"),
    );
    write(&data, "公安/户籍人口_县市_20270105.csv", "这不是户籍表\n");
    let (out, report) = ingest_dir(&connectors_dir(), &data, &lake);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        file(&report, "公安/户籍人口_县市_20270105.csv")["status"],
        "failed"
    );
    let held = file(&report, "公安/户籍人口_城区_20270105.csv");
    assert_eq!(held["status"], "withheld", "{held}");
    assert!(held["error"].as_str().unwrap().contains("县市"), "{held}");
    assert_eq!(
        persons(&lake),
        ["张三", "王五"],
        "the last good delivery stands"
    );
}

#[test]
fn a_file_two_mappings_take_is_an_error_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (data, lake, conn) = (
        dir.path().join("data"),
        dir.path().join("lake"),
        dir.path().join("connectors"),
    );
    std::fs::create_dir_all(&conn).unwrap();
    for name in ["persons.toml", "pension_payments.toml"] {
        std::fs::copy(connectors_dir().join(name), conn.join(name)).unwrap();
    }
    // A second registry mapping whose pattern also takes the registry files.
    let second = std::fs::read_to_string(connectors_dir().join("persons.toml"))
        .unwrap()
        .replace("gongan_registry", "gongan_registry_copy")
        .replace("公安/户籍人口_*.csv", "公安/*.csv");
    std::fs::write(conn.join("persons_copy.toml"), second).unwrap();
    write(
        &data,
        "公安/户籍人口_20250105.csv",
        &format!("{REGISTRY_HEADER}{ZHANG}"),
    );
    let (out, report) = ingest_dir(&conn, &data, &lake);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("户籍人口_20250105.csv")
            && stderr.contains("gongan_registry ")
            && stderr.contains("gongan_registry_copy"),
        "{stderr}"
    );
    assert!(
        report.is_null(),
        "nothing was read, so there is nothing to report"
    );
    assert!(
        !lake.join("_log").exists() || std::fs::read_dir(lake.join("_log")).unwrap().count() == 0
    );
}

#[test]
fn an_identical_copy_is_skipped_in_favour_of_the_original_name() {
    let dir = tempfile::tempdir().unwrap();
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));
    let ledger = "个人编号,姓名,公民身份号码,险种,发放年月,发放金额\n1,张三,11010519491231002X,企业职工基本养老保险,202501,3000.00\n";
    // The copy sorts first by name; the original is still the one loaded.
    write(&data, "人社/养老金发放明细_202501 - 副本.csv", ledger);
    write(&data, "人社/养老金发放明细_202501.csv", ledger);
    let (out, report) = ingest_dir(&connectors_dir(), &data, &lake);
    assert!(out.status.success(), "{report}");
    let original = file(&report, "人社/养老金发放明细_202501.csv");
    assert_eq!(original["status"], "loaded", "{original}");
    let copy = file(&report, "人社/养老金发放明细_202501 - 副本.csv");
    assert_eq!(copy["status"], "unchanged", "{copy}");
    assert_eq!(copy["same_as"], "人社/养老金发放明细_202501.csv");
    assert_eq!(count(&lake, "pension_payments"), 1, "paid once, not twice");
    assert!(String::from_utf8_lossy(&out.stdout).contains("内容相同"));
}

#[test]
fn as_of_dates_are_stated_by_the_mapping_or_reported_as_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let (data, conn) = (dir.path().join("data"), dir.path().join("connectors"));
    std::fs::create_dir_all(&conn).unwrap();
    let death = std::fs::read_to_string(connectors_dir().join("cremations.toml")).unwrap();
    std::fs::write(conn.join("cremations.toml"), &death).unwrap();
    let rows = [
        ("11010519491231002X", "2025-03-05"),
        ("440524188001010014", "2025-05-20"),
    ];
    let name = "民政/殡葬火化登记.xlsx";
    write(&data, name, &cremation_workbook(&rows, None));
    let mapping_with = |as_of: &str| {
        let text = death.replacen("[source]\n", &format!("[source]\n{as_of}\n"), 1);
        let text = text.replace("民政/殡葬火化登记_*.xlsx", "民政/殡葬火化登记*.xlsx");
        std::fs::write(conn.join("cremations.toml"), text).unwrap();
    };
    let as_of = |lake: &str| -> (Value, Value) {
        let (out, report) = ingest_dir(&conn, &data, &dir.path().join(lake));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = file(&report, name);
        (f["as_of"].clone(), f["as_of_basis"].clone())
    };
    mapping_with("");
    let (date, basis) = as_of("lake-guess");
    assert_eq!(
        basis, "modified",
        "no date in the name and none stated: a guess"
    );
    assert_eq!(date, chrono_today());
    mapping_with("as_of = \"2025-06-30\"");
    assert_eq!(as_of("lake-fixed"), ("2025-06-30".into(), "stated".into()));
    mapping_with("as_of = { column = \"death_date\" }");
    assert_eq!(as_of("lake-column"), ("2025-05-20".into(), "column".into()));
    std::fs::rename(
        data.join(name),
        data.join("民政/殡葬火化登记截至2025年6月.xlsx"),
    )
    .unwrap();
    mapping_with(r#"as_of = { file_name = '截至(\d{4}年\d{1,2}月)', format = "%Y年%m月" }"#);
    let (out, report) = ingest_dir(&conn, &data, &dir.path().join("lake-pattern"));
    assert!(out.status.success());
    let f = file(&report, "民政/殡葬火化登记截至2025年6月.xlsx");
    assert_eq!(
        (f["as_of"].as_str(), f["as_of_basis"].as_str()),
        (Some("2025-06-30"), Some("stated"))
    );

    mapping_with("as_of = { column = \"no_such\" }");
    let (out, _) = ingest_dir(&conn, &data, &dir.path().join("lake-bad"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("as_of.column"));
}

fn chrono_today() -> Value {
    let out = std::process::Command::new("date")
        .arg("-u")
        .arg("+%F")
        .output()
        .unwrap();
    Value::String(String::from_utf8(out.stdout).unwrap().trim().to_string())
}
