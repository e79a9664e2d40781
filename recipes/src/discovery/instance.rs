//! A registered service instance as Apache Curator's service discovery writes it: the
//! [`ServiceInstance`] record (name, id, address, ports, payload, registration time, type, URI
//! template, enabled flag), its JSON codec — byte for byte what Curator 5.4's default serializer
//! writes, and reading everything it writes — and [`UriSpec`], Curator's URI template
//! (`"{scheme}://{address}:{port}/x"`) with its parse and build rules.

use std::collections::HashMap;
use std::fmt;
use std::net::UdpSocket;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::uri::{UriPart, UriSpec};
use crate::error::{Error, Result, ZkError};

/// How an instance is registered, Curator's `ServiceType`: the node mode of its registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServiceType {
    /// An ephemeral node: the instance goes with its session (`DYNAMIC`, the default).
    #[default]
    Dynamic,
    /// A persistent node (`STATIC`); Curator's discovery REST server purges such instances
    /// once they are not renewed for a while.
    Static,
    /// A persistent node that stays until it is unregistered (`PERMANENT`).
    Permanent,
    /// An ephemeral sequential node: the node's name is the id followed by a sequence number
    /// (`DYNAMIC_SEQUENTIAL`).
    DynamicSequential,
}

impl ServiceType {
    /// Every type, in Curator's declaration order.
    pub const ALL: [ServiceType; 4] =
        [ServiceType::Dynamic, ServiceType::Static, ServiceType::Permanent, ServiceType::DynamicSequential];

