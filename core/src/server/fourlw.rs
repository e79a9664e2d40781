//! Four-letter words: plain-text admin commands sent as the first 4 bytes of a fresh connection
//! on the client port, answered, then the connection is closed.
//!
//! As in ZooKeeper, only the words on the server's [`Whitelist`] run (ZooKeeper's
//! `4lw.commands.whitelist`, whose default is `srvr` alone); any other known word is answered
//! "`<word>` is not executed because it is not in the whitelist." The formats follow 3.8.0's
//! output, as measured: `srvr`, `stat`, `mntr` (3.8.0's full key set, in its order: the keys
//! this server has no measure for are reported as 0, as a fresh ZooKeeper reports them), `envi`
//! (with the `zookeeper.version=` line kazoo's `server_version()` parses), `isro`, `conf`,
//! `cons`, `crst`, `srst`, `wchs`, `wchc`, `wchp` and `dump`. Latencies are reported as 0:
//! requests are applied synchronously, in well under the millisecond ZooKeeper reports in.

use std::fmt::Write as _;

use super::state::{Conn, State};
use super::Shared;
use crate::error::{Error, Result};

/// `mntr`'s keys as ZooKeeper 3.8.0 prints them, in its order, each with the value a fresh
/// server prints (empty for the keys always computed).
const MNTR_KEYS: &str = include_str!("mntr_keys.tsv");

/// The version the server reports: the 3.8.0 protocol it speaks, then who it is.
pub(crate) const VERSION: &str = concat!("3.8.0-conclave-", env!("CARGO_PKG_VERSION"), ", built on unknown");

/// A four-letter word the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Word {
    Ruok,
    Srvr,
    Stat,
    Mntr,
    Envi,
    Isro,
    Conf,
    Cons,
    Crst,
    Srst,
    Wchs,
    Wchc,
    Wchp,
    Dump,
}

/// Every word, with its spelling.
const WORDS: [(Word, &str); 14] = [
    (Word::Ruok, "ruok"),
    (Word::Srvr, "srvr"),
    (Word::Stat, "stat"),
    (Word::Mntr, "mntr"),
    (Word::Envi, "envi"),
    (Word::Isro, "isro"),
    (Word::Conf, "conf"),
    (Word::Cons, "cons"),
    (Word::Crst, "crst"),
    (Word::Srst, "srst"),
    (Word::Wchs, "wchs"),
    (Word::Wchc, "wchc"),
    (Word::Wchp, "wchp"),
    (Word::Dump, "dump"),
];

impl Word {
    /// The word spelled by the first 4 bytes of a connection, if it is one.
    pub(crate) fn parse(b: &[u8]) -> Option<Word> {
        WORDS.iter().find(|(_, name)| name.as_bytes() == b).map(|(w, _)| *w)
    }

    /// How the word is spelled.
    pub(crate) fn name(self) -> &'static str {
        WORDS.iter().find(|(w, _)| *w == self).map_or("", |(_, name)| name)
    }

    fn bit(self) -> u16 {
        1 << WORDS.iter().position(|(w, _)| *w == self).unwrap_or(0)
    }
}

/// The words a server answers (ZooKeeper's `4lw.commands.whitelist`). `srvr` is always
/// among them, as in ZooKeeper (its `zkServer.sh status` depends on it), so the default is
/// `srvr` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Whitelist(u16);

impl Default for Whitelist {
    fn default() -> Self {
        Whitelist(Word::Srvr.bit())
    }
}

/// ZooKeeper's words this server does not answer: accepted in a list (so a list copied from a
/// `zoo.cfg` works) and ignored.
const UNANSWERED: [&str; 4] = ["dirs", "gtmk", "stmk", "hash"];

impl Whitelist {
    /// Parses ZooKeeper's syntax: words separated by commas (and/or spaces), or `*` for all.
    pub(crate) fn parse(list: &str) -> Result<Whitelist> {
        let mut bits = Word::Srvr.bit();
        for item in list.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()) {
            if item == "*" {
                bits = u16::MAX;
                continue;
            }
            if UNANSWERED.contains(&item) {
                continue;
            }
            let word = Word::parse(item.as_bytes()).ok_or_else(|| {
                let known: Vec<&str> = WORDS.iter().map(|(_, n)| *n).collect();
                Error::InvalidArgument(format!(
                    "unknown four-letter word {item:?} (known: {}, or * for all)",
                    known.join(", ")
                ))
            })?;
            bits |= word.bit();
        }
        Ok(Whitelist(bits))
    }

    /// Whether `word` runs.
    pub(crate) fn allows(self, word: Word) -> bool {
        self.0 & word.bit() != 0
    }
}

/// What the server sends for `word`: its answer if the whitelist allows it, ZooKeeper's refusal
/// line otherwise.
pub(crate) fn respond(word: Word, shared: &Shared) -> String {
    if shared.cfg.four_letter_words.allows(word) {
        answer(word, shared)
    } else {
        format!("{} is not executed because it is not in the whitelist.\n", word.name())
    }
}

