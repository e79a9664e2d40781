//! The membership family (`conclave::membership`): nodes kept in place (`node`) and group
//! members (`group`), on both backends, and the stress run (`stress`, shared with discovery).

mod group;
mod interop;
mod node;
pub(crate) mod stress;
