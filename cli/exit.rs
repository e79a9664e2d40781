//! Failures of the command line and their exit codes. Every failure is a [`CliError`]: what
//! failed (the context, such as `get /a`), why, the ZooKeeper code behind it if any, and an
//! [`ExitClass`] that fixes the exit code. [`CliError::report`] prints the one line
//! `conclave: <context>: <why>` to stderr and returns the code; with `--json` it also prints the
//! failure as one JSON object on stdout ([`CliError::json`]). The codes and the JSON shape are
//! part of the command line's interface: scripts branch on them, so they never change meaning.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

use conclave_core::{Error, ErrorCode};
use serde_json::{json, Map, Value};

/// The exit-code table, shown at the end of `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success (also when the reader of stdout went away, as with `| head -1`)
  1  any other failure (I/O, protocol error, an unexpected server error)
  2  usage error (unknown flag, missing argument)
  3  the node does not exist (NONODE)
  4  the node already exists (NODEEXISTS)
  5  version mismatch (BADVERSION)
  6  the node has children (NOTEMPTY)
  7  not authorized or authentication failed (NOAUTH, AUTHFAILED)
  8  cannot connect, connection lost, session expired, or no reply in time
  9  invalid path or argument, data too large, or rejected by the server (BADARGUMENTS)
 10  lock: the lock was not acquired within --timeout; queue take: no item within --timeout
 11  lock: the lock was lost while the command ran (the command was stopped); queue take
     --ack: the claim on the item was lost while the command ran (stopped, the item not acked)
 12  elect: the leadership was lost while the command ran (the command was stopped)
126  lock, elect, queue take --ack: the command could not be started
127  lock, elect, queue take --ack: the command was not found
`lock`, `elect` and `queue take --ack` otherwise exit with their command's status, 128+N if the
command died of signal N (also when conclave is stopped by signal N while waiting for the lock,
the leadership or an item).

With --json, a failure also prints one JSON object on stdout (after anything the command
printed), besides the line on stderr:
  {\"error\": {\"code\": \"NONODE\", \"code_number\": -101, \"exit\": 3, \"message\": \"...\", \"context\": \"get /a\"}}
\"code\" (ZooKeeper's name) and \"code_number\" are left out when no ZooKeeper code is behind the
failure (a bad argument, no connection, a lock timeout). Usage errors (exit 2) give
{\"error\": {\"exit\": 2, \"message\": \"...\", \"context\": \"usage\"}}.

Environment:
  CONCLAVE_CONNECT  default for --connect (else 127.0.0.1:2181)
  RUST_LOG          log filter (stderr); `serve` defaults to info, client commands to off";

/// A class of failure, one per exit code (see [`EXIT_CODES_HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    /// 0: not a failure to report (stdout was closed by its reader).
    Quiet,
    /// 1: anything without a class of its own.
    Other,
    /// 2: a usage error (reported by the argument parser itself, except under `--json`).
    Usage,
    /// 3: `NONODE`.
    NoNode,
    /// 4: `NODEEXISTS`.
    NodeExists,
    /// 5: `BADVERSION`.
    BadVersion,
    /// 6: `NOTEMPTY`.
    NotEmpty,
    /// 7: `NOAUTH`, `AUTHFAILED`, SASL required.
    Auth,
    /// 8: no connection, lost connection, expired session, timeout.
    Connection,
    /// 9: a request that is invalid before or at the server.
    Invalid,
    /// 10: `lock --timeout` ran out before the lock was acquired (`queue take --timeout`: before
    /// an item could be had).
    LockTimeout,
    /// 11: the lock (`queue take --ack`: the claim on the item) was lost while its command ran.
    LockLost,
    /// 12: the leadership was lost while `elect`'s command ran.
    LeadershipLost,
    /// 126: the command of `lock` (`elect`, `queue take --ack`) could not be started.
    CannotRun,
    /// 127: the command of `lock` (`elect`, `queue take --ack`) was not found.
    CommandNotFound,
    /// 128+N: stopped by signal N (`lock`, while waiting for the lock; `elect`, `queue take`
    /// likewise).
    Signal(u8),
    /// The exit status of the command `lock` (`elect`, `queue take --ack`) ran, passed on as it
    /// is: nothing is printed.
    Status(u8),
}

impl ExitClass {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitClass::Quiet => 0,
            ExitClass::Other => 1,
            ExitClass::Usage => 2,
            ExitClass::NoNode => 3,
            ExitClass::NodeExists => 4,
            ExitClass::BadVersion => 5,
            ExitClass::NotEmpty => 6,
            ExitClass::Auth => 7,
            ExitClass::Connection => 8,
            ExitClass::Invalid => 9,
            ExitClass::LockTimeout => 10,
            ExitClass::LockLost => 11,
            ExitClass::LeadershipLost => 12,
            ExitClass::CannotRun => 126,
            ExitClass::CommandNotFound => 127,
            ExitClass::Signal(n) => 128u8.saturating_add(n),
            ExitClass::Status(code) => code,
        }
    }

    /// The class of a client or server error.
    pub fn of(e: &Error) -> ExitClass {
        match e {
            Error::NoNode => ExitClass::NoNode,
            Error::NodeExists => ExitClass::NodeExists,
            Error::BadVersion => ExitClass::BadVersion,
            Error::NotEmpty => ExitClass::NotEmpty,
            Error::NoAuth | Error::AuthFailed | Error::SessionClosedRequireSaslAuth => ExitClass::Auth,
            Error::Connect(_)
            | Error::ConnectionLoss
            | Error::SessionExpired
            | Error::SessionMoved
            | Error::UnknownSession
            | Error::OperationTimeout
            | Error::RequestTimeout
            | Error::Closed => ExitClass::Connection,
            Error::InvalidPath { .. }
            | Error::DataTooLarge { .. }
            | Error::InvalidArgument(_)
            | Error::BadArguments
            | Error::InvalidAcl
            | Error::NoChildrenForEphemerals => ExitClass::Invalid,
            Error::MultiFailed { source, .. } => ExitClass::of(source),
            _ => ExitClass::Other,
        }
    }
}

