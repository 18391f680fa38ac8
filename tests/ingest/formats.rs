//! Connectors on hand-made files in the shapes departments send.

use std::path::Path;

use super::ingest_report as ingest_with;
use crate::common::*;

fn mapping(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

const BENEFIT_MAPPING: &str = r#"
[source]
id = "benefit"
files = ["*.csv"]
[[target]]
dataset = "unemployment_benefits"
[target.columns]
person_id = "身份证号"
name = "姓名"
month = "发放年月"
amount = "金额"
"#;

#[test]
fn gbk_csv_with_title_rows_totals_and_footer() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, data, lake) = (
        dir.path().join("c"),
        dir.path().join("d"),
        dir.path().join("lake"),
    );
    mapping(&conn, "benefit.toml", BENEFIT_MAPPING);
    let text = "宜昌市2025年失业保险金发放明细表,,,\r\n单位：元,,,\r\n,,,\r\n身份证号,姓名,发放年月,金额\r\n11010519491231002x,张　三,2025年01月,\"1,234.50\"\r\n440524188001010014,买买提•艾力,202502,1200元\r\n,,,\r\n440524188001010015,王五,2025-03,800\r\n合计,,,\"2,434.50\"\r\n制表人：李四,,,\r\n";
    let (gbk, _, _) = encoding_rs::GB18030.encode(text);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("benefit.csv"), &gbk).unwrap();
    let (out, report) = ingest_with(&conn, &data, &lake);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = &report["files"][0];
    assert_eq!(
        (
            f["rows_read"].as_u64(),
            f["rows_loaded"].as_u64(),
            f["rows_quarantined"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{f}"
    );
    assert_eq!(f["encoding"], "GB18030/GBK");
    assert_eq!(
        f["layout_rows"], 6,
        "title, unit line, two blank rows, 合计 and footer"
    );
    let rows = sql(
        &lake,
        "SELECT person_id, name, CAST(month AS VARCHAR) AS m, CAST(amount AS VARCHAR) AS a, _row FROM unemployment_benefits ORDER BY _row",
    );
    assert_eq!(rows[0]["person_id"], "11010519491231002X");
    assert_eq!(rows[0]["name"], "张三");
    assert_eq!(rows[0]["m"], "2025-01-01");
    assert_eq!(rows[0]["a"], "1234.50");
    assert_eq!(rows[0]["_row"], 5, "the line a person finds it at");
    assert_eq!(rows[1]["name"], "买买提·艾力");
    let q = sql(
        &lake,
        "SELECT source_row, reason_codes, raw FROM quarantine",
    );
    assert_eq!(q[0]["source_row"], 8);
    assert_eq!(q[0]["reason_codes"], "id.bad_check");
    assert!(q[0]["raw"].as_str().unwrap().contains("440524188001010015"));
}

#[test]
fn ndjson_and_paged_json_records() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, data, lake) = (
        dir.path().join("c"),
        dir.path().join("d"),
        dir.path().join("lake"),
    );
    mapping(
        &conn,
        "deaths.toml",
        r#"
[source]
id = "deaths"
files = ["**/*.ndjson", "**/*.json"]
[[target]]
dataset = "death_certificates"
records = "/data/list"
[target.columns]
person_id = "sfzh"
name = "xm"
death_date = "swrq"
"#,
    );
    std::fs::create_dir_all(data.join("api")).unwrap();
    std::fs::write(
        data.join("api/a.ndjson"),
        "{\"xm\":\"张三\",\"sfzh\":\"11010519491231002X\",\"swrq\":\"20250301\"}\n\n{not json}\n{\"xm\":\"李四\",\"sfzh\":440524188001010014,\"swrq\":\"2025-03-02\"}\n",
    )
    .unwrap();
    std::fs::write(
        data.join("api/page-1.json"),
        r#"{"code":0,"data":{"total":1,"list":[{"xm":"王五","sfzh":"370986890623212","swrq":"2025年3月3日"}]}}"#,
    )
    .unwrap();
    let (out, report) = ingest_with(&conn, &data, &lake);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nd = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "api/a.ndjson")
        .unwrap();
    assert_eq!(
        (
            nd["rows_read"].as_u64(),
            nd["rows_loaded"].as_u64(),
            nd["rows_quarantined"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{nd}"
    );
    let q = sql(&lake, "SELECT source_row, reason_codes FROM quarantine");
    assert_eq!(
        q[0]["source_row"], 3,
        "the broken line keeps its line number"
    );
    assert_eq!(q[0]["reason_codes"], "json.not_an_object");
    let ids = sql(
        &lake,
        "SELECT person_id FROM death_certificates ORDER BY person_id",
    );
    let ids: Vec<&str> = ids
        .iter()
        .map(|r| r["person_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "11010519491231002X",
            "370986198906232123",
            "440524188001010014"
        ],
        "a JSON number ID keeps every digit"
    );
}

#[test]
fn an_unreadable_file_fails_alone_and_nothing_of_it_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, data, lake) = (
        dir.path().join("c"),
        dir.path().join("d"),
        dir.path().join("lake"),
    );
    mapping(
        &conn,
        "benefit.toml",
        &BENEFIT_MAPPING.replace("\"*.csv\"", "\"*.csv\", \"*.xlsx\""),
    );
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("broken.xlsx"),
        b"PK\x03\x04 this is not a workbook",
    )
    .unwrap();
    std::fs::write(
        data.join("good.csv"),
        "身份证号,姓名,发放年月,金额\n11010519491231002X,张三,202501,100\n",
    )
    .unwrap();
    std::fs::write(data.join("no-header.csv"), "a,b,c\n1,2,3\n").unwrap();
    let (out, report) = ingest_with(&conn, &data, &lake);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a file that cannot be read needs an operator"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not be read"), "{stderr}");
    let status = |name: &str| {
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["file"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(status("broken.xlsx")["status"], "failed");
    let no_header = status("no-header.csv");
    assert_eq!(no_header["status"], "failed");
    assert!(
        no_header["error"].as_str().unwrap().contains("身份证号"),
        "{no_header}"
    );
    assert_eq!(status("good.csv")["status"], "loaded");
    assert_eq!(count(&lake, "unemployment_benefits"), 1);
}

#[test]
fn legacy_xls_workbook_with_two_sheets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("民政")).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/legacy_cremations_2019.xls");
    std::fs::copy(fixture, data.join("民政/殡葬火化登记_2019.xls")).unwrap();
    let lake = dir.path().join("lake");
    let report = ingest(&data, &lake);
    let f = &report["files"][0];
    assert_eq!(
        (
            f["rows_read"].as_u64(),
            f["rows_loaded"].as_u64(),
            f["rows_quarantined"].as_u64()
        ),
        (Some(5), Some(4), Some(1)),
        "{f}"
    );
    let rows = sql(
        &lake,
        "SELECT person_id, CAST(death_date AS VARCHAR) AS d, _source, _row FROM cremations ORDER BY _source, _row",
    );
    let got: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["person_id"].as_str().unwrap().into(),
                r["d"].as_str().unwrap().into(),
                r["_row"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("11010519491231002X".into(), "2019-01-12".into(), 5),
            ("370986198906232123".into(), "2019-02-03".into(), 6),
            ("440524188001010014".into(), "2019-03-05".into(), 7),
            ("420506195207090020".into(), "2019-08-09".into(), 5),
        ]
    );
    assert_eq!(rows[0]["_source"], "民政/殡葬火化登记_2019.xls#上半年");
    let q = sql(
        &lake,
        "SELECT source_sheet, source_row, reason_codes FROM quarantine",
    );
    assert_eq!(
        (
            q[0]["source_sheet"].as_str(),
            q[0]["source_row"].as_i64(),
            q[0]["reason_codes"].as_str()
        ),
        (Some("上半年"), Some(8), Some("id.scientific_notation"))
    );
}