    /// Curator's name of the type, as it appears in the JSON (`"DYNAMIC"`, `"STATIC"`,
    /// `"PERMANENT"`, `"DYNAMIC_SEQUENTIAL"`).
    pub fn name(self) -> &'static str {
        match self {
            ServiceType::Dynamic => "DYNAMIC",
            ServiceType::Static => "STATIC",
            ServiceType::Permanent => "PERMANENT",
            ServiceType::DynamicSequential => "DYNAMIC_SEQUENTIAL",
        }
    }

    /// The type of this Curator name, if it is one.
    fn named(name: &str) -> Option<ServiceType> {
        ServiceType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether the instance goes with its session (`Dynamic` and `DynamicSequential`), as
    /// Curator's `isDynamic`.
    pub fn is_dynamic(self) -> bool {
        matches!(self, ServiceType::Dynamic | ServiceType::DynamicSequential)
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ServiceType {
    type Err = Error;

    /// Reads Curator's name of a type (exactly, upper case); `InvalidArgument` otherwise.
    fn from_str(s: &str) -> Result<ServiceType> {
        ServiceType::named(s).ok_or_else(|| ZkError::InvalidArgument(not_a_type(s)).into())
    }
}

/// The message for a name that is not a service type's.
fn not_a_type(name: &str) -> String {
    format!("{name:?} is not a service type (DYNAMIC, STATIC, PERMANENT or DYNAMIC_SEQUENTIAL)")
}

/// A service instance, as Curator's `ServiceInstance`: what a registration stores in its node
/// `/<base>/<name>/<id>`, as JSON ([`to_json`](Self::to_json), [`from_json`](Self::from_json)).
///
/// Equality compares every field, as Curator's `equals` does; the service provider identifies
/// an instance by its `id` alone.
///
/// # The JSON form
/// Curator stores an instance as the data of its node, one JSON object with the fields `name`,
/// `id`, `address`, `port`, `sslPort`, `payload`, `registrationTimeUTC`, `serviceType` and
/// `uriSpec`, in that order. Its default serializer never writes `enabled` (every instance it
/// writes reads back as enabled); [`ServiceInstance::to_json`] writes the same bytes, and adds
/// `,"enabled":false` at the end only for a disabled instance (as Curator's non-default
/// serializer does, so that Curator reads the flag). Strings are escaped as Curator's JSON
/// library does: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters and every
/// character outside the Basic Multilingual Plane as `\uXXXX` (upper-case hex, a UTF-16 pair
/// for the latter), everything else as it is.
///
/// The payload is kept as a [`serde_json::Value`], unchanged, including the `"@class"` key
/// Curator puts in object payloads. Curator's reader wants it that way: an object without
/// `"@class"` reads as a Java map, a string, boolean, int or double as itself, but an array or a
/// Java `long` must be wrapped as `["<java class>", <value>]` (Curator writes a `List` payload
/// so: `["java.util.Arrays$ArrayList",[1,"x",true]]`), and a payload of a class of the Java
/// service's own needs `"@class":"<its class>"`. Object keys come out sorted (serde_json's map
/// order), so an object payload read from Curator is written back with the same content but not
/// always the same bytes; numbers are written as serde_json writes them (`1.5e+20` where Java
/// writes `1.5E20`).
///
/// # Reading
/// [`ServiceInstance::from_json`] accepts what Curator writes and ignores fields it does not
/// know. `name` and `id` are required strings. The other fields may be missing, and then read as
/// Curator's own defaults: no address, no ports, a null payload, registration time 0, type
/// `DYNAMIC`, no URI template, enabled. A field that is present must have the type Curator writes
/// (`null` only where Curator writes `null`: address, ports, payload, URI template); ports are
/// Java ints, so a number outside `i32` is an error, not a truncation. Errors are
/// [`ZkError::InvalidArgument`] naming the field and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInstance {
    /// The service's name (the node's parent under the base path).
    pub name: String,
    /// The instance's id, unique within the service (the node's name).
    pub id: String,
    /// The host, as text (an IP address or a host name); Curator writes `null` when it found
    /// no address.
    pub address: Option<String>,
    /// The port, a Java `Integer` (so any `i32`; `None` is Java's `null`).
    pub port: Option<i32>,
    /// The SSL port, likewise; when set, the `scheme` of the [`UriSpec`] is `https`.
    pub ssl_port: Option<i32>,
    /// Data for the clients, kept as it is ([`Value::Null`] when there is none; see the
    /// [JSON form](Self#the-json-form) for what Curator's reader expects).
    pub payload: Value,
    /// When the instance was registered, in milliseconds since the Unix epoch (UTC).
    pub registration_time_utc: i64,
    /// How it is registered.
    pub service_type: ServiceType,
    /// The template of its URI, if it has one.
    pub uri_spec: Option<UriSpec>,
    /// Whether clients should use it: a service provider skips disabled instances.
    pub enabled: bool,
}

impl ServiceInstance {
    /// A builder of an instance of the service `name`, with Curator's defaults: a random
    /// (v4 UUID) id, this host's address ([`local_address`]), the registration time now,
    /// type [`ServiceType::Dynamic`], no ports, no payload, no URI template, enabled.
    pub fn builder(name: impl Into<String>) -> ServiceInstanceBuilder {
        ServiceInstanceBuilder {
            instance: ServiceInstance {
                name: name.into(),
                id: uuid::Uuid::new_v4().to_string(),
                address: Some(local_address()),
                port: None,
                ssl_port: None,
                payload: Value::Null,
                registration_time_utc: now_ms(),
                service_type: ServiceType::Dynamic,
                uri_spec: None,
                enabled: true,
            },
        }
    }

    /// The instance's URI, built from its template with `variables` (see [`UriSpec::build`]);
    /// `None` when it has no template (where Curator's `buildUriSpec` gives `""`).
    pub fn uri(&self, variables: &HashMap<String, String>) -> Option<String> {
        self.uri_spec.as_ref().map(|spec| spec.build(self, variables))
    }

    /// The instance as JSON, byte for byte as Curator 5.4's default serializer writes it (plus
    /// `,"enabled":false` at the end when it is disabled; see the
    /// [JSON form](Self#the-json-form)).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(192);
        out.push_str("{\"name\":");
        push_string(&mut out, &self.name);
        out.push_str(",\"id\":");
        push_string(&mut out, &self.id);
        out.push_str(",\"address\":");
        match &self.address {
            Some(address) => push_string(&mut out, address),
            None => out.push_str("null"),
        }
        for (key, port) in [("port", self.port), ("sslPort", self.ssl_port)] {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            match port {
                Some(port) => out.push_str(&port.to_string()),
                None => out.push_str("null"),
            }
        }
        out.push_str(",\"payload\":");
        push_value(&mut out, &self.payload);
        out.push_str(",\"registrationTimeUTC\":");
        out.push_str(&self.registration_time_utc.to_string());
        out.push_str(",\"serviceType\":\"");
        out.push_str(self.service_type.name());
        out.push_str("\",\"uriSpec\":");
        match &self.uri_spec {
            None => out.push_str("null"),
            Some(spec) => {
                out.push_str("{\"parts\":[");
                for (i, part) in spec.parts.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"value\":");
                    push_string(&mut out, &part.value);
                    out.push_str(if part.variable { ",\"variable\":true}" } else { ",\"variable\":false}" });
                }
                out.push_str("]}");
            }
        }
        if !self.enabled {
            out.push_str(",\"enabled\":false");
        }
        out.push('}');
        out
    }

    /// Reads an instance from its JSON (a node's data), as Curator writes it or as
    /// [`ServiceInstance::to_json`] does; unknown fields are ignored, missing optional ones read
    /// as Curator's defaults (see [Reading](Self#reading)).
    ///
    /// # Errors
    /// `InvalidArgument` saying what is wrong: not JSON, not an object, a missing `name` or
    /// `id`, or a field of the wrong type or out of range (a port outside `i32`, an unknown
    /// `serviceType`...).
    pub fn from_json(data: &[u8]) -> Result<ServiceInstance> {
        let value: Value = serde_json::from_slice(data).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(invalid(format!("expected a JSON object, found {}", found(&value))));
        };
        Ok(ServiceInstance {
            name: required_string(&fields, "name")?,
            id: required_string(&fields, "id")?,
            address: optional_string(&fields, "address")?,
            port: optional_int(&fields, "port")?,
            ssl_port: optional_int(&fields, "sslPort")?,
            payload: fields.get("payload").cloned().unwrap_or(Value::Null),
            registration_time_utc: match fields.get("registrationTimeUTC") {
                None => 0,
                Some(v) => v.as_i64().ok_or_else(|| wrong_type("registrationTimeUTC", "a Java long", v))?,
            },
            service_type: match fields.get("serviceType") {
                None => ServiceType::Dynamic,
                Some(Value::String(s)) => {
                    ServiceType::named(s).ok_or_else(|| invalid(format!("\"serviceType\": {}", not_a_type(s))))?
                }
                Some(v) => return Err(wrong_type("serviceType", "a string", v)),
            },
            uri_spec: match fields.get("uriSpec") {
                None | Some(Value::Null) => None,
                Some(Value::Object(spec)) => Some(uri_spec(spec)?),
                Some(v) => return Err(wrong_type("uriSpec", "an object or null", v)),
            },
            enabled: match fields.get("enabled") {
                None => true,
                Some(v) => v.as_bool().ok_or_else(|| wrong_type("enabled", "true or false", v))?,
            },
        })
    }
}

