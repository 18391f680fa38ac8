//! Pulling a department's paged JSON API (page number, offset or next-page token).
//!
//! Each page is requested with the mapping's authentication; a 5xx, a 429, a timeout or a broken
//! body is retried with a doubling wait, and a page that still fails after the limit stops the
//! pull with a clear error. Every `pages_per_batch` pages are committed with the next page to
//! ask for, so a pull stopped by a crash resumes after its last committed page. When the API
//! reports how many records it has, the count received is checked; only a pull that read the
//! whole API, with the count right, takes out the records the API no longer has.

use std::collections::BTreeMap;
use std::time::Duration;

use hedui_lake::{LakeWriter, PullState, SourceColumn};
use serde_json::Value;

use super::keyed::{KeyedPull, PulledRow, drift};
use super::{PullOptions, PullReport};
use crate::mapping::{Auth, HttpSource, Mapping, Paging};
use crate::{Error, Result};

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A page larger than this is not a page.
const MAX_PAGE_BYTES: usize = 64 << 20;

/// Where the next request goes: as saved in a commit (`page:3`, `offset:200`, `token:…`).
#[derive(Debug, Clone, PartialEq)]
enum At {
    Page(u64),
    Offset(u64),
    Token(Option<String>),
}

impl At {
    fn first(paging: &Paging) -> At {
        match paging {
            Paging::Page { first, .. } => At::Page(*first),
            Paging::Offset { .. } => At::Offset(0),
            Paging::Token { .. } => At::Token(None),
        }
    }

    fn save(&self) -> String {
        match self {
            At::Page(n) => format!("page:{n}"),
            At::Offset(n) => format!("offset:{n}"),
            At::Token(None) => "token:".into(),
            At::Token(Some(t)) => format!("token:{t}"),
        }
    }

    fn load(text: &str, paging: &Paging) -> Option<At> {
        let (kind, value) = text.split_once(':')?;
        match (kind, paging) {
            ("page", Paging::Page { .. }) => value.parse().ok().map(At::Page),
            ("offset", Paging::Offset { .. }) => value.parse().ok().map(At::Offset),
            ("token", Paging::Token { .. }) => {
                Some(At::Token((!value.is_empty()).then(|| value.to_string())))
            }
            _ => None,
        }
    }

    fn params(&self, paging: &Paging) -> Vec<(String, String)> {
        match (self, paging) {
            (
                At::Page(n),
                Paging::Page {
                    page,
                    size,
                    page_size,
                    ..
                },
            ) => {
                let mut p = vec![(page.clone(), n.to_string())];
                if let Some(size) = size {
                    p.push((size.clone(), page_size.to_string()));
                }
                p
            }
            (
                At::Offset(n),
                Paging::Offset {
                    offset,
                    limit,
                    page_size,
                },
            ) => vec![
                (offset.clone(), n.to_string()),
                (limit.clone(), page_size.to_string()),
            ],
            (At::Token(Some(t)), Paging::Token { param, .. }) => vec![(param.clone(), t.clone())],
            _ => Vec::new(),
        }
    }
}

fn describe(at: &At) -> String {
    match at {
        At::Page(n) => format!("第 {n} 页 (page {n})"),
        At::Offset(n) => format!("偏移 {n} 处的页 (the page at offset {n})"),
        At::Token(None) => "第一页 (the first page)".into(),
        At::Token(Some(_)) => "下一页 (the next page)".into(),
    }
}

