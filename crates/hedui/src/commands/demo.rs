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

/// The whole flow on a generated city, in a directory of its own.
pub async fn run(dir: &Path, persons: u64, seed: u64) -> Result<ExitCode> {
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

    // The checks of rules.md over the new lake, summarised per rule.
    let hits =
        super::check::run_rules(&lake, None, &[], &Default::default(), &Default::default()).await?;
    println!();
    println!("核查结果 checks (hits, amount):");
    for rule in hedui_engine::rules::RuleSet::builtin()?.iter() {
        let mine: Vec<_> = hits.iter().filter(|h| h.rule == rule.id).collect();
        let cents: i128 = mine.iter().filter_map(|h| h.amount_cents).sum();
        let planted = truth.rules.get(&rule.id).map_or(0, |r| r.hits.len());
        println!(
            "  {:<3} {:<12} {:<40} {:>5} hits (planted {planted:>3}) {:>10}.{:02} 元",
            rule.id,
            rule.title_zh,
            rule.title_en,
            mine.len(),
            cents / 100,
            cents % 100
        );
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
    Ok(if balanced {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
