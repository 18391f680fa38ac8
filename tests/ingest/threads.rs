//! Files read on several threads: the lake ends exactly as a file-at-a-time ingest leaves it,
//! commit by commit, report line by report line.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::{commit_log_entries, write};
use crate::common::*;

/// Batch names (random per lake) to the files they hold.
fn batch_files(lake: &Path) -> BTreeMap<String, String> {
    commit_log_entries(lake)
        .iter()
        .map(|c| {
            let batch = c["batch"].as_str().unwrap().to_string();
            (batch, c["file"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The commit log with batch names replaced by their files.
fn commit_log(lake: &Path) -> Vec<Value> {
    let file_of = batch_files(lake);
    commit_log_entries(lake)
        .iter()
        .map(|c| {
            let supersedes: Vec<&String> = c["supersedes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| &file_of[b.as_str().unwrap()])
                .collect();
            let datasets: Vec<Value> = c["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| json!([f["dataset"], f["rows"]]))
                .collect();
            json!({
                "seq": c["seq"], "source": c["source"], "file": c["file"],
                "fingerprint": c["fingerprint"], "as_of": c["as_of"], "counts": c["counts"],
                "delivery_batches": c["delivery"]["batches"], "supersedes": supersedes,
                "datasets": datasets,
            })
        })
        .collect()
}

/// Each file's line of a report, batch names replaced by their files.
fn report_lines(report: &Value, lake: &Path) -> Vec<Value> {
    let file_of = batch_files(lake);
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let batch = f["batch"].as_str().map(|b| &file_of[b]);
            json!({
                "file": f["file"], "status": f["status"], "batch_of": batch,
                "read": f["rows_read"], "loaded": f["rows_loaded"],
                "quarantined": f["rows_quarantined"], "duplicate": f["rows_duplicate"],
                "same_as": f["same_as"], "reasons": f["quarantine_reasons"],
            })
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files_under(from) {
        let rel = f.strip_prefix(from).unwrap();
        write(to, rel.to_str().unwrap(), &std::fs::read(&f).unwrap());
    }
}

#[test]
fn reading_files_on_several_threads_commits_what_one_thread_commits() {
    let city = city();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    copy_dir(&city.data(), &data);
    // A twin of a pension ledger under another name: the one read second is skipped as a copy,
    // whichever thread reads it first.
    let ledger = files_under(&data)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("养老金发放"))
        .expect("the city has pension ledgers");
    let twin = ledger.with_file_name(format!(
        "{}_副本.csv",
        ledger.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::copy(&ledger, &twin).unwrap();

    let one = work.path().join("one");
    let four = work.path().join("four");
    let compare = |step: &str, a: &Value, b: &Value| {
        assert_eq!(
            commit_log(&one),
            commit_log(&four),
            "{step}: commit logs differ"
        );
        assert_eq!(
            report_lines(a, &one),
            report_lines(b, &four),
            "{step}: reports differ"
        );
        for dataset in ["persons", "pension_payments", "contributions", "vehicles"] {
            assert_eq!(
                count(&one, dataset),
                count(&four, dataset),
                "{step}: {dataset}"
            );
        }
    };
    let a = ingest_with(&data, &one, &["--threads", "1"]);
    let b = ingest_with(&data, &four, &["--threads", "4"]);
    let lines = |report: &Value| report["files"].as_array().unwrap().clone();
    assert!(
        lines(&b).iter().any(|f| f["same_as"].is_string()),
        "the twin is reported as a copy: {b}"
    );
    compare("first ingest", &a, &b);

    // A corrected ledger and the twin gone: the correction replaces its batch, the rest is
    // unchanged, on any number of threads.
    std::fs::remove_file(&twin).unwrap();
    // (Some ledgers are GBK: cut the last line as bytes.)
    let bytes = std::fs::read(&ledger).unwrap();
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let cut = body.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    std::fs::write(&ledger, &bytes[..cut]).unwrap();
    let a = ingest_with(&data, &one, &["--threads", "1"]);
    let b = ingest_with(&data, &four, &["--threads", "4"]);
    assert_eq!(
        lines(&b).iter().filter(|f| f["status"] == "loaded").count(),
        1,
        "only the corrected ledger is loaded again: {b}"
    );
    compare("second ingest", &a, &b);
}
