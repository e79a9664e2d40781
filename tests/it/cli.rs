//! Tests of the `conclave` command line (filled in by the CLI work).
