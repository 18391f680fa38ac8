//! Laplace noise from OpenDP (its discrete Laplace for counts, its discretised Laplace for
//! sums: exact samplers, without the floating-point holes of a textbook `-b·ln(u)`), and the
//! plan functions that add it. Like the masks, those functions live only in rewritten plans: a
//! caller cannot call one, so cannot ask for the same value twice with fresh noise.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarUDF, Volatility, create_udf, lit};
use opendp::domains::AtomDomain;
use opendp::measurements::make_laplace;
use opendp::measures::MaxDivergence;
use opendp::metrics::AbsoluteDistance;

use crate::masks::PREFIX;

/// `value` plus discrete Laplace noise of `scale`.
pub fn count(value: i64, scale: f64) -> Result<i64, String> {
    let m = make_laplace::<_, _, MaxDivergence>(
        AtomDomain::<i64>::default(),
        AbsoluteDistance::<i64>::default(),
        scale,
        None,
    )
    .map_err(|e| e.to_string())?;
    m.invoke(&value).map_err(|e| e.to_string())
}

/// `value` plus Laplace noise of `scale`.
pub fn sum(value: f64, scale: f64) -> Result<f64, String> {
    let m = make_laplace::<_, _, MaxDivergence>(
        AtomDomain::<f64>::new_non_nan(),
        AbsoluteDistance::<f64>::default(),
        scale,
        None,
    )
    .map_err(|e| e.to_string())?;
    m.invoke(&value).map_err(|e| e.to_string())
}

/// The two plan functions: `noise_count(Int64, scale)` and `noise_sum(Float64, scale)`.
#[derive(Debug, Clone)]
pub struct NoiseFunctions {
    count: Arc<ScalarUDF>,
    sum: Arc<ScalarUDF>,
}

fn scale_of(args: &[ColumnarValue]) -> DfResult<f64> {
    match args.get(1) {
        Some(ColumnarValue::Scalar(ScalarValue::Float64(Some(s)))) if *s > 0.0 => Ok(*s),
        _ => Err(DataFusionError::Internal(
            "noise needs a positive literal scale".into(),
        )),
    }
}

fn noise_error(e: String) -> DataFusionError {
    DataFusionError::Execution(format!("noise: {e}"))
}

impl Default for NoiseFunctions {
    fn default() -> Self {
        let count = create_udf(
            &format!("{PREFIX}noise_count"),
            vec![DataType::Int64, DataType::Float64],
            DataType::Int64,
            Volatility::Volatile,
            Arc::new(|args: &[ColumnarValue]| {
                let scale = scale_of(args)?;
                let values = args[0].to_array(1)?;
                let values = values.as_primitive::<Int64Type>();
                let out = values
                    .iter()
                    .map(|v| v.map(|v| count(v, scale)).transpose())
                    .collect::<Result<Int64Array, String>>()
                    .map_err(noise_error)?;
                Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
            }),
        );
        let sum = create_udf(
            &format!("{PREFIX}noise_sum"),
            vec![DataType::Float64, DataType::Float64],
            DataType::Float64,
            Volatility::Volatile,
            Arc::new(|args: &[ColumnarValue]| {
                let scale = scale_of(args)?;
                let values = args[0].to_array(1)?;
                let values = values.as_primitive::<Float64Type>();
                let out = (0..values.len())
                    .map(|i| {
                        (!values.is_null(i))
                            .then(|| sum(values.value(i), scale))
                            .transpose()
                    })
                    .collect::<Result<Float64Array, String>>()
                    .map_err(noise_error)?;
                Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
            }),
        );
        NoiseFunctions {
            count: Arc::new(count),
            sum: Arc::new(sum),
        }
    }
}

impl NoiseFunctions {
    pub fn count(&self, value: Expr, scale: f64) -> Expr {
        self.count.call(vec![value, lit(scale)])
    }

    pub fn sum(&self, value: Expr, scale: f64) -> Expr {
        self.sum.call(vec![value, lit(scale)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_centred_and_as_wide_as_its_scale() {
        let n = 4000;
        let draws: Vec<i64> = (0..n).map(|_| count(1000, 4.0).unwrap()).collect();
        let mean = draws.iter().sum::<i64>() as f64 / n as f64;
        let mad = draws.iter().map(|d| (d - 1000).abs()).sum::<i64>() as f64 / n as f64;
        // The mean absolute deviation of Laplace(b) is b.
        assert!((mean - 1000.0).abs() < 0.5, "mean {mean}");
        assert!((3.4..4.6).contains(&mad), "mean absolute deviation {mad}");
        assert!(draws.iter().any(|d| *d != 1000), "no noise added");
        let sums: Vec<f64> = (0..n).map(|_| sum(50.0, 2.0).unwrap()).collect();
        let mad = sums.iter().map(|d| (d - 50.0).abs()).sum::<f64>() / n as f64;
        assert!((1.7..2.3).contains(&mad), "mean absolute deviation {mad}");
    }
}
