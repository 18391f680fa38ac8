//! Deliveries again: identical files are skipped, corrected re-exports replace what they correct.

use super::write;
use crate::common::*;

#[test]
fn ingesting_the_same_directory_twice_adds_nothing() {
    let city = city();
    let lake = tempfile::tempdir().unwrap();
    let lake = lake.path().join("lake");
    let first = ingest(&city.data(), &lake);
    let persons = count(&lake, "persons");
    let second = ingest(&city.data(), &lake);
    for f in second["files"].as_array().unwrap() {
        assert_eq!(f["status"], "unchanged", "{f}");
        assert_eq!(f["rows_loaded"], 0);
    }
    assert_eq!(first["lake_version"], second["lake_version"]);
    assert_eq!(count(&lake, "persons"), persons);
}

const LEDGER: &str = "个人编号,姓名,公民身份号码,险种,发放年月,发放金额\n1,张三,11010519491231002X,企业职工基本养老保险,202501,3000.00\n2,李四,440524188001010014,城乡居民基本养老保险,202501,200.00\n";

#[test]
fn a_corrected_re_export_replaces_the_batch_it_corrects() {
    let data = tempfile::tempdir().unwrap();
    let lake = data.path().join("lake");
    let data_dir = data.path().join("data");
    write(&data_dir, "人社/养老金发放明细_202501.csv", LEDGER);
    let first = ingest(&data_dir, &lake);
    let batch = first["files"][0]["batch"].as_str().unwrap().to_string();

    // The department corrects an amount and sends the file again under the same name.
    write(
        &data_dir,
        "人社/养老金发放明细_202501.csv",
        &LEDGER.replace("3000.00", "2800.00"),
    );
    let second = ingest(&data_dir, &lake);
    let f = &second["files"][0];
    assert_eq!(f["status"], "loaded");
    assert_eq!(f["supersedes"], serde_json::json!([batch]));
    let rows = sql(
        &lake,
        "SELECT CAST(sum(amount) AS VARCHAR) AS total, count(*) AS n FROM pension_payments",
    );
    assert_eq!(
        rows[0]["n"], 2,
        "the corrected file replaces the first, rows are not doubled"
    );
    assert_eq!(rows[0]["total"], "3000.00");

    // Another month is a new delivery beside it, not a replacement.
    write(
        &data_dir,
        "人社/养老金发放明细_202502.csv",
        &LEDGER.replace("202501", "202502"),
    );
    ingest(&data_dir, &lake);
    assert_eq!(count(&lake, "pension_payments"), 4);
}

#[test]
fn a_full_extract_replaces_every_earlier_one_of_its_source() {
    let data = tempfile::tempdir().unwrap();
    let lake = data.path().join("lake");
    let data_dir = data.path().join("data");
    let header = "公民身份号码,姓名,性别,出生日期,户号,住址,行政区划代码,人口状态,注销日期\n";
    write(
        &data_dir,
        "公安/户籍人口_20250105.csv",
        &format!("{header}11010519491231002X,张三,女,19491231,1,地址,110105,正常,\n"),
    );
    ingest(&data_dir, &lake);
    std::fs::remove_file(data_dir.join("公安/户籍人口_20250105.csv")).unwrap();
    write(
        &data_dir,
        "公安/户籍人口_20260105.csv",
        &format!(
            "{header}11010519491231002X,张三,女,19491231,1,地址,110105,死亡,20250601\n440524188001010014,李四,男,18800101,2,地址,440524,正常,\n"
        ),
    );
    ingest(&data_dir, &lake);
    let rows = sql(
        &lake,
        "SELECT person_id, status FROM persons ORDER BY person_id",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["status"], "deceased");
}
