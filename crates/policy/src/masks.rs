//! The functions a masked view is made of: keyed pseudonyms of ID keys and identifying numbers,
//! an ID cut to its region prefix, a name cut to its surname, a date cut to its year. They live
//! only in the plans of the policy's views: no caller's session knows them by name, so none can
//! call one (a pseudonym function a caller could call would be an oracle: try every birth date
//! of a region, and every pseudonym is reversed).

use std::hash::Hasher;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Date32Type, Int64Type};
use chrono::Datelike;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarUDF, Volatility, create_udf};
use siphasher::sip::SipHasher13;

/// Every policy function's name starts so; lineage checks know them by it.
pub const PREFIX: &str = "hedui_policy_";

/// What a policy function leaves of its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaves {
    /// A pseudonym: not the value, but the same for the same value, so it still singles out.
    Pseudonym,
    /// A generalisation (region prefix, surname, year) that no longer singles anyone out.
    Generalised,
}

/// What the policy function `name` leaves, or `None` if `name` is not one.
pub fn leaves(name: &str) -> Option<Leaves> {
    let rest = name.strip_prefix(PREFIX)?;
    Some(if rest.starts_with("pseudonym") {
        Leaves::Pseudonym
    } else {
        Leaves::Generalised
    })
}

/// The policy functions of one server, keyed with its pseudonym secret.
#[derive(Debug, Clone)]
pub struct Masks {
    pseudonym_key: Arc<ScalarUDF>,
    pseudonym_text: Arc<ScalarUDF>,
    id_prefix: Arc<ScalarUDF>,
    surname: Arc<ScalarUDF>,
    year: Arc<ScalarUDF>,
}

impl Masks {
    pub fn new(secret: &[u8]) -> Masks {
        let mut k = [0u8; 16];
        for (i, b) in secret.iter().enumerate() {
            k[i % 16] ^= *b;
        }
        let k0 = u64::from_le_bytes(k[..8].try_into().expect("8 bytes"));
        let k1 = u64::from_le_bytes(k[8..].try_into().expect("8 bytes"));
        let hasher = move || SipHasher13::new_with_keys(k0, k1);
        let pseudonym_key = udf("pseudonym_key", DataType::Int64, move |a| {
            let keys = a.as_primitive::<Int64Type>();
            let out: Int64Array = keys.unary(|v| {
                let mut h = hasher();
                h.write_i64(v);
                // Positive, so it never looks like a sentinel.
                (h.finish() >> 1) as i64
            });
            Arc::new(out)
        });
        let pseudonym_text = udf("pseudonym_text", DataType::Utf8, move |a| {
            let out: StringArray = strings(a)
                .iter()
                .map(|v| {
                    v.map(|s| {
                        let mut h = hasher();
                        h.write(s.as_bytes());
                        format!("P{:015X}", h.finish() >> 4)
                    })
                })
                .collect();
            Arc::new(out)
        });
        let id_prefix = udf("id_prefix", DataType::Utf8, |a| {
            let out: StringArray = strings(a)
                .iter()
                .map(|v| v.map(|s| format!("{}{}", s.get(..6).unwrap_or(""), "*".repeat(12))))
                .collect();
            Arc::new(out)
        });
        let surname = udf("surname", DataType::Utf8, |a| {
            let out: StringArray = strings(a)
                .iter()
                .map(|v| v.map(|s| format!("{}*", s.chars().next().unwrap_or('*'))))
                .collect();
            Arc::new(out)
        });
        let year = udf_typed("year", DataType::Date32, DataType::Date32, |a| {
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
            let dates = a.as_primitive::<Date32Type>();
            let out: Date32Array = dates.unary(|d| {
                epoch
                    .checked_add_signed(chrono::TimeDelta::days(d.into()))
                    .and_then(|date| date.with_ordinal(1))
                    .map_or(d, |first| (first - epoch).num_days() as i32)
            });
            Arc::new(out)
        });
        Masks {
            pseudonym_key,
            pseudonym_text,
            id_prefix,
            surname,
            year,
        }
    }

    /// A resident ID key's pseudonym: joins across datasets, never equals a key.
    pub fn pseudonym_key(&self, e: Expr) -> Expr {
        self.pseudonym_key.call(vec![e])
    }

    /// An identifying number's (household, personal, plate) pseudonym: `P` and 15 hex digits.
    pub fn pseudonym_text(&self, e: Expr) -> Expr {
        self.pseudonym_text.call(vec![e])
    }

    /// `420502199001011234` -> `420502************`.
    pub fn id_prefix(&self, e: Expr) -> Expr {
        self.id_prefix.call(vec![e])
    }

    /// `张三丰` -> `张*`.
    pub fn surname(&self, e: Expr) -> Expr {
        self.surname.call(vec![e])
    }

    /// `1990-05-17` -> `1990-01-01`.
    pub fn year(&self, e: Expr) -> Expr {
        self.year.call(vec![e])
    }
}

fn strings(a: &ArrayRef) -> StringArray {
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().clone(),
        _ => arrow::compute::cast(a, &DataType::Utf8)
            .map(|c| c.as_string::<i32>().clone())
            .unwrap_or_else(|_| StringArray::new_null(a.len())),
    }
}

fn udf(
    name: &str,
    ty: DataType,
    f: impl Fn(&ArrayRef) -> ArrayRef + Send + Sync + 'static,
) -> Arc<ScalarUDF> {
    let input = if ty == DataType::Int64 {
        DataType::Int64
    } else {
        DataType::Utf8
    };
    udf_typed(name, input, ty, f)
}

fn udf_typed(
    name: &str,
    input: DataType,
    output: DataType,
    f: impl Fn(&ArrayRef) -> ArrayRef + Send + Sync + 'static,
) -> Arc<ScalarUDF> {
    let fun = Arc::new(move |args: &[ColumnarValue]| -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        Ok(ColumnarValue::Array(f(&arrays[0])))
    });
    Arc::new(create_udf(
        &format!("{PREFIX}{name}"),
        vec![input],
        output,
        Volatility::Immutable,
        fun,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_policy_functions_are_recognised() {
        assert_eq!(
            leaves("hedui_policy_pseudonym_key"),
            Some(Leaves::Pseudonym)
        );
        assert_eq!(leaves("hedui_policy_year"), Some(Leaves::Generalised));
        assert_eq!(leaves("concat"), None);
    }
}
