//! [`ZooKeeperEnsemble`]: 3 or 5 real ZooKeeper servers forming a quorum on loopback.

use std::time::{Duration, Instant};

use super::process::{self, free_port, io_error, wait_serving, Jvm, RunDir, Settings, ZooKeeperInstall, INSTALL_HINT};
use crate::error::{Error, Result};

/// Options of a [`ZooKeeperEnsemble`] (the same test defaults as a standalone server).
#[derive(Debug, Clone)]
pub struct EnsembleBuilder {
    size: usize,
    settings: Settings,
}

impl Default for EnsembleBuilder {
    fn default() -> Self {
        EnsembleBuilder { size: 3, settings: Settings::default() }
    }
}

impl EnsembleBuilder {
    /// Number of servers: 3 (default) or 5.
    pub fn size(mut self, n: usize) -> Self {
        self.size = n;
        self
    }

    /// `tickTime` of every server.
    pub fn tick_time(mut self, tick: Duration) -> Self {
        self.settings.tick = tick;
        self
    }

    /// The JVM heap of each server in MiB (default 256).
    pub fn heap_mb(mut self, mb: u32) -> Self {
        self.settings.heap_mb = mb;
        self
    }

    /// Launches every server and waits until each serves as leader or follower.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a size other than 3 or 5; [`Error::Io`] if ZooKeeper is
    /// not installed or the quorum does not form.
    pub fn launch(self) -> Result<ZooKeeperEnsemble> {
        if self.size != 3 && self.size != 5 {
            return Err(Error::InvalidArgument(format!("an ensemble has 3 or 5 servers, not {}", self.size)));
        }
        let install = ZooKeeperInstall::find().ok_or_else(|| Error::Io(INSTALL_HINT.to_string()))?;
        let dir = RunDir::new("ensemble")?;
        let mut members = Vec::new();
        for id in 1..=self.size {
            members.push(Member { id, client: free_port()?, quorum: free_port()?, election: free_port()?, jvm: None });
        }
        let servers: String =
            members.iter().map(|m| format!("server.{}=127.0.0.1:{}:{}\n", m.id, m.quorum, m.election)).collect();
        for m in &members {
            let node_dir = dir.path().join(format!("node{}", m.id));
            let data = node_dir.join("data");
            std::fs::create_dir_all(&data).map_err(|e| io_error("create a node directory", e))?;
            std::fs::write(data.join("myid"), m.id.to_string()).map_err(|e| io_error("write myid", e))?;
            let config = self.settings.config(&data, m.client) + &servers;
            std::fs::write(node_dir.join("zoo.cfg"), config).map_err(|e| io_error("write zoo.cfg", e))?;
        }
        let mut ensemble = ZooKeeperEnsemble { members, install, settings: self.settings, dir };
        for i in 0..ensemble.members.len() {
            ensemble.launch_member(i)?;
        }
        for i in 0..ensemble.members.len() {
            ensemble.wait_member(i)?;
        }
        Ok(ensemble)
    }
}

#[derive(Debug)]
struct Member {
    id: usize,
    client: u16,
    quorum: u16,
    election: u16,
    jvm: Option<Jvm>,
}

/// A real ZooKeeper ensemble on `127.0.0.1`. Servers are numbered from 0 in this API (their
/// ZooKeeper `myid` is the index plus one). Every server is killed, and the run directory
/// removed, when the ensemble is dropped.
#[derive(Debug)]
pub struct ZooKeeperEnsemble {
    // Dropped first: the processes go before their directory.
    members: Vec<Member>,
    install: ZooKeeperInstall,
    settings: Settings,
    dir: RunDir,
}

impl ZooKeeperEnsemble {
    /// A builder with the test defaults (3 servers).
    pub fn builder() -> EnsembleBuilder {
        EnsembleBuilder::default()
    }

    /// Launches a 3-server ensemble with the test defaults.
    pub fn launch() -> Result<ZooKeeperEnsemble> {
        Self::builder().launch()
    }

    /// Number of servers.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Every server: `127.0.0.1:P1,127.0.0.1:P2,...`.
    pub fn connect_string(&self) -> String {
        (0..self.size()).map(|i| self.connect_string_of(i)).collect::<Vec<_>>().join(",")
    }

    /// Server `i` alone.
    pub fn connect_string_of(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.members[i].client)
    }

    /// The index of the server with client address `addr` (as `Client::connected_server`
    /// reports it).
    pub fn index_of(&self, addr: &str) -> Option<usize> {
        (0..self.size()).find(|i| self.connect_string_of(*i) == addr)
    }

    /// Server `i`'s mode (`leader`, `follower`), or `None` if it does not serve.
    pub fn mode(&self, i: usize) -> Option<String> {
        process::mode(self.members[i].client)
    }

    /// The index of the current leader, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.size()).find(|i| self.mode(*i).as_deref() == Some("leader"))
    }

    /// Waits until some server is leader.
    pub fn wait_for_leader(&self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.leader() {
                return Ok(i);
            }
            if Instant::now() >= deadline {
                return Err(Error::Io(format!("no leader after {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills server `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(jvm) = self.members[i].jvm.take() {
            jvm.kill();
        }
    }

    /// Stops server `i` gracefully.
    pub fn stop(&mut self, i: usize) {
        if let Some(jvm) = self.members[i].jvm.take() {
            jvm.stop(Duration::from_secs(10));
        }
    }

    /// Starts server `i` again (after `kill` or `stop`; a no-op if it runs) and waits until it
    /// serves, i.e. has joined a quorum.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.members[i].jvm.as_mut().is_some_and(Jvm::is_running) {
            return Ok(());
        }
        self.launch_member(i)?;
        self.wait_member(i)
    }

    /// Sends a four-letter word to server `i`.
    pub fn four_letter_word(&self, i: usize, word: &str) -> Result<String> {
        process::four_letter_word(self.members[i].client, word)
    }

    fn member_dir(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("node{}", self.members[i].id))
    }

    fn launch_member(&mut self, i: usize) -> Result<()> {
        let jvm = Jvm::launch(&self.install, &self.member_dir(i), self.settings.heap_mb, &self.settings.jvm_flags())?;
        self.members[i].jvm = Some(jvm);
        Ok(())
    }

    fn wait_member(&mut self, i: usize) -> Result<()> {
        let log = self.member_dir(i).join("zk.log");
        let port = self.members[i].client;
        let timeout = self.settings.startup_timeout;
        let jvm = self.members[i].jvm.as_mut();
        match jvm {
            Some(jvm) => wait_serving(port, timeout, || jvm.is_running(), &log),
            None => Err(Error::Io(format!("server {i} is not running"))),
        }
    }
}