/// A failure: what was being done, why it failed, and its exit class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    context: String,
    reason: String,
    class: ExitClass,
    /// The ZooKeeper result code behind the failure: known by name, or only by number.
    code: Option<(Option<ErrorCode>, i32)>,
}

impl CliError {
    /// A failure with an explicit class.
    pub fn new(context: impl Into<String>, reason: impl Into<String>, class: ExitClass) -> CliError {
        CliError { context: context.into(), reason: reason.into(), class, code: None }
    }

    /// A client or server error while doing `context`: the reason is the error's text followed
    /// by its ZooKeeper code name, such as `node does not exist (NONODE)`.
    pub fn zk(context: impl Into<String>, e: &Error) -> CliError {
        let reason = match (e, e.code()) {
            (Error::MultiFailed { source, .. }, _) => return CliError::zk(context, source),
            (_, Some(code)) => format!("{e} ({})", code.name()),
            (_, None) => e.to_string(),
        };
        let code = e.raw_code().map(|number| (e.code(), number));
        CliError { code, ..CliError::new(context, reason, ExitClass::of(e)) }
    }

    /// A usage error (exit 2) found by the argument parser, for `--json`: its first line.
    pub fn usage(message: &str) -> CliError {
        let first = message.lines().next().unwrap_or_default();
        CliError::new("usage", first.strip_prefix("error: ").unwrap_or(first), ExitClass::Usage)
    }

    /// A recipe's error while doing `context`: a client or server error as [`CliError::zk`]; a
    /// lost hold in class [`ExitClass::LockLost`]; a queue too long to list, or a cache stream
    /// that fell too far behind, in class 1.
    pub fn recipe(context: impl Into<String>, e: &conclave::Error) -> CliError {
        match e {
            conclave::Error::Zk(e) => CliError::zk(context, e),
            other @ (conclave::Error::TooManyChildren { .. } | conclave::Error::Lagged { .. }) => {
                CliError::new(context, other.to_string(), ExitClass::Other)
            }
            lost => CliError::new(context, lost.to_string(), ExitClass::LockLost),
        }
    }

    /// A failure to open a session to `target` (the connect string).
    pub fn connect(target: &str, e: &Error) -> CliError {
        let context = format!("cannot connect to {target}");
        match e {
            // The session reports the last attempt as `host:port: why`; with a single host that
            // repeats the context.
            Error::Connect(why) => {
                let hosts = target.split('/').next().unwrap_or(target);
                let why = why.strip_prefix(hosts).and_then(|w| w.strip_prefix(": ")).unwrap_or(why);
                CliError::new(context, why, ExitClass::Connection)
            }
            other => CliError::zk(context, other),
        }
    }

    /// An I/O failure while doing `context` (class 1).
    pub fn io(context: impl Into<String>, e: io::Error) -> CliError {
        CliError::new(context, e.to_string(), ExitClass::Other)
    }

