//! Mapping files: how one department source becomes rows of canonical datasets. A mapping is
//! checked completely (datasets, columns, parsers, globs) before any data is read, and every
//! mistake is reported with the mapping file and line.

mod live;
mod spec;

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};
use hedui_model::value::text::normalise_header;
use hedui_model::value::{PARSER_NAMES, Parser};
use hedui_model::{Catalog, ColumnType, DatasetDef};
pub use live::{Auth, DatabaseSource, DeleteMarker, HttpSource, Origin, Paging, Relation, Secret};
use spec::{ColumnSpec, MappingFile};
pub use spec::{Format, Replaces};
use toml::Spanned;

/// How a mapping states its files' extract date.
#[derive(Debug, Clone)]
pub enum AsOf {
    /// Not stated: a date in the file name, else the file's modification time (reported as a
    /// guess).
    Auto,
    /// The same date for every file.
    Fixed(chrono::NaiveDate),
    /// The first capture group of `pattern` in the file name, read with chrono `format` (a
    /// format without a day means the month's last day).
    FileName {
        pattern: regex::Regex,
        format: String,
    },
    /// The latest value loaded into this date or month column of the dataset.
    Column(String),
}

use crate::error::io_at;
use crate::{Error, Result};

/// Text encodings a mapping can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 (with or without BOM) if the bytes are valid UTF-8, otherwise GB18030 (a superset
    /// of GBK and GB2312).
    Auto,
    Fixed(&'static encoding_rs::Encoding),
}

/// A checked mapping, ready to drive a connector.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The mapping file it came from.
    pub path: PathBuf,
    pub id: String,
    pub title: String,
    pub department: String,
    pub patterns: Vec<String>,
    globs: GlobSet,
    pub format: Format,
    pub encoding: Encoding,
    pub delimiter: u8,
    pub replaces: Replaces,
    pub as_of: AsOf,
    pub targets: Vec<Target>,
    /// Delivered files, or a live source that is pulled.
    pub origin: Origin,
    /// When `hedui serve` pulls (or ingests) the source, with the expression as written.
    pub schedule: Option<(String, cron::Schedule)>,
    /// How often new data is expected; a source later than this is stale.
    pub cadence: Option<std::time::Duration>,
}

/// One dataset filled from the source (one sheet of a workbook, or the whole file).
#[derive(Debug, Clone)]
pub struct Target {
    pub dataset: Arc<DatasetDef>,
    pub sheet: Option<GlobMatcher>,
    pub sheet_pattern: Option<String>,
    pub header_row: Option<usize>,
    pub records: Option<String>,
    /// One entry per column of the dataset, in the dataset's order.
    pub columns: Vec<ColumnMap>,
}

#[derive(Debug, Clone)]
pub struct ColumnMap {
    pub column: String,
    /// Accepted header names, normalised; empty when the source lacks the column.
    pub sources: Vec<String>,
    pub parser: Parser,
    pub required: bool,
}

impl Mapping {
    /// Does this mapping take the file at `rel` (relative to the data directory)?
    pub fn matches(&self, rel: &str) -> bool {
        matches!(self.origin, Origin::Files) && self.globs.is_match(rel)
    }

    /// A database or API pulled by hedui, rather than files delivered to it.
    pub fn is_live(&self) -> bool {
        !matches!(self.origin, Origin::Files)
    }

    /// The format to read `rel` as: the mapping's, or from the file's extension.
    pub fn format_of(&self, rel: &str) -> Format {
        if self.format != Format::Auto {
            return self.format;
        }
        let lower = rel.to_lowercase();
        if lower.ends_with(".xlsx") || lower.ends_with(".xls") || lower.ends_with(".xlsm") {
            Format::Excel
        } else if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
            Format::Ndjson
        } else if lower.ends_with(".json") {
            Format::Json
        } else {
            Format::Csv
        }
    }
}

fn line_of(text: &str, span: Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

/// Load every `*.toml` mapping of a directory (or one file), checking them all first.
pub fn load_mappings(path: &Path) -> Result<Vec<Mapping>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io_at(path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        return Err(Error::Mapping {
            file: path.to_path_buf(),
            line: 1,
            message: "no mapping files (*.toml) here".into(),
        });
    }
    let mut mappings: Vec<Mapping> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(io_at(&file))?;
        let mapping = Mapping::parse(&file, &text)?;
        if let Some(other) = mappings.iter().find(|m| m.id == mapping.id) {
            return Err(Error::Mapping {
                file,
                line: 1,
                message: format!(
                    "source id `{}` is already used by {}",
                    mapping.id,
                    other.path.display()
                ),
            });
        }
        mappings.push(mapping);
    }
    Ok(mappings)
}

