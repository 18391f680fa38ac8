//! Query results as bytes, batch by batch: JSON, CSV, Arrow IPC stream, Parquet.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use parquet::arrow::ArrowWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Arrow,
    Parquet,
}

impl Format {
    pub fn from_name(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" | "application/json" => Some(Format::Json),
            "csv" | "text/csv" => Some(Format::Csv),
            "arrow" | "application/vnd.apache.arrow.stream" => Some(Format::Arrow),
            "parquet" | "application/vnd.apache.parquet" | "application/x-parquet" => {
                Some(Format::Parquet)
            }
            _ => None,
        }
    }

    /// The first acceptable type of an `Accept` header; `*/*` or nothing means JSON.
    pub fn from_accept(accept: &str) -> Option<Format> {
        for part in accept.split(',') {
            let mime = part.split(';').next().unwrap_or("").trim();
            if mime.is_empty() || mime == "*/*" || mime == "application/*" {
                return Some(Format::Json);
            }
            if let Some(f) = Format::from_name(mime) {
                return Some(f);
            }
        }
        None
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

pub enum Encoder {
    Json { first: bool },
    Csv { header: bool },
    Arrow(StreamWriter<Vec<u8>>),
    Parquet(Option<ArrowWriter<Vec<u8>>>),
}

type Res = Result<Vec<u8>, String>;

impl Encoder {
    /// The encoder and the bytes that start the body.
    pub fn begin(format: Format, schema: &SchemaRef) -> Result<(Encoder, Vec<u8>), String> {
        Ok(match format {
            Format::Json => {
                let columns: Vec<serde_json::Value> = schema
                    .fields()
                    .iter()
                    .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
                    .collect();
                let head = format!(
                    "{{\"columns\":{},\"rows\":[",
                    serde_json::Value::from(columns)
                );
                (Encoder::Json { first: true }, head.into_bytes())
            }
            Format::Csv => (Encoder::Csv { header: true }, Vec::new()),
            Format::Arrow => {
                let mut w = StreamWriter::try_new(Vec::new(), schema).map_err(|e| e.to_string())?;
                let head = std::mem::take(w.get_mut());
                (Encoder::Arrow(w), head)
            }
            Format::Parquet => (
                Encoder::Parquet(Some(
                    ArrowWriter::try_new(Vec::new(), schema.clone(), None)
                        .map_err(|e| e.to_string())?,
                )),
                Vec::new(),
            ),
        })
    }

    pub fn batch(&mut self, batch: &RecordBatch) -> Res {
        match self {
            Encoder::Json { first } => {
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::JsonArray>(Vec::new());
                w.write(batch).map_err(|e| e.to_string())?;
                w.finish().map_err(|e| e.to_string())?;
                let bytes = w.into_inner();
                // `[{…},{…}]` without its brackets, joined to what came before.
                let inner = &bytes[1..bytes.len().saturating_sub(1).max(1)];
                if inner.is_empty() {
                    return Ok(Vec::new());
                }
                let mut out = Vec::with_capacity(inner.len() + 1);
                if !*first {
                    out.push(b',');
                }
                *first = false;
                out.extend_from_slice(inner);
                Ok(out)
            }
            Encoder::Csv { header } => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(*header)
                    .build(Vec::new());
                *header = false;
                w.write(batch).map_err(|e| e.to_string())?;
                Ok(w.into_inner())
            }
            Encoder::Arrow(w) => {
                w.write(batch).map_err(|e| e.to_string())?;
                Ok(std::mem::take(w.get_mut()))
            }
            Encoder::Parquet(w) => {
                w.as_mut()
                    .expect("open until the end")
                    .write(batch)
                    .map_err(|e| e.to_string())?;
                Ok(Vec::new())
            }
        }
    }

    /// The bytes that end the body. A JSON body says how many rows it has, whether they were
    /// cut at the row limit, and the error that stopped the query, if one did.
    pub fn end(&mut self, rows: u64, truncated: bool, error: Option<&str>) -> Res {
        match self {
            Encoder::Json { .. } => {
                let mut tail = format!("],\"row_count\":{rows},\"truncated\":{truncated}");
                if let Some(e) = error {
                    tail.push_str(&format!(",\"error\":{}", serde_json::Value::from(e)));
                }
                tail.push('}');
                Ok(tail.into_bytes())
            }
            Encoder::Csv { .. } => Ok(Vec::new()),
            Encoder::Arrow(w) => {
                w.finish().map_err(|e| e.to_string())?;
                Ok(std::mem::take(w.get_mut()))
            }
            Encoder::Parquet(w) => w
                .take()
                .expect("ended once")
                .into_inner()
                .map_err(|e| e.to_string()),
        }
    }
}
