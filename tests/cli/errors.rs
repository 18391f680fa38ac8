//! Mistakes get one clear line and a non-zero exit code, never a panic or a backtrace.

use crate::common::*;

fn one_line_error(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    stderr
}

#[test]
fn a_mapping_mistake_names_file_and_line_before_any_data_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("connectors");
    std::fs::create_dir_all(&conn).unwrap();
    std::fs::write(
        conn.join("bad.toml"),
        "[source]\nid = \"x\"\nfiles = [\"*.csv\"]\n\n[[target]]\ndataset = \"pensions\"\n[target.columns]\nperson_id = \"身份证号\"\n",
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let out = run(hedui()
        .arg("ingest")
        .arg("--connectors")
        .arg(&conn)
        .arg("--data")
        .arg(dir.path())
        .arg("--lake")
        .arg(&lake));
    let err = one_line_error(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("bad.toml:6:") && err.contains("unknown dataset `pensions`"),
        "{err}"
    );
    assert!(!lake.exists(), "nothing was read or written");
}

#[test]
fn missing_lake_missing_data_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(hedui()
        .args(["sql", "SELECT 1", "--lake"])
        .arg(dir.path().join("nowhere")));
    assert!(one_line_error(&out).contains("run `hedui ingest"));
    assert_eq!(out.status.code(), Some(2));

    let out = run(hedui()
        .arg("ingest")
        .arg("--connectors")
        .arg(connectors_dir())
        .arg("--data")
        .arg(dir.path().join("nowhere"))
        .arg("--lake")
        .arg(dir.path().join("l")));
    assert!(one_line_error(&out).contains("data directory not found"));

    let out = run(hedui()
        .args(["generate", "--persons", "10", "--out"])
        .arg(dir.path()));
    assert!(one_line_error(&out).contains("at least 100"));
}
