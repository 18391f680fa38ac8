//! Files that are broken, hostile or changing while they are read: each fails alone with a clear
//! error, the others load, the report is written and the accounting balances.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{commit_log_entries, cremation_workbook, file, ingest_report, write};
use crate::common::*;

const LEDGER_HEADER: &str = "个人编号,姓名,公民身份号码,险种,发放年月,发放金额\n";

fn ingest_dir(data: &Path, lake: &Path) -> (std::process::Output, Value) {
    ingest_report(&connectors_dir(), data, lake)
}

/// Every file's counts add up, and the totals are their sum.
fn assert_balanced(report: &Value) {
    for f in report["files"].as_array().unwrap() {
        let n = |k: &str| f[k].as_u64().unwrap();
        assert_eq!(
            n("rows_read"),
            n("rows_loaded") + n("rows_quarantined") + n("rows_duplicate"),
            "{f}"
        );
    }
}

/// A valid ledger row for the i-th person (IDs with a correct check digit).
fn ledger_row(i: usize, month: &str) -> String {
    let first17 = format!(
        "4205021960{:02}{:02}{:03}",
        1 + i % 12,
        1 + i % 28,
        i % 1000
    );
    let w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(w)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{i},张三,{first17}{check},企业职工基本养老保险,{month},3000.00\n")
}

fn sha256(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[test]
fn a_file_changed_while_it_is_read_is_never_committed_under_bytes_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));
    let rel = "人社/养老金发放明细_202501.csv";
    let mut intact = LEDGER_HEADER.to_string();
    for i in 0..150_000 {
        intact.push_str(&ledger_row(i, "202501"));
    }
    let truncated: String = intact.split_inclusive('\n').take(15_001).collect();
    for (round, change) in ["truncate", "rewrite"].iter().enumerate() {
        write(&data, rel, intact.as_bytes());
        let report_path = dir.path().join(format!("r{round}.json"));
        let mut child = hedui()
            .arg("ingest")
            .arg("--connectors")
            .arg(connectors_dir())
            .arg("--data")
            .arg(&data)
            .arg("--lake")
            .arg(&lake)
            .arg("--report")
            .arg(&report_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let replaced = match *change {
            "truncate" => truncated.to_string(),
            _ => intact.replace(",3000.00\n", ",3100.00\n"),
        };
        // Rewritten in place, as an export tool overwriting its output does.
        std::fs::write(data.join(rel), replaced.as_bytes()).unwrap();
        child.wait().unwrap();
        let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
        assert_balanced(&report);
        let f = file(&report, rel);
        eprintln!("{change} while reading: the file was {}", f["status"]);
        let log = std::fs::read_dir(lake.join("_log"))
            .map(|d| d.count())
            .unwrap_or(0);
        match f["status"].as_str().unwrap() {
            "failed" => {
                assert!(
                    f["error"]
                        .as_str()
                        .unwrap()
                        .contains("changed while it was read"),
                    "{f}"
                );
            }
            // The change came before the file was opened: what was committed is what was read.
            "loaded" => {
                let commits = commit_log_entries(&lake);
                let last = commits.last().unwrap();
                let fp = last["fingerprint"].as_str().unwrap();
                assert!(
                    fp == sha256(replaced.as_bytes()),
                    "a loaded file's fingerprint is that of the bytes parsed"
                );
                assert_eq!(
                    last["counts"]["rows_read"].as_u64().unwrap() as usize,
                    replaced.lines().count() - 1
                );
            }
            other => panic!("{other}: {f} ({log} commits)"),
        }
        // With the file at rest again, the next ingest reads it in full: never skipped as
        // "unchanged" on the strength of bytes that were not read.
        let (out, report) = ingest_dir(&data, &lake);
        assert!(out.status.success());
        let f = file(&report, rel);
        if f["status"] == "loaded" {
            assert_eq!(
                f["rows_read"].as_u64().unwrap() as usize,
                replaced.lines().count() - 1
            );
        } else {
            assert_eq!(f["status"], "unchanged", "{f}");
            let commits = commit_log_entries(&lake);
            assert!(
                commits
                    .iter()
                    .any(|c| c["fingerprint"] == sha256(replaced.as_bytes()))
            );
        }
    }
}