/// Builds a [`ServiceInstance`]; from [`ServiceInstance::builder`], which sets the defaults.
#[derive(Debug, Clone)]
#[must_use]
pub struct ServiceInstanceBuilder {
    instance: ServiceInstance,
}

impl ServiceInstanceBuilder {
    /// The service's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.instance.name = name.into();
        self
    }

    /// The instance's id (default: a random v4 UUID).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.instance.id = id.into();
        self
    }

    /// The host (default: [`local_address`]).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.instance.address = Some(address.into());
        self
    }

    /// The port (default: none). A `u16` converts; any Java `int` is accepted, as Curator does.
    pub fn port(mut self, port: impl Into<i32>) -> Self {
        self.instance.port = Some(port.into());
        self
    }

    /// The SSL port (default: none); with one, the template's `scheme` is `https`.
    pub fn ssl_port(mut self, port: impl Into<i32>) -> Self {
        self.instance.ssl_port = Some(port.into());
        self
    }

    /// The payload (default: [`Value::Null`]).
    pub fn payload(mut self, payload: impl Into<Value>) -> Self {
        self.instance.payload = payload.into();
        self
    }

    /// The registration time in milliseconds since the Unix epoch (default: now).
    pub fn registration_time_utc(mut self, ms: i64) -> Self {
        self.instance.registration_time_utc = ms;
        self
    }

    /// How the instance is registered (default: [`ServiceType::Dynamic`]).
    pub fn service_type(mut self, service_type: ServiceType) -> Self {
        self.instance.service_type = service_type;
        self
    }

    /// The URI template (default: none); [`UriSpec::parse`] makes one from text.
    pub fn uri_spec(mut self, spec: UriSpec) -> Self {
        self.instance.uri_spec = Some(spec);
        self
    }

    /// Whether clients should use the instance (default: `true`).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.instance.enabled = enabled;
        self
    }

    /// The instance.
    pub fn build(self) -> ServiceInstance {
        self.instance
    }
}

