//! Canonical datasets: one TOML file each in `schemas/`, embedded at build time. The lake's Arrow
//! schemas are built here from those files and nowhere else.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::value::{CodeTable, Parser};
use crate::{Error, Result};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/schemas.rs"));
}

/// Lineage columns appended to every dataset by the lake writer.
/// `_sheet` is the workbook sheet a row came from (null for CSV and JSON): row numbers restart on
/// every sheet, so a row is identified by batch, sheet and row together.
pub const LINEAGE_COLUMNS: [&str; 5] = ["_source", "_sheet", "_batch", "_row", "_ingested_at"];

/// Precision of every decimal column: 18 digits fit any amount a department pays.
pub const DECIMAL_PRECISION: u8 = 18;

/// A column's logical type; each maps to one Arrow type (a resident ID to three columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Stored as `<name>` (canonical 18 characters), `<name>_key` (Int64) and `<name>_raw`.
    ResidentId,
    Text,
    Name,
    Date,
    /// A calendar month, stored as the first day of the month.
    Month,
    /// Yuan with two decimals.
    Money,
    /// A decimal with the column's `scale`.
    Decimal,
    Int,
    Sex,
    /// One of the column's `values`.
    Code,
    CreditCode,
    RegionCode,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    #[serde(default)]
    pub required: bool,
    /// Fraction digits of a `decimal` column.
    #[serde(default)]
    pub scale: Option<u32>,
    /// Canonical values of a `code` column.
    #[serde(default)]
    pub values: Vec<String>,
    /// Department spellings of a `code` column's values, mapped to the canonical value.
    #[serde(default)]
    pub synonyms: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    /// How much the column says about who a row is about; masks follow it.
    pub class: Sensitivity,
}

/// A column's sensitivity class. Every column of `schemas/` states one; a masked view shows each
/// class at most as [`Sensitivity`]'s variants say, so that no combination of visible columns
/// rebuilds an identifier (README, "What a masked view shows").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Singles out a person or household on its own: resident IDs, names, household, personal and
    /// vehicle numbers. Masked: an ID shows only its region prefix, a name its surname, a key or
    /// number only a keyed pseudonym (which still joins).
    Identifier,
    /// Singles out together with other columns: birth date, sex, region, village. Masked: a date
    /// shows only its year, a code or region stays, free text is hidden.
    QuasiIdentifier,
    /// About the person but not identifying: an address, a cause of death, a raw record. Masked:
    /// hidden.
    Personal,
    /// Everything else (amounts, months, schemes): always shown.
    Public,
}

/// How a row of a dataset belongs to an administrative region, for row policies: a region-scoped
/// identity (a district's reviewer) sees only the rows of its region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RegionScope {
    /// The row carries a region code column (6-digit administrative code).
    Column(String),
    /// The row is about a person (this resident ID column): the person's region in the
    /// household registry (`persons.region_code`) decides.
    Person(String),
    /// The row is about a dibao household (this household number column): the region of the
    /// household head in the registry decides.
    Household(String),
}

impl ColumnDef {
    /// A value of this column as delivered, masked as its class says (the text form of the rule
    /// the policy views apply to stored values); `None` where nothing of it may be shown. Used
    /// for the quarantine, whose raw values were never parsed.
    pub fn mask_raw(&self, raw: &str) -> Option<String> {
        let raw = raw.trim();
        match (self.class, self.ty) {
            (Sensitivity::Public, _) => Some(raw.to_string()),
            (Sensitivity::Identifier, ColumnType::ResidentId) => {
                let prefix: String = raw.chars().take(6).collect();
                (prefix.chars().count() == 6 && prefix.chars().all(|c| c.is_ascii_digit()))
                    .then(|| format!("{prefix}************"))
            }
            (Sensitivity::Identifier, ColumnType::Name) => {
                raw.chars().next().map(|c| format!("{c}*"))
            }
            (Sensitivity::QuasiIdentifier, ColumnType::Date | ColumnType::Month) => {
                let year: String = raw.chars().take(4).collect();
                (year.len() == 4 && year.chars().all(|c| c.is_ascii_digit())).then_some(year)
            }
            (
                Sensitivity::QuasiIdentifier,
                ColumnType::Sex | ColumnType::Code | ColumnType::RegionCode | ColumnType::Int,
            ) => Some(raw.to_string()),
            _ => None,
        }
    }

    pub fn scale(&self) -> u32 {
        match self.ty {
            ColumnType::Money => 2,
            _ => self.scale.unwrap_or(2),
        }
    }

    /// The parser a mapping gets when it names none.
    pub fn default_parser(&self) -> Parser {
        self.parser_named(self.default_parser_name())
            .expect("default parser fits its type")
    }

