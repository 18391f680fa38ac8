//! Continuous verification: a city fed month by month while `hedui serve` runs; after every
//! delivery the served case store is exactly what a full check of the lake from scratch gives
//! (new hits raised, grown hits brought up to date, hits gone marked), without a restart.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

/// The cases of a store as comparable rows: rule, subject, months, amount, evidence; with
/// `gone`, also the cases whose hit the store marked as no longer found.
fn cases_in(db: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys\n\
             c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True)\n\
             for r in c.execute('SELECT rule_id, subject, months, amount_cents, evidence_fingerprint, gone_run FROM cases'):\n\
             \x20print('\\t'.join('' if v is None else str(v) for v in r))",
        )
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut found, mut gone) = (BTreeSet::new(), BTreeSet::new());
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (row, gone_run) = line.rsplit_once('\t').unwrap();
        if gone_run.is_empty() {
            found.insert(row.to_string());
        } else {
            gone.insert(row.to_string());
        }
    }
    (found, gone)
}

fn lake_version(lake: &Path) -> u64 {
    std::fs::read_dir(lake.join("_log"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".json")?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
}

/// The newest lake version a run in the store read.
fn verified_version(db: &Path) -> u64 {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys\n\
             c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True)\n\
             print(c.execute('SELECT coalesce(max(lake_version), 0) FROM runs').fetchone()[0])",
        )
        .arg(db)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The subjects the newest run evaluated for `rule`, if it added new rows' hits to kept ones.
fn newest_run_evaluated(db: &Path, rule: &str) -> Option<usize> {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys,json\n\
             c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True)\n\
             e=c.execute('SELECT evaluated FROM runs ORDER BY lake_version DESC, started_at DESC LIMIT 1').fetchone()[0]\n\
             r=json.loads(e).get(sys.argv[2]) if e else None\n\
             print('' if r is None else len(r))",
        )
        .arg(db)
        .arg(rule)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().ok()
}

/// A full check of the lake as it is, into a store of its own.
fn from_scratch(lake: &Path, dir: &Path, step: usize) -> (BTreeSet<String>, BTreeSet<String>) {
    let db = dir.join(format!("fresh-{step}.db"));
    run_ok(
        hedui()
            .args(["check", "--format", "csv", "--lake"])
            .arg(lake)
            .arg("--cases")
            .arg(format!("sqlite://{}", db.display())),
    );
    cases_in(&db)
}

