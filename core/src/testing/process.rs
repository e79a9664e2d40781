//! The mechanics shared by [`super::ZooKeeperServer`] and [`super::ZooKeeperEnsemble`]:
//! finding the installation, launching one ZooKeeper JVM with a watchdog, free ports, run
//! directories, and four-letter-word probes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What to do when no installation is found.
pub const INSTALL_HINT: &str =
    "real ZooKeeper not installed: run `apt-get install -y zookeeper` (Debian) or set ZOOKEEPER_HOME to an Apache ZooKeeper 3.8 directory";

/// The class every server runs (standalone when the config names no other server).
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// A local ZooKeeper installation: a Java runtime and the server's classpath.
#[derive(Debug, Clone)]
pub struct ZooKeeperInstall {
    java: PathBuf,
    classpath: String,
}

impl ZooKeeperInstall {
    /// Finds the installation: `ZOOKEEPER_HOME` (its `lib/` and top-level jars), else Debian's
    /// `/usr/share/java/zookeeper.jar` with `zookeeper-jute.jar` (and `slf4j-simple.jar` when
    /// present, so the server logs at all). `None` if there is none, or no `java`.
    pub fn find() -> Option<ZooKeeperInstall> {
        let java = match std::env::var_os("JAVA_HOME") {
            Some(home) => PathBuf::from(home).join("bin/java"),
            None => PathBuf::from("java"),
        };
        let classpath = if let Some(home) = std::env::var_os("ZOOKEEPER_HOME") {
            let home = PathBuf::from(home);
            if !home.join("lib").is_dir() {
                return None;
            }
            format!("{}/lib/*:{}/*", home.display(), home.display())
        } else {
            let jars = Path::new("/usr/share/java");
            if !jars.join("zookeeper.jar").is_file() || !jars.join("zookeeper-jute.jar").is_file() {
                return None;
            }
            let mut cp = vec!["zookeeper.jar", "zookeeper-jute.jar"];
            if jars.join("slf4j-simple.jar").is_file() {
                cp.push("slf4j-simple.jar");
            }
            cp.iter().map(|j| jars.join(j).display().to_string()).collect::<Vec<_>>().join(":")
        };
        let java_works = Command::new(&java)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        java_works.then_some(ZooKeeperInstall { java, classpath })
    }

    /// The classpath of the server (and of ZooKeeper's Java client and CLI, which live in the
    /// same jar).
    pub fn classpath(&self) -> &str {
        &self.classpath
    }

    /// The `java` binary.
    pub fn java(&self) -> &Path {
        &self.java
    }
}

/// One running ZooKeeper JVM and its watchdog.
#[derive(Debug)]
pub(crate) struct Jvm {
    child: Child,
    watchdog: Option<Child>,
}

impl Jvm {
    /// Launches `zoo.cfg` of `dir`, logging to `dir/zk.log`.
    pub(crate) fn launch(install: &ZooKeeperInstall, dir: &Path, heap_mb: u32, extra: &[String]) -> Result<Jvm> {
        let log = std::fs::File::create(dir.join("zk.log")).map_err(|e| io_error("create zk.log", e))?;
        let log2 = log.try_clone().map_err(|e| io_error("open zk.log", e))?;
        let child = Command::new(&install.java)
            .arg(format!("-Xmx{heap_mb}m"))
            .arg("-XX:+UseSerialGC")
            .arg("-XX:TieredStopAtLevel=1")
            .arg("-Djava.net.preferIPv4Stack=true")
            .arg("-Dzookeeper.jmx.log4j.disable=true")
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-Dorg.slf4j.simpleLogger.showDateTime=true")
            .args(extra)
            .arg("-cp")
            .arg(&install.classpath)
            .arg(MAIN_CLASS)
            .arg(dir.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| io_error("launch java", e))?;
        let watchdog = spawn_watchdog(child.id(), dir);
        Ok(Jvm { child, watchdog })
    }

