//! Rule semantics in SQL: every `.slt` file of `rules/tests/` runs in a sandbox where the rules
//! are views over small hand-written tables; and the narrowing of changed subjects by what a
//! rule's hits require, on a generated city.

mod narrowing;
mod slt;
