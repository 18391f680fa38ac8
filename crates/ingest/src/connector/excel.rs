//! Excel workbooks (.xlsx, .xls): title rows, merged cells, several sheets, serial dates and
//! numbers stored as text are all normal.
//!
//! A sheet is streamed cell by cell on a thread of its own (the workbook parser cannot be held
//! across an iterator), so memory follows the rows in flight, not the sheet's declared size: a
//! 2 KB file whose one cell sits at XFD1048576 must not make the reader allocate the dense
//! 17-billion-cell grid in between.

use std::io::Cursor;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use calamine::{Data, DataRef, Reader, Sheets, Xls, Xlsx, open_workbook_from_rs};
use hedui_model::value::Cell;

use super::{Bytes, RawRow, Table};
use crate::mapping::Target;
use crate::{Error, Result};

/// Columns a sheet may use: far more than any department table, far fewer than Excel allows.
pub const MAX_COLUMNS: u32 = 1024;
/// Non-empty cells a sheet may hold.
pub const MAX_CELLS: u64 = 50_000_000;
/// Rows in flight between the reading thread and the pipeline.
const ROWS_IN_FLIGHT: usize = 1024;

fn cell(d: Data) -> Cell {
    match d {
        Data::Empty => Cell::Empty,
        Data::String(s) => Cell::Text(s),
        Data::Float(f) => Cell::Number(f),
        Data::Int(i) => Cell::Number(i as f64),
        Data::Bool(b) => Cell::Text(if b { "TRUE" } else { "FALSE" }.into()),
        Data::DateTime(dt) if dt.is_datetime() => match dt.as_datetime() {
            Some(x) => Cell::Date(x.date()),
            None => Cell::Number(dt.as_f64()),
        },
        Data::DateTime(dt) => Cell::Number(dt.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s),
        Data::Error(e) => Cell::Text(format!("#{e:?}")),
    }
}

type Book = Sheets<Cursor<Bytes>>;

fn open(bytes: &Bytes, rel: &str) -> std::result::Result<Book, String> {
    let lower = rel.to_lowercase();
    let data = Cursor::new(bytes.clone());
    let opened = if lower.ends_with(".xls") {
        open_workbook_from_rs::<Xls<_>, _>(data)
            .map(Sheets::Xls)
            .map_err(|e| e.to_string())
    } else if lower.ends_with(".xlsx") || lower.ends_with(".xlsm") {
        open_workbook_from_rs::<Xlsx<_>, _>(data)
            .map(Sheets::Xlsx)
            .map_err(|e| e.to_string())
    } else {
        calamine::open_workbook_auto_from_rs(data).map_err(|e| e.to_string())
    };
    opened.map_err(|e| format!("不是可读的 Excel 工作簿 (not a readable Excel workbook): {e}"))
}

/// The sheets `target` selects (its `sheet` pattern, or the first sheet), each as a table.
pub fn tables<'a>(bytes: Bytes, rel: &str, target: &Target) -> Result<Vec<Table<'a>>> {
    let unreadable = |message: String| Error::Unreadable {
        file: rel.to_string(),
        message,
    };
    let workbook = open(&bytes, rel).map_err(unreadable)?;
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
    drop(workbook);
    Ok(selected
        .into_iter()
        .map(|name| Table {
            sheet: Some(name.clone()),
            header: None,
            rows: Box::new(SheetRows {
                bytes: Some(bytes.clone()),
                rel: rel.to_string(),
                sheet: name,
                rx: None,
            }),
            fixed_width: false,
            text: None,
            layout: true,
        })
        .collect())
}

/// A sheet's rows, read on first use by a thread of their own.
struct SheetRows {
    bytes: Option<Bytes>,
    rel: String,
    sheet: String,
    rx: Option<Receiver<Result<RawRow>>>,
}

impl Iterator for SheetRows {
    type Item = Result<RawRow>;

    fn next(&mut self) -> Option<Result<RawRow>> {
        if self.rx.is_none() {
            let (tx, rx) = sync_channel(ROWS_IN_FLIGHT);
            let bytes = self.bytes.take().expect("started once");
            let (rel, sheet) = (self.rel.clone(), self.sheet.clone());
            std::thread::Builder::new()
                .name("hedui-sheet".into())
                .spawn(move || {
                    if let Err(message) = read_sheet(&bytes, &rel, &sheet, &tx) {
                        let _ = tx.send(Err(Error::Unreadable {
                            file: format!("{rel} (sheet {sheet})"),
                            message,
                        }));
                    }
                })
                .expect("spawn sheet reader");
            self.rx = Some(rx);
        }
        self.rx.as_ref().and_then(|rx| rx.recv().ok())
    }
}