/// One page requested until it answers, or the retries are spent.
async fn fetch(
    client: &reqwest::Client,
    api: &HttpSource,
    auth: &Option<(Auth, String)>,
    at: &At,
) -> std::result::Result<Value, String> {
    let mut wait = api.backoff;
    let mut last = String::new();
    for attempt in 0..=api.retries {
        if attempt > 0 {
            tracing::warn!(page = %at.save(), attempt, error = %last, "page request failed; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
        let mut request = client.get(&api.url).query(&at.params(&api.paging));
        match auth {
            Some((Auth::Bearer(_), token)) => request = request.bearer_auth(token),
            Some((Auth::Header(name, _), key)) => request = request.header(name.as_str(), key),
            Some((Auth::Query(name, _), key)) => request = request.query(&[(name, key)]),
            None => {}
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                // Without the URL: an API key may be in its query.
                last = if e.is_timeout() {
                    format!("超时 (no answer within {} s)", api.timeout.as_secs_f64())
                } else {
                    e.without_url().to_string()
                };
                continue;
            }
        };
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            last = format!("HTTP {status}");
            continue;
        }
        if !status.is_success() {
            return Err(match status.as_u16() {
                401 | 403 => format!(
                    "接口拒绝了认证 (HTTP {status}: the API refused the credentials; check `auth`)"
                ),
                _ => format!("接口返回 HTTP {status}，不重试 (not retried)"),
            });
        }
        match response.bytes().await {
            Ok(body) if body.len() > MAX_PAGE_BYTES => {
                return Err(format!(
                    "一页超过 {} MiB (a page over {} MiB)",
                    MAX_PAGE_BYTES >> 20,
                    MAX_PAGE_BYTES >> 20
                ));
            }
            Ok(body) => match serde_json::from_slice::<Value>(&body) {
                Ok(v) => return Ok(v),
                Err(e) => last = format!("返回的不是 JSON (not JSON: {e})"),
            },
            Err(e) => {
                last = if e.is_timeout() {
                    format!("超时 (no answer within {} s)", api.timeout.as_secs_f64())
                } else {
                    e.without_url().to_string()
                }
            }
        }
    }
    Err(format!(
        "{} 请求 {} 次均失败 (failed {} times), 最后一次 (last): {last}",
        describe(at),
        api.retries + 1,
        api.retries + 1
    ))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The fields of a page's records with their JSON type (the first non-null value's).
fn fields(records: &[Value]) -> Vec<SourceColumn> {
    let mut seen: BTreeMap<String, &'static str> = BTreeMap::new();
    for r in records {
        if let Value::Object(m) = r {
            for (k, v) in m {
                let t = seen.entry(k.clone()).or_insert("null");
                if *t == "null" {
                    *t = json_type(v);
                }
            }
        }
    }
    seen.into_iter()
        .map(|(name, t)| SourceColumn {
            name,
            type_name: t.to_string(),
        })
        .collect()
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => match crate::connector::json::cell(v) {
            hedui_model::value::Cell::Text(s) => Some(s),
            _ => None,
        },
    }
}

