mod cases;
mod errors;
mod rules;
mod sql;
