//! Rule semantics in SQL: every `.slt` file of `rules/tests/` runs in a sandbox where the rules
//! are views over small hand-written tables; on a generated city, the narrowing of changed
//! subjects by what a rule's hits require, rules run for some subjects only, evidence, and the
//! suite inside a small memory pool, and rules evaluated on new rows alone.

mod city;
mod delta;
mod memory;
mod narrowing;
mod slt;
mod subjects;
