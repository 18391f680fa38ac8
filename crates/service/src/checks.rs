//! The city's check: every rule run over the whole lake as it is (or as it was, to reproduce a
//! run), its hits recorded as a run and raised as cases with their evidence rows. This is the
//! system's own read of the lake, done by the operator's scheduled job, not a read on a
//! caller's behalf: callers see its results only as cases, through their case access.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use hedui_cases::{CaseStore, Coverage, HitsUpdate, NewHit, RuleHits, RunRecord, sha256_hex};
use hedui_engine::changes::{Changes, DatasetChange};
use hedui_engine::check::{EvidenceRef, Hit};
use hedui_engine::delta::NewRows;
use hedui_engine::evidence::EvidenceRow;
use hedui_engine::rules::{RuleDef, RuleSet, SubjectKind};
use hedui_engine::{Engine, EngineOptions};
use hedui_lake::Snapshot;

use crate::{Error, Result};

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
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "_batch" | "_ingested_at" | "_sheet" | "_row")
                    })
                    .collect::<BTreeMap<_, _>>()
            });
            (&r.dataset, values)
        })
        .collect();
    sha256_hex(&serde_json::to_vec(&content).expect("json"))
}

pub fn evidence_json(h: &Hit, rows: &HashMap<EvidenceRef, EvidenceRow>) -> serde_json::Value {
    h.evidence
        .iter()
        .map(|r| {
            rows.get(r).map_or(serde_json::Value::Null, |e| {
                serde_json::to_value(e).expect("row")
            })
        })
        .collect()
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
    let selected = set.select(ids)?;
    let covered = Coverage::all(selected.iter().map(|r| r.id.clone()));
    // Every selected rule's hits, kept for the runs after the next commits.
    let kept = HitsUpdate {
        rules: selected
            .iter()
            .map(|r| RuleHits {
                rule: r.id.clone(),
                rule_version: r.version,
                params: params_key(r, params),
                from: None,
                subjects: hits
                    .iter()
                    .filter(|h| h.rule == r.id)
                    .map(|h| (h.subject.clone(), Some(h.state())))
                    .collect(),
            })
            .collect(),
        ..HitsUpdate::default()
    };
    store_run(
        engine, set, &selected, params, store, hits, covered, kept, started_at, None,
    )
    .await
}

/// The rule versions of a set: what a run must have verified for the store to agree with the
/// lake about the whole set.
pub fn rule_versions(set: &RuleSet) -> BTreeMap<String, u32> {
    set.iter().map(|r| (r.id.clone(), r.version)).collect()
}

/// What an incremental evaluation found: the hits of the subjects it evaluated, what it
/// evaluated, which rules read a changed dataset (the others had nothing to evaluate), and
/// what it does to the kept hits.
struct Evaluated {
    hits: Vec<Hit>,
    covered: Coverage,
    ran: usize,
    changes: Changes,
    kept: HitsUpdate,
}

/// A rule's parameters as the kept hits record them.
fn params_key(rule: &RuleDef, params: &BTreeMap<String, String>) -> String {
    serde_json::to_string(&rule.effective(params)).expect("json")
}

/// At most this many new rows of a dataset are read into memory to be evaluated alone; more
/// (a first delivery, a department's full reload) and the subjects they touch are evaluated
/// again instead.
const NEW_ROWS_IN_MEMORY: u64 = 4_000_000;

