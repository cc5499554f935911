//! [`Shutdown`]: the signal that asks workers to stop after their unit in flight.

use tokio::sync::watch;

/// Sends the shutdown signal; see [`shutdown_channel`].
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl ShutdownTrigger {
    /// Asks every holder of the matching [`Shutdown`] to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Triggers on Ctrl-C (SIGINT) or, on Unix, SIGTERM; returns once triggered.
    pub async fn trigger_on_signal(self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        self.trigger();
    }
}

/// Tells whether shutdown was asked for. Cheap to clone; every clone sees the
/// same signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
    /// Held by [`Shutdown::never`] so that its channel never closes.
    _keep: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl Shutdown {
    /// A signal that never fires (for one-off runs).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            rx,
            _keep: Some(std::sync::Arc::new(tx)),
        }
    }

    /// Whether shutdown was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Returns once shutdown is asked for (or its trigger is dropped).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// A connected trigger and signal.
///
/// ```
/// let (trigger, shutdown) = nexiom_scheduler::shutdown_channel();
/// assert!(!shutdown.is_triggered());
/// trigger.trigger();
/// assert!(shutdown.is_triggered());
/// ```
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx, _keep: None })
}