/// Builds rows from cells in sheet order, emitting the blank rows in between (they are layout
/// rows to the pipeline, as they are to a person looking at the sheet).
struct RowBuilder<'t> {
    tx: &'t SyncSender<Result<RawRow>>,
    current: Option<(u32, Vec<Cell>)>,
    next_blank: Option<u32>,
    cells: u64,
}

impl RowBuilder<'_> {
    /// `Err` only when the pipeline stopped listening.
    fn push(&mut self, row: u32, col: u32, value: Cell) -> std::result::Result<(), String> {
        if value.is_empty() {
            return Ok(());
        }
        if col >= MAX_COLUMNS {
            return Err(format!(
                "单元格 {} 超出可读范围（最多 {MAX_COLUMNS} 列）(a cell at column {} is beyond the {MAX_COLUMNS} columns read)",
                cell_name(row, col),
                col + 1
            ));
        }
        self.cells += 1;
        if self.cells > MAX_CELLS {
            return Err(format!(
                "工作表非空单元格超过 {MAX_CELLS} 个 (the sheet holds more than {MAX_CELLS} cells)"
            ));
        }
        if self.current.as_ref().is_some_and(|(r, _)| *r != row) {
            self.flush()?;
        }
        let (_, cells) = self.current.get_or_insert_with(|| (row, Vec::new()));
        let at = col as usize;
        if cells.len() <= at {
            cells.resize(at + 1, Cell::Empty);
        }
        cells[at] = value;
        Ok(())
    }

    fn flush(&mut self) -> std::result::Result<(), String> {
        let Some((row, cells)) = self.current.take() else {
            return Ok(());
        };
        let gone = || "stopped".to_string();
        let from = self.next_blank.unwrap_or(row);
        for blank in from..row {
            self.tx
                .send(Ok(RawRow {
                    number: u64::from(blank) + 1,
                    cells: Vec::new(),
                    defect: None,
                }))
                .map_err(|_| gone())?;
        }
        self.next_blank = Some(row + 1);
        self.tx
            .send(Ok(RawRow {
                number: u64::from(row) + 1,
                cells,
                defect: None,
            }))
            .map_err(|_| gone())
    }
}

fn read_sheet(
    bytes: &Bytes,
    rel: &str,
    sheet: &str,
    tx: &SyncSender<Result<RawRow>>,
) -> std::result::Result<(), String> {
    let mut rows = RowBuilder {
        tx,
        current: None,
        next_blank: None,
        cells: 0,
    };
    let mut workbook = open(bytes, rel)?;
    let bad =
        |e: &dyn std::fmt::Display| format!("工作表 `{sheet}` 无法读取 (sheet unreadable): {e}");
    match &mut workbook {
        Sheets::Xlsx(xlsx) => {
            let mut reader = xlsx.worksheet_cells_reader(sheet).map_err(|e| bad(&e))?;
            while let Some(c) = reader.next_cell().map_err(|e| bad(&e))? {
                let (r, col) = c.get_position();
                let value: DataRef = c.get_value().clone();
                rows.push(r, col, cell(Data::from(value)))?;
            }
        }
        other => {
            // .xls sheets are at most 65,536 × 256 cells by format; others are rare.
            let range = other.worksheet_range(sheet).map_err(|e| bad(&e))?;
            let (first_row, first_col) = range.start().unwrap_or((0, 0));
            for (i, r) in range.rows().enumerate() {
                for (j, d) in r.iter().enumerate() {
                    rows.push(first_row + i as u32, first_col + j as u32, cell(d.clone()))?;
                }
            }
        }
    }
    rows.flush()
}

/// `XFD1048576` for a 0-based (row, column).
fn cell_name(row: u32, col: u32) -> String {
    let mut letters = Vec::new();
    let mut c = col + 1;
    while c > 0 {
        let rem = (c - 1) % 26;
        letters.push(b'A' + rem as u8);
        c = (c - 1) / 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8(letters).expect("ascii"), row + 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_are_named_as_excel_names_them() {
        assert_eq!(super::cell_name(0, 0), "A1");
        assert_eq!(super::cell_name(1_048_575, 16_383), "XFD1048576");
        assert_eq!(super::cell_name(9, 26), "AA10");
    }
}
