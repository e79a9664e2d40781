//! Stopping long-running commands (`serve`, `watch`) on Ctrl-C (SIGINT) or SIGTERM.
//!
//! The handlers are installed by [`Shutdown::install`], before the command announces that it is
//! ready (prints its address, registers its watch), so a signal sent right after that
//! announcement is always caught and leads to a clean exit 0 rather than the default
//! kill-by-signal. Once installed, the signals no longer end the process by themselves: the
//! command must await [`Shutdown::requested`] alongside its work.

use crate::exit::CliError;

/// The installed signal handlers.
#[derive(Debug)]
pub struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Installs the handlers for SIGINT and SIGTERM. Must be called inside the runtime.
    ///
    /// `tokio::signal::ctrl_c()` installs its handler only when first polled; listening to
    /// SIGINT here (which is what `ctrl_c` does on Unix) installs it at once instead.
    pub fn install() -> Result<Shutdown, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let install = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| CliError::io(format!("install the {name} handler"), e))
            };
            Ok(Shutdown {
                interrupt: install(SignalKind::interrupt(), "SIGINT")?,
                terminate: install(SignalKind::terminate(), "SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Shutdown {})
        }
    }

    /// Resolves when Ctrl-C or SIGTERM arrives, with the signal's name.
    pub async fn requested(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                // Without a handler no signal can be awaited: run until killed.
                Err(_) => std::future::pending().await,
            }
        }
    }
}
