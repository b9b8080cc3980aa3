//! Output formats: human tables and lines, and JSON for machines.

pub mod human;
pub mod json;
