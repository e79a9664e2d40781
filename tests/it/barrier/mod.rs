//! The barrier family (`conclave::barrier`): behaviour on both backends (`basics`).

mod basics;
mod interop;
