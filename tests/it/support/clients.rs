//! Running clients we did not write (the ZooKeeper CLI, kazoo, Curator programs) as processes:
//! checking their prerequisites, compiling the Java programs in `tests/clients/` against the
//! Debian Curator jars (with or without Curator's service discovery), and running a process with
//! a deadline.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// Whether a prerequisite is there; if not, says so (or fails under CONCLAVE_REQUIRE_ZOOKEEPER=1).
pub fn available(ok: bool, what: &str, install: &str) -> bool {
    if !ok {
        if conclave_core::testing::zookeeper_required() {
            panic!("CONCLAVE_REQUIRE_ZOOKEEPER=1 but {what} is missing: {install}");
        }
        eprintln!("skipped: {what} is missing: {install}");
    }
    ok
}

/// Runs a command with a deadline, returning (success, stdout, stderr).
pub async fn run(mut cmd: Command, stdin: Option<String>, limit: Duration) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the client");
        if let Some(input) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).expect("write the client's input");
        }
        let pid = child.id();
        // Kills the client at the deadline, unless it ended first (then the channel says so, and
        // no `kill` is sent to a pid that may have been reused meanwhile).
        let (ended, end) = std::sync::mpsc::channel::<()>();
        let killer = std::thread::spawn(move || {
            if end.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        });
        let out = child.wait_with_output().expect("wait for the client");
        drop(ended);
        let _ = killer.join();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("client runner")
}

/// The Debian jars a Curator program needs (`libcurator-recipes-java`, `libslf4j-java`).
const CURATOR_JARS: [&str; 8] = [
    "curator-recipes.jar",
    "curator-framework.jar",
    "curator-client.jar",
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "guava.jar",
    "slf4j-api.jar",
    "slf4j-simple.jar",
];

/// The jars a program using Curator's service discovery needs besides [`CURATOR_JARS`]
/// (`libcurator-discovery-java`, which depends on the Jackson packages): curator-x-discovery and
/// the JSON library its instance serializer runs on. All four are needed at run time (checked by
/// registering and reading back an instance with the jars' manifest `Class-Path` removed);
/// listed here rather than left to those manifests.
const DISCOVERY_JARS: [&str; 4] =
    ["curator-x-discovery.jar", "jackson-databind.jar", "jackson-core.jar", "jackson-annotations.jar"];

/// A Java program of `tests/clients/`, compiled against Apache Curator.
#[derive(Debug, Clone)]
pub struct CuratorProgram {
    class: String,
    classpath: String,
}

impl CuratorProgram {
    /// Compiles `tests/clients/<class>.java` (once per test binary), or `None` after one line
    /// on stderr when javac or the Curator jars are missing (a panic instead under
    /// CONCLAVE_REQUIRE_ZOOKEEPER=1, or when javac fails).
    pub async fn compile(class: &str) -> Option<CuratorProgram> {
        Self::compile_against(
            class,
            &CURATOR_JARS,
            "Apache Curator (or javac)",
            "apt-get install -y libcurator-recipes-java libslf4j-java openjdk-17-jdk-headless",
        )
        .await
    }

    /// As [`CuratorProgram::compile`], against Curator with its service discovery
    /// (curator-x-discovery and Jackson, [`DISCOVERY_JARS`]) for both javac and the program's
    /// runs.
    pub async fn compile_discovery(class: &str) -> Option<CuratorProgram> {
        let jars: Vec<&str> = CURATOR_JARS.iter().chain(DISCOVERY_JARS.iter()).copied().collect();
        Self::compile_against(
            class,
            &jars,
            "Apache Curator's service discovery (or javac)",
            "apt-get install -y libcurator-discovery-java libcurator-recipes-java libslf4j-java openjdk-17-jdk-headless",
        )
        .await
    }