    fn default_parser_name(&self) -> &'static str {
        match self.ty {
            ColumnType::ResidentId => "resident_id",
            ColumnType::Text => "text",
            ColumnType::Name => "name",
            ColumnType::Date => "date",
            ColumnType::Month => "month",
            ColumnType::Money => "money",
            ColumnType::Decimal => "decimal",
            ColumnType::Int => "int",
            ColumnType::Sex => "sex",
            ColumnType::Code => "code",
            ColumnType::CreditCode => "credit_code",
            ColumnType::RegionCode => "region_code",
        }
    }

    /// The code table of a `code` column, with extra department spellings from a mapping.
    pub fn code_table<'a>(&self, extra: impl IntoIterator<Item = (&'a str, &'a str)>) -> CodeTable {
        let mut t = CodeTable::new(
            self.values.iter().map(String::as_str),
            self.synonyms.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        for (from, to) in extra {
            t.insert(from, to);
        }
        t
    }

    /// A parser by the name a mapping gives, if it can fill this column's type.
    pub fn parser_named(&self, name: &str) -> Option<Parser> {
        use ColumnType as T;
        let parser = match (name, self.ty) {
            ("resident_id", T::ResidentId) => Parser::ResidentId,
            ("name", T::Name | T::Text) => Parser::Name,
            ("text", T::Text | T::Name | T::RegionCode | T::CreditCode) => Parser::Text,
            ("date", T::Date) => Parser::Date,
            ("month", T::Month | T::Date) => Parser::Month,
            ("money", T::Money) => Parser::Decimal { scale: 2 },
            ("decimal", T::Decimal | T::Money) => Parser::Decimal {
                scale: self.scale(),
            },
            ("int", T::Int) => Parser::Int,
            ("sex", T::Sex) => Parser::Sex,
            ("code", T::Code) => Parser::Code(Arc::new(self.code_table([]))),
            ("credit_code", T::CreditCode) => Parser::CreditCode,
            ("region_code", T::RegionCode) => Parser::RegionCode,
            _ => return None,
        };
        Some(parser)
    }

    fn arrow_type(&self) -> DataType {
        match self.ty {
            ColumnType::Date | ColumnType::Month => DataType::Date32,
            ColumnType::Money | ColumnType::Decimal => {
                DataType::Decimal128(DECIMAL_PRECISION, self.scale() as i8)
            }
            ColumnType::Int => DataType::Int64,
            _ => DataType::Utf8,
        }
    }

    /// The Arrow fields this column becomes.
    pub fn fields(&self) -> Vec<Field> {
        let nullable = !self.required;
        match self.ty {
            ColumnType::ResidentId => vec![
                Field::new(&self.name, DataType::Utf8, nullable),
                Field::new(format!("{}_key", self.name), DataType::Int64, nullable),
                Field::new(format!("{}_raw", self.name), DataType::Utf8, true),
            ],
            _ => vec![Field::new(&self.name, self.arrow_type(), nullable)],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetDef {
    pub name: String,
    pub title_zh: String,
    pub title_en: String,
    pub department: String,
    #[serde(default)]
    pub description: String,
    /// Columns that identify a record (documentation and de-duplication hints).
    #[serde(default)]
    pub key: Vec<String>,
    /// A system dataset (the quarantine) is written by hedui itself, never by a mapping.
    #[serde(default)]
    pub system: bool,
    /// How a row belongs to a region; a dataset without one is denied to region-scoped
    /// identities.
    #[serde(default)]
    pub region: Option<RegionScope>,
    pub columns: Vec<ColumnDef>,
}

impl DatasetDef {
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column a stored field belongs to: a resident ID's `_key` and `_raw` fields belong to
    /// the ID. `None` for the lineage columns.
    pub fn column_of_field(&self, field: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| {
            c.name == field
                || (c.ty == ColumnType::ResidentId
                    && (field == format!("{}_key", c.name) || field == format!("{}_raw", c.name)))
        })
    }

    /// The dataset's Arrow schema in the lake: its columns, then the lineage columns.
    pub fn arrow_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self.columns.iter().flat_map(ColumnDef::fields).collect();
        fields.extend([
            Field::new("_source", DataType::Utf8, false),
            Field::new("_sheet", DataType::Utf8, true),
            Field::new("_batch", DataType::Utf8, false),
            Field::new("_row", DataType::Int64, false),
            Field::new(
                "_ingested_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]);
        Arc::new(Schema::new(fields))
    }

    fn validate(&self, file: &str) -> Result<()> {
        let err = |message: String| Error::Schema {
            file: PathBuf::from(file),
            message,
        };
        let mut seen = HashMap::new();
        for c in &self.columns {
            for f in c.fields() {
                if seen.insert(f.name().clone(), ()).is_some() || f.name().starts_with('_') {
                    return Err(err(format!(
                        "column name `{}` is taken or reserved",
                        f.name()
                    )));
                }
            }
            if matches!(c.ty, ColumnType::ResidentId | ColumnType::Name)
                && c.class != Sensitivity::Identifier
            {
                return Err(err(format!(
                    "column `{}` holds a resident ID or a name and must be classed `identifier`",
                    c.name
                )));
            }
            if c.ty == ColumnType::Code && c.values.is_empty() {
                return Err(err(format!("code column `{}` lists no values", c.name)));
            }
            if let Some((k, v)) = c.synonyms.iter().find(|(_, v)| !c.values.contains(v)) {
                return Err(err(format!(
                    "synonym `{k}` of `{}` maps to unknown value `{v}`",
                    c.name
                )));
            }
        }
        for k in &self.key {
            if self.column(k).is_none() {
                return Err(err(format!("key column `{k}` is not a column")));
            }
        }
        let region_column = match &self.region {
            None => None,
            Some(RegionScope::Column(c)) => Some((c, ColumnType::RegionCode)),
            Some(RegionScope::Person(c)) => Some((c, ColumnType::ResidentId)),
            Some(RegionScope::Household(c)) => Some((c, ColumnType::Text)),
        };
        if let Some((name, ty)) = region_column
            && self.column(name).map(|c| c.ty) != Some(ty)
        {
            return Err(err(format!(
                "region column `{name}` must be a `{ty:?}` column of this dataset"
            )));
        }
        Ok(())
    }
}

/// All canonical datasets, by name.
#[derive(Debug)]
pub struct Catalog {
    datasets: BTreeMap<String, Arc<DatasetDef>>,
}

impl Catalog {
    /// The datasets shipped in `schemas/`. Parsed once; a broken file fails the build's tests.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            Catalog::from_files(embedded::SCHEMA_FILES.iter().copied())
                .unwrap_or_else(|e| panic!("embedded schema is invalid: {e}"))
        })
    }

    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Catalog> {
        let mut datasets = BTreeMap::new();
        for (file, text) in files {
            let def: DatasetDef = toml::from_str(text).map_err(|e| Error::Schema {
                file: PathBuf::from(file),
                message: e.to_string(),
            })?;
            def.validate(file)?;
            if format!("{}.toml", def.name) != file {
                return Err(Error::Schema {
                    file: PathBuf::from(file),
                    message: format!("dataset `{}` must live in `{}.toml`", def.name, def.name),
                });
            }
            datasets.insert(def.name.clone(), Arc::new(def));
        }
        Ok(Catalog { datasets })
    }

    pub fn get(&self, name: &str) -> Result<&Arc<DatasetDef>> {
        self.datasets
            .get(name)
            .ok_or_else(|| Error::UnknownDataset(name.to_string()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<DatasetDef>> {
        self.datasets.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.datasets.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_schema_loads_and_builds_an_arrow_schema() {
        let catalog = Catalog::builtin();
        assert!(catalog.iter().count() >= 16);
        for def in catalog.iter() {
            let schema = def.arrow_schema();
            assert_eq!(
                schema.fields().last().unwrap().name(),
                "_ingested_at",
                "{}",
                def.name
            );
        }
        let persons = catalog.get("persons").unwrap().arrow_schema();
        for col in ["person_id", "person_id_key", "person_id_raw", "_batch"] {
            assert!(persons.field_with_name(col).is_ok(), "persons.{col}");
        }
    }

    #[test]
    fn broken_schema_is_named() {
        let bad = r#"
name = "x"
title_zh = "x"
title_en = "x"
department = "x"
[[columns]]
name = "status"
class = "public"
type = "code"
values = ["a"]
synonyms = { "b" = "c" }
"#;
        let err = Catalog::from_files([("x.toml", bad)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.toml") && err.contains("unknown value `c`"),
            "{err}"
        );
        let unknown_type = "name = \"x\"\ntitle_zh = \"x\"\ntitle_en = \"x\"\ndepartment = \"x\"\n[[columns]]\nname = \"a\"\nclass = \"public\"\ntype = \"blob\"\n";
        assert!(Catalog::from_files([("x.toml", unknown_type)]).is_err());
        let unclassed = "name = \"x\"\ntitle_zh = \"x\"\ntitle_en = \"x\"\ndepartment = \"x\"\n[[columns]]\nname = \"a\"\ntype = \"text\"\n";
        let err = Catalog::from_files([("x.toml", unclassed)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("class"), "{err}");
        let id_as_public = "name = \"x\"\ntitle_zh = \"x\"\ntitle_en = \"x\"\ndepartment = \"x\"\n[[columns]]\nname = \"a\"\nclass = \"public\"\ntype = \"resident_id\"\n";
        let err = Catalog::from_files([("x.toml", id_as_public)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("identifier"), "{err}");
    }

    #[test]
    fn raw_values_are_masked_by_their_columns_class() {
        let persons = Catalog::builtin().get("persons").unwrap();
        let mask = |c: &str, v: &str| persons.column(c).unwrap().mask_raw(v);
        assert_eq!(
            mask("person_id", "42050219500101123X").as_deref(),
            Some("420502************")
        );
        assert_eq!(mask("person_id", "4.20502E+17"), None);
        assert_eq!(mask("name", "张三丰").as_deref(), Some("张*"));
        assert_eq!(mask("birth_date", "1950-01-01").as_deref(), Some("1950"));
        assert_eq!(mask("address", "夷陵区某路 1 号"), None);
        assert_eq!(mask("household_no", "H0001"), None);
        assert_eq!(mask("status", "死亡").as_deref(), Some("死亡"));
    }
}
