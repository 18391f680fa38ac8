use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hedui_cases::CaseStore;
use hedui_engine::check::{EvidenceRef, Hit};
use hedui_engine::evidence::EvidenceRow;
use hedui_engine::rules::RuleSet;
use hedui_engine::{Engine, EngineOptions};
use hedui_service::checks::{self, evidence_json};

use crate::cli::OutputFormat;
use crate::error::{Error, Result};

pub struct CheckArgs {
    pub rules: Vec<String>,
    pub lake: PathBuf,
    pub cases: String,
    pub rerun: Option<String>,
    pub changed: bool,
    pub format: OutputFormat,
    pub out: Option<PathBuf>,
    pub rules_dir: Option<PathBuf>,
    pub params: BTreeMap<String, String>,
    pub engine: EngineOptions,
    pub workflow: hedui_cases::WorkflowConfig,
}

/// The case store's default: `hedui-cases.db` beside the lake directory.
pub fn default_cases_url(lake: &Path) -> String {
    let dir = crate::config::beside_lake(lake);
    format!("sqlite://{}", dir.join("hedui-cases.db").display())
}

/// The built-in rules plus the city's, every parameter value checked.
pub fn rule_set(rules_dir: Option<&Path>, params: &BTreeMap<String, String>) -> Result<RuleSet> {
    let mut set = RuleSet::builtin()?;
    if let Some(dir) = rules_dir {
        set = set.with_dir(dir)?;
    }
    set.check_values(params)?;
    Ok(set)
}

fn open_lake_check(lake: &Path) -> Result<()> {
    if crate::config::lake_exists(lake) {
        Ok(())
    } else {
        Err(Error::NoLake(lake.to_path_buf()))
    }
}

/// The engine over the lake, which must hold at least one commit.
async fn open_engine(args: &CheckArgs) -> Result<Engine> {
    let engine = Engine::open_with(&args.lake, &args.engine).await?;
    if engine.snapshot().commits().is_empty() {
        return Err(Error::NoLake(args.lake.clone()));
    }
    Ok(engine)
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
    open_lake_check(&args.lake)?;
    let set = rule_set(args.rules_dir.as_deref(), &args.params)?;
    let store = CaseStore::open(&args.cases)
        .await?
        .with_workflow(args.workflow.clone())?;
    if (args.rerun.is_some() || args.changed) && hedui_lake::object_store_url(&args.lake).is_some()
    {
        // Both read earlier versions of the lake through its directory.
        return Err(Error::Usage(
            "--rerun and --changed need the lake on local disk; check the lake it is published from".into(),
        ));
    }
    let done = match &args.rerun {
        Some(run_id) => checks::reproduce(&args.lake, &args.engine, &set, &store, run_id).await?,
        None if args.changed => {
            let engine = open_engine(args).await?;
            checks::record_since_last(&engine, &set, &args.params, &store).await?
        }
        None => {
            let engine = open_engine(args).await?;
            checks::record(&engine, &set, &args.rules, &args.params, &store).await?
        }
    };
    emit(args, &done.hits, &done.rows, &done.summary)
}

fn emit(
    args: &CheckArgs,
    hits: &[Hit],
    rows: &HashMap<EvidenceRef, EvidenceRow>,
    summary: &str,
) -> Result<ExitCode> {
    let mut buf: Vec<u8> = Vec::new();
    match args.format {
        OutputFormat::Json => {
            // Each hit with the rows that prove it, their source and its as-of date.
            let out: Vec<serde_json::Value> = hits
                .iter()
                .map(|h| {
                    let mut v = serde_json::to_value(h).expect("hit serialises");
                    v["evidence"] = evidence_json(h, rows);
                    v
                })
                .collect();
            serde_json::to_writer_pretty(&mut buf, &out).expect("hits serialise");
            buf.push(b'\n');
        }
        OutputFormat::Csv => {
            writeln!(buf, "rule,subject,months,amount,evidence_rows,detail").expect("memory");
            for h in hits {
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
            for h in hits {
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
            for h in hits {
                let e = per_rule.entry(&h.rule).or_default();
                e.0 += 1;
                e.1 += h.amount_cents.unwrap_or(0);
            }
            writeln!(buf).expect("memory");
            for (rule, (n, cents)) in per_rule {
                writeln!(
                    buf,
                    "{rule}: {n} hits, {} yuan",
                    hedui_model::Money::from_cents(cents as i64)
                )
                .expect("memory");
            }
            writeln!(buf, "{summary}").expect("memory");
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
    if !matches!(args.format, OutputFormat::Table) || args.out.is_some() {
        // Keep machine-readable output clean: the summary goes to the terminal.
        eprintln!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}