fn copy_dir(from: &Path, to: &Path, skip: &dyn Fn(&Path) -> bool) {
    for e in walk(from) {
        let rel = e.strip_prefix(from).unwrap();
        if skip(rel) {
            continue;
        }
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&e, &target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_city_fed_month_by_month_is_verified_as_a_full_check_would() {
    let city = city();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lake = dir.path().join("lake");
    let monthly = |rel: &Path, month: u32| {
        rel.to_string_lossy()
            .contains(&format!("养老金发放明细_2025{month:02}"))
    };
    // January's pensions and everything else; then one month's pensions after another.
    copy_dir(&city.data(), &data, &|rel| {
        (2..=12).any(|m| monthly(rel, m))
    });
    ingest(&data, &lake);
    run_ok(
        hedui()
            .args(["check", "--format", "csv", "--lake"])
            .arg(&lake),
    );
    let store = dir.path().join("hedui-cases.db");
    let srv = start_with(tempfile::tempdir().unwrap(), lake.clone(), None);
    let admin = token(&lake, "admin", None);
    let wait_verified = |what: &str| {
        let want = lake_version(&lake);
        let deadline = Instant::now() + Duration::from_secs(120);
        while verified_version(&store) < want {
            assert!(Instant::now() < deadline, "{what} was not verified");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut grew = 0;
    for month in 2..=12u32 {
        let (before, _) = cases_in(&store);
        copy_dir(&city.data(), &data, &|rel| !monthly(rel, month));
        ingest(&data, &lake);
        let what = format!("the pensions of 2025-{month:02}");
        wait_verified(&what);
        let (served, _) = cases_in(&store);
        let (fresh, _) = from_scratch(&lake, dir.path(), month as usize);
        assert_eq!(
            served.len(),
            fresh.len(),
            "{what}: cases served and from scratch"
        );
        assert!(
            served == fresh,
            "{what}: the served cases are not a full check's"
        );
        grew += served.difference(&before).count();
        // The month was verified by adding its payments' hits to the hits kept from before,
        // not by evaluating every pensioner again.
        let pensioners = walk(&data)
            .into_iter()
            .find(|p| monthly(p.strip_prefix(&data).unwrap(), month))
            .map(|p| {
                std::fs::read(p)
                    .unwrap()
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    - 1
            })
            .unwrap();
        let evaluated = newest_run_evaluated(&store, "R1")
            .unwrap_or_else(|| panic!("{what}: R1 was not evaluated on the new rows"));
        assert!(
            evaluated * 5 < pensioners,
            "{what}: R1 evaluated {evaluated} subjects for {pensioners} pension payments"
        );
    }
    assert!(
        grew > 0,
        "no delivery changed a case: the test proves nothing"
    );

    // The prison register corrected to nobody: its hits are gone, marked on their cases.
    let prison = walk(&data)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("服刑人员"))
        .unwrap();
    let text = std::fs::read(&prison).unwrap();
    let header_end = text.iter().position(|b| *b == b'\n').unwrap() + 1;
    std::fs::write(&prison, &text[..header_end]).unwrap();
    ingest(&data, &lake);
    wait_verified("the corrected prison register");
    let (served, gone) = cases_in(&store);
    let (fresh, _) = from_scratch(&lake, dir.path(), 99);
    assert!(
        served == fresh,
        "after the correction: the served cases are not a full check's"
    );
    assert!(
        gone.iter().any(|c| c.starts_with("R4\t")),
        "no R4 case was marked as no longer found"
    );

    // The reviewer sees it all without a restart.
    let (code, page) = call(&srv, "GET", "/api/v1/cases?limit=1000", &admin, None);
    assert_eq!(code, 200, "{page}");
    assert!(!page["cases"].as_array().unwrap().is_empty());
}

/// `hedui check --changed` (what a city without a running server schedules) verifies from the
/// last version the store agreed with the lake about every rule: a run of one rule in between
/// does not make the other rules skip the delivery. Its runs can be reproduced like full ones.
#[test]
fn check_changed_verifies_from_the_last_run_of_every_rule() {
    let city = city();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lake = dir.path().join("lake");
    let store = dir.path().join("cases.db");
    let url = format!("sqlite://{}", store.display());
    let pensions_of = |rel: &Path, month: u32| {
        rel.to_string_lossy()
            .contains(&format!("养老金发放明细_2025{month:02}"))
    };
    let check = |extra: &[&str]| -> String {
        let out = run(hedui()
            .args(["check", "--format", "csv", "--lake"])
            .arg(&lake)
            .args(["--cases", &url])
            .args(extra));
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "check {extra:?}: {stderr}");
        stderr
    };
    copy_dir(&city.data(), &data, &|rel| {
        (7..=12).any(|m| pensions_of(rel, m))
    });
    ingest(&data, &lake);
    // No run yet: a full check.
    let first = check(&["--changed"]);
    assert!(!first.contains("changes after"), "{first}");
    for month in 7..=12u32 {
        copy_dir(&city.data(), &data, &|rel| !pensions_of(rel, month));
    }
    ingest(&data, &lake);
    check(&["--rule", "R1"]);
    let changed = check(&["--changed"]);
    assert!(changed.contains("changes after lake version"), "{changed}");
    let (served, _) = cases_in(&store);
    let (fresh, _) = from_scratch(&lake, dir.path(), 1);
    assert!(
        served.difference(&fresh).count() + fresh.difference(&served).count() == 0,
        "after a run of R1 alone, `check --changed` left other cases than a full check: \
         {} only incremental, {} only full",
        served.difference(&fresh).count(),
        fresh.difference(&served).count()
    );
    assert!(
        check(&["--changed"]).contains("verified already"),
        "a second --changed found work"
    );
    // The incremental run is reproduced as it ran: the same changes, the same subjects.
    let run_id = changed
        .split_whitespace()
        .find(|w| w.starts_with("run-"))
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let again = check(&["--rerun", &run_id]);
    assert!(again.contains("reproduced exactly"), "{again}");
}
