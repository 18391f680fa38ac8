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
    /// Glob patterns relative to the data directory.
    pub files: Spanned<Vec<String>>,
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

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
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
