//! The membership family (`conclave::membership`): nodes kept in place (`node`) and group
//! members (`group`), on both backends.

mod group;
mod node;
