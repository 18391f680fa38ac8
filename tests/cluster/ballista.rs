//! `hedui check` with `[engine] mode = "ballista"` over the lake published to an S3-protocol
//! server: the rules run on Ballista's standalone cluster and give exactly the local hits.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::s3::S3Server;
use crate::common::*;

/// `hedui check --format json`: the hits, ordered, with their evidence.
fn hits(cmd: &mut Command) -> (Vec<Value>, String) {
    let out = cmd.output().expect("hedui runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let Value::Array(mut hits) = serde_json::from_slice(&out.stdout).unwrap() else {
        panic!("not an array");
    };
    hits.sort_by_key(|h| h.to_string());
    (hits, stderr)
}

fn check(lake: &Path, cases: &Path) -> Command {
    let mut cmd = hedui();
    cmd.args(["check", "--format", "json", "--lake"])
        .arg(lake)
        .arg("--cases")
        .arg(format!("sqlite://{}", cases.display()));
    cmd
}

#[test]
fn the_rule_suite_on_ballista_over_object_storage_gives_the_local_hits() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest(&city().data(), &lake);
    let s3 = S3Server::start(&["hedui"]);
    let remote = "s3://hedui/city/lake";

    let publish = || {
        run_ok(
            hedui()
                .arg("publish")
                .arg("--lake")
                .arg(&lake)
                .args(["--to", remote])
                .envs(s3.env()),
        )
    };
    let published = publish();
    assert!(published.contains(" 0 already there"), "{published}");
    // Again: nothing is copied twice.
    let again = publish();
    assert!(
        again.contains(": 0 files (0 bytes) and 0 commits copied"),
        "{again}"
    );

    let (local, _) = hits(&mut check(&lake, &dir.path().join("local.db")));
    let rules: std::collections::BTreeSet<&str> =
        local.iter().map(|h| h["rule"].as_str().unwrap()).collect();
    assert_eq!(rules.len(), 7, "every rule has hits in the city: {rules:?}");

    let settings = dir.path().join("hedui.toml");
    std::fs::write(
        &settings,
        "[engine]\nmode = \"ballista\"\nscheduler = \"standalone\"\n",
    )
    .unwrap();
    let (on_cluster, log) = hits(
        check(Path::new(remote), &dir.path().join("cluster.db"))
            .arg("--config")
            .arg(&settings)
            .env("HEDUI_LOG", "hedui_engine=info")
            .envs(s3.env()),
    );
    let only = |a: &[Value], b: &[Value]| -> Vec<String> {
        a.iter()
            .filter(|h| !b.contains(h))
            .map(|h| h.to_string())
            .collect()
    };
    assert!(
        on_cluster == local,
        "the cluster's hits differ from the local engine's: only local {:?}; only on the cluster {:?}\n{log}",
        only(&local, &on_cluster),
        only(&on_cluster, &local)
    );
    let ran_there = log
        .lines()
        .filter(|l| l.contains("rule ran") && l.contains("on_cluster=true"))
        .count();
    assert_eq!(ran_there, 7, "every rule ran on the cluster:\n{log}");

    // The rules really go through the scheduler: with none at the address, the check fails.
    std::fs::write(
        &settings,
        "[engine]\nmode = \"ballista\"\nscheduler = \"df://127.0.0.1:9\"\n",
    )
    .unwrap();
    let out = run(check(Path::new(remote), &dir.path().join("nowhere.db"))
        .arg("--config")
        .arg(&settings)
        .envs(s3.env()));
    assert!(!out.status.success(), "a check with no scheduler succeeded");
}

#[test]
fn a_lake_on_object_storage_is_not_written_directly() {
    let s3 = S3Server::start(&["hedui"]);
    let out = run(hedui()
        .arg("ingest")
        .arg("--connectors")
        .arg(connectors_dir())
        .arg("--data")
        .arg(city().data())
        .args(["--lake", "s3://hedui/lake"])
        .envs(s3.env()));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hedui publish"), "{stderr}");
    assert!(
        !Path::new("s3:").exists(),
        "a local directory named after the URL was made"
    );
}

#[test]
fn a_second_lake_is_not_published_over_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a"), dir.path().join("b"));
    // Two ingests of the same files: the same numbers of commits, other batches.
    ingest(&city().data(), &first);
    ingest(&city().data(), &second);
    let s3 = S3Server::start(&["hedui"]);
    let publish = |lake: &Path| {
        run(hedui()
            .arg("publish")
            .arg("--lake")
            .arg(lake)
            .args(["--to", "s3://hedui/lake"])
            .envs(s3.env()))
    };
    assert!(publish(&first).status.success());
    let out = publish(&second);
    assert!(
        !out.status.success(),
        "another lake was published over the first"
    );
    let again = String::from_utf8_lossy(&publish(&first).stdout).into_owned();
    assert!(
        again.contains(": 0 files (0 bytes) and 0 commits copied"),
        "the first lake is as it was published: {again}"
    );
}