impl Mapping {
    /// Parse and check one mapping file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Mapping> {
        let err = |span: Range<usize>, message: String| Error::Mapping {
            file: path.to_path_buf(),
            line: line_of(text, span),
            message,
        };
        let spec: MappingFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s));
            Error::Mapping {
                file: path.to_path_buf(),
                line,
                message: e.message().to_string(),
            }
        })?;
        let catalog = Catalog::builtin();

        let id = spec.source.id.get_ref().trim().to_string();
        if id.is_empty() || id.contains(['/', '\\', ':']) {
            return Err(err(
                spec.source.id.span(),
                "source `id` must be a non-empty name without `/`, `\\` or `:`".into(),
            ));
        }
        let mut globs = GlobSetBuilder::new();
        let live_one_target = |span: Range<usize>| {
            if spec.targets.len() == 1 {
                Ok(())
            } else {
                Err(err(
                    span,
                    "a live source fills one dataset: write one mapping (one [[target]]) per table or API".into(),
                ))
            }
        };
        let origin = match (&spec.source.files, &spec.source.database, &spec.source.http) {
            (Some(files), None, None) => {
                if files.get_ref().is_empty() {
                    return Err(err(files.span(), "`files` lists no file pattern".into()));
                }
                for pattern in files.get_ref() {
                    let glob = Glob::new(pattern).map_err(|e| {
                        err(files.span(), format!("bad file pattern `{pattern}`: {e}"))
                    })?;
                    globs.add(glob);
                }
                Origin::Files
            }
            (None, Some(db), None) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                let source = live::database(db.get_ref(), dir).map_err(|m| err(db.span(), m))?;
                live_one_target(db.span())?;
                Origin::Database(source)
            }
            (None, None, Some(http)) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                let source = live::http(http.get_ref(), dir).map_err(|m| err(http.span(), m))?;
                live_one_target(http.span())?;
                Origin::Http(source)
            }
            _ => {
                return Err(err(
                    spec.source.id.span(),
                    "a source has one of `files` (delivered files), `[source.database]` (a database) or `[source.http]` (an API), which hedui pulls".into(),
                ));
            }
        };
        let globs = globs
            .build()
            .map_err(|e| err(spec.source.id.span(), e.to_string()))?;
        let schedule = match &spec.source.schedule {
            None => None,
            Some(text) => Some((
                text.get_ref().clone(),
                live::schedule(text.get_ref()).map_err(|m| err(text.span(), m))?,
            )),
        };
        if let (Some(text), Origin::Files) = (&spec.source.schedule, &origin) {
            return Err(err(
                text.span(),
                "`schedule` is for live sources ([source.database], [source.http]); delivered files are ingested with `hedui ingest`".into(),
            ));
        }
        let cadence = match &spec.source.cadence {
            None => None,
            Some(text) => Some(live::cadence(text.get_ref()).map_err(|m| err(text.span(), m))?),
        };
        let encoding = match &spec.source.encoding {
            None => Encoding::Auto,
            Some(e) if e.get_ref().eq_ignore_ascii_case("auto") => Encoding::Auto,
            Some(e) => match encoding_rs::Encoding::for_label(e.get_ref().as_bytes()) {
                Some(enc) => Encoding::Fixed(enc),
                None => {
                    return Err(err(
                        e.span(),
                        format!(
                            "unknown encoding `{}` (use auto, utf-8, gbk or gb18030)",
                            e.get_ref()
                        ),
                    ));
                }
            },
        };
        let delimiter = match &spec.source.delimiter {
            None => b',',
            Some(d) if d.get_ref() == "\\t" || d.get_ref() == "\t" => b'\t',
            Some(d) if d.get_ref().len() == 1 => d.get_ref().as_bytes()[0],
            Some(d) => {
                return Err(err(
                    d.span(),
                    "`delimiter` must be one ASCII character".into(),
                ));
            }
        };

        if spec.targets.is_empty() {
            return Err(err(0..0, "the mapping has no [[target]]".into()));
        }
        let mut targets = Vec::new();
        for t in &spec.targets {
            let t_span = t.span();
            let t = t.get_ref();
            let dataset = catalog.get(t.dataset.get_ref()).map_err(|_| {
                err(
                    t.dataset.span(),
                    format!(
                        "unknown dataset `{}`; the datasets are: {}",
                        t.dataset.get_ref(),
                        catalog
                            .iter()
                            .filter(|d| !d.system)
                            .map(|d| d.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            if dataset.system {
                return Err(err(
                    t.dataset.span(),
                    format!(
                        "`{}` is written by hedui itself, not by mappings",
                        dataset.name
                    ),
                ));
            }
            let mut columns = Vec::new();
            let mut seen = HashSet::new();
            for (key, col_spec) in &t.columns {
                let Some(def) = dataset.column(key.get_ref()) else {
                    return Err(err(
                        key.span(),
                        format!(
                            "dataset `{}` has no column `{}`; its columns are: {}",
                            dataset.name,
                            key.get_ref(),
                            dataset
                                .columns
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                };
                seen.insert(def.name.clone());
                let ColumnSpec {
                    from,
                    parser,
                    required,
                    values,
                } = col_spec.get_ref();
                let mut p = match parser {
                    None => def.default_parser(),
                    Some(name) if !PARSER_NAMES.contains(&name.as_str()) => {
                        return Err(err(
                            col_spec.span(),
                            format!(
                                "unknown parser `{name}`; the parsers are: {}",
                                PARSER_NAMES.join(", ")
                            ),
                        ));
                    }
                    Some(name) => def.parser_named(name).ok_or_else(|| {
                        err(
                            col_spec.span(),
                            format!(
                                "parser `{name}` cannot fill column `{}` of type {:?}",
                                def.name, def.ty
                            ),
                        )
                    })?,
                };
                if !values.is_empty() {
                    if def.ty != ColumnType::Code {
                        return Err(err(
                            col_spec.span(),
                            format!(
                                "`values` only applies to code columns; `{}` is not one",
                                def.name
                            ),
                        ));
                    }
                    if let Some((k, v)) = values.iter().find(|(_, v)| !def.values.contains(v)) {
                        return Err(err(
                            col_spec.span(),
                            format!(
                                "`{k}` maps to `{v}`, which is not a value of `{}` ({})",
                                def.name,
                                def.values.join(", ")
                            ),
                        ));
                    }
                    p = Parser::Code(Arc::new(
                        def.code_table(values.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                    ));
                }
                columns.push(ColumnMap {
                    column: def.name.clone(),
                    sources: from.iter().map(|s| normalise_header(s)).collect(),
                    parser: p,
                    required: def.required || required.unwrap_or(false),
                });
            }
            if let Some(missing) = dataset
                .columns
                .iter()
                .find(|c| c.required && !seen.contains(&c.name))
            {
                return Err(err(
                    t_span,
                    format!(
                        "required column `{}` of `{}` is not mapped",
                        missing.name, dataset.name
                    ),
                ));
            }
            // Unmapped optional columns stay empty; keep the dataset's column order.
            let ordered = dataset
                .columns
                .iter()
                .map(|c| {
                    columns
                        .iter()
                        .find(|m| m.column == c.name)
                        .cloned()
                        .unwrap_or(ColumnMap {
                            column: c.name.clone(),
                            sources: Vec::new(),
                            parser: c.default_parser(),
                            required: false,
                        })
                })
                .collect();
            let sheet = match &t.sheet {
                None => None,
                Some(s) => Some(
                    Glob::new(s)
                        .map_err(|e| err(t_span.clone(), format!("bad sheet pattern `{s}`: {e}")))?
                        .compile_matcher(),
                ),
            };
            targets.push(Target {
                dataset: Arc::clone(dataset),
                sheet,
                sheet_pattern: t.sheet.clone(),
                header_row: t.header_row,
                records: t.records.clone(),
                columns: ordered,
            });
        }
        let as_of = match &spec.source.as_of {
            None => AsOf::Auto,
            Some(a) => as_of_of(a.get_ref(), &targets).map_err(|m| err(a.span(), m))?,
        };
        Ok(Mapping {
            path: path.to_path_buf(),
            id,
            title: spec.source.title,
            department: spec.source.department,
            patterns: spec
                .source
                .files
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            globs,
            format: spec.source.format,
            encoding,
            delimiter,
            replaces: spec.source.replaces,
            as_of,
            targets,
            origin,
            schedule,
            cadence,
        })
    }
}

/// Check a stated as-of: a real date, a pattern with a group and a chrono format that reads
/// what it captures, or a date column one of the targets fills.
fn as_of_of(spec: &spec::AsOfSpec, targets: &[Target]) -> std::result::Result<AsOf, String> {
    use spec::AsOfSpec;
    match spec {
        AsOfSpec::Fixed(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(AsOf::Fixed)
            .map_err(|_| format!("`as_of = \"{text}\"` is not a date like 2024-06-30")),
        AsOfSpec::Table(t) => match (&t.file_name, &t.format, &t.column) {
            (Some(pattern), format, None) => {
                let regex = regex::Regex::new(pattern)
                    .map_err(|e| format!("bad `as_of.file_name` pattern: {e}"))?;
                if regex.captures_len() < 2 {
                    return Err("`as_of.file_name` needs a group `( )` around the date".into());
                }
                let format = format.clone().unwrap_or_else(|| "%Y%m%d".into());
                let broken = chrono::format::StrftimeItems::new(&format)
                    .any(|i| matches!(i, chrono::format::Item::Error));
                if broken || crate::as_of::parse_with(&format, &sample(&format)).is_none() {
                    return Err(format!(
                        "`as_of.format = \"{format}\"` is not a chrono date format like %Y%m%d or %Y%m"
                    ));
                }
                Ok(AsOf::FileName {
                    pattern: regex,
                    format,
                })
            }
            (None, None, Some(column)) => {
                let fills = targets.iter().any(|t| {
                    t.columns
                        .iter()
                        .any(|c| c.column == *column && !c.sources.is_empty())
                        && t.dataset
                            .column(column)
                            .is_some_and(|d| matches!(d.ty, ColumnType::Date | ColumnType::Month))
                });
                if fills {
                    Ok(AsOf::Column(column.clone()))
                } else {
                    Err(format!(
                        "`as_of.column = \"{column}\"` is not a mapped date or month column of a target"
                    ))
                }
            }
            _ => Err(
                "`as_of` is a date, `{ file_name = '…', format = '…' }` or `{ column = '…' }`"
                    .into(),
            ),
        },
    }
}

/// A date written in `format`, to check the format reads what it writes.
fn sample(format: &str) -> String {
    chrono::NaiveDate::from_ymd_opt(2024, 6, 30)
        .expect("valid")
        .format(format)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Mapping> {
        Mapping::parse(Path::new("m.toml"), text)
    }

    const GOOD: &str = r#"
[source]
id = "pension"
files = ["人社/*.csv"]

[[target]]
dataset = "pension_payments"
[target.columns]
person_id = "公民身份号码"
scheme = { from = "险种", values = { "企保" = "enterprise" } }
month = { from = ["发放年月", "年月"], parser = "month" }
amount = "发放金额"
"#;

    #[test]
    fn a_good_mapping_compiles() {
        let m = parse(GOOD).unwrap();
        assert!(m.matches("人社/养老金_202401.csv"));
        assert!(!m.matches("民政/养老金_202401.csv"));
        let t = &m.targets[0];
        assert_eq!(t.columns.len(), t.dataset.columns.len());
        let month = t.columns.iter().find(|c| c.column == "month").unwrap();
        assert_eq!(month.sources, vec!["发放年月", "年月"]);
        let scheme = t.columns.iter().find(|c| c.column == "scheme").unwrap();
        assert!(
            matches!(scheme.parser.parse(&hedui_model::value::Cell::Text("企保".into())), Ok(hedui_model::Value::Text(ref s)) if s == "enterprise")
        );
    }

    fn error_line(text: &str) -> (usize, String) {
        match parse(text).unwrap_err() {
            Error::Mapping { line, message, .. } => (line, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        let (line, msg) = error_line(&GOOD.replace("\"pension_payments\"", "\"pensions\""));
        assert_eq!(line, 7);
        assert!(msg.contains("unknown dataset `pensions`"), "{msg}");

        let (line, msg) = error_line(&GOOD.replace("amount = ", "amout = "));
        assert_eq!(line, 12);
        assert!(msg.contains("no column `amout`"), "{msg}");

        let (line, msg) = error_line(&GOOD.replace("parser = \"month\"", "parser = \"mnth\""));
        assert_eq!(line, 11);
        assert!(msg.contains("unknown parser `mnth`"), "{msg}");

        let (line, msg) = error_line(&GOOD.replace("parser = \"month\"", "parser = \"money\""));
        assert_eq!(line, 11);
        assert!(msg.contains("cannot fill column `month`"), "{msg}");

        let (_, msg) = error_line(&GOOD.replace("amount = \"发放金额\"\n", ""));
        assert!(msg.contains("required column `amount`"), "{msg}");

        let (line, msg) = error_line(&GOOD.replace("files = ", "file = "));
        assert_eq!(line, 4);
        assert!(msg.contains("unknown field `file`"), "{msg}");

        let (_, msg) =
            error_line(&GOOD.replace("\"企保\" = \"enterprise\"", "\"企保\" = \"company\""));
        assert!(msg.contains("not a value of `scheme`"), "{msg}");
    }
}
