//! Rule semantics in SQL: every `.slt` file of `rules/tests/` runs in a sandbox where the rules
//! are views over small hand-written tables; on a generated city, the narrowing of changed
//! subjects by what a rule's hits require, rules run for some subjects only, and evidence.

mod city;
mod narrowing;
mod slt;
mod subjects;