    /// Whether the JVM still runs.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub(crate) fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Jvm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A shell loop that SIGKILLs `pid` once this process is gone, so a test binary that dies
/// without running destructors (or whose statics are never dropped, like a server shared by all
/// the tests of a binary) leaves no server behind; it then removes the run directory `dir`.
fn spawn_watchdog(pid: u32, dir: &Path) -> Option<Child> {
    let me = std::process::id();
    let dir = dir.display().to_string().replace('\'', "");
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         if ! kill -0 {me} 2>/dev/null; then kill -9 {pid} 2>/dev/null; sleep 0.2; rm -rf '{dir}'; fi"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| io_error("find a free port", e))?;
    Ok(l.local_addr().map_err(|e| io_error("find a free port", e))?.port())
}

/// A fresh directory under the system temp dir, removed by [`RunDir`]'s drop.
#[derive(Debug)]
pub(crate) struct RunDir(PathBuf);

impl RunDir {
    pub(crate) fn new(kind: &str) -> Result<RunDir> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "conclave-{kind}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| io_error("create the run directory", e))?;
        Ok(RunDir(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The settings common to every server of a test: written into its `zoo.cfg`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) tick: Duration,
    pub(crate) container_check: Duration,
    pub(crate) extended_types: bool,
    pub(crate) heap_mb: u32,
    pub(crate) startup_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tick: Duration::from_millis(500),
            container_check: Duration::from_millis(500),
            extended_types: true,
            heap_mb: 256,
            startup_timeout: Duration::from_secs(60),
        }
    }
}

impl Settings {
    /// The `zoo.cfg` lines shared by standalone servers and ensemble members.
    pub(crate) fn config(&self, data_dir: &Path, client_port: u16) -> String {
        format!(
            "tickTime={tick}\ninitLimit=10\nsyncLimit=5\ndataDir={data}\nclientPort={client_port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n\
             maxClientCnxns=0\nforceSync=no\nautopurge.purgeInterval=0\n",
            tick = self.tick.as_millis(),
            data = data_dir.display(),
        )
    }

    /// JVM system properties: TTL nodes and the container reaper's period.
    pub(crate) fn jvm_flags(&self) -> Vec<String> {
        let mut flags = vec![format!("-Dznode.container.checkIntervalMs={}", self.container_check.as_millis())];
        if self.extended_types {
            flags.push("-Dzookeeper.extendedTypesEnabled=true".into());
        }
        flags
    }
}

/// Sends a four-letter word (`srvr`, `ruok`, `mntr`, ...) to `127.0.0.1:port` and returns the
/// answer.
pub fn four_letter_word(port: u16, word: &str) -> Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| io_error("connect", e))?;
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| io_error("set a timeout", e))?;
    s.write_all(word.as_bytes()).map_err(|e| io_error("send a four-letter word", e))?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| io_error("read a four-letter word's answer", e))?;
    Ok(out)
}

/// The `Mode:` line of `srvr` (`standalone`, `leader`, `follower`), if the server answers one.
pub(crate) fn mode(port: u16) -> Option<String> {
    let answer = four_letter_word(port, "srvr").ok()?;
    answer.lines().find_map(|l| l.strip_prefix("Mode: ")).map(|m| m.trim().to_string())
}

/// Waits until the server on `port` serves (answers `srvr` with a mode), while `alive` says
/// its process still runs.
pub(crate) fn wait_serving(port: u16, timeout: Duration, mut alive: impl FnMut() -> bool, log: &Path) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if mode(port).is_some() {
            return Ok(());
        }
        if !alive() {
            return Err(Error::Io(format!("ZooKeeper on port {port} exited during startup: {}", log_tail(log))));
        }
        if Instant::now() >= deadline {
            return Err(Error::Io(format!(
                "ZooKeeper on port {port} not serving after {timeout:?}: {}",
                log_tail(log)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of a server log, for error messages.
pub(crate) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

pub(crate) fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::Io(format!("{what}: {e}"))
}
