//! Analysts read; they cannot write, create tables over files, read files or change settings.

use crate::common::*;

#[test]
fn queries_work_and_everything_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("人社")).unwrap();
    std::fs::write(
        data.join("人社/失业保险金发放_2025.csv"),
        "身份证号,姓名,发放年月,金额\n11010519491231002X,张三,202501,100\n",
    )
    .unwrap();
    ingest(&data, &lake);
    assert_eq!(count(&lake, "unemployment_benefits"), 1);
    let csv = run_ok(
        hedui()
            .args(["sql", "--format", "csv", "--lake"])
            .arg(&lake)
            .arg("SELECT person_id, amount FROM unemployment_benefits"),
    );
    assert_eq!(csv, "person_id,amount\n11010519491231002X,100.00\n");
    // An empty result is an empty JSON array, and an empty CSV has its header.
    let empty = run_ok(
        hedui()
            .args(["sql", "--format", "json", "--lake"])
            .arg(&lake)
            .arg("SELECT person_id FROM unemployment_benefits WHERE amount < 0"),
    );
    assert_eq!(empty.trim(), "[]");
    let empty = run_ok(
        hedui()
            .args(["sql", "--format", "csv", "--lake"])
            .arg(&lake)
            .arg("SELECT person_id FROM unemployment_benefits WHERE amount < 0"),
    );
    assert_eq!(empty, "person_id\n");
    let table = run_ok(
        hedui()
            .args(["sql", "--lake"])
            .arg(&lake)
            .arg("SELECT name FROM unemployment_benefits"),
    );
    assert!(table.contains("| 张三 |"), "{table}");

    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "a\n1\n").unwrap();
    let s = secret.display();
    for attempt in [
        format!("CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{s}'"),
        format!(
            "COPY (SELECT 1) TO '{}'",
            dir.path().join("out.csv").display()
        ),
        "INSERT INTO unemployment_benefits SELECT * FROM unemployment_benefits".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "DROP TABLE persons".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        format!("SELECT * FROM read_csv('{s}')"),
        format!("SELECT * FROM '{s}'"),
    ] {
        let out = run(hedui().args(["sql", "--lake"]).arg(&lake).arg(&attempt));
        assert_eq!(
            out.status.code(),
            Some(2),
            "not refused: {attempt}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    assert!(!dir.path().join("out.csv").exists());
}
