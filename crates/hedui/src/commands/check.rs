use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hedui_cases::{CaseStore, NewHit, RunRecord, sha256_hex};
use hedui_engine::check::{EvidenceRef, Hit};
use hedui_engine::evidence::EvidenceRow;
use hedui_engine::rules::RuleSet;
use hedui_engine::{Engine, EngineOptions};
use hedui_lake::Snapshot;

use crate::cli::OutputFormat;
use crate::error::{Error, Result};

pub struct CheckArgs {
    pub rules: Vec<String>,
    pub lake: PathBuf,
    pub cases: String,
    pub rerun: Option<String>,
    pub format: OutputFormat,
    pub out: Option<PathBuf>,
    pub rules_dir: Option<PathBuf>,
    pub params: BTreeMap<String, String>,
    pub engine: EngineOptions,
    pub workflow: hedui_cases::WorkflowConfig,
}

/// The case store's default: `hedui-cases.db` beside the lake directory.
pub fn default_cases_url(lake: &Path) -> String {
    let dir = lake
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
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

/// Plan every selected rule first (a broken rule stops the run with its file), then run them.
async fn run_on(
    engine: &Engine,
    set: &RuleSet,
    ids: &[String],
    params: &BTreeMap<String, String>,
) -> Result<Vec<Hit>> {
    let selected = set.select(ids)?;
    for rule in &selected {
        engine.plan_rule(rule, params).await?;
    }
    let mut hits = Vec::new();
    for rule in selected {
        hits.extend(engine.run_rule(rule, params).await?);
    }
    Ok(hits)
}

fn open_lake_check(lake: &Path) -> Result<()> {
    if lake.join(hedui_lake::LOG_DIR).is_dir() {
        Ok(())
    } else {
        Err(Error::NoLake(lake.to_path_buf()))
    }
}

/// What identifies a run's result: every hit's rule, subject, months, amount and evidence.
fn hits_fingerprint(hits: &[Hit]) -> String {
    let key: Vec<_> = hits
        .iter()
        .map(|h| {
            (
                &h.rule,
                &h.subject,
                h.months_text(),
                h.amount_text(),
                &h.evidence,
            )
        })
        .collect();
    sha256_hex(&serde_json::to_vec(&key).expect("json"))
}

/// The evidence as content: the rows' values without where and when they were loaded, so the
/// same rows delivered again are the same evidence.
fn evidence_fingerprint(h: &Hit, rows: &HashMap<EvidenceRef, EvidenceRow>) -> String {
    let content: Vec<_> = h
        .evidence
        .iter()
        .map(|r| {
            let values = rows.get(r).map(|row| {
                row.values
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "_batch" | "_ingested_at" | "_row"))
                    .collect::<BTreeMap<_, _>>()
            });
            (&r.dataset, values)
        })
        .collect();
    sha256_hex(&serde_json::to_vec(&content).expect("json"))
}

