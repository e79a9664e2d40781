//! Tests of the embedded server: the apply layer called directly, and raw frames over
//! in-process connections.
