//! Rule semantics in SQL: every `.slt` file of `rules/tests/` runs in a sandbox where the rules
//! are views over small hand-written tables.

mod slt;
