//! Signals: stopping long-running commands (`serve`, `watch`) on Ctrl-C (SIGINT) or SIGTERM, and
//! relaying signals to the command that `lock` runs.
//!
//! The handlers are installed by [`Shutdown::install`], before the command announces that it is
//! ready (prints its address, registers its watch), so a signal sent right after that
//! announcement is always caught and leads to a clean exit 0 rather than the default
//! kill-by-signal. Once installed, the signals no longer end the process by themselves: the
//! command must await [`Shutdown::requested`] alongside its work.
//!
//! `lock` uses [`Shutdown::install_relay`], which also catches SIGHUP (a closed terminal), and
//! [`send`] to pass each signal on to its command and to stop it when the lock is lost. It keeps
//! the lock until every process of its command's process group is gone: [`group_alive`] tells,
//! and [`adopt_orphans`] makes sure that processes of the group whose parent exits become
//! conclave's own children, so that it can reap them once they are dead (where nothing else
//! would: an init that does not reap, as in many containers, leaves zombies that still count as
//! members of the group).

use std::io;

use crate::exit::CliError;

/// A signal that `conclave` catches or sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: the terminal went away.
    Hangup,
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: asked to stop.
    Terminate,
    /// SIGKILL: cannot be caught; only sent.
    Kill,
}

impl Signal {
    /// The signal's name, such as `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hangup => "SIGHUP",
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Kill => "SIGKILL",
        }
    }

    /// The signal's number (the same on every Unix), which shells add to 128 in the exit status
    /// of a process it killed.
    pub fn number(self) -> i32 {
        match self {
            Signal::Hangup => 1,
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
            Signal::Kill => 9,
        }
    }
}

/// Where a signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One process.
    Process(u32),
    /// Every process of a process group (its leader's id).
    Group(u32),
}

/// Sends `signal` to `target`.
///
/// Only call this with the id of an own child that has not been reaped yet (as
/// `tokio::process::Child::id` gives it), or of the process group it leads while
/// [`group_alive`] says the group has members: that id cannot have been reused by another
/// process (a process group id stays taken while the group has a member, and a dead member that
/// is conclave's child stays one until [`group_alive`] reaps it).
#[cfg(unix)]
pub fn send(target: Target, signal: Signal) -> io::Result<()> {
    let (id, sign) = match target {
        Target::Process(id) => (id, 1),
        Target::Group(id) => (id, -1),
    };
    // 0 and 1 would mean "my own group" and "every process"; never meant here.
    let pid = match libc::pid_t::try_from(id) {
        Ok(pid) if pid > 1 => pid * sign,
        _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    let number = match signal {
        Signal::Hangup => libc::SIGHUP,
        Signal::Interrupt => libc::SIGINT,
        Signal::Terminate => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) takes two integers and touches no memory of this process.
    if unsafe { libc::kill(pid, number) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether any process of the process group `pgid` (the id of its leader) is still there.
///
/// First reaps the group's dead processes that are conclave's children (without waiting), so
/// that they do not count: call it only once the leader itself has been reaped by its
/// `tokio::process::Child`, whose exit status it would otherwise take. A group whose processes
/// this user may not signal counts as alive.
#[cfg(unix)]
pub fn group_alive(pgid: u32) -> bool {
    let pgid = match libc::pid_t::try_from(pgid) {
        Ok(pgid) if pgid > 1 => pgid,
        _ => return false,
    };
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) writes only to `status`, a local; WNOHANG makes it return at once.
        if unsafe { libc::waitpid(-pgid, &mut status, libc::WNOHANG) } <= 0 {
            break;
        }
    }
    // SAFETY: kill(2) with signal 0 sends nothing; it checks that a target exists.
    if unsafe { libc::kill(-pgid, 0) } == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without process groups there is nothing left to wait for once the command has exited.
#[cfg(not(unix))]
pub fn group_alive(_pgid: u32) -> bool {
    false
}

/// Makes conclave the reaper of its descendants' orphans (Linux's `PR_SET_CHILD_SUBREAPER`): a
/// process whose parent exits becomes conclave's child instead of init's, so that
/// [`group_alive`] can reap it once it is dead. Elsewhere orphans go to init, which is trusted
/// to reap them.
///
/// # Errors
/// The `prctl(2)` error (none is expected: the call needs no privilege).
#[cfg(target_os = "linux")]
pub fn adopt_orphans() -> io::Result<()> {
    // prctl(2) reads its arguments as unsigned longs.
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: prctl(2) with PR_SET_CHILD_SUBREAPER takes integers and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, on, unused, unused, unused) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// See the Linux version: elsewhere orphans go to init.
#[cfg(not(target_os = "linux"))]
pub fn adopt_orphans() -> io::Result<()> {
    Ok(())
}

/// Without Unix signals, only [`Signal::Kill`] can be delivered (by the caller, through
/// `Child::start_kill`); the others are reported as unsupported.
#[cfg(not(unix))]
pub fn send(_target: Target, _signal: Signal) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// The installed signal handlers.
#[derive(Debug)]
pub struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Shutdown {
    /// Installs the handlers for SIGINT and SIGTERM. Must be called inside the runtime.
    ///
    /// `tokio::signal::ctrl_c()` installs its handler only when first polled; listening to
    /// SIGINT here (which is what `ctrl_c` does on Unix) installs it at once instead.
    pub fn install() -> Result<Shutdown, CliError> {
        Shutdown::with_hangup(false)
    }

    /// As [`Shutdown::install`], and SIGHUP too: for a command that relays the signals it gets
    /// to a child instead of dying of them.
    pub fn install_relay() -> Result<Shutdown, CliError> {
        Shutdown::with_hangup(true)
    }

    #[cfg_attr(not(unix), allow(unused_variables))]
    fn with_hangup(hangup: bool) -> Result<Shutdown, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let install = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| CliError::io(format!("install the {name} handler"), e))
            };
            Ok(Shutdown {
                interrupt: install(SignalKind::interrupt(), "SIGINT")?,
                terminate: install(SignalKind::terminate(), "SIGTERM")?,
                hangup: if hangup { Some(install(SignalKind::hangup(), "SIGHUP")?) } else { None },
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Shutdown {})
        }
    }

    /// Resolves when Ctrl-C or SIGTERM arrives, with the signal's name.
    pub async fn requested(&mut self) -> &'static str {
        self.received().await.name()
    }

    /// Resolves when one of the handled signals arrives (each arrival once).
    pub async fn received(&mut self) -> Signal {
        #[cfg(unix)]
        {
            let Shutdown { interrupt, terminate, hangup } = self;
            let hangup = async {
                match hangup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = interrupt.recv() => Signal::Interrupt,
                _ = terminate.recv() => Signal::Terminate,
                _ = hangup => Signal::Hangup,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => Signal::Interrupt,
                // Without a handler no signal can be awaited: run until killed.
                Err(_) => std::future::pending().await,
            }
        }
    }
}
