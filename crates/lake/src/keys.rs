//! The key index of a keyed source (a database table, an API's records): for every row a batch
//! holds, the row's key at the source, its `_row` number and a hash of its values. A pull reads
//! the index to tell a new row from an updated or unchanged one, and which rows a deletion
//! takes out. It is written beside the batch's data files and committed with them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{ArrayBuilder, Int64Builder, StringBuilder, UInt64Builder};
use arrow_array::{Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::IoContext;
use crate::{Error, Result};

/// The pseudo-dataset name key files are listed under in a commit; never a table.
pub const KEYS_DATASET: &str = "_keys";

const FLUSH_ROWS: usize = 64 * 1024;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("row", DataType::Int64, false),
        Field::new("hash", DataType::UInt64, false),
    ]))
});

/// One row's entry in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub key: String,
    pub row: i64,
    pub hash: u64,
}

/// Writes a batch's key index as it is filled.
pub(crate) struct KeyWriter {
    path: PathBuf,
    keys: StringBuilder,
    rows: Int64Builder,
    hashes: UInt64Builder,
    writer: Option<ArrowWriter<File>>,
    pub(crate) count: u64,
}

impl KeyWriter {
    pub(crate) fn new(path: PathBuf) -> KeyWriter {
        KeyWriter {
            path,
            keys: StringBuilder::new(),
            rows: Int64Builder::new(),
            hashes: UInt64Builder::new(),
            writer: None,
            count: 0,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn append(&mut self, key: &str, row: i64, hash: u64) -> Result<()> {
        self.keys.append_value(key);
        self.rows.append_value(row);
        self.hashes.append_value(hash);
        self.count += 1;
        if self.rows.len() >= FLUSH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = RecordBatch::try_new(
            SCHEMA.clone(),
            vec![
                Arc::new(self.keys.finish()),
                Arc::new(self.rows.finish()),
                Arc::new(self.hashes.finish()),
            ],
        )
        .map_err(|source| Error::Arrow {
            dataset: KEYS_DATASET.into(),
            source,
        })?;
        write_batch(&mut self.writer, &self.path, &batch)
    }

    /// Write out what is buffered and close the file (it is then ready to commit).
    pub(crate) fn finish(mut self) -> Result<Option<File>> {
        self.flush()?;
        match self.writer.take() {
            Some(w) => {
                let file = w.into_inner().map_err(|source| Error::Parquet {
                    path: self.path.clone(),
                    source,
                })?;
                Ok(Some(file))
            }
            None => Ok(None),
        }
    }
}

pub(crate) fn write_batch(
    writer: &mut Option<ArrowWriter<File>>,
    path: &Path,
    batch: &RecordBatch,
) -> Result<()> {
    write_batch_with(writer, path, batch, None)
}

pub(crate) fn write_batch_with(
    writer: &mut Option<ArrowWriter<File>>,
    path: &Path,
    batch: &RecordBatch,
    props: Option<parquet::file::properties::WriterProperties>,
) -> Result<()> {
    if writer.is_none() {
        let dir = path.parent().expect("a directory");
        std::fs::create_dir_all(dir).at(dir)?;
        let file = File::create(path).at(path)?;
        *writer = Some(
            ArrowWriter::try_new(file, batch.schema(), props).map_err(|source| Error::Parquet {
                path: path.to_path_buf(),
                source,
            })?,
        );
    }
    writer
        .as_mut()
        .expect("created above")
        .write(batch)
        .map_err(|source| Error::Parquet {
            path: path.to_path_buf(),
            source,
        })
}

/// Call `each` for every entry of a key file, in the order written.
pub fn read_keys(path: &Path, mut each: impl FnMut(&str, i64, u64)) -> Result<()> {
    let file = File::open(path).at(path)?;
    let parquet = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet)?
        .with_batch_size(FLUSH_ROWS)
        .build()
        .map_err(parquet)?;
    for batch in reader {
        let batch = batch.map_err(|source| Error::Arrow {
            dataset: KEYS_DATASET.into(),
            source,
        })?;
        let keys = column::<StringArray>(&batch, 0, path)?;
        let rows = column::<Int64Array>(&batch, 1, path)?;
        let hashes = column::<UInt64Array>(&batch, 2, path)?;
        for i in 0..batch.num_rows() {
            each(keys.value(i), rows.value(i), hashes.value(i));
        }
    }
    Ok(())
}

fn column<'b, T: 'static>(batch: &'b RecordBatch, i: usize, path: &Path) -> Result<&'b T> {
    batch
        .column(i)
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| Error::CorruptLog {
            path: path.to_path_buf(),
            message: "not a key index".into(),
        })
}