#[test]
fn hostile_files_fail_alone_quickly_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));

    // A 2 KB workbook whose one stray cell sits at XFD1048576.
    let far = cremation_workbook(&[], Some((1048575, 16383)));
    assert!(far.len() < 10_000);
    write(&data, "民政/殡葬火化登记_2025.xlsx", &far);

    // A "workbook" larger than any the hub reads whole (sparse: no disk is used).
    let huge = data.join("民政/殡葬火化登记_2024.xlsx");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();

    // An unclosed quote on line 3 of a 1,004-line ledger.
    let mut quoted = LEDGER_HEADER.to_string();
    quoted.push_str(&ledger_row(1, "202502"));
    quoted.push_str("2,\"张三,110105194912310021,企业职工基本养老保险,202502,3000.00\n");
    for i in 3..1004 {
        quoted.push_str(&ledger_row(i, "202502"));
    }
    write(&data, "人社/养老金发放明细_202502.csv", quoted.as_bytes());

    // A JSON page whose every record brings keys of its own.
    let records: Vec<String> = (0..5000)
        .map(|i| format!("{{\"k{i}a\":1,\"k{i}b\":2,\"身份证号\":\"x\"}}"))
        .collect();
    write(
        &data,
        "卫健/死亡医学证明/page-0001.json",
        format!("{{\"data\":{{\"list\":[{}]}}}}", records.join(",")).as_bytes(),
    );

    // A good file beside them.
    let mut good = LEDGER_HEADER.to_string();
    good.push_str(&ledger_row(7, "202503"));
    write(&data, "人社/养老金发放明细_202503.csv", good.as_bytes());

    let started = Instant::now();
    let (out, report) = ingest_dir(&data, &lake);
    assert!(started.elapsed() < Duration::from_secs(60), "bounded work");
    assert_eq!(
        out.status.code(),
        Some(1),
        "failures are reported in the exit code"
    );
    assert_balanced(&report);
    let error = |name: &str| {
        let f = file(&report, name);
        assert_eq!(f["status"], "failed", "{f}");
        assert_eq!(f["rows_loaded"], 0);
        f["error"].as_str().unwrap().to_string()
    };
    assert!(error("民政/殡葬火化登记_2025.xlsx").contains("XFD1048576"));
    assert!(error("民政/殡葬火化登记_2024.xlsx").contains("limit"));
    let unclosed = error("人社/养老金发放明细_202502.csv");
    assert!(unclosed.contains("line 3"), "{unclosed}");
    assert!(error("卫健/死亡医学证明/page-0001.json").contains("distinct keys"));
    assert_eq!(
        file(&report, "人社/养老金发放明细_202503.csv")["status"],
        "loaded"
    );
    assert_eq!(count(&lake, "pension_payments"), 1);
    assert_eq!(
        count(&lake, "cremations"),
        0,
        "nothing of a failed file is committed"
    );
}

#[test]
fn a_line_in_another_encoding_is_quarantined_not_loaded_garbled() {
    let dir = tempfile::tempdir().unwrap();
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));
    let mut bytes = encoding_rs::GBK.encode(LEDGER_HEADER).0.into_owned();
    bytes.extend_from_slice(&encoding_rs::GBK.encode(&ledger_row(1, "202501")).0);
    // Pasted in from a UTF-8 export.
    bytes.extend_from_slice(ledger_row(2, "202501").replace("张三", "张斌").as_bytes());
    bytes.extend_from_slice(
        &encoding_rs::GBK
            .encode(&ledger_row(3, "202501").replace("张三", "谢志霞"))
            .0,
    );
    write(&data, "人社/养老金发放明细_202501.csv", &bytes);
    let (out, report) = ingest_dir(&data, &lake);
    assert!(out.status.success());
    let f = file(&report, "人社/养老金发放明细_202501.csv");
    assert_eq!(
        (f["rows_loaded"].as_u64(), f["rows_quarantined"].as_u64()),
        (Some(2), Some(1)),
        "{f}"
    );
    assert_eq!(f["quarantine_reasons"]["encoding.mixed"], 1);
    assert_eq!(f["encoding"], "GB18030/GBK");
    let names: Vec<Value> = sql(&lake, "SELECT name FROM pension_payments ORDER BY name")
        .into_iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, ["张三", "谢志霞"], "no garbled name in the lake");
    let q = sql(&lake, "SELECT source_row FROM quarantine");
    assert_eq!(q[0]["source_row"], 3);
}

#[test]
fn control_characters_in_file_names_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));
    let mut ledger = LEDGER_HEADER.to_string();
    ledger.push_str(&ledger_row(1, "202501"));
    write(
        &data,
        "人社/养老金发放明细_202501\n\u{1b}[2Jforged.csv",
        ledger.as_bytes(),
    );
    let (out, _) = ingest_dir(&data, &lake);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    assert!(stdout.contains("\\u{a}\\u{1b}[2Jforged.csv"), "{stdout}");
}

#[test]
fn when_the_lake_cannot_be_written_the_ingest_stops_and_still_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));
    let mut ledger = LEDGER_HEADER.to_string();
    ledger.push_str(&ledger_row(1, "202501"));
    write(&data, "人社/养老金发放明细_202501.csv", ledger.as_bytes());
    // Where the lake would put the dataset's files there is a file: every write fails, as on a
    // full or read-only disk.
    std::fs::create_dir_all(&lake).unwrap();
    std::fs::write(lake.join("pension_payments"), b"").unwrap();
    let (out, report) = ingest_dir(&data, &lake);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lake cannot be written"));
    assert!(
        report["aborted"]
            .as_str()
            .unwrap()
            .contains("pension_payments"),
        "{report}"
    );
    assert_eq!(
        report["lake_version"], 0,
        "nothing half-written was committed"
    );
    assert_balanced(&report);
}
