//! Behaviour tests, compiled as one binary (one link for all areas). Each module covers one area.

mod cli;