/// Run `rules` (each with its parameters) for what changed since `before`, and give exactly
/// the hits a full run would now give for the subjects evaluated; the others' hits are as
/// before. For a rule whose hits at `before` are kept in `kept` (same version and parameters),
/// a dataset that only gained rows and that the rule can evaluate on new rows alone (see
/// [`hedui_engine::delta`]) is evaluated so, and the hit rows found are added to the kept hits
/// of their subjects; every other change is evaluated by running the rule again for the
/// subjects its rows name. Without kept hits, every changed subject is evaluated again.
async fn evaluate_changes(
    engine: &Engine,
    before: &Snapshot,
    rules: &[(&RuleDef, BTreeMap<String, String>)],
    kept: Option<&CaseStore>,
) -> Result<Evaluated> {
    let changes = engine.changes_since(before).await?;
    let kept_at = match kept {
        Some(store) => store.kept_hits().await?,
        None => Default::default(),
    };
    let rows_now = engine.snapshot().row_counts();
    let mut new_rows = NewRows::default();
    let mut done = Evaluated {
        hits: Vec::new(),
        covered: Coverage::default(),
        ran: 0,
        changes: Changes::default(),
        kept: HitsUpdate::default(),
    };
    let mut evaluated = BTreeMap::new();
    for (rule, params) in rules {
        let key = params_key(rule, params);
        let valid = kept.filter(|_| {
            kept_at.get(&rule.id).is_some_and(|k| {
                k.rule_version == rule.version
                    && k.params == key
                    && k.lake_version == before.version()
            })
        });
        let reads = engine.rule_datasets(rule, params).await?;
        if reads.is_disjoint(&changes.datasets) {
            if valid.is_some() {
                done.kept
                    .unchanged
                    .push((rule.id.clone(), before.version()));
            }
            continue;
        }
        let subjects_of = |change: &DatasetChange| match rule.subject {
            SubjectKind::Person => change.persons.clone(),
            SubjectKind::Household => change.households.clone(),
        };
        let mut again = BTreeSet::new();
        let mut added = BTreeMap::new();
        let plan = match valid {
            Some(_) => Some(engine.delta_plan(rule, params).await?),
            None => None,
        };
        let additive = plan
            .as_ref()
            .map(|p| p.additive_datasets())
            .unwrap_or_default();
        if valid.is_none() {
            // As every run without kept hits did: every changed subject of the rule's kind.
            again = match rule.subject {
                SubjectKind::Person => changes.persons.clone(),
                SubjectKind::Household => changes.households.clone(),
            };
        }
        for dataset in reads.intersection(&changes.datasets) {
            if valid.is_none() {
                break;
            }
            let change = &changes.by_dataset[dataset];
            let alone = additive.contains(dataset)
                && change.only_added()
                && change.new_rows <= NEW_ROWS_IN_MEMORY
                && change.new_rows * 2 <= rows_now.get(dataset).copied().unwrap_or(0);
            if alone {
                let rows = engine
                    .new_rows(&mut new_rows, dataset, &change.new_batches)
                    .await?;
                added.insert(dataset.clone(), rows);
            } else {
                again.extend(subjects_of(change));
            }
        }
        let mut found: BTreeMap<String, Hit> = BTreeMap::new();
        if !again.is_empty() {
            // The others are evaluated too: they cannot have a hit.
            let could = engine.could_hit(rule, params, &again).await?;
            if !could.is_empty() {
                for h in engine.run_rule_on(rule, params, &could).await? {
                    found.insert(h.subject.clone(), h);
                }
            }
        }
        let mut grown = BTreeSet::new();
        if let (Some(plan), Some(store)) = (&plan, valid)
            && !added.is_empty()
        {
            let more: Vec<Hit> = engine
                .run_rule_delta(rule, plan, &added)
                .await?
                .into_iter()
                .filter(|h| !again.contains(&h.subject))
                .collect();
            let names: Vec<&str> = more.iter().map(|h| h.subject.as_str()).collect();
            let mut earlier = store.kept_hits_of(&rule.id, &names).await?;
            for h in more {
                let subject = h.subject.clone();
                let hit = match earlier
                    .remove(&subject)
                    .and_then(|state| Hit::from_state(rule, &subject, &state))
                {
                    Some(mut was) => {
                        was.merge(h);
                        was
                    }
                    None => h,
                };
                grown.insert(subject.clone());
                found.insert(subject, hit);
            }
        }
        let subjects: BTreeSet<String> = again.union(&grown).cloned().collect();
        if valid.is_some() {
            done.kept.rules.push(RuleHits {
                rule: rule.id.clone(),
                rule_version: rule.version,
                params: key,
                from: Some(before.version()),
                subjects: subjects
                    .iter()
                    .map(|s| (s.clone(), found.get(s).map(Hit::state)))
                    .collect(),
            });
            // Not for a rule evaluated for every changed subject: replaying the changes
            // evaluates those again (and a month's would be a third of the city).
            evaluated.insert(
                rule.id.clone(),
                subjects.iter().cloned().collect::<Vec<_>>(),
            );
        }
        done.covered
            .rules
            .push((rule.id.clone(), Some(subjects.into_iter().collect())));
        done.hits.extend(found.into_values());
        done.ran += 1;
    }
    done.kept.evaluated = Some(evaluated);
    done.changes = changes;
    Ok(done)
}

