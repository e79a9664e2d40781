//! [`ZooKeeperServer`]: one real standalone ZooKeeper for tests.

use std::path::Path;
use std::time::Duration;

use super::process::{self, free_port, io_error, wait_serving, Jvm, RunDir, Settings, ZooKeeperInstall, INSTALL_HINT};
use crate::error::{Error, Result};

/// Options of a [`ZooKeeperServer`]; defaults suit tests: tick 500 ms (session timeouts from 1 s
/// to 10 s), TTL nodes enabled, containers reaped every 500 ms, 256 MiB heap.
#[derive(Debug, Clone, Default)]
pub struct ZooKeeperServerBuilder {
    settings: Settings,
}

impl ZooKeeperServerBuilder {
    /// `tickTime`: sessions may last 2 to 20 ticks.
    pub fn tick_time(mut self, tick: Duration) -> Self {
        self.settings.tick = tick;
        self
    }

    /// Whether TTL nodes are enabled (`zookeeper.extendedTypesEnabled`, default true).
    pub fn ttl_enabled(mut self, on: bool) -> Self {
        self.settings.extended_types = on;
        self
    }

    /// How often empty containers and expired TTL nodes are reaped
    /// (`znode.container.checkIntervalMs`, default 500 ms).
    pub fn container_check_interval(mut self, every: Duration) -> Self {
        self.settings.container_check = every;
        self
    }

    /// The JVM heap in MiB (default 256).
    pub fn heap_mb(mut self, mb: u32) -> Self {
        self.settings.heap_mb = mb;
        self
    }

    /// How long to wait for the server to serve (default 60 s, for slow CI machines).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.settings.startup_timeout = timeout;
        self
    }

    /// Launches the server and waits until it answers `srvr`.
    ///
    /// # Errors
    /// [`Error::Io`] if ZooKeeper is not installed ([`INSTALL_HINT`]) or does not start.
    pub fn launch(self) -> Result<ZooKeeperServer> {
        let install = ZooKeeperInstall::find().ok_or_else(|| Error::Io(INSTALL_HINT.to_string()))?;
        let dir = RunDir::new("zk")?;
        let port = free_port()?;
        let config = self.settings.config(&dir.path().join("data"), port);
        std::fs::write(dir.path().join("zoo.cfg"), config).map_err(|e| io_error("write zoo.cfg", e))?;
        let mut server = ZooKeeperServer { jvm: None, install, settings: self.settings, dir, port };
        server.start()?;
        Ok(server)
    }
}

/// A real ZooKeeper 3.8 standalone server on `127.0.0.1`, in a temporary run directory. Killed
/// (and its directory removed) when dropped; never outlives the process that launched it.
#[derive(Debug)]
pub struct ZooKeeperServer {
    // Dropped first: the process goes before its directory.
    jvm: Option<Jvm>,
    install: ZooKeeperInstall,
    settings: Settings,
    dir: RunDir,
    port: u16,
}

impl ZooKeeperServer {
    /// A builder with the test defaults.
    pub fn builder() -> ZooKeeperServerBuilder {
        ZooKeeperServerBuilder::default()
    }

    /// Launches a server with the test defaults.
    pub fn launch() -> Result<ZooKeeperServer> {
        Self::builder().launch()
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The run directory (config, data and `zk.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `tickTime`.
    pub fn tick_time(&self) -> Duration {
        self.settings.tick
    }

    /// Whether the server process runs.
    pub fn is_running(&mut self) -> bool {
        self.jvm.as_mut().is_some_and(Jvm::is_running)
    }

    /// Starts the server again on the same port and data (after [`stop`](Self::stop) or
    /// [`kill`](Self::kill)); a no-op if it runs. Waits until it serves.
    pub fn start(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let jvm = Jvm::launch(&self.install, self.dir.path(), self.settings.heap_mb, &self.settings.jvm_flags())?;
        let jvm = self.jvm.insert(jvm);
        let log = self.dir.path().join("zk.log");
        wait_serving(self.port, self.settings.startup_timeout, || jvm.is_running(), &log)
    }

    /// Stops the server gracefully (SIGTERM, SIGKILL after 10 s); its data stays for
    /// [`start`](Self::start).
    pub fn stop(&mut self) {
        if let Some(jvm) = self.jvm.take() {
            jvm.stop(Duration::from_secs(10));
        }
    }

    /// Kills the server (SIGKILL); its data stays for [`start`](Self::start).
    pub fn kill(&mut self) {
        if let Some(jvm) = self.jvm.take() {
            jvm.kill();
        }
    }

    /// Stops and starts the server on the same data.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.start()
    }

    /// Kills the server and removes its directory.
    pub fn destroy(mut self) {
        self.kill();
    }

    /// Sends a four-letter word and returns the answer.
    pub fn four_letter_word(&self, word: &str) -> Result<String> {
        process::four_letter_word(self.port, word)
    }
}
