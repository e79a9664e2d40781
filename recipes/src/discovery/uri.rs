//! Curator's URI templates: a [`UriSpec`] is a list of literal and variable parts, parsed from
//! `{scheme}://{address}:{port}/x` as Curator's `UriSpec` parses it, and built into a URI for
//! an instance with the variables Curator's `UriSpec.build` fills.

use std::collections::HashMap;
use std::str::FromStr;

use super::ServiceInstance;
use crate::error::{Error, Result, ZkError};

/// One part of a [`UriSpec`]: literal text, or the name of a variable to fill in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UriPart {
    /// The text, or the variable's name.
    pub value: String,
    /// Whether `value` names a variable.
    pub variable: bool,
}

impl UriPart {
    /// Literal text.
    pub fn literal(value: impl Into<String>) -> UriPart {
        UriPart { value: value.into(), variable: false }
    }

    /// A variable.
    pub fn variable(name: impl Into<String>) -> UriPart {
        UriPart { value: name.into(), variable: true }
    }
}

/// Curator's URI template: literal text and `{variable}`s, such as
/// `"{scheme}://{address}:{port}/api"`, stored with an instance so that a client can build the
/// instance's URI ([`UriSpec::build`], [`ServiceInstance::uri`]).
///
/// Parsing follows Curator's `UriSpec`: the template is cut at every `{` and `}`; text between
/// `{` and `}` is a variable, its name trimmed of leading and trailing spaces and control
/// characters; empty pieces are dropped (so `"{}"` has no part at all, while `"{ }"` is a
/// variable with an empty name); a `{` inside a variable, a `}` outside one and a variable left
/// open are errors. The variables that [`UriSpec::build`] knows are listed there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UriSpec {
    /// The parts, in order.
    pub parts: Vec<UriPart>,
}

impl UriSpec {
    /// A template of these parts.
    pub fn new(parts: Vec<UriPart>) -> UriSpec {
        UriSpec { parts }
    }

    /// Parses a template (see the type's documentation for the rules).
    ///
    /// # Errors
    /// `InvalidArgument` for a `{` inside a variable, a `}` that closes nothing, or a variable
    /// not closed at the end.
    pub fn parse(template: &str) -> Result<UriSpec> {
        let bad = |why: &str| -> Error { ZkError::InvalidArgument(format!("URI template {template:?}: {why}")).into() };
        let mut parts = Vec::new();
        let mut inside = false;
        let mut piece = String::new();
        let mut flush = |piece: &mut String, inside: bool| {
            if !piece.is_empty() {
                let value = if inside { java_trim(piece).to_string() } else { std::mem::take(piece) };
                parts.push(UriPart { value, variable: inside });
                piece.clear();
            }
        };
        for c in template.chars() {
            match c {
                '{' => {
                    if inside {
                        return Err(bad("`{` inside a variable"));
                    }
                    flush(&mut piece, inside);
                    inside = true;
                }
                '}' => {
                    if !inside {
                        return Err(bad("`}` without a `{` before it"));
                    }
                    flush(&mut piece, inside);
                    inside = false;
                }
                c => piece.push(c),
            }
        }
        if inside {
            return Err(bad("the last variable is not closed (`}` expected)"));
        }
        flush(&mut piece, inside);
        Ok(UriSpec { parts })
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[UriPart] {
        &self.parts
    }

    /// Builds the URI of `instance`: literal parts as they are, each variable replaced by its
    /// value from `variables` if it is there, else by the value Curator's `UriSpec.build`
    /// gives it, else by nothing (Curator only logs a variable it does not know).
    ///
    /// The variables filled from the instance, with Curator's names: `scheme` (`https` when
    /// the instance has an SSL port, else `http`), `name`, `id`, `address`, `port`, `ssl-port`
    /// (empty when the instance has no such field), `registration-time-utc` (milliseconds),
    /// `service-type` (the type's name in lower case, `dynamic`), and `[` and `]`, which give
    /// a literal `{` and `}`. As in Curator, `variables` overrides any of them.
    pub fn build(&self, instance: &ServiceInstance, variables: &HashMap<String, String>) -> String {
        let mut uri = String::new();
        for part in &self.parts {
            if !part.variable {
                uri.push_str(&part.value);
            } else if let Some(value) = variables.get(&part.value) {
                uri.push_str(value);
            } else if let Some(value) = instance_variable(instance, &part.value) {
                uri.push_str(&value);
            }
        }
        uri
    }
}

impl FromStr for UriSpec {
    type Err = Error;

    /// As [`UriSpec::parse`].
    fn from_str(template: &str) -> Result<UriSpec> {
        UriSpec::parse(template)
    }
}

/// The value Curator's `UriSpec.build` gives a variable of an instance, if it is one of its
/// names.
fn instance_variable(instance: &ServiceInstance, name: &str) -> Option<String> {
    let text = |n: Option<i32>| n.map(|n| n.to_string()).unwrap_or_default();
    Some(match name {
        "[" => "{".to_string(),
        "]" => "}".to_string(),
        "scheme" => if instance.ssl_port.is_some() { "https" } else { "http" }.to_string(),
        "name" => instance.name.clone(),
        "id" => instance.id.clone(),
        "address" => instance.address.clone().unwrap_or_default(),
        "port" => text(instance.port),
        "ssl-port" => text(instance.ssl_port),
        "registration-time-utc" => instance.registration_time_utc.to_string(),
        "service-type" => instance.service_type.name().to_ascii_lowercase(),
        _ => return None,
    })
}

/// Java's `String.trim`: strips characters up to U+0020 (spaces and control characters) from
/// both ends, and nothing else.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}
