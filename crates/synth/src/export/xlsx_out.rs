//! Excel sheets as offices lay them out: a merged title, an office line, a blank row, the header,
//! data, a blank row and a 合计 row.

use rust_xlsxwriter::{Format, FormatAlign, Workbook, Worksheet};

use crate::city::YEAR;

use crate::Result;
use crate::truth::{BrokenRow, Truth};

pub enum XCell {
    Text(String),
    Number(f64),
    /// A date cell (serial with a date format), as Excel stores dates typed by hand.
    Date(chrono::NaiveDate),
}

pub struct SheetOut<'a> {
    pub ws: &'a mut Worksheet,
    pub file: String,
    pub sheet: String,
    pub dataset: String,
    /// 0-based index of the next row to write.
    pub next: u32,
    pub broken: Vec<BrokenRow>,
    pub data_rows: u64,
}

fn serial(d: chrono::NaiveDate) -> f64 {
    (d - chrono::NaiveDate::from_ymd_opt(1899, 12, 30).expect("valid")).num_days() as f64
}

impl<'a> SheetOut<'a> {
    pub fn new(
        ws: &'a mut Worksheet,
        file: &str,
        sheet: &str,
        dataset: &str,
        title: &str,
        office: &str,
        header: &[&str],
    ) -> Result<Self> {
        ws.set_name(sheet)?;
        let bold = Format::new().set_bold().set_align(FormatAlign::Center);
        ws.merge_range(0, 0, 0, header.len() as u16 - 1, title, &bold)?;
        ws.write_string(1, 0, office)?;
        for (i, h) in header.iter().enumerate() {
            ws.write_string(3, i as u16, *h)?;
            ws.set_column_width(i as u16, 18)?;
        }
        Ok(SheetOut {
            ws,
            file: file.into(),
            sheet: sheet.into(),
            dataset: dataset.into(),
            next: 4,
            broken: Vec::new(),
            data_rows: 0,
        })
    }

    pub fn row(&mut self, cells: &[XCell]) -> Result<u32> {
        let date_fmt = Format::new().set_num_format("yyyy-mm-dd");
        let r = self.next;
        for (i, c) in cells.iter().enumerate() {
            let col = i as u16;
            match c {
                XCell::Text(s) if s.is_empty() => {}
                XCell::Text(s) => {
                    self.ws.write_string(r, col, s)?;
                }
                XCell::Number(n) => {
                    self.ws.write_number(r, col, *n)?;
                }
                XCell::Date(d) => {
                    self.ws
                        .write_number_with_format(r, col, serial(*d), &date_fmt)?;
                }
            }
        }
        self.next += 1;
        self.data_rows += 1;
        Ok(r + 1)
    }

    pub fn broken(&mut self, cells: &[XCell], problem: &str, what: &str) -> Result<()> {
        let row = self.row(cells)?;
        self.broken.push(BrokenRow {
            file: self.file.clone(),
            sheet: Some(self.sheet.clone()),
            row: u64::from(row),
            dataset: self.dataset.clone(),
            problem: problem.into(),
            what: what.into(),
        });
        Ok(())
    }

    /// A blank row and the 合计 (total) row that close an office's table.
    pub fn total(&mut self, cells: &[XCell]) -> Result<()> {
        self.next += 1;
        let r = self.next;
        for (i, c) in cells.iter().enumerate() {
            match c {
                XCell::Text(s) if !s.is_empty() => {
                    self.ws.write_string(r, i as u16, s)?;
                }
                XCell::Number(n) => {
                    self.ws.write_number(r, i as u16, *n)?;
                }
                _ => {}
            }
        }
        self.next += 1;
        Ok(())
    }

    pub fn finish(self, truth: &mut Truth) -> u64 {
        truth.broken_rows.extend(self.broken);
        self.data_rows
    }
}

/// A workbook stamped with a fixed creation time: the same seed must give the same bytes.
pub fn workbook() -> Result<Workbook> {
    let mut wb = Workbook::new();
    let created = rust_xlsxwriter::ExcelDateTime::from_ymd(YEAR as u16 + 1, 1, 5)?;
    let props = rust_xlsxwriter::DocProperties::new()
        .set_author("宜昌市民政局")
        .set_creation_datetime(&created);
    wb.set_properties(&props);
    Ok(wb)
}
