//! Value parsers: from a department's cell (text, or a spreadsheet number) to a typed value.

pub mod codes;
pub mod date;
pub mod number;
pub mod text;

use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::resident_id::ResidentId;
pub use codes::CodeTable;

/// A cell as a connector reads it, before any parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// A spreadsheet or JSON number.
    Number(f64),
    /// A spreadsheet cell typed as a date.
    Date(NaiveDate),
}

impl Cell {
    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as text, as it would appear in the department's file (for quarantine).
    pub fn to_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Number(n) => format_number(*n),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        }
    }
}

/// A number as Excel shows it: integers without a fraction, others in the shortest form.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else if n.abs() >= 1e15 {
        // What Excel displays for a long number in a General cell.
        format!("{n:.5E}").replace("E", "E+")
    } else {
        format!("{n}")
    }
}

/// A typed value ready for the lake.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Date(NaiveDate),
    /// A decimal as a scaled integer; the scale is the column's.
    Decimal(i128),
    Id(ResidentId),
}

/// Why a cell could not be parsed. `code` is stable (for reports and filters), `message` is for
/// the person who repairs the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: &'static str,
    pub message: String,
}

impl ParseError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ParseError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// The parsers a mapping can name, each with the column types it can fill.
#[derive(Debug, Clone)]
pub enum Parser {
    ResidentId,
    Name,
    Text,
    Date,
    Month,
    Decimal { scale: u32 },
    Int,
    Sex,
    Code(Arc<CodeTable>),
    CreditCode,
    RegionCode,
}

/// Parser names as written in mapping files.
pub const PARSER_NAMES: &[&str] = &[
    "resident_id",
    "name",
    "text",
    "date",
    "month",
    "money",
    "decimal",
    "int",
    "sex",
    "code",
    "credit_code",
    "region_code",
];

impl Parser {
    pub fn name(&self) -> &'static str {
        match self {
            Parser::ResidentId => "resident_id",
            Parser::Name => "name",
            Parser::Text => "text",
            Parser::Date => "date",
            Parser::Month => "month",
            Parser::Decimal { .. } => "decimal",
            Parser::Int => "int",
            Parser::Sex => "sex",
            Parser::Code(_) => "code",
            Parser::CreditCode => "credit_code",
            Parser::RegionCode => "region_code",
        }
    }

    /// Parse one cell. An empty cell is `Value::Null` (the caller decides whether it may be).
    pub fn parse(&self, cell: &Cell) -> Result<Value, ParseError> {
        if cell.is_empty() {
            return Ok(Value::Null);
        }
        match (self, cell) {
            (Parser::Date, Cell::Date(d)) | (Parser::Month, Cell::Date(d)) => {
                Ok(Value::Date(if matches!(self, Parser::Month) {
                    first_of_month(*d)
                } else {
                    *d
                }))
            }
            (Parser::Date, Cell::Number(n)) => date::from_excel_serial(*n).map(Value::Date),
            (Parser::Month, Cell::Number(n)) if *n >= 100_000.0 => {
                date::parse_month(&format_number(*n)).map(Value::Date)
            }
            (Parser::Month, Cell::Number(n)) => {
                date::from_excel_serial(*n).map(|d| Value::Date(first_of_month(d)))
            }
            (Parser::Decimal { scale }, Cell::Number(n)) => {
                number::decimal_from_f64(*n, *scale).map(Value::Decimal)
            }
            (Parser::ResidentId, Cell::Number(n)) => {
                // Excel keeps 15 significant digits: an 18-digit number stored as a number has
                // lost its tail, a 15-digit legacy one survives.
                if n.fract() == 0.0 && *n < 1e15 {
                    self.parse_text(&format!("{}", *n as i64))
                } else {
                    Err(ParseError::new(
                        "id.scientific_notation",
                        format!(
                            "身份证号码被 Excel 存为数值，后几位已丢失：{} (stored as a number; digits lost)",
                            format_number(*n)
                        ),
                    ))
                }
            }
            (_, other) => self.parse_text(&other.to_text()),
        }
    }

    fn parse_text(&self, s: &str) -> Result<Value, ParseError> {
        match self {
            Parser::ResidentId => ResidentId::parse(s)
                .map(Value::Id)
                .map_err(|e| ParseError::new(e.code(), e.to_string())),
            Parser::Name => Ok(Value::Text(text::normalise_name(s))),
            Parser::Text => Ok(Value::Text(text::normalise_text(s))),
            Parser::Date => date::parse_date(s).map(Value::Date),
            Parser::Month => date::parse_month(s).map(Value::Date),
            Parser::Decimal { scale } => number::parse_decimal(s, *scale).map(Value::Decimal),
            Parser::Int => number::parse_int(s).map(Value::Int),
            Parser::Sex => codes::parse_sex(s).map(|x| Value::Text(x.code().to_string())),
            Parser::Code(table) => table.lookup(s).map(|v| Value::Text(v.to_string())),
            Parser::CreditCode => codes::parse_credit_code(s).map(Value::Text),
            Parser::RegionCode => match crate::region::code_of(&text::normalise_text(s)) {
                Some(code) => Ok(Value::Text(code)),
                None => Err(ParseError::new(
                    "region.invalid",
                    format!(
                        "行政区划代码或地名无效：{s} (neither an administrative code nor a place of the region table)"
                    ),
                )),
            },
        }
    }
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    d.with_day(1).expect("day 1 exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreadsheet_cells() {
        let d = NaiveDate::from_ymd_opt(2023, 5, 7).unwrap();
        assert_eq!(
            Parser::Date.parse(&Cell::Number(45053.0)).unwrap(),
            Value::Date(d)
        );
        assert_eq!(
            Parser::Month.parse(&Cell::Number(202305.0)).unwrap(),
            Value::Date(NaiveDate::from_ymd_opt(2023, 5, 1).unwrap())
        );
        assert_eq!(
            Parser::Decimal { scale: 2 }
                .parse(&Cell::Number(1234.5))
                .unwrap(),
            Value::Decimal(123_450)
        );
        assert_eq!(
            Parser::Int.parse(&Cell::Number(3.0)).unwrap(),
            Value::Int(3)
        );
        let legacy = Parser::ResidentId
            .parse(&Cell::Number(370986890623212.0))
            .unwrap();
        assert_eq!(
            legacy,
            Value::Id(ResidentId::parse("370986198906232123").unwrap())
        );
        let mangled = Parser::ResidentId
            .parse(&Cell::Number(420102198001011234.0))
            .unwrap_err();
        assert_eq!(mangled.code, "id.scientific_notation");
        assert_eq!(
            Parser::Text.parse(&Cell::Text("  ".into())).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn excel_number_display() {
        assert_eq!(format_number(42.0), "42");
        assert_eq!(format_number(420102198001011234.0), "4.20102E+17");
        assert_eq!(format_number(1.5), "1.5");
    }
}