    /// Compiles `tests/clients/<class>.java` against `jar_names` (in /usr/share/java), the
    /// classpath of its runs too; `what` and `install` describe them when one is missing.
    async fn compile_against(class: &str, jar_names: &[&str], what: &str, install: &str) -> Option<CuratorProgram> {
        let jars: Vec<PathBuf> = jar_names.iter().map(|j| Path::new("/usr/share/java").join(j)).collect();
        let has_javac = Command::new("javac")
            .arg("-version")
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !available(has_javac && jars.iter().all(|j| j.is_file()), what, install) {
            return None;
        }
        let jars = jars.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
        let build = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("java-{class}"));
        // Tests of this binary run in parallel: the first compiles, the others wait for it.
        static COMPILED: Mutex<Option<HashMap<String, Result<(), String>>>> = Mutex::new(None);
        let (class_name, classpath, dir) = (class.to_string(), jars.clone(), build.clone());
        let compiled = tokio::task::spawn_blocking(move || {
            let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
            let map = compiled.get_or_insert_with(HashMap::new);
            map.entry(class_name.clone())
                .or_insert_with(|| {
                    std::fs::create_dir_all(&dir).map_err(|e| format!("build dir {}: {e}", dir.display()))?;
                    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
                    let source = sources.join(format!("{class_name}.java"));
                    // The source path lets javac compile what the program uses from the
                    // directory (CuratorSupport) into the program's own build directory.
                    let out = Command::new("javac")
                        .arg("-sourcepath")
                        .arg(&sources)
                        .args(["-nowarn", "-d"])
                        .arg(&dir)
                        .arg("-cp")
                        .arg(&classpath)
                        .arg(&source)
                        .output()
                        .map_err(|e| format!("run javac: {e}"))?;
                    if out.status.success() {
                        Ok(())
                    } else {
                        Err(format!(
                            "{}\n{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        ))
                    }
                })
                .clone()
        })
        .await
        .expect("javac runner");
        if let Err(e) = compiled {
            panic!("javac {class}.java failed:\n{e}");
        }
        Some(CuratorProgram { class: class.to_string(), classpath: format!("{jars}:{}", build.display()) })
    }

    /// A `java` command running the program (small heap, quick start, Curator's logging at
    /// error level); the caller appends the program's arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("java");
        cmd.args(["-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=error", "-cp"])
            .arg(&self.classpath)
            .arg(&self.class);
        cmd
    }
}

/// A Java program run driven step by step through marker nodes: at a step `tag` it creates
/// `<prefix>-<tag>-ready` and waits for `<prefix>-<tag>-go` ([`JavaRun::ready`],
/// [`JavaRun::go`]). The interop tests of membership and discovery drive their Curator
/// programs this way.
pub struct JavaRun {
    name: String,
    prefix: String,
    run: tokio::task::JoinHandle<(bool, String, String)>,
}

impl JavaRun {
    /// Starts `cmd` (the program `name`, marking its steps under `prefix`) with a 90 s limit.
    pub fn start(name: &str, prefix: &str, cmd: Command) -> JavaRun {
        let run = tokio::spawn(run(cmd, None, Duration::from_secs(90)));
        JavaRun { name: name.to_string(), prefix: prefix.to_string(), run }
    }

    /// Waits for the run to end: whether it exited 0, its stdout lines and its stderr.
    pub async fn finish(self) -> (bool, Vec<String>, String) {
        let (ok, out, err) = super::within(100, self.run).await.expect("the Java runner");
        (ok, out.lines().map(str::to_string).collect(), err)
    }

    /// As [`JavaRun::finish`], failing (with the run's output) unless it exited 0 with `ok done`
    /// as its last line; the lines before that.
    pub async fn finish_ok(self) -> Vec<String> {
        let name = self.name.clone();
        let (ok, mut lines, err) = self.finish().await;
        let done = lines.pop();
        assert!(ok && done.as_deref() == Some("ok done"), "{name} failed:\n{}\n{done:?}\n{err}", lines.join("\n"));
        lines
    }

    /// Waits until the run reached step `tag` (created `<prefix>-<tag>-ready`); fails with its
    /// output if it ended first.
    pub async fn ready(self, client: &conclave::Client, tag: &str) -> JavaRun {
        let ready = format!("{}-{tag}-ready", self.prefix);
        let there = super::within(60, async {
            loop {
                if client.exists(&ready).await.expect("exists").is_some() {
                    return true;
                }
                if self.run.is_finished() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        if !there {
            let name = self.name.clone();
            let (_, lines, err) = self.finish().await;
            panic!("{name} ended before {ready}:\n{}\n{err}", lines.join("\n"));
        }
        self
    }

    /// Lets the run waiting at step `tag` go on.
    pub async fn go(&self, client: &conclave::Client, tag: &str) -> conclave::Result<()> {
        client.create(&format!("{}-{tag}-go", self.prefix), b"", conclave::CreateMode::Persistent).await?;
        Ok(())
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.run.is_finished()
    }
}

/// Asserts that a checker found no problem, listing them if it did.
#[track_caller]
pub fn assert_clean(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}: {} problems:\n{}", problems.len(), problems.join("\n"));
}
