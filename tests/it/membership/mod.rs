//! The membership family (`conclave::membership`): nodes kept in place (`node`), on both
//! backends.

mod node;