/// After the lake moved on from `before`, run again the rules that read a dataset that
/// changed, for the subjects whose rows changed, and record that run: new hits become cases,
/// open cases are brought up to date or marked when their hit is gone, exactly as a full run
/// would leave them. The run is recorded as verifying every rule of the set (those that read
/// nothing changed are as verified as before). `None` when nothing a rule reads changed.
pub async fn record_changes(
    engine: &Engine,
    before: &Snapshot,
    set: &RuleSet,
    params: &BTreeMap<String, String>,
    store: &CaseStore,
) -> Result<Option<Recorded>> {
    let started_at = chrono::Utc::now();
    let rules: Vec<_> = set.iter().map(|r| (r, params.clone())).collect();
    let done = evaluate_changes(engine, before, &rules, Some(store)).await?;
    if done.ran == 0 {
        // The kept hits of every rule are those of this version too.
        store
            .advance_kept_hits(&done.kept, engine.snapshot().version())
            .await?;
        return Ok(None);
    }
    let evaluated: usize = done
        .covered
        .rules
        .iter()
        .map(|(_, s)| s.as_ref().map_or(0, |s| s.len()))
        .sum();
    let note = format!(
        " (changes after lake version {}: {} rows, {} persons, {} households; {} subjects evaluated)",
        before.version(),
        done.changes.rows,
        done.changes.persons.len(),
        done.changes.households.len(),
        evaluated
    );
    let selected: Vec<_> = set.iter().collect();
    store_run(
        engine,
        set,
        &selected,
        params,
        store,
        done.hits,
        done.covered,
        done.kept,
        started_at,
        Some((before.version(), &note)),
    )
    .await
    .map(Some)
}

/// Verify what changed since the store last agreed with the lake about the whole rule set
/// ([`record_changes`] from that version); a store that never did gets a full check.
pub async fn record_since_last(
    engine: &Engine,
    set: &RuleSet,
    params: &BTreeMap<String, String>,
    store: &CaseStore,
) -> Result<Recorded> {
    let Some(last) = store.verified_version(&rule_versions(set)).await? else {
        return record(engine, set, &[], params, store).await;
    };
    let now = engine.snapshot().version();
    let nothing = |why: String| Recorded {
        hits: Vec::new(),
        rows: HashMap::new(),
        summary: why,
    };
    if last >= now {
        return Ok(nothing(format!(
            "lake version {now} is verified already: nothing to run"
        )));
    }
    let before = Snapshot::at(engine.snapshot().root(), last)?;
    Ok(record_changes(engine, &before, set, params, store)
        .await?
        .unwrap_or_else(|| {
            nothing(format!(
                "nothing any rule reads changed after lake version {last}: nothing to run"
            ))
        }))
}

/// The evidence rows the store's cases of these hits already show, by reference: a month's
/// run finds mostly the cases it found before, with a row or two more.
async fn held_rows(store: &CaseStore, hits: &[Hit]) -> Result<HashMap<EvidenceRef, EvidenceRow>> {
    let pairs: Vec<(&str, &str)> = hits
        .iter()
        .map(|h| (h.rule.as_str(), h.subject.as_str()))
        .collect();
    let held = store.held_evidence(&pairs).await?;
    Ok(held
        .into_iter()
        .filter_map(|v| match v {
            serde_json::Value::Array(rows) => Some(rows),
            _ => None,
        })
        .flatten()
        .filter_map(|v| serde_json::from_value::<EvidenceRow>(v).ok())
        .map(|row| (row.reference(), row))
        .collect())
}

