use std::path::Path;
use std::process::ExitCode;

use hedui_engine::Engine;
use hedui_ingest::{IngestOptions, ingest, load_mappings};
use hedui_synth::{CityConfig, generate};

use super::embedded::CONNECTORS;
use crate::error::{Error, Result};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the demo does after checking: serve the UI (the default) or stop.
pub struct Serve {
    pub enabled: bool,
    pub http: Option<String>,
    pub pg: Option<String>,
}

/// The roles a newcomer can sign in as, with what each sees.
const DEMO_ROLES: &[(&str, &str)] = &[
    (
        "reviewer",
        "社保核查员 social-security reviewer: R1-R4, R6 cases",
    ),
    (
        "dibao_reviewer",
        "低保核对员 dibao reviewer: R5, R7 cases, household verification",
    ),
    ("analyst", "分析员 analyst: SQL (masked), data, dashboard"),
    ("statistician", "统计员 statistician: aggregates only"),
    ("auditor", "审计员 auditor: audit log, read-only cases"),
    ("admin", "管理员 administrator: everything"),
];

/// The whole flow on a generated city, in a directory of its own: generate, ingest, check (the
/// hits become cases), then serve the UI with a sign-in link per role.
pub async fn run(dir: &Path, persons: u64, seed: u64, serve: Serve) -> Result<ExitCode> {
    println!(
        "hedui demo: 生成、接入、入湖 (generate, ingest, load) in {}",
        dir.display()
    );
    let city_dir = dir.join("city");
    let g = generate(&CityConfig { persons, seed }, &city_dir)?;
    super::generate::print_summary(&g);

    // The shipped mappings, written out so they can be read and edited.
    let connectors = dir.join("connectors");
    std::fs::create_dir_all(&connectors).map_err(io(&connectors))?;
    for (name, text) in CONNECTORS {
        let path = connectors.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    let lake = dir.join("lake");
    if lake.exists() {
        std::fs::remove_dir_all(&lake).map_err(io(&lake))?;
    }
    let mappings = load_mappings(&connectors)?;
    let report = ingest(
        &mappings,
        &IngestOptions {
            data_dir: g.data_dir.clone(),
            lake_dir: lake.clone(),
            threads: 0,
        },
    )?;
    println!();
    super::ingest::print_report(&report);

    let engine = Engine::open(&lake).await?;
    println!();
    println!("数据集 datasets (rows loaded):");
    for (dataset, rows) in engine.snapshot().row_counts() {
        let title = hedui_model::Catalog::builtin()
            .get(&dataset)
            .map(|d| d.title_zh.clone())
            .unwrap_or_default();
        println!("  {dataset:<24} {title:<16} {rows:>10}");
    }
    let truth: hedui_synth::Truth =
        serde_json::from_slice(&std::fs::read(&g.truth_path).map_err(io(&g.truth_path))?)
            .expect("truth.json written by this run");
    let balanced = report.files.iter().all(|f| f.counts().balanced());
    println!();
    println!(
        "隔离区 quarantine: {} rows; the generator broke {} rows on purpose; every file adds up (read = loaded + quarantined + duplicate): {}",
        report.totals.rows_quarantined,
        truth.broken_rows.len(),
        if balanced { "yes" } else { "NO" }
    );

    // The checks of rules.md over the new lake; their hits become the case store's cases.
    let cases_db = dir.join("hedui-cases.db");
    if cases_db.exists() {
        std::fs::remove_file(&cases_db).map_err(io(&cases_db))?;
    }
    let store = hedui_cases::CaseStore::open(&super::check::default_cases_url(&lake)).await?;
    let set = hedui_engine::rules::RuleSet::builtin()?;
    let recorded =
        hedui_service::checks::record(&engine, &set, &[], &Default::default(), &store).await?;
    let hits = recorded.hits;
    println!();
    println!("核查结果 checks (hits, amount):");
    for rule in hedui_engine::rules::RuleSet::builtin()?.iter() {
        let mine: Vec<_> = hits.iter().filter(|h| h.rule == rule.id).collect();
        let cents: i128 = mine.iter().filter_map(|h| h.amount_cents).sum();
        let planted = truth.rules.get(&rule.id).map_or(0, |r| r.hits.len());
        println!(
            "  {:<3} {:<12} {:<40} {:>5} hits (planted {planted:>3}) {:>13} 元",
            rule.id,
            rule.title_zh,
            rule.title_en,
            mine.len(),
            hedui_model::Money::from_cents(cents as i64).to_string()
        );
    }
    println!("{}", recorded.summary);
    let balanced_exit = if balanced {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if serve.enabled && balanced {
        println!();
        let cfg = crate::config::Config::default();
        let auth = super::access::authenticator(&cfg, &lake)?;
        let mut links = Vec::new();
        for (role, what) in DEMO_ROLES {
            let token = auth.issue(&hedui_auth::TokenRequest {
                subject: format!("demo-{role}"),
                roles: vec![role.parse().expect("a role")],
                // Reviewers work a region; the demo's are the city office's (宜昌市, 4205).
                region: matches!(*role, "reviewer" | "dibao_reviewer").then(|| "4205".to_string()),
                department: None,
                ttl: std::time::Duration::from_secs(12 * 3600),
            })?;
            links.push((*role, *what, token));
        }
        return super::serve::serve_with(&cfg, None, &lake, serve.http, serve.pg, move |http| {
            println!();
            println!("登录链接 sign-in links (valid 12 hours; the token is in the link's #fragment, never sent to a server log):");
            for (role, what, token) in &links {
                println!("  {role:<15} {what}");
                println!("                  http://{http}/ui/#token={token}");
            }
            println!();
            println!("Ctrl-C 停止 stops the server.");
        })
        .await;
    }
    println!();
    println!("Try: hedui check --lake {}", lake.display());
    println!(
        "     hedui sql --lake {} \"SELECT source_file, source_row, reasons FROM quarantine LIMIT 10\"",
        lake.display()
    );
    println!(
        "     hedui serve --lake {0}   (then: hedui token --lake {0} --role analyst)",
        lake.display()
    );
    Ok(balanced_exit)
}
