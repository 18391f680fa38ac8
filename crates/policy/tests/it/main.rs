//! Policies on a generated city: what each role sees, and what it cannot do.

mod common;
mod masks;
mod refusals;
mod regions;
mod small_cells;