pub(crate) async fn pull(
    lake: &mut LakeWriter,
    mapping: &Mapping,
    api: &HttpSource,
    opts: &PullOptions,
    report: &mut PullReport,
) -> Result<()> {
    let failed = |message: String| Error::Pull {
        source_id: mapping.id.clone(),
        message,
    };
    let auth = match &api.auth {
        None => None,
        Some(a) => {
            let secret = match a {
                Auth::Bearer(s) | Auth::Header(_, s) | Auth::Query(_, s) => s,
            };
            Some((a.clone(), secret.read().map_err(failed)?))
        }
    };
    let client = reqwest::Client::builder()
        .timeout(api.timeout)
        .connect_timeout(api.timeout)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let previous = lake
        .snapshot()
        .last_pull(&mapping.id)
        .and_then(|c| c.pull.clone())
        .unwrap_or_default();
    let resume = (!previous.complete)
        .then_some(previous.next_page.as_deref())
        .flatten()
        .and_then(|t| At::load(t, &api.paging));

    let mut at = resume.clone().unwrap_or_else(|| At::first(&api.paging));
    let first = fetch(&client, api, &auth, &at).await.map_err(failed)?;
    let records_of = |page: &Value| -> std::result::Result<Vec<Value>, String> {
        match page.pointer(&api.records) {
            Some(Value::Array(list)) => Ok(list.clone()),
            Some(Value::Null) | None if !api.records.is_empty() => Err(format!(
                "返回中没有 `{}` 处的记录列表 (no records at `{}`)",
                api.records, api.records
            )),
            _ => Err(format!(
                "`{}` 不是记录数组 (not an array of records)",
                api.records
            )),
        }
    };
    let first_records = records_of(&first).map_err(failed)?;
    let mut columns = fields(&first_records);
    if columns.is_empty() {
        columns = previous.columns.clone();
    }
    let used: Vec<String> = api
        .key
        .iter()
        .cloned()
        .chain(previous.columns.iter().filter_map(|c| {
            let n = hedui_model::value::text::normalise_header(&c.name);
            mapping.targets[0]
                .columns
                .iter()
                .any(|m| m.sources.contains(&n))
                .then(|| c.name.clone())
        }))
        .collect();
    // Only fields the first page shows can be judged: a type seen as null is not a change.
    let comparable: Vec<SourceColumn> = columns
        .iter()
        .map(
            |c| match previous.columns.iter().find(|p| p.name == c.name) {
                Some(p) if c.type_name == "null" => p.clone(),
                _ => c.clone(),
            },
        )
        .collect();
    if !first_records.is_empty() && !opts.accept_schema {
        report.columns_added =
            drift(&previous.columns, &comparable, &used).map_err(|message| Error::SchemaDrift {
                source_id: mapping.id.clone(),
                message,
            })?;
    }
    let columns = comparable;
    let header: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let total = api
        .total
        .as_deref()
        .and_then(|p| first.pointer(p))
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });

    let mut pull = KeyedPull::new(lake, mapping, mapping.id.clone(), header.clone())?;
    report.keys_before = pull.index.len() as u64;
    let mut taken = 0u64;
    if resume.is_some() {
        pull.resume(lake.snapshot(), &previous.pull)?;
        taken = previous.taken;
        tracing::info!(source = %mapping.id, at = %at.save(), "resuming the interrupted pull");
    }
    let mut page = Some(first);
    let mut pages_in_batch = 0u32;
    loop {
        let body = match page.take() {
            Some(p) => p,
            None => fetch(&client, api, &auth, &at).await.map_err(failed)?,
        };
        let records = records_of(&body).map_err(failed)?;
        let n = records.len() as u64;
        let rows: Vec<PulledRow> = records
            .iter()
            .map(|r| {
                let obj = r.as_object();
                let get = |k: &str| obj.and_then(|o| o.get(k));
                PulledRow {
                    key: api
                        .key
                        .iter()
                        .map(|k| text_of(get(k)).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("\u{1f}"),
                    cells: header.iter().map(|h| text_of(get(h))).collect(),
                }
            })
            .collect();
        pull.take(lake, rows)?;
        taken += n;
        let next = match (&at, &api.paging) {
            (At::Page(p), Paging::Page { page_size, .. }) => {
                (n >= *page_size).then(|| At::Page(p + 1))
            }
            (At::Offset(o), Paging::Offset { page_size, .. }) => {
                (n >= *page_size).then(|| At::Offset(o + n))
            }
            (_, Paging::Token { next, .. }) => text_of(body.pointer(next))
                .filter(|t| !t.is_empty())
                .map(|t| At::Token(Some(t))),
            _ => None,
        };
        let next = next.filter(|_| n > 0 && total.is_none_or(|t| taken < t));
        pages_in_batch += 1;
        let Some(next) = next else { break };
        at = next;
        if pages_in_batch >= api.pages_per_batch {
            let state = PullState {
                complete: false,
                next_page: Some(at.save()),
                taken,
                compared_at: previous.compared_at,
                columns: columns.clone(),
                ..Default::default()
            };
            // Only a batch that changes something is worth a commit; an interrupted pull
            // resumes after the last one (what came after it is read again, as duplicates).
            pull.commit(lake, state, false)?;
            pages_in_batch = 0;
        }
    }
    report.rows_taken = taken;
    let counted = match total {
        Some(t) if t != taken => Some(t),
        _ => None,
    };
    if let Some(reported) = counted {
        // Keep what was received (it is real), but do not finish the pull on a short count:
        // nothing is taken out, and the next pull reads the API again from the start.
        pull.commit(
            lake,
            PullState {
                complete: false,
                taken,
                compared_at: previous.compared_at,
                columns: columns.clone(),
                ..Default::default()
            },
            false,
        )?;
        report.batches = std::mem::take(&mut pull.reports);
        return Err(failed(format!(
            "接口报告共有 {reported} 条记录，实际收到 {taken} 条；未删除任何记录，下次重新完整拉取 (the API reported {reported} records, {taken} arrived; nothing was taken out)"
        )));
    }
    // A resumed pull does not know every key the API has (the unchanged records read before
    // the interruption are recorded nowhere): it takes nothing out; the next whole pull will.
    let whole = resume.is_none();
    if whole {
        let seen = std::mem::take(&mut pull.seen);
        pull.delete_missing(&seen);
    }
    report.keys_compared = whole;
    let state = PullState {
        complete: true,
        taken,
        compared_at: if whole {
            Some(chrono::Utc::now())
        } else {
            previous.compared_at
        },
        columns: columns.clone(),
        ..Default::default()
    };
    // Nothing new: the attempt is recorded in the pull status, not as an empty batch.
    let moved = previous.columns != columns || !previous.complete || pull.committed;
    pull.commit(lake, state, moved)?;
    report.rows_updated = pull.updated_total;
    report.rows_deleted = pull.deleted_total;
    report.batches = std::mem::take(&mut pull.reports);
    Ok(())
}
