//! Excel workbooks (.xlsx, .xls): title rows, merged cells, several sheets, serial dates and
//! numbers stored as text are all normal.

use std::path::Path;

use calamine::{Data, Reader, open_workbook_auto};
use hedui_model::value::Cell;

use super::{RawRow, Table};
use crate::mapping::Target;
use crate::{Error, Result};

fn cell(d: &Data) -> Cell {
    match d {
        Data::Empty => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Float(f) => Cell::Number(*f),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }.into()),
        Data::DateTime(dt) if dt.is_datetime() => match dt.as_datetime() {
            Some(x) => Cell::Date(x.date()),
            None => Cell::Number(dt.as_f64()),
        },
        Data::DateTime(dt) => Cell::Number(dt.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Error(e) => Cell::Text(format!("#{e:?}")),
    }
}

/// The sheets `target` selects (its `sheet` pattern, or the first sheet), each as a table.
pub fn tables<'a>(path: &'a Path, rel: &str, target: &Target) -> Result<Vec<Table<'a>>> {
    let unreadable = |message: String| Error::Unreadable {
        file: rel.to_string(),
        message,
    };
    let mut workbook = open_workbook_auto(path)
        .map_err(|e| unreadable(format!("not a readable Excel workbook: {e}")))?;
    let names = workbook.sheet_names();
    let selected: Vec<String> = match &target.sheet {
        None => names.first().cloned().into_iter().collect(),
        Some(m) => names
            .iter()
            .filter(|n| m.is_match(n.as_str()))
            .cloned()
            .collect(),
    };
    if selected.is_empty() {
        return Err(unreadable(format!(
            "no sheet matches `{}`; the sheets are: {}",
            target.sheet_pattern.as_deref().unwrap_or("(first)"),
            names.join(", ")
        )));
    }
    let mut tables = Vec::new();
    for name in selected {
        let range = workbook
            .worksheet_range(&name)
            .map_err(|e| unreadable(format!("sheet `{name}`: {e}")))?;
        let (first_row, first_col) = range.start().unwrap_or((0, 0));
        let rows: Vec<RawRow> = range
            .rows()
            .enumerate()
            .map(|(i, r)| {
                // Keep column positions as a person sees them even if column A is empty.
                let mut cells = vec![Cell::Empty; first_col as usize];
                cells.extend(r.iter().map(cell));
                RawRow {
                    number: u64::from(first_row) + i as u64 + 1,
                    cells,
                    defect: None,
                }
            })
            .collect();
        tables.push(Table {
            sheet: Some(name),
            header: None,
            rows: Box::new(rows.into_iter().map(Ok)),
            fixed_width: false,
        });
    }
    Ok(tables)
}
