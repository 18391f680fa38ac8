//! Turn parsed rows into Arrow record batches of a dataset's lake schema.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use chrono::NaiveDate;
use hedui_model::{ColumnType, DatasetDef, Value};

use crate::{Error, Result};

enum Builder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Date32(Date32Builder),
    Decimal(Decimal128Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl Builder {
    fn for_type(ty: &DataType) -> Builder {
        match ty {
            DataType::Utf8 => Builder::Utf8(StringBuilder::new()),
            DataType::Int64 => Builder::Int64(Int64Builder::new()),
            DataType::Date32 => Builder::Date32(Date32Builder::new()),
            DataType::Decimal128(p, s) => Builder::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .expect("valid decimal"),
            ),
            DataType::Timestamp(_, tz) => {
                Builder::Timestamp(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
            }
            other => unreachable!("the model maps no column to {other}"),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Date32(b) => Arc::new(b.finish()),
            Builder::Decimal(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Utf8(b) => b.len(),
            Builder::Int64(b) => b.len(),
            Builder::Date32(b) => b.len(),
            Builder::Decimal(b) => b.len(),
            Builder::Timestamp(b) => b.len(),
        }
    }

    fn text(&mut self, v: Option<&str>) {
        match self {
            Builder::Utf8(b) => b.append_option(v),
            _ => unreachable!("text into a non-text column"),
        }
    }

    fn int(&mut self, v: Option<i64>) {
        match self {
            Builder::Int64(b) => b.append_option(v),
            _ => unreachable!("integer into a non-integer column"),
        }
    }
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
    (d - epoch).num_days() as i32
}

/// Collects rows for one dataset and hands out record batches.
pub struct DatasetAppender {
    def: Arc<DatasetDef>,
    schema: SchemaRef,
    builders: Vec<Builder>,
    source: String,
    /// The last sheet appended and its sheet-qualified source (`file#sheet`), built once.
    sheet_source: Option<(String, String)>,
    batch: String,
    ingested_at_us: i64,
}

impl DatasetAppender {
    pub fn new(def: Arc<DatasetDef>, source: &str, batch: &str, ingested_at_us: i64) -> Self {
        let schema = def.arrow_schema();
        let builders = schema
            .fields()
            .iter()
            .map(|f| Builder::for_type(f.data_type()))
            .collect();
        DatasetAppender {
            def,
            schema,
            builders,
            source: source.to_string(),
            sheet_source: None,
            batch: batch.to_string(),
            ingested_at_us,
        }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn dataset(&self) -> &str {
        &self.def.name
    }

    pub fn def(&self) -> &DatasetDef {
        &self.def
    }

    pub fn len(&self) -> usize {
        self.builders[0].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append one row: `values[i]` (and for a resident ID `raws[i]`, the value as delivered) for
    /// the dataset's i-th column. Values have been checked against the column types by the
    /// caller's parsers. `sheet` is the workbook sheet the row is on (`_sheet`, and `_source`
    /// becomes `file#sheet`): row numbers restart per sheet.
    pub fn append(&mut self, values: &[Value], raws: &[&str], sheet: Option<&str>, row: i64) {
        debug_assert_eq!(values.len(), self.def.columns.len());
        let mut b = self.builders.iter_mut();
        for ((col, value), raw) in self.def.columns.iter().zip(values).zip(raws) {
            let builder = b.next().expect("builder per field");
            match (col.ty, value) {
                (ColumnType::ResidentId, Value::Id(id)) => {
                    builder.text(Some(id.as_str()));
                    b.next().expect("key").int(Some(id.key()));
                    b.next().expect("raw").text(Some(raw));
                }
                (ColumnType::ResidentId, _) => {
                    builder.text(None);
                    b.next().expect("key").int(None);
                    b.next()
                        .expect("raw")
                        .text((!raw.is_empty()).then_some(*raw));
                }
                (_, Value::Null) => match builder {
                    Builder::Utf8(x) => x.append_null(),
                    Builder::Int64(x) => x.append_null(),
                    Builder::Date32(x) => x.append_null(),
                    Builder::Decimal(x) => x.append_null(),
                    Builder::Timestamp(x) => x.append_null(),
                },
                (_, Value::Text(s)) => builder.text(Some(s)),
                (_, Value::Int(i)) => builder.int(Some(*i)),
                (_, Value::Date(d)) => match builder {
                    Builder::Date32(x) => x.append_value(days_since_epoch(*d)),
                    _ => unreachable!("date into a non-date column"),
                },
                (_, Value::Decimal(v)) => match builder {
                    Builder::Decimal(x) => x.append_value(*v),
                    _ => unreachable!("decimal into a non-decimal column"),
                },
                (_, Value::Id(id)) => builder.text(Some(id.as_str())),
            }
        }
        let source = match sheet {
            None => self.source.as_str(),
            Some(sheet) => {
                if self.sheet_source.as_ref().is_none_or(|(s, _)| s != sheet) {
                    let qualified = format!("{}#{sheet}", self.source);
                    self.sheet_source = Some((sheet.to_string(), qualified));
                }
                self.sheet_source
                    .as_ref()
                    .map(|(_, q)| q.as_str())
                    .expect("set")
            }
        };
        b.next().expect("_source").text(Some(source));
        b.next().expect("_sheet").text(sheet);
        b.next().expect("_batch").text(Some(&self.batch));
        b.next().expect("_row").int(Some(row));
        match b.next().expect("_ingested_at") {
            Builder::Timestamp(x) => x.append_value(self.ingested_at_us),
            _ => unreachable!("lineage timestamp"),
        }
    }

    /// The rows appended since the last call, as one record batch.
    /// The rows appended since the last call, ordered by the dataset's first person key (see
    /// [`sort_key`]).
    pub fn take_batch(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let arrow = |source| Error::Arrow {
            dataset: self.def.name.clone(),
            source,
        };
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(arrow)?;
        let Some(key) = sort_key(&self.schema) else {
            return Ok(batch);
        };
        let order =
            arrow_ord::sort::sort_to_indices(batch.column(key), None, None).map_err(arrow)?;
        arrow_select::take::take_record_batch(&batch, &order).map_err(arrow)
    }
}

/// The column a dataset's row groups are sorted by: its first resident ID's integer key (the
/// person the row is about). Sorted, each page of a row group holds a narrow range of persons, so
/// a lookup by resident ID (or by key: the key orders as the ID does) decodes the one page whose
/// statistics admit it, not the row group.
pub(crate) fn sort_key(schema: &arrow_schema::Schema) -> Option<usize> {
    schema.fields().iter().position(|f| {
        f.name()
            .strip_suffix("_key")
            .is_some_and(|id| schema.field_with_name(id).is_ok())
    })
}
