//! The functions a caller's SQL may call: an allowlist of DataFusion's public functions. What is
//! not listed does not exist in a caller's session — the policy's own functions (pseudonyms,
//! masks: see `masks`), table functions, and functions whose cost a caller could blow up:
//! those whose result can be larger than their arguments by a factor the caller picks
//! (`repeat`, `array_repeat`, `lpad`/`rpad` to a length, `replace`/`regexp_replace` with a long
//! replacement: a statement's 256 KiB squared) and those quadratic in their arguments
//! (`levenshtein`), as constant folding runs them while planning, before any row is read.

use std::sync::Arc;

use datafusion::execution::SessionStateDefaults;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;

/// Scalar functions: conditionals, strings, dates, arithmetic, structs and arrays.
#[rustfmt::skip]
pub const SCALAR: &[&str] = &[
    // conditional and comparison
    "coalesce", "nullif", "nvl", "nvl2", "greatest", "least", "ifnull",
    // strings
    "concat", "concat_ws", "substr", "substring", "substr_index", "substring_index", "left",
    "right", "length", "char_length", "character_length", "octet_length", "bit_length", "lower",
    "upper", "initcap", "trim", "btrim", "ltrim", "rtrim",
    "split_part", "starts_with", "ends_with", "strpos", "instr", "position", "contains",
    "reverse", "translate", "ascii", "chr", "to_hex", "find_in_set", "regexp_like",
    "regexp_match", "regexp_count", "regexp_instr", "md5", "sha256",
    // dates and times
    "now", "current_date", "current_time", "today", "date_trunc", "datetrunc", "date_part",
    "datepart", "date_bin", "to_char", "date_format", "to_date", "to_timestamp",
    "to_timestamp_seconds", "to_timestamp_millis", "to_unixtime", "from_unixtime", "make_date",
    "make_time", "to_local_time",
    // arithmetic
    "abs", "ceil", "floor", "round", "trunc", "sqrt", "cbrt", "power", "pow", "exp", "ln", "log",
    "log2", "log10", "signum", "pi", "mod", "gcd", "lcm", "isnan", "iszero", "nanvl", "degrees",
    "radians", "sin", "cos", "tan", "random", "uuid",
    // types, structs, arrays
    "arrow_typeof", "arrow_cast", "named_struct", "struct", "get_field", "make_array",
    "make_list", "array_length", "cardinality", "array_has", "array_has_all", "array_has_any",
    "array_contains", "list_contains", "array_element", "list_element", "array_extract",
    "array_to_string", "list_to_string", "array_sort", "array_distinct", "array_position",
    "array_slice", "list_slice", "array_append", "array_prepend", "array_concat", "flatten",
    "array_empty", "empty", "array_min", "array_max", "version",
];

/// Aggregates (aggregate-only roles are narrowed further by `suppress`).
#[rustfmt::skip]
pub const AGGREGATE: &[&str] = &[
    "count", "sum", "avg", "mean", "min", "max", "median", "stddev", "stddev_pop",
    "stddev_samp", "var", "var_pop", "var_samp", "variance", "variance_pop", "variance_samp",
    "approx_distinct", "approx_median", "approx_percentile_cont", "percentile_cont",
    "array_agg", "string_agg", "first_value", "last_value", "bool_and", "bool_or", "corr",
    "covar", "covar_pop", "covar_samp", "grouping", "bit_and", "bit_or", "bit_xor",
];

/// Window functions.
#[rustfmt::skip]
pub const WINDOW: &[&str] = &[
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
];

fn listed(names: &[String], allow: &[&str]) -> bool {
    names.iter().any(|n| allow.contains(&n.as_str()))
}

/// A session state for a caller: the SQL syntax of a default session, the allowlisted functions
/// and nothing else (no table functions, no table factories). The file formats are known only
/// so that `COPY` plans and is refused as a write, like every other statement but a query.
pub fn caller_state(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    max_batch_bytes: usize,
) -> SessionState {
    let scalar = SessionStateDefaults::default_scalar_functions()
        .into_iter()
        .filter(|f| listed(&names(f.name(), f.aliases()), SCALAR))
        .collect();
    let aggregate = SessionStateDefaults::default_aggregate_functions()
        .into_iter()
        .filter(|f| listed(&names(f.name(), f.aliases()), AGGREGATE))
        .collect();
    let window = SessionStateDefaults::default_window_functions()
        .into_iter()
        .filter(|f| listed(&names(f.name(), f.aliases()), WINDOW))
        .collect();
    SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_expr_planners(SessionStateDefaults::default_expr_planners())
        .with_file_formats(SessionStateDefaults::default_file_formats())
        .with_scalar_functions(scalar)
        .with_aggregate_functions(aggregate)
        .with_window_functions(window)
        .with_physical_optimizer_rule(Arc::new(crate::batch_guard::GuardProjections {
            max_batch_bytes,
        }))
        .build()
}

fn names(name: &str, aliases: &[String]) -> Vec<String> {
    std::iter::once(name.to_string())
        .chain(aliases.iter().cloned())
        .collect()
}
