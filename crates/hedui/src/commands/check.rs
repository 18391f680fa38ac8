use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use hedui_engine::Engine;
use hedui_engine::check::Hit;
use hedui_engine::rules::RuleSet;

use crate::cli::OutputFormat;
use crate::error::{Error, Result};

pub struct CheckArgs {
    pub rules: Vec<String>,
    pub lake: PathBuf,
    pub format: OutputFormat,
    pub out: Option<PathBuf>,
    pub rules_dir: Option<PathBuf>,
    pub params: BTreeMap<String, String>,
    pub engine: hedui_engine::EngineOptions,
}

/// Load and check every rule, then run the selected ones over the lake.
pub async fn run_rules(
    lake: &std::path::Path,
    rules_dir: Option<&std::path::Path>,
    ids: &[String],
    params: &BTreeMap<String, String>,
    options: &hedui_engine::EngineOptions,
) -> Result<Vec<Hit>> {
    if !lake.join(hedui_lake::LOG_DIR).is_dir() {
        return Err(Error::NoLake(lake.to_path_buf()));
    }
    let mut set = RuleSet::builtin()?;
    if let Some(dir) = rules_dir {
        set = set.with_dir(dir)?;
    }
    set.check_values(params)?;
    let engine = Engine::open_with(lake, options).await?;
    let selected = set.select(ids)?;
    // Plan every selected rule before running any: a broken rule stops the run with its file.
    for rule in &selected {
        engine.plan_rule(rule, params).await?;
    }
    let mut hits = Vec::new();
    for rule in selected {
        hits.extend(engine.run_rule(rule, params).await?);
    }
    Ok(hits)
}

/// Months as ranges: 2025-03..2025-06, 2025-09.
fn months_compact(h: &Hit) -> String {
    let months = h.months_text();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < h.months.len() {
        let mut j = i;
        while j + 1 < h.months.len()
            && h.months[j + 1]
                == h.months[j]
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap_or(h.months[j])
        {
            j += 1;
        }
        out.push(if j > i {
            format!("{}..{}", months[i], months[j])
        } else {
            months[i].clone()
        });
        i = j + 1;
    }
    out.join(", ")
}

pub async fn run(args: &CheckArgs) -> Result<ExitCode> {
    let hits = run_rules(
        &args.lake,
        args.rules_dir.as_deref(),
        &args.rules,
        &args.params,
        &args.engine,
    )
    .await?;
    let mut buf: Vec<u8> = Vec::new();
    match args.format {
        OutputFormat::Json => {
            // Each hit with the rows that prove it, their source and its as-of date.
            let engine = Engine::open_with(&args.lake, &args.engine).await?;
            let rows = engine.load_evidence(&hits).await?;
            let out: Vec<serde_json::Value> = hits
                .iter()
                .map(|h| {
                    let mut v = serde_json::to_value(h).expect("hit serialises");
                    v["evidence"] = h
                        .evidence
                        .iter()
                        .map(|r| {
                            rows.get(r).map_or(serde_json::Value::Null, |e| {
                                serde_json::to_value(e).expect("row")
                            })
                        })
                        .collect();
                    v
                })
                .collect();
            serde_json::to_writer_pretty(&mut buf, &out).expect("hits serialise");
            buf.push(b'\n');
        }
        OutputFormat::Csv => {
            writeln!(buf, "rule,subject,months,amount,evidence_rows,detail").expect("memory");
            for h in &hits {
                let detail = h.details.join("; ").replace('"', "\"\"");
                writeln!(
                    buf,
                    "{},{},{},{},{},\"{}\"",
                    h.rule,
                    h.subject,
                    h.months_text().join(" "),
                    h.amount_text().unwrap_or_default(),
                    h.evidence.len(),
                    detail
                )
                .expect("memory");
            }
        }
        OutputFormat::Table => {
            writeln!(
                buf,
                "{:<5} {:<20} {:<34} {:>12} {:>6}  说明 detail",
                "规则", "对象 subject", "月份 months", "金额 amount", "证据"
            )
            .expect("memory");
            for h in &hits {
                writeln!(
                    buf,
                    "{:<5} {:<20} {:<34} {:>12} {:>6}  {}",
                    h.rule,
                    h.subject,
                    months_compact(h),
                    h.amount_text().unwrap_or_default(),
                    h.evidence.len(),
                    h.details.join("; ")
                )
                .expect("memory");
            }
            let mut per_rule: BTreeMap<&str, (usize, i128)> = BTreeMap::new();
            for h in &hits {
                let e = per_rule.entry(&h.rule).or_default();
                e.0 += 1;
                e.1 += h.amount_cents.unwrap_or(0);
            }
            writeln!(buf).expect("memory");
            for (rule, (n, cents)) in per_rule {
                writeln!(
                    buf,
                    "{rule}: {n} hits, {}.{:02} yuan",
                    cents / 100,
                    cents % 100
                )
                .expect("memory");
            }
        }
    }
    match &args.out {
        Some(path) => std::fs::write(path, &buf).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?,
        None => std::io::stdout()
            .write_all(&buf)
            .map_err(|source| Error::Io {
                path: "stdout".into(),
                source,
            })?,
    }
    Ok(ExitCode::SUCCESS)
}