/// This host's primary IP address, the default address of [`ServiceInstance::builder`]: the
/// source address the host would use to reach the outside, found by `connect`ing a UDP socket
/// (which sends nothing) to a documentation address (`192.0.2.1`, then `2001:db8::1`) and
/// reading its local address; `"127.0.0.1"` when there is no such route or the address found is
/// a loopback one.
///
/// Curator takes the first non-loopback, non-link-local address of the first network interface
/// instead (and `null` when there is none); on a host with several interfaces the two can
/// differ, so set the address explicitly where that matters.
pub fn local_address() -> String {
    for (bind, target) in [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")] {
        let Ok(socket) = UdpSocket::bind(bind) else { continue };
        if socket.connect(target).is_err() {
            continue;
        }
        if let Ok(local) = socket.local_addr() {
            let ip = local.ip();
            if !ip.is_unspecified() && !ip.is_loopback() {
                return ip.to_string();
            }
        }
    }
    "127.0.0.1".to_string()
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Appends `s` as a JSON string, escaped as Jackson (Curator's JSON library) escapes it.
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if !(' '..='\u{ffff}').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a JSON value (the payload), its strings escaped as [`push_string`] does.
fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, key);
                out.push(':');
                push_value(out, item);
            }
            out.push('}');
        }
    }
}

/// The error of JSON that is not a service instance.
fn invalid(why: String) -> Error {
    ZkError::InvalidArgument(format!("not a Curator service instance: {why}")).into()
}

/// The error of a field of the wrong type.
fn wrong_type(field: &str, expected: &str, value: &Value) -> Error {
    invalid(format!("{field:?}: expected {expected}, found {}", found(value)))
}

/// What a value is, for an error message: scalars as they are, strings, arrays and objects by
/// kind.
fn found(value: &Value) -> String {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// A field that must be there, as a string.
fn required_string(fields: &Map<String, Value>, field: &str) -> Result<String> {
    match fields.get(field) {
        None => Err(invalid(format!("{field:?} is missing"))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(wrong_type(field, "a string", v)),
    }
}

/// A string field that may be missing or `null`.
fn optional_string(fields: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(wrong_type(field, "a string or null", v)),
    }
}

/// A Java `Integer` field that may be missing or `null`.
fn optional_int(fields: &Map<String, Value>, field: &str) -> Result<Option<i32>> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64().and_then(|n| i32::try_from(n).ok()) {
            Some(n) => Ok(Some(n)),
            None => Err(wrong_type(field, "a Java int (-2147483648..=2147483647) or null", v)),
        },
    }
}

