//! Taking rows out of a committed batch: its files are written again without them, under new
//! names, and the commit that does it lists the new files (the old ones stay, as history). Rows
//! keep their `_batch` and `_row`, so evidence cited from the rewritten batch still resolves.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

use arrow_array::{BooleanArray, Int64Array};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::IoContext;
use crate::keys::{KEYS_DATASET, write_batch_with};
use crate::log::DataFile;
use crate::writer::writer_properties;
use crate::{Error, Result};

/// Write `file` again as `{stem}~{seq}.parquet` without the rows whose row number is in `drop`.
/// `None` when no row is left.
pub(crate) fn without_rows(
    root: &Path,
    file: &DataFile,
    drop: &HashSet<i64>,
    seq: u64,
) -> Result<Option<DataFile>> {
    let source = root.join(&file.path);
    let stem = file
        .path
        .rsplit_once('/')
        .map_or(file.path.as_str(), |(_, name)| name)
        .trim_end_matches(".parquet");
    let stem = stem.split('~').next().unwrap_or(stem);
    let rel = match file.path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{stem}~{seq}.parquet"),
        None => format!("{stem}~{seq}.parquet"),
    };
    let target = root.join(&rel);
    let parquet = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Parquet { path, source }
    };
    let arrow = |source| Error::Arrow {
        dataset: file.dataset.clone(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&source).at(&source)?)
        .map_err(parquet(&source))?
        .build()
        .map_err(parquet(&source))?;
    let row_column = if file.dataset == KEYS_DATASET {
        "row"
    } else {
        "_row"
    };
    let mut writer: Option<ArrowWriter<File>> = None;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(arrow)?;
        let numbers = batch
            .column_by_name(row_column)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| Error::CorruptLog {
                path: source.clone(),
                message: format!("has no `{row_column}` column"),
            })?;
        let keep: BooleanArray = numbers
            .iter()
            .map(|n| Some(!n.is_some_and(|n| drop.contains(&n))))
            .collect();
        let kept = arrow_select::filter::filter_record_batch(&batch, &keep).map_err(arrow)?;
        if kept.num_rows() == 0 {
            continue;
        }
        rows += kept.num_rows() as u64;
        let props = (file.dataset != KEYS_DATASET).then(|| {
            let def = hedui_model::Catalog::builtin().get(&file.dataset).ok();
            writer_properties(&kept.schema(), def.map(|d| d.as_ref()))
        });
        write_batch_with(&mut writer, &target, &kept, props)?;
    }
    let Some(writer) = writer else {
        return Ok(None);
    };
    let out = writer.into_inner().map_err(parquet(&target))?;
    out.sync_all().at(&target)?;
    Ok(Some(DataFile {
        dataset: file.dataset.clone(),
        path: rel,
        rows,
    }))
}