/// `Sat Nov 21 09:01:08 UTC 2026`, Java's `Date.toString()` in UTC.
fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7) as usize;
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[weekday],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        year
    )
}

fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

fn stats_tail(st: &State, out: &mut String) {
    let _ = write!(
        out,
        "Latency min/avg/max: 0/0.0/0\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: 0\nZxid: 0x{:x}\nMode: standalone\nNode count: {}\n",
        st.received,
        st.sent_total(),
        st.conns.len(),
        st.zxid,
        st.tree.java_node_count()
    );
}

fn conn_line(st: &State, c: &Conn, full: bool) -> String {
    let mut s = format!(
        " {}[{}](queued={},recved={},sent={}",
        c.peer.display,
        u8::from(c.session.is_some()),
        c.outbox.queued(),
        c.received,
        c.outbox.frames().saturating_sub(c.sent_base)
    );
    if let (true, Some(sid)) = (full, c.session) {
        let to = st.sessions.get(sid).map_or(0, |s| s.timeout);
        let _ = write!(
            s,
            ",sid=0x{sid:x},lop={},est={},to={to},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat=0,minlat=0,avglat=0,maxlat=0",
            c.last_op, c.established, c.last_cxid, c.last_zxid, c.last_response
        );
    }
    s.push_str(")\n");
    s
}

fn sorted_conns(st: &State) -> Vec<&Conn> {
    let mut conns: Vec<&Conn> = st.conns.values().collect();
    conns.sort_by_key(|c| c.established);
    conns
}

/// The text answer to `word`.
pub(crate) fn answer(word: Word, shared: &Shared) -> String {
    let now = shared.now();
    let mut st = shared.lock_state();
    let mut out = String::new();
    match word {
        Word::Ruok => out.push_str("imok"),
        Word::Srvr => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}");
            stats_tail(&st, &mut out);
        }
        Word::Stat => {
            let _ = writeln!(out, "Zookeeper version: {VERSION}\nClients:");
            for c in sorted_conns(&st) {
                out.push_str(&conn_line(&st, c, false));
            }
            out.push('\n');
            stats_tail(&st, &mut out);
        }
        Word::Cons => {
            for c in sorted_conns(&st) {
                out.push_str(&conn_line(&st, c, true));
            }
            out.push('\n');
        }
        Word::Mntr => mntr(shared, &st, now.ms, &mut out),
        Word::Envi => {
            let host = std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_default();
            let _ = writeln!(out, "Environment:\nzookeeper.version={VERSION}");
            let _ = writeln!(out, "host.name={}", if host.is_empty() { "localhost" } else { &host });
            let _ = writeln!(out, "os.name={}\nos.arch={}", std::env::consts::OS, std::env::consts::ARCH);
            let _ = writeln!(out, "user.name={}", std::env::var("USER").unwrap_or_default());
            let dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
            let _ = writeln!(out, "user.dir={dir}");
        }
        Word::Isro => out.push_str("rw"),
        Word::Conf => {
            let cfg = &shared.cfg;
            let _ = write!(
                out,
                "clientPort={}\nsecureClientPort=-1\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId=0\n",
                shared.local_addr.map_or(0, |a| a.port()),
                cfg.tick_ms(),
                cfg.max_connections_per_ip,
                cfg.min_session_ms(),
                cfg.max_session_ms()
            );
        }
        Word::Crst => {
            for c in st.conns.values_mut() {
                c.received = 0;
                c.sent_base = c.outbox.frames();
            }
            out.push_str("Connection stats reset.\n");
        }
        Word::Srst => {
            st.reset_server_stats();
            out.push_str("Server stats reset.\n");
        }
        Word::Wchs => {
            let w = st.watches.counts();
            let _ = write!(
                out,
                "{} connections watching {} paths\nTotal watches:{}\n",
                w.connections, w.paths, w.data_watches
            );
        }
        Word::Wchc => {
            for (conn, paths) in st.watches.data_paths_by_conn() {
                let sid = st.conns.get(&conn).and_then(|c| c.session).unwrap_or(0);
                let _ = writeln!(out, "0x{sid:x}");
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push('\n');
        }
        Word::Wchp => {
            for (path, conns) in st.watches.data_conns_by_path() {
                let _ = writeln!(out, "{path}");
                for conn in conns {
                    let sid = st.conns.get(&conn).and_then(|c| c.session).unwrap_or(0);
                    let _ = writeln!(out, "\t0x{sid:x}");
                }
            }
            out.push('\n');
        }
        Word::Dump => dump(shared, &st, &mut out),
    }
    out
}

