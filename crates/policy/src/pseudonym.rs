//! Pseudonymous ID keys for masked roles: a keyed hash of the resident ID key. The same person
//! has the same pseudonym in every dataset (analysts can still join and count distinct
//! persons), but without the server's secret it cannot be turned back into an ID.

use std::hash::Hasher;
use std::sync::Arc;

use arrow::array::{AsArray, Int64Array};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use siphasher::sip::SipHasher13;

use crate::view::PSEUDONYM_FN;

pub fn udf(secret: &[u8]) -> ScalarUDF {
    let mut k = [0u8; 16];
    for (i, b) in secret.iter().enumerate() {
        k[i % 16] ^= *b;
    }
    let k0 = u64::from_le_bytes(k[..8].try_into().expect("8 bytes"));
    let k1 = u64::from_le_bytes(k[8..].try_into().expect("8 bytes"));
    let fun = Arc::new(move |args: &[ColumnarValue]| {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let keys = arrays[0].as_primitive::<Int64Type>();
        let out: Int64Array = keys.unary(|v| {
            let mut h = SipHasher13::new_with_keys(k0, k1);
            h.write_i64(v);
            // Positive, so it never looks like a sentinel.
            (h.finish() >> 1) as i64
        });
        Ok(ColumnarValue::Array(Arc::new(out)))
    });
    create_udf(
        PSEUDONYM_FN,
        vec![DataType::Int64],
        DataType::Int64,
        Volatility::Immutable,
        fun,
    )
}