/// Record a run's hits as cases, with their evidence and regions.
#[allow(clippy::too_many_arguments)]
async fn store_run(
    engine: &Engine,
    set: &RuleSet,
    selected: &[&hedui_engine::rules::RuleDef],
    params: &BTreeMap<String, String>,
    store: &CaseStore,
    hits: Vec<Hit>,
    covered: Coverage,
    kept: HitsUpdate,
    started_at: chrono::DateTime<chrono::Utc>,
    incremental: Option<(u64, &str)>,
) -> Result<Recorded> {
    let note = incremental.map_or("", |(_, note)| note);
    let phase = std::time::Instant::now();
    let rows = engine
        .load_evidence_reusing(&hits, held_rows(store, &hits).await?)
        .await?;
    let evidence_ms = phase.elapsed().as_millis() as u64;
    let fingerprint = hits_fingerprint(&hits);
    // Unique also for runs started in the same microsecond on the same lake (a scheduler
    // starting several checks at once): the process and a counter within it.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run_id = format!(
        "run-{}-{}-{:x}{:x}",
        started_at.format("%Y%m%dT%H%M%S%6f"),
        &fingerprint[..8],
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let kinds: HashMap<&str, SubjectKind> =
        set.iter().map(|r| (r.id.as_str(), r.subject)).collect();
    let subjects: Vec<_> = hits
        .iter()
        .filter_map(|h| kinds.get(h.rule.as_str()).map(|k| (*k, h.subject.clone())))
        .collect();
    let phase = std::time::Instant::now();
    let regions = engine.subject_regions(&subjects).await?;
    let regions_ms = phase.elapsed().as_millis() as u64;
    let phase = std::time::Instant::now();
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
        changed_since: incremental.map(|(since, _)| since),
    };
    let raised = store
        .record_run_keeping(&mut run, &new_hits, &covered, &kept)
        .await?;
    let spilled = engine.spilled();
    let mut summary = format!(
        "run {run_id}{note}: {} hits on lake version {}; cases: {} new, {} already open ({} brought up to date), {} suppressed (closed with the same evidence), {} no longer found",
        hits.len(),
        engine.snapshot().version(),
        raised.new,
        raised.already_open,
        raised.updated,
        raised.suppressed,
        raised.gone
    );
    if let Some(spill) = spilled.describe() {
        // Within a memory limit: how much the rules' sorts, joins and aggregations wrote out.
        summary.push_str(&format!("; the rules {spill}"));
    }
    // The split of a check's time after its rules: what the benchmark prints.
    tracing::info!(
        run = %run_id,
        hits = hits.len(),
        new = raised.new,
        gone = raised.gone,
        evidence_ms,
        regions_ms,
        store_ms = phase.elapsed().as_millis() as u64,
        spilled_bytes = spilled.bytes,
        replanned = spilled.replanned,
        "run recorded"
    );
    Ok(Recorded {
        hits,
        rows,
        summary,
    })
}

/// Run the recorded run `run_id` again on the lake as it was then, with the rule versions and
/// parameters it used, and check the hits are exactly the same.
pub async fn reproduce(
    lake: &Path,
    engine_options: &EngineOptions,
    set: &RuleSet,
    store: &CaseStore,
    run_id: &str,
) -> Result<Recorded> {
    let record = store.run(run_id).await?;
    let not = |why: String| Error::NotReproduced {
        run: run_id.to_string(),
        why,
    };
    let snapshot = Snapshot::at(lake, record.lake_version)?;
    if snapshot.version() != record.lake_version {
        return Err(not(format!(
            "the lake has no version {}",
            record.lake_version
        )));
    }
    let engine = Engine::with_snapshot(snapshot, engine_options).await?;
    let mut rules = Vec::new();
    for (id, version) in &record.rules {
        let rule = set.select(std::slice::from_ref(id))?.remove(0);
        if rule.version != *version {
            return Err(not(format!(
                "rule {id} is now version {}, the run used version {version}",
                rule.version
            )));
        }
        rules.push((rule, record.params.get(id).cloned().unwrap_or_default()));
    }
    let evaluated = store.run_evaluated(run_id).await?.unwrap_or_default();
    let hits = match record.changed_since {
        // An incremental run: the subjects it evaluated, evaluated again from scratch (for a
        // rule it added new rows' hits to kept ones), or the same changes evaluated again.
        Some(since) => {
            let before = Snapshot::at(lake, since)?;
            let mut hits = Vec::new();
            for (rule, params) in &rules {
                match evaluated.get(&rule.id) {
                    Some(subjects) => {
                        let subjects: BTreeSet<String> = subjects.iter().cloned().collect();
                        if !subjects.is_empty() {
                            hits.extend(engine.run_rule_on(rule, params, &subjects).await?);
                        }
                    }
                    None => {
                        let one = [(*rule, params.clone())];
                        hits.extend(evaluate_changes(&engine, &before, &one, None).await?.hits);
                    }
                }
            }
            hits
        }
        None => {
            let mut hits = Vec::new();
            for (rule, params) in &rules {
                hits.extend(engine.run_rule(rule, params).await?);
            }
            hits
        }
    };
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
    Ok(Recorded {
        hits,
        rows,
        summary,
    })
}
