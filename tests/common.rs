use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub fn hedui() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hedui"))
}

pub fn connectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors")
}

/// Run and require success, returning stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("hedui runs");
    assert!(
        out.status.success(),
        "{:?} failed ({}):\nstdout: {}\nstderr: {}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("hedui runs")
}

/// A generated city shared by the tests that only read it (generation is deterministic).
pub struct City {
    pub dir: tempfile::TempDir,
}

impl City {
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn truth(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("truth.json")).unwrap()).unwrap()
    }
}

pub fn city() -> &'static City {
    static CITY: OnceLock<City> = OnceLock::new();
    CITY.get_or_init(|| generate(4000, 7))
}

pub fn generate(persons: u64, seed: u64) -> City {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        hedui()
            .args([
                "generate",
                "--persons",
                &persons.to_string(),
                "--seed",
                &seed.to_string(),
                "--out",
            ])
            .arg(dir.path()),
    );
    City { dir }
}

/// Ingest `data` into `lake` with the shipped connectors; the JSON report.
pub fn ingest(data: &Path, lake: &Path) -> Value {
    ingest_with(data, lake, &[])
}

/// The same with more arguments to `hedui ingest` (`--threads 4`).
pub fn ingest_with(data: &Path, lake: &Path, args: &[&str]) -> Value {
    let report = lake.with_extension("report.json");
    run_ok(
        hedui()
            .arg("ingest")
            .arg("--connectors")
            .arg(connectors_dir())
            .arg("--data")
            .arg(data)
            .arg("--lake")
            .arg(lake)
            .arg("--report")
            .arg(&report)
            .args(args),
    );
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

/// A query's rows as JSON objects.
pub fn sql(lake: &Path, query: &str) -> Vec<Value> {
    let out = run_ok(
        hedui()
            .args(["sql", "--format", "json", "--lake"])
            .arg(lake)
            .arg(query),
    );
    match serde_json::from_str(&out).unwrap() {
        Value::Array(rows) => rows,
        other => panic!("not an array: {other}"),
    }
}

pub fn count(lake: &Path, dataset: &str) -> i64 {
    sql(lake, &format!("SELECT count(*) AS n FROM {dataset}"))[0]["n"]
        .as_i64()
        .unwrap()
}

/// Every file below `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