fn evidence_json(h: &Hit, rows: &HashMap<EvidenceRef, EvidenceRow>) -> serde_json::Value {
    h.evidence
        .iter()
        .map(|r| {
            rows.get(r).map_or(serde_json::Value::Null, |e| {
                serde_json::to_value(e).expect("row")
            })
        })
        .collect()
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

/// What one recorded run found and did.
pub struct Recorded {
    pub hits: Vec<Hit>,
    pub rows: HashMap<EvidenceRef, EvidenceRow>,
    pub summary: String,
}

/// Run the rules on the lake as it is now, and record the run and its cases in the store:
/// each case with its evidence rows and the region of its subject (for dispatch).
pub async fn record(
    engine: &Engine,
    set: &RuleSet,
    ids: &[String],
    params: &BTreeMap<String, String>,
    store: &CaseStore,
) -> Result<Recorded> {
    let started_at = chrono::Utc::now();
    let hits = run_on(engine, set, ids, params).await?;
    let rows = engine.load_evidence(&hits).await?;
    let fingerprint = hits_fingerprint(&hits);
    let run_id = format!(
        "run-{}-{}",
        started_at.format("%Y%m%dT%H%M%S%6f"),
        &fingerprint[..8]
    );
    let selected = set.select(ids)?;
    let kinds: HashMap<&str, hedui_engine::rules::SubjectKind> =
        set.iter().map(|r| (r.id.as_str(), r.subject)).collect();
    let subjects: Vec<_> = hits
        .iter()
        .filter_map(|h| kinds.get(h.rule.as_str()).map(|k| (*k, h.subject.clone())))
        .collect();
    let regions = engine.subject_regions(&subjects).await?;
    let new_hits: Vec<NewHit> = hits
        .iter()
        .map(|h| NewHit {
            rule: h.rule.clone(),
            subject: h.subject.clone(),
            months: h.months_text(),
            amount_cents: h.amount_cents.map(|c| c as i64),
            evidence: evidence_json(h, &rows),
            evidence_fingerprint: evidence_fingerprint(h, &rows),
            region: regions.get(&h.subject).cloned(),
        })
        .collect();
    let mut run = RunRecord {
        id: run_id.clone(),
        started_at: started_at.to_rfc3339(),
        lake_version: engine.snapshot().version(),
        rules: selected.iter().map(|r| (r.id.clone(), r.version)).collect(),
        params: selected
            .iter()
            .map(|r| (r.id.clone(), r.effective(params)))
            .collect(),
        hits: hits.len() as u64,
        hits_fingerprint: fingerprint,
        new_cases: 0,
    };
    let raised = store.record_run(&mut run, &new_hits).await?;
    let summary = format!(
        "run {run_id}: {} hits on lake version {}; cases: {} new, {} already open, {} suppressed (closed with the same evidence)",
        hits.len(),
        engine.snapshot().version(),
        raised.new,
        raised.already_open,
        raised.suppressed
    );
    Ok(Recorded {
        hits,
        rows,
        summary,
    })
}

pub async fn run(args: &CheckArgs) -> Result<ExitCode> {
    open_lake_check(&args.lake)?;
    let set = rule_set(args.rules_dir.as_deref(), &args.params)?;
    let store = CaseStore::open(&args.cases)
        .await?
        .with_workflow(args.workflow.clone())?;
    if let Some(run_id) = &args.rerun {
        return rerun(args, &set, &store, run_id).await;
    }
    let engine = Engine::open_with(&args.lake, &args.engine).await?;
    let done = record(&engine, &set, &args.rules, &args.params, &store).await?;
    emit(args, &done.hits, &done.rows, &done.summary)
}

/// Run a recorded run again on the lake as it was then, with the rule versions and parameters it
/// used, and check the hits are exactly the same.
async fn rerun(
    args: &CheckArgs,
    set: &RuleSet,
    store: &CaseStore,
    run_id: &str,
) -> Result<ExitCode> {
    let record = store.run(run_id).await?;
    let not = |why: String| Error::NotReproduced {
        run: run_id.to_string(),
        why,
    };
    let snapshot = Snapshot::at(&args.lake, record.lake_version)?;
    if snapshot.version() != record.lake_version {
        return Err(not(format!(
            "the lake has no version {}",
            record.lake_version
        )));
    }
    let engine = Engine::with_snapshot(snapshot, &args.engine).await?;
    let mut hits = Vec::new();
    for (id, version) in &record.rules {
        let rule = set.select(std::slice::from_ref(id))?.remove(0);
        if rule.version != *version {
            return Err(not(format!(
                "rule {id} is now version {}, the run used version {version}",
                rule.version
            )));
        }
        let params = record.params.get(id).cloned().unwrap_or_default();
        hits.extend(engine.run_rule(rule, &params).await?);
    }
    if hits_fingerprint(&hits) != record.hits_fingerprint {
        return Err(not(format!(
            "{} hits now, {} then, or their months, amounts or evidence differ",
            hits.len(),
            record.hits
        )));
    }
    let rows = engine.load_evidence(&hits).await?;
    let summary = format!(
        "run {run_id} reproduced exactly: {} hits on lake version {}",
        hits.len(),
        record.lake_version
    );
    emit(args, &hits, &rows, &summary)
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
                    "{rule}: {n} hits, {}.{:02} yuan",
                    cents / 100,
                    cents % 100
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