/// `mntr`: 3.8.0's keys in its order; the ones measured here get their values.
fn mntr(shared: &Shared, st: &State, uptime_ms: i64, out: &mut String) {
    let w = st.watches.counts();
    for line in MNTR_KEYS.lines() {
        let (key, fresh) = line.split_once('\t').unwrap_or((line, "0"));
        let value = match key {
            "zk_version" => VERSION.to_string(),
            "zk_server_state" => "standalone".into(),
            "zk_ephemerals_count" => st.tree.ephemeral_count().to_string(),
            "zk_num_alive_connections" => st.conns.len().to_string(),
            "zk_znode_count" => st.tree.java_node_count().to_string(),
            "zk_global_sessions" => st.sessions.len().to_string(),
            "zk_packets_sent" => st.sent_total().to_string(),
            "zk_packets_received" => st.received.to_string(),
            "zk_watch_count" => (w.data_watches + w.child_watches).to_string(),
            "zk_approximate_data_size" => st.tree.approximate_data_size().to_string(),
            "zk_uptime" => uptime_ms.to_string(),
            "zk_connection_rejected" => shared.rejected().to_string(),
            "zk_open_file_descriptor_count" => match open_fds() {
                Some(n) => n.to_string(),
                None => continue,
            },
            "zk_max_file_descriptor_count" => match max_fds() {
                Some(n) => n.to_string(),
                None => continue,
            },
            _ => fresh.to_string(),
        };
        let _ = writeln!(out, "{key}\t{value}");
    }
}

/// The soft limit on open files, from `/proc/self/limits`.
fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

fn dump(shared: &Shared, st: &State, out: &mut String) {
    let mut by_expiry: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for s in st.sessions.iter() {
        by_expiry.entry(s.expires_at).or_default().push(s.id);
    }
    let _ = writeln!(out, "SessionTracker dump:\nSession Sets ({})/({}):", by_expiry.len(), st.sessions.len());
    for (at, mut ids) in by_expiry {
        ids.sort_unstable();
        let _ = writeln!(out, "{} expire at {}:", ids.len(), java_date(shared.wall_at(at)));
        for id in ids {
            let _ = writeln!(out, "\t0x{id:x}");
        }
    }
    let eph = st.tree.ephemerals_by_session();
    let _ = writeln!(out, "ephemeral nodes dump:\nSessions with Ephemerals ({}):", eph.len());
    for (sid, paths) in eph {
        let _ = writeln!(out, "0x{sid:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    let conns = sorted_conns(st);
    let _ = writeln!(out, "Connections dump:\nConnections ({}):", conns.len());
    for c in conns {
        let _ = writeln!(out, "\tip: {} sessionId: 0x{:x}", c.peer.display, c.session.unwrap_or(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_dates() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // 2026-11-21 09:01:08 UTC, as the real `dump` printed it.
        assert_eq!(java_date(1_795_251_668_000), "Sat Nov 21 09:01:08 UTC 2026");
    }

    #[test]
    fn words() {
        assert_eq!(Word::parse(b"ruok"), Some(Word::Ruok));
        assert_eq!(Word::parse(b"RUOK"), None);
        assert_eq!(Word::parse(b"\0\0\0\x2d"), None);
        for (w, name) in WORDS {
            assert_eq!((Word::parse(name.as_bytes()), w.name()), (Some(w), name));
        }
    }

    #[test]
    fn whitelists_as_zookeeper_reads_them() {
        let default = Whitelist::default();
        assert!(default.allows(Word::Srvr));
        assert!(WORDS.iter().filter(|(w, _)| default.allows(*w)).count() == 1, "srvr only");
        let all = Whitelist::parse("*").unwrap();
        assert!(WORDS.iter().all(|(w, _)| all.allows(*w)));
        let some = Whitelist::parse(" ruok, mntr ").unwrap();
        assert!(some.allows(Word::Ruok) && some.allows(Word::Mntr) && some.allows(Word::Srvr), "srvr always");
        assert!(!some.allows(Word::Dump) && !some.allows(Word::Cons));
        assert_eq!(Whitelist::parse("").unwrap(), Whitelist::default(), "empty: srvr alone");
        assert_eq!(
            Whitelist::parse("dirs,gtmk,stmk,hash").unwrap(),
            Whitelist::default(),
            "ZooKeeper's others: ignored"
        );
        let err = Whitelist::parse("ruok,dirz").unwrap_err().to_string();
        assert!(err.contains("dirz"), "{err}");
    }

    #[test]
    fn mntr_keys_are_zookeepers() {
        let keys: Vec<&str> = MNTR_KEYS.lines().map(|l| l.split('\t').next().unwrap()).collect();
        assert_eq!(keys.len(), 485, "3.8.0 printed 485 keys");
        assert_eq!(&keys[..2], ["zk_version", "zk_server_state"]);
        let unique: std::collections::HashSet<&str> = keys.iter().copied().collect();
        assert_eq!(unique.len(), keys.len());
    }
}
