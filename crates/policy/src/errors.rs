//! Errors that reach a caller carry no data. An error raised while rows flow can quote a row (a
//! failed cast names the value it could not convert), so a caller gets a fixed message with a
//! code for what went wrong, and the detail goes to the server log only.

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;

use crate::Error;

/// What a caller is told of an error raised while the query ran.
pub fn execution(e: DataFusionError) -> Error {
    let root = e.find_root();
    // At debug level: the detail can quote a row, and on the command line the log is the
    // caller's own terminal.
    tracing::debug!(error = %root, "query failed while running");
    let message = match root {
        DataFusionError::ResourcesExhausted(_) => {
            return Error::Limit(
                "the query needs more memory than its limit allows (E_MEMORY)".into(),
            );
        }
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::DivideByZero => "a division by zero (E_DIVIDE)",
            ArrowError::ArithmeticOverflow(_) => "a calculation overflowed its type (E_OVERFLOW)",
            ArrowError::CastError(_) | ArrowError::ParseError(_) => {
                "a value could not be converted to the type asked for (E_CAST)"
            }
            ArrowError::MemoryError(_) => {
                return Error::Limit(
                    "the query needs more memory than its limit allows (E_MEMORY)".into(),
                );
            }
            ArrowError::ComputeError(_) | ArrowError::InvalidArgumentError(_) => {
                "a function could not be applied to a value (E_FUNCTION)"
            }
            _ => {
                return Error::Internal(
                    "the query failed inside the engine (E_INTERNAL); the server log has details"
                        .into(),
                );
            }
        },
        DataFusionError::Execution(_) => "a function could not be applied to a value (E_FUNCTION)",
        _ => {
            return Error::Internal(
                "the query failed inside the engine (E_INTERNAL); the server log has details"
                    .into(),
            );
        }
    };
    Error::Query(format!("the query stopped while running: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_message_quotes_the_value_that_failed() {
        let secret = "420502195001011234|张三";
        for e in [
            DataFusionError::ArrowError(
                Box::new(ArrowError::CastError(format!(
                    "Cannot cast string '{secret}'"
                ))),
                None,
            ),
            DataFusionError::Execution(format!("bad value {secret}")),
            DataFusionError::Internal(format!("at {secret}")),
            DataFusionError::ResourcesExhausted(format!("for {secret}")),
            DataFusionError::Context(
                "wrapped".into(),
                Box::new(DataFusionError::Execution(secret.into())),
            ),
        ] {
            let shown = execution(e).to_string();
            assert!(
                !shown.contains("420502") && !shown.contains('张'),
                "{shown}"
            );
            assert!(shown.contains("(E_"), "{shown}");
        }
    }
}