/// The `uriSpec` object: `{"parts":[{"value":..,"variable":..},..]}`, missing members read as
/// Curator's defaults (no parts, an empty value, not a variable).
fn uri_spec(spec: &Map<String, Value>) -> Result<UriSpec> {
    let parts = match spec.get("parts") {
        None => return Ok(UriSpec::default()),
        Some(Value::Array(parts)) => parts,
        Some(v) => return Err(wrong_type("uriSpec.parts", "an array", v)),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let Value::Object(part) = part else {
            return Err(wrong_type(&format!("uriSpec.parts[{i}]"), "an object", part));
        };
        let value = match part.get("value") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => return Err(wrong_type(&format!("uriSpec.parts[{i}].value"), "a string", v)),
        };
        let variable = match part.get("variable") {
            None => false,
            Some(v) => {
                v.as_bool().ok_or_else(|| wrong_type(&format!("uriSpec.parts[{i}].variable"), "true or false", v))?
            }
        };
        out.push(UriPart { value, variable });
    }
    Ok(UriSpec { parts: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by Curator 5.4.0's default serializer (Debian's jars, `ServiceDiscovery.
    /// registerService`, read back from the node), with an object payload.
    const GOLDEN_MAP: &str = r#"{"name":"api","id":"id-1","address":"10.0.0.5","port":8080,"sslPort":8443,"payload":{"@class":"java.util.LinkedHashMap","zone":"eu","weight":3},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true},{"value":"/x","variable":false}]}}"#;
    /// Curator, a string payload, no SSL port, no template.
    const GOLDEN_TEXT: &str = r#"{"name":"api","id":"id-2","address":"10.0.0.6","port":80,"sslPort":null,"payload":"text","registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null}"#;
    /// Curator, no ports, no payload.
    const GOLDEN_BARE: &str = r#"{"name":"api","id":"id-3","address":"h","port":null,"sslPort":null,"payload":null,"registrationTimeUTC":1796269901513,"serviceType":"DYNAMIC","uriSpec":null}"#;
    /// Curator's non-default serializer (`compatibleSerializationMode=false`) on a disabled
    /// instance: escapes (control characters, a character outside the BMP as a UTF-16 pair),
    /// the extreme `long`, `PERMANENT`, and the `enabled` field at the end.
    const GOLDEN_ESCAPES: &str = r#"{"name":"s\b\f\t\r\u0000é\uD83D\uDE00<>&'","id":"id/x","address":"::1","port":0,"sslPort":443,"payload":"p\u0001","registrationTimeUTC":-9223372036854775808,"serviceType":"PERMANENT","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":"port","variable":true}]},"enabled":false}"#;
    /// Curator's default serializer: no address, ports outside u16, a quote, a backslash, a
    /// slash, a newline, U+001F and U+2028 in the name, a double payload (which Java writes
    /// `1.5E20`), `DYNAMIC_SEQUENTIAL`, every variable of `UriSpec.build`.
    const GOLDEN_ODD: &str = "{\"name\":\"a\\u001F\\\"\\\\/\\n\u{e9}\u{2028}\",\"id\":\"i\",\"address\":null,\"port\":-1,\"sslPort\":70000,\"payload\":1.5E20,\"registrationTimeUTC\":-5,\"serviceType\":\"DYNAMIC_SEQUENTIAL\",\"uriSpec\":{\"parts\":[{\"value\":\"scheme\",\"variable\":true},{\"value\":\"x\",\"variable\":false},{\"value\":\"y\",\"variable\":false},{\"value\":\"[\",\"variable\":true},{\"value\":\"]\",\"variable\":true},{\"value\":\"ssl-port\",\"variable\":true},{\"value\":\"registration-time-utc\",\"variable\":true},{\"value\":\"service-type\",\"variable\":true},{\"value\":\"name\",\"variable\":true},{\"value\":\"id\",\"variable\":true},{\"value\":\"nope\",\"variable\":true}]}}";

    fn decode(json: &str) -> ServiceInstance {
        ServiceInstance::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn error(json: &str) -> String {
        match ServiceInstance::from_json(json.as_bytes()) {
            Ok(i) => panic!("{json} read as {i:?}"),
            Err(Error::Zk(ZkError::InvalidArgument(why))) => why,
            Err(e) => panic!("{json}: not InvalidArgument: {e:?}"),
        }
    }

    #[test]
    fn reads_curators_object_payload_and_writes_it_back() {
        let i = decode(GOLDEN_MAP);
        assert_eq!((i.name.as_str(), i.id.as_str(), i.address.as_deref()), ("api", "id-1", Some("10.0.0.5")));
        assert_eq!((i.port, i.ssl_port), (Some(8080), Some(8443)));
        assert_eq!(
            i.payload,
            serde_json::json!({"@class": "java.util.LinkedHashMap", "zone": "eu", "weight": 3}),
            "the payload is kept as it is, @class included"
        );
        assert_eq!(i.registration_time_utc, 1_700_000_000_000);
        assert_eq!(i.service_type, ServiceType::Dynamic);
        assert!(i.enabled, "no `enabled` field reads as enabled");
        let spec = i.uri_spec.clone().expect("a template");
        assert_eq!(spec, UriSpec::parse("{scheme}://{address}:{port}/x").expect("parse"));
        // The payload's keys come out sorted, so the bytes differ there and only there.
        let written = i.to_json();
        assert_eq!(
            written,
            GOLDEN_MAP.replace(r#""zone":"eu","weight":3"#, r#""weight":3,"zone":"eu""#),
            "fixed fields byte-identical"
        );
        assert_eq!(decode(&written), i);
        let curator: Value = serde_json::from_str(GOLDEN_MAP).expect("json");
        let ours: Value = serde_json::from_str(&written).expect("json");
        assert_eq!(ours, curator, "the same JSON value");
    }

    #[test]
    fn writes_what_curator_writes_byte_for_byte() {
        for golden in [GOLDEN_TEXT, GOLDEN_BARE, GOLDEN_ESCAPES] {
            let i = decode(golden);
            assert_eq!(i.to_json(), golden);
        }
        // The fixed fields are; the double payload is serde_json's (`1.5e+20`, not `1.5E20`).
        let mut odd = decode(GOLDEN_ODD);
        assert_eq!(decode(&odd.to_json()), odd);
        odd.payload = Value::Null;
        assert_eq!(odd.to_json(), GOLDEN_ODD.replace("1.5E20", "null"));
        let text = decode(GOLDEN_TEXT);
        assert_eq!((text.port, text.ssl_port, text.uri_spec), (Some(80), None, None));
        assert_eq!(text.payload, Value::String("text".into()));
        let bare = decode(GOLDEN_BARE);
        assert_eq!((bare.payload, bare.port), (Value::Null, None));
        let escapes = decode(GOLDEN_ESCAPES);
        assert_eq!(escapes.name, "s\u{8}\u{c}\t\r\u{0}é😀<>&'");
        assert_eq!(escapes.registration_time_utc, i64::MIN);
        assert_eq!(escapes.service_type, ServiceType::Permanent);
        assert!(!escapes.enabled);
        let odd = decode(GOLDEN_ODD);
        assert_eq!(odd.name, "a\u{1f}\"\\/\né\u{2028}");
        assert_eq!((odd.address, odd.port, odd.ssl_port), (None, Some(-1), Some(70000)));
        assert_eq!(odd.service_type, ServiceType::DynamicSequential);
        assert_eq!(odd.payload.as_f64(), Some(1.5e20));
    }

    #[test]
    fn builds_an_instance_and_round_trips_it() {
        let spec = UriSpec::parse("{scheme}://{address}:{port}").expect("parse");
        let i = ServiceInstance::builder("web")
            .id("w1")
            .address("192.0.2.7")
            .port(8080u16)
            .ssl_port(8443)
            .payload(serde_json::json!({"a": [1, "b", null], "z": {"k": false}}))
            .registration_time_utc(42)
            .service_type(ServiceType::Static)
            .uri_spec(spec.clone())
            .enabled(false)
            .build();
        let json = i.to_json();
        assert_eq!(
            json,
            r#"{"name":"web","id":"w1","address":"192.0.2.7","port":8080,"sslPort":8443,"payload":{"a":[1,"b",null],"z":{"k":false}},"registrationTimeUTC":42,"serviceType":"STATIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true}]},"enabled":false}"#
        );
        assert_eq!(decode(&json), i);
        assert_eq!(i.clone().name, "web");
        let renamed = ServiceInstance::builder("x").name("y").build();
        assert_eq!(renamed.name, "y");
    }

    #[test]
    fn builder_defaults_are_curators() {
        let before = now_ms();
        let a = ServiceInstance::builder("svc").build();
        let b = ServiceInstance::builder("svc").build();
        assert_eq!(a.name, "svc");
        assert!(uuid::Uuid::parse_str(&a.id).is_ok_and(|u| u.get_version_num() == 4), "{}", a.id);
        assert_ne!(a.id, b.id, "a random id each time");
        let address = a.address.clone().expect("an address");
        assert!(address.parse::<std::net::IpAddr>().is_ok(), "{address}");
        assert!(a.registration_time_utc >= before && a.registration_time_utc <= now_ms());
        assert_eq!((a.port, a.ssl_port, &a.payload, &a.uri_spec), (None, None, &Value::Null, &None));
        assert_eq!(a.service_type, ServiceType::Dynamic);
        assert!(a.enabled);
        assert!(!a.to_json().contains("enabled"), "an enabled instance is written as Curator does");
    }

    #[test]
    fn reads_enabled_unknown_fields_and_missing_optional_ones() {
        let i = decode(
            r#"{"name":"api","id":"r","address":"a","port":1,"sslPort":null,"payload":{"k":"v"},"registrationTimeUTC":5,"serviceType":"DYNAMIC","uriSpec":null,"extra":1,"enabled":true}"#,
        );
        assert!(i.enabled);
        assert_eq!(i.payload, serde_json::json!({"k": "v"}));
        assert!(!decode(r#"{"name":"a","id":"b","enabled":false}"#).enabled);
        let minimal = decode(r#"{"id":"b","name":"a"}"#);
        assert_eq!(
            minimal,
            ServiceInstance {
                name: "a".into(),
                id: "b".into(),
                address: None,
                port: None,
                ssl_port: None,
                payload: Value::Null,
                registration_time_utc: 0,
                service_type: ServiceType::Dynamic,
                uri_spec: None,
                enabled: true,
            }
        );
        let spec = decode(r#"{"name":"a","id":"b","uriSpec":{"parts":[{"value":"x"},{"variable":true}]}}"#).uri_spec;
        assert_eq!(spec, Some(UriSpec::new(vec![UriPart::literal("x"), UriPart::variable("")])));
        assert_eq!(decode(r#"{"name":"a","id":"b","uriSpec":{}}"#).uri_spec, Some(UriSpec::default()));
        // Java's wrapped forms pass through untouched.
        let wrapped = decode(r#"{"name":"a","id":"b","payload":["java.lang.Long",7]}"#);
        assert_eq!(wrapped.payload, serde_json::json!(["java.lang.Long", 7]));
    }

    #[test]
    fn says_what_is_wrong() {
        let cases = [
            ("", "not JSON"),
            ("[1]", "expected a JSON object, found an array"),
            (r#"{"id":"b"}"#, r#""name" is missing"#),
            (r#"{"name":"a"}"#, r#""id" is missing"#),
            (r#"{"name":null,"id":"b"}"#, r#""name": expected a string, found null"#),
            (r#"{"name":"a","id":7}"#, r#""id": expected a string, found 7"#),
            (r#"{"name":"a","id":"b","address":1}"#, r#""address": expected a string or null, found 1"#),
            (r#"{"name":"a","id":"b","port":70000000000}"#, r#""port": expected a Java int"#),
            (r#"{"name":"a","id":"b","sslPort":2147483648}"#, r#""sslPort": expected a Java int"#),
            (
                r#"{"name":"a","id":"b","port":"80"}"#,
                r#""port": expected a Java int (-2147483648..=2147483647) or null, found a string"#,
            ),
            (r#"{"name":"a","id":"b","port":80.5}"#, "found 80.5"),
            (
                r#"{"name":"a","id":"b","registrationTimeUTC":null}"#,
                r#""registrationTimeUTC": expected a Java long, found null"#,
            ),
            (r#"{"name":"a","id":"b","registrationTimeUTC":9223372036854775808}"#, "registrationTimeUTC"),
            (r#"{"name":"a","id":"b","serviceType":"dynamic"}"#, r#""serviceType": "dynamic" is not a service type"#),
            (r#"{"name":"a","id":"b","serviceType":null}"#, r#""serviceType": expected a string, found null"#),
            (r#"{"name":"a","id":"b","uriSpec":"{port}"}"#, r#""uriSpec": expected an object or null, found a string"#),
            (r#"{"name":"a","id":"b","uriSpec":{"parts":{}}}"#, r#""uriSpec.parts": expected an array"#),
            (r#"{"name":"a","id":"b","uriSpec":{"parts":[1]}}"#, r#""uriSpec.parts[0]": expected an object, found 1"#),
            (
                r#"{"name":"a","id":"b","uriSpec":{"parts":[{"value":"x","variable":1}]}}"#,
                r#""uriSpec.parts[0].variable": expected true or false"#,
            ),
            (r#"{"name":"a","id":"b","enabled":null}"#, r#""enabled": expected true or false, found null"#),
        ];
        for (json, expected) in cases {
            let why = error(json);
            assert!(why.contains(expected), "{json}: {why:?} should say {expected:?}");
            assert!(why.starts_with("not a Curator service instance: "), "{why}");
        }
        assert!(ServiceInstance::from_json(&[0xff, 0xfe]).is_err(), "not UTF-8");
    }

    #[test]
    fn service_types_use_curators_names() {
        for t in ServiceType::ALL {
            assert_eq!(t.name().parse::<ServiceType>().expect("parse"), t);
            assert_eq!(t.to_string(), t.name());
        }
        assert_eq!(ServiceType::DynamicSequential.name(), "DYNAMIC_SEQUENTIAL");
        assert!(ServiceType::Dynamic.is_dynamic() && ServiceType::DynamicSequential.is_dynamic());
        assert!(!ServiceType::Static.is_dynamic() && !ServiceType::Permanent.is_dynamic());
        assert!(matches!("Dynamic".parse::<ServiceType>(), Err(Error::Zk(ZkError::InvalidArgument(_)))));
    }

    #[test]
    fn parses_templates_as_curator() {
        let v = UriPart::variable;
        let l = UriPart::literal;
        let cases: [(&str, Vec<UriPart>); 7] = [
            ("{scheme}://{address}:{port}/x", vec![v("scheme"), l("://"), v("address"), l(":"), v("port"), l("/x")]),
            ("{ scheme }x{}y{[}{]}", vec![v("scheme"), l("x"), l("y"), v("["), v("]")]),
            ("{ }", vec![v("")]),
            ("{}", vec![]),
            ("", vec![]),
            ("plain ", vec![l("plain ")]),
            ("{\t\u{1}port\n}", vec![v("port")]),
        ];
        for (template, parts) in cases {
            assert_eq!(UriSpec::parse(template).expect(template).parts(), parts.as_slice(), "{template:?}");
        }
        assert_eq!("{\u{a0}x}".parse::<UriSpec>().expect("parse").parts, vec![v("\u{a0}x")], "only Java's trim set");
        for (template, why) in
            [("{a{b}}", "`{` inside a variable"), ("a}b", "`}` without a `{`"), ("{open", "not closed")]
        {
            match UriSpec::parse(template) {
                Err(Error::Zk(ZkError::InvalidArgument(m))) => assert!(m.contains(why) && m.contains(template), "{m}"),
                other => panic!("{template}: {other:?}"),
            }
        }
    }

    #[test]
    fn builds_uris_with_curators_variables() {
        // The template of GOLDEN_ODD, parsed by Curator from
        // "{ scheme }x{}y{[}{]}{ssl-port}{registration-time-utc}{service-type}{name}{id}{nope}";
        // Curator's `buildUriSpec()` gave "httpsxy{}70000-5dynamic_sequential" + name + id
        // (`nope` is unknown and gives nothing).
        let odd = decode(GOLDEN_ODD);
        let spec =
            UriSpec::parse("{ scheme }x{}y{[}{]}{ssl-port}{registration-time-utc}{service-type}{name}{id}{nope}")
                .expect("parse");
        assert_eq!(Some(&spec), odd.uri_spec.as_ref());
        assert_eq!(spec.build(&odd, &HashMap::new()), format!("httpsxy{{}}70000-5dynamic_sequential{}i", odd.name));
        let golden = decode(GOLDEN_MAP);
        assert_eq!(golden.uri(&HashMap::new()).as_deref(), Some("https://10.0.0.5:8080/x"));
        let vars: HashMap<String, String> =
            [("scheme", "ftp"), ("port", "1")].map(|(k, v)| (k.into(), v.into())).into();
        assert_eq!(golden.uri(&vars).as_deref(), Some("ftp://10.0.0.5:1/x"), "the caller's variables win");
        let plain = decode(GOLDEN_BARE);
        let all = UriSpec::parse("{scheme}|{address}|{port}|{ssl-port}|{service-type}|{custom}").expect("parse");
        let custom: HashMap<String, String> = [("custom".to_string(), "c".to_string())].into();
        assert_eq!(all.build(&plain, &custom), "http|h|||dynamic|c", "null fields give empty text");
        assert_eq!(decode(GOLDEN_TEXT).uri(&HashMap::new()), None);
    }

    #[test]
    fn local_address_is_an_ip() {
        let address = local_address();
        let ip: std::net::IpAddr = address.parse().expect("an IP address");
        assert!(!ip.is_unspecified(), "{address}");
    }
}
