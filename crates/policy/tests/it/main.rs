//! Policies on a generated city: what each role sees, and what it cannot do.

mod attacks;
mod common;
mod masks;
mod random_queries;
mod refusals;
mod regions;
mod shapes;
mod small_cells;
