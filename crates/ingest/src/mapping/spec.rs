//! The mapping file as a data officer writes it (TOML), before it is checked.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    pub source: SourceSpec,
    #[serde(rename = "target")]
    pub targets: Vec<Spanned<TargetSpec>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Auto,
    Csv,
    Excel,
    Json,
    Ndjson,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replaces {
    /// A file delivered again under the same name (a corrected re-export) replaces the earlier one.
    #[default]
    File,
    /// Every delivery is a full extract of the source and replaces all earlier ones.
    Source,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub id: Spanned<String>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub department: String,
    /// Glob patterns relative to the data directory (a source of delivered files).
    #[serde(default)]
    pub files: Option<Spanned<Vec<String>>>,
    /// A department database table or query, pulled (a live source).
    #[serde(default)]
    pub database: Option<Spanned<DatabaseSpec>>,
    /// A department's paged JSON API, pulled (a live source).
    #[serde(default)]
    pub http: Option<Spanned<HttpSpec>>,
    /// When `hedui serve` pulls the source: a cron expression (`0 */15 * * * *`, seconds first).
    #[serde(default)]
    pub schedule: Option<Spanned<String>>,
    /// How often the source is expected to have new data (`1d`, `1h`, `31d`): later than this
    /// and it is flagged as stale.
    #[serde(default)]
    pub cadence: Option<Spanned<String>>,
    #[serde(default)]
    pub format: Format,
    /// `auto` (default), `utf-8`, `gbk` or `gb18030`.
    #[serde(default)]
    pub encoding: Option<Spanned<String>>,
    /// CSV field delimiter, default `,`.
    #[serde(default)]
    pub delimiter: Option<Spanned<String>>,
    #[serde(default)]
    pub replaces: Replaces,
    /// The extract date of the source's files: a date, or a table saying where to find it.
    #[serde(default)]
    pub as_of: Option<Spanned<AsOfSpec>>,
}

/// `[source.database]`: where a live database source is and how it is pulled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    /// The environment variable holding the connection URL (`postgres://…`, `mysql://…`).
    #[serde(default)]
    pub url_env: Option<String>,
    /// A file holding the connection URL (its first line), readable only by hedui's account.
    #[serde(default)]
    pub url_file: Option<String>,
    /// The table (or `schema.table`) to pull…
    #[serde(default)]
    pub table: Option<String>,
    /// …or a query whose result is pulled.
    #[serde(default)]
    pub query: Option<String>,
    /// The columns that identify a row at the source (its primary key).
    pub key: OneOrMany,
    /// A column that grows when a row is inserted or updated (a modification time or a
    /// sequence): pulls then take only rows from the last value on.
    #[serde(default)]
    pub cursor: Option<String>,
    /// A column saying the row was deleted at the source (soft delete), and the values that say so.
    #[serde(default)]
    pub deleted: Option<DeletedSpec>,
    /// How often every key is compared with the source to find rows deleted there (default
    /// `1d`; a source without a cursor is compared at every pull).
    #[serde(default)]
    pub compare_keys_every: Option<String>,
    /// Rows per query page (bounded memory; default 10000).
    #[serde(default)]
    pub page_rows: Option<usize>,
    /// Rows per committed batch within one pull (a crash loses at most one batch of work;
    /// default 200000).
    #[serde(default)]
    pub batch_rows: Option<u64>,
}

/// `[source.http]`: a paged JSON API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// The endpoint (`https://…`), without credentials.
    pub url: String,
    /// JSON pointer to a page's array of records (`/data/list`); default the page itself.
    #[serde(default)]
    pub records: Option<String>,
    /// The record fields that identify a record.
    pub key: OneOrMany,
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    pub paging: PagingSpec,
    /// JSON pointer to the number of records the API says it has (`/data/total`), checked.
    #[serde(default)]
    pub total: Option<String>,
    /// Per request (default `30s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Attempts after the first for a request that fails with 5xx, 429 or a timeout (default 5).
    #[serde(default)]
    pub retries: Option<u32>,
    /// The first wait before a retry (default `1s`), doubled each time up to a minute.
    #[serde(default)]
    pub backoff: Option<String>,
    /// Pages per committed batch (default 50): a crash resumes after the last committed page.
    #[serde(default)]
    pub pages_per_batch: Option<u32>,
}

/// How a request is authenticated: a bearer token or an API key (in a header or the query),
/// read from the environment or a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    #[serde(default)]
    pub bearer_env: Option<String>,
    #[serde(default)]
    pub bearer_file: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub api_key_file: Option<String>,
    /// The header an API key goes in (default `X-API-Key`)…
    #[serde(default)]
    pub header: Option<String>,
    /// …or the query parameter.
    #[serde(default)]
    pub query: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PagingSpec {
    /// `?page=1&size=100`, then 2, 3…
    Page {
        page: String,
        #[serde(default)]
        size: Option<String>,
        page_size: u64,
        #[serde(default)]
        first: Option<u64>,
    },
    /// `?offset=0&limit=100`, then 100, 200…
    Offset {
        offset: String,
        limit: String,
        page_size: u64,
    },
    /// The page says where the next one is (`/data/next`), sent back as `param`.
    Token { next: String, param: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletedSpec {
    pub column: String,
    pub values: Vec<String>,
}

/// `as_of = "2024-06-30"`, `as_of = { file_name = '_(\d{6})', format = "%Y%m" }` or
/// `as_of = { column = "death_date" }` (the latest date loaded into that column).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AsOfSpec {
    Fixed(String),
    Table(AsOfTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsOfTable {
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub column: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub dataset: Spanned<String>,
    /// Excel: the sheet name, or a glob over sheet names (`*` for all); default the first sheet.
    #[serde(default)]
    pub sheet: Option<String>,
    /// 1-based row of the header; default: found by looking for the mapped column names.
    #[serde(default)]
    pub header_row: Option<usize>,
    /// JSON: pointer to the array of records (`/data/list`); default the document itself.
    #[serde(default)]
    pub records: Option<String>,
    pub columns: BTreeMap<Spanned<String>, Spanned<ColumnSpec>>,
}

/// A column's mapping: just the source column name, or a table.
#[derive(Debug, Default)]
pub struct ColumnSpec {
    pub from: Vec<String>,
    pub parser: Option<String>,
    pub required: Option<bool>,
    /// Extra department spellings for a `code` column.
    pub values: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnTable {
    from: OneOrMany,
    #[serde(default)]
    parser: Option<String>,
    #[serde(default)]
    required: Option<bool>,
    #[serde(default)]
    values: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for ColumnSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ColumnSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a source column name, a list of them, or a table with `from`, `parser`, `required`, `values`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ColumnSpec, E> {
                Ok(ColumnSpec {
                    from: vec![v.to_string()],
                    ..Default::default()
                })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ColumnSpec, A::Error> {
                let mut from = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    from.push(name);
                }
                if from.is_empty() {
                    return Err(de::Error::custom("the list names no source column"));
                }
                Ok(ColumnSpec {
                    from,
                    ..Default::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ColumnSpec, A::Error> {
                let t = ColumnTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let from = match t.from {
                    OneOrMany::One(s) => vec![s],
                    OneOrMany::Many(v) => v,
                };
                if from.is_empty() {
                    return Err(de::Error::custom("`from` names no source column"));
                }
                Ok(ColumnSpec {
                    from,
                    parser: t.parser,
                    required: t.required,
                    values: t.values,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}
