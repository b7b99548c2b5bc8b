//! Shared helpers for PEL benchmarks.