    /// A failed write to stdout: quiet if the reader closed the pipe, class 1 otherwise.
    pub fn stdout(e: io::Error) -> CliError {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CliError::new("write to stdout", "broken pipe", ExitClass::Quiet)
        } else {
            CliError::io("write to stdout", e)
        }
    }

    /// Exit with `code` (the status of the command `lock` ran) and print nothing.
    pub fn status(code: u8) -> CliError {
        CliError::new("", "", ExitClass::Status(code))
    }

    /// The exit class.
    pub fn class(&self) -> ExitClass {
        self.class
    }

    /// Prints the error line (unless the class is quiet or a passed-on status) and, with
    /// `json`, the JSON object on stdout; gives the exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        if !matches!(self.class, ExitClass::Quiet | ExitClass::Status(_)) {
            eprintln!("conclave: {self}");
            if json {
                return self.report_json_only();
            }
        }
        ExitCode::from(self.class.code())
    }

    /// Prints only the JSON object, for an error whose text the argument parser has printed
    /// already; gives the exit code.
    pub fn report_json_only(&self) -> ExitCode {
        let mut stdout = io::stdout().lock();
        // Nothing more can be said if stdout is gone; the exit code still tells.
        let _ = writeln!(stdout, "{}", self.json()).and_then(|()| stdout.flush());
        ExitCode::from(self.class.code())
    }

    /// The failure as `--json` prints it: `{"error": {"code", "code_number", "exit", "message",
    /// "context"}}`, without the two code fields when no ZooKeeper code is behind it.
    pub fn json(&self) -> Value {
        let mut error = Map::new();
        if let Some((code, number)) = self.code {
            if let Some(code) = code {
                error.insert("code".into(), code.name().into());
            }
            error.insert("code_number".into(), number.into());
        }
        error.insert("exit".into(), self.class.code().into());
        error.insert("message".into(), self.reason.as_str().into());
        error.insert("context".into(), self.context.as_str().into());
        json!({ "error": error })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_name_their_code() {
        let e = CliError::zk("get /a", &Error::NoNode);
        assert_eq!(e.to_string(), "get /a: node does not exist (NONODE)");
        assert_eq!(e.class(), ExitClass::NoNode);
        let multi = Error::MultiFailed { index: 0, source: Box::new(Error::BadVersion) };
        assert_eq!(CliError::zk("x", &multi).class(), ExitClass::BadVersion);
    }

    #[test]
    fn json_errors_carry_the_code_when_there_is_one() {
        let e = CliError::zk("get /a", &Error::NoNode).json();
        assert_eq!(
            e,
            json!({"error": {"code": "NONODE", "code_number": -101, "exit": 3,
                             "message": "node does not exist (NONODE)", "context": "get /a"}})
        );
        let e = CliError::zk("get /a", &Error::Unknown(-999)).json();
        assert_eq!((e["error"].get("code"), &e["error"]["code_number"]), (None, &json!(-999)));
        let e = CliError::new("lock /l", "not acquired", ExitClass::LockTimeout).json();
        assert_eq!(e, json!({"error": {"exit": 10, "message": "not acquired", "context": "lock /l"}}));
        let e = CliError::usage("error: unexpected argument '--x' found\n\nUsage: conclave ...").json();
        assert_eq!(e["error"]["message"], "unexpected argument '--x' found");
        assert_eq!(e["error"]["exit"], 2);
    }

    #[test]
    fn connect_errors_do_not_repeat_the_host() {
        let e = CliError::connect("127.0.0.1:1", &Error::Connect("127.0.0.1:1: Connection refused".into()));
        assert_eq!(e.to_string(), "cannot connect to 127.0.0.1:1: Connection refused");
        assert_eq!(e.class(), ExitClass::Connection);
        let e = CliError::connect("a:1,b:2/app", &Error::Connect("b:2: timed out".into()));
        assert_eq!(e.to_string(), "cannot connect to a:1,b:2/app: b:2: timed out");
    }

    #[test]
    fn classes_cover_the_table() {
        assert_eq!(ExitClass::of(&Error::AuthFailed), ExitClass::Auth);
        assert_eq!(ExitClass::of(&Error::SessionExpired), ExitClass::Connection);
        assert_eq!(ExitClass::of(&Error::DataTooLarge { size: 2, limit: 1 }), ExitClass::Invalid);
        assert_eq!(ExitClass::of(&Error::Unimplemented), ExitClass::Other);
        assert_eq!(CliError::stdout(io::ErrorKind::BrokenPipe.into()).class(), ExitClass::Quiet);
    }

    #[test]
    fn codes_are_those_of_the_help() {
        for class in [
            ExitClass::Other,
            ExitClass::Usage,
            ExitClass::NoNode,
            ExitClass::NodeExists,
            ExitClass::BadVersion,
            ExitClass::NotEmpty,
            ExitClass::Auth,
            ExitClass::Connection,
            ExitClass::Invalid,
            ExitClass::LockTimeout,
            ExitClass::LockLost,
            ExitClass::LeadershipLost,
            ExitClass::CannotRun,
            ExitClass::CommandNotFound,
        ] {
            let line = format!("\n{:>3}  ", class.code());
            assert!(EXIT_CODES_HELP.contains(&line), "{class:?} ({}) is documented", class.code());
        }
        assert_eq!(ExitClass::Signal(15).code(), 143);
        assert_eq!(ExitClass::Status(42).code(), 42);
    }
}
