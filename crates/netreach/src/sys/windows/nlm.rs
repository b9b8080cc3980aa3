//! The Network List Manager on a thread of its own, in a COM apartment of its own: the
//! system's connectivity opinion (`INetworkListManager::GetConnectivity`) and whether the
//! connection is metered (`INetworkCostManager::GetCost`), as a
//! [`SystemHint`](netreach_core::nlm::SystemHint).
//!
//! - `CoInitializeEx` and `CoUninitialize` are paired by [`Apartment`], a guard that lives and
//!   dies on the thread (it is `!Send`), and is declared first so that every interface is
//!   released before the apartment closes.
//! - The event sink is a COM object of ours (`#[implement(INetworkListManagerEvents)]`, its
//!   reference count kept by `windows`' implementation): it only sends a message to the thread,
//!   which reads the state again. It is advised on the manager's connection point and unadvised
//!   before the thread ends.
//! - Any failure (no COM, no NLM class, a refused read or `Advise`) is an [`NlmError`], logged
//!   once; the thread ends and the monitor goes on without the hint: netreach's levels come
//!   from the routes and never depend on it.
//!
//! Dropping [`Nlm`] stops and joins the thread; a thread stuck in a COM call that never
//! returns (seen under Wine) is left to end by itself after two seconds, with a warning,
//! rather than hang whoever drops the monitor.

use std::marker::PhantomData;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use netreach_core::nlm::SystemHint;
use windows::Win32::Networking::NetworkListManager::{
    INetworkCostManager, INetworkListManager, INetworkListManagerEvents,
    INetworkListManagerEvents_Impl, NLM_CONNECTIVITY, NetworkListManager,
};
use windows::Win32::System::Com::{
    CLSCTX_ALL, COINIT_MULTITHREADED, CoCreateInstance, CoInitializeEx, CoUninitialize,
    IConnectionPoint, IConnectionPointContainer,
};
use windows::core::{Interface, implement};

use crate::sys::HintCell;

/// Why the Network List Manager gave no hint. The monitor goes on without one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NlmError {
    /// `CoInitializeEx` failed on the NLM thread.
    #[error("CoInitializeEx failed")]
    ComInit(#[source] windows::core::Error),
    /// The `NetworkListManager` class could not be created (not registered, or refused).
    #[error("creating the NetworkListManager failed")]
    Create(#[source] windows::core::Error),
    /// `GetConnectivity` failed.
    #[error("INetworkListManager::GetConnectivity failed")]
    Connectivity(#[source] windows::core::Error),
    /// The event sink could not be advised: the hint is read once and not kept current.
    #[error("advising the INetworkListManagerEvents sink failed")]
    Advise(#[source] windows::core::Error),
}

/// What the thread is told.
enum Msg {
    /// The sink heard of a change.
    Changed,
    /// Stop (the backend is dropped).
    Stop,
}

/// The NLM thread; dropping it stops and joins the thread.
pub(crate) struct Nlm {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    /// Told when the thread ends (its sender is dropped).
    stopped: Receiver<()>,
    hint: HintCell,
}

/// How long building a monitor waits for the Network List Manager's first answer.
const FIRST_READ: Duration = Duration::from_secs(2);
/// How long dropping the monitor waits for the thread to end.
const STOP_WAIT: Duration = Duration::from_secs(2);

impl Nlm {
    /// Starts the thread, and waits (at most [`FIRST_READ`]) for its first reading, so that a
    /// monitor built now has the hint at once. `None` when no thread could be started (logged).
    pub(crate) fn start() -> Option<Nlm> {
        let (tx, rx) = mpsc::channel();
        let (first_tx, first) = mpsc::channel();
        let (stopped_tx, stopped) = mpsc::channel::<()>();
        let hint: HintCell = Arc::new(Mutex::new(None));
        let (sink_tx, published) = (tx.clone(), hint.clone());
        let thread = std::thread::Builder::new()
            .name("netreach-nlm".into())
            .spawn(move || {
                // Dropped when the thread ends, which wakes a Drop waiting on `stopped`.
                let _stopped = stopped_tx;
                let result = run(&rx, sink_tx, &published, &first_tx);
                let _ = first_tx.send(());
                if let Err(e) = result {
                    tracing::warn!(error = %crate::error::chain(&e), "the Network List Manager gives no hint; levels come from the routes alone");
                }
            });
        match thread {
            Ok(t) => {
                let _ = first.recv_timeout(FIRST_READ);
                Some(Nlm {
                    tx,
                    thread: Some(t),
                    stopped,
                    hint,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not start the Network List Manager thread");
                None
            }
        }
    }

    /// Where the thread keeps the hint current.
    pub(crate) fn cell(&self) -> HintCell {
        self.hint.clone()
    }
}

impl Drop for Nlm {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        let Some(t) = self.thread.take() else {
            return;
        };
        // Joined once it has ended. A COM call that never returns (seen under Wine, whose
        // services.exe can fault while activating the NLM) cannot be interrupted: after
        // STOP_WAIT the thread is left to end by itself, with its apartment, rather than
        // hang whoever drops the monitor.
        match self.stopped.recv_timeout(STOP_WAIT) {
            // Nothing is sent: the channel closes as the thread ends, so the join is short.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                let _ = t.join();
            }
            Err(RecvTimeoutError::Timeout) => tracing::warn!(
                "the Network List Manager thread is stuck in a COM call; left to end by itself"
            ),
        }
    }
}

/// This thread's COM apartment (multi-threaded): entered by [`Apartment::enter`], left by Drop
/// on the same thread (the guard is `!Send`).
struct Apartment(PhantomData<*const ()>);

impl Apartment {
    fn enter() -> Result<Apartment, NlmError> {
        // SAFETY: no reserved pointer; called once on this thread, paired with the Drop below
        // only when it succeeded (S_OK or S_FALSE, both of which need a CoUninitialize).
        unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) }
            .ok()
            .map_err(NlmError::ComInit)?;
        Ok(Apartment(PhantomData))
    }
}

impl Drop for Apartment {
    fn drop(&mut self) {
        // SAFETY: pairs the successful CoInitializeEx of `enter`, on the same thread (`!Send`).
        unsafe { CoUninitialize() };
    }
}

/// The event sink: a COM object whose only work is to tell the thread.
#[implement(INetworkListManagerEvents)]
struct Sink {
    tx: Mutex<Sender<Msg>>,
}

impl INetworkListManagerEvents_Impl for Sink_Impl {
    fn ConnectivityChanged(&self, _new: NLM_CONNECTIVITY) -> windows::core::Result<()> {
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Msg::Changed);
        Ok(())
    }
}

/// A sink advised on a connection point; unadvised on drop.
struct Advised {
    point: IConnectionPoint,
    cookie: u32,
}

impl Drop for Advised {
    fn drop(&mut self) {
        // SAFETY: the cookie came from this point's Advise and is unadvised once.
        let _ = unsafe { self.point.Unadvise(self.cookie) };
    }
}

fn read(
    manager: &INetworkListManager,
    cost: Option<&INetworkCostManager>,
) -> Result<SystemHint, NlmError> {
    // SAFETY: a live interface of this apartment; no pointers passed.
    let connectivity = unsafe { manager.GetConnectivity() }.map_err(NlmError::Connectivity)?;
    let cost = cost.and_then(|c| {
        let mut bits = 0u32;
        // SAFETY: `bits` is a live out-pointer; a null destination asks for the machine's cost.
        unsafe { c.GetCost(&mut bits, std::ptr::null()) }
            .ok()
            .map(|()| bits)
    });
    Ok(SystemHint::from_raw(connectivity.0, cost))
}

fn run(
    rx: &Receiver<Msg>,
    sink_tx: Sender<Msg>,
    published: &Mutex<Option<SystemHint>>,
    first: &Sender<()>,
) -> Result<(), NlmError> {
    // First, so that it is dropped last: every interface below is released before COM closes.
    let _apartment = Apartment::enter()?;
    // SAFETY: a registered class id and the interface it implements; in this apartment.
    let manager: INetworkListManager =
        unsafe { CoCreateInstance(&NetworkListManager, None, CLSCTX_ALL) }
            .map_err(NlmError::Create)?;
    let cost: Option<INetworkCostManager> = manager.cast().ok();
    let publish = |hint: SystemHint| {
        let mut slot = published.lock().unwrap_or_else(PoisonError::into_inner);
        if *slot != Some(hint) {
            tracing::info!(hint = %hint, "Network List Manager");
            *slot = Some(hint);
        }
    };
    publish(read(&manager, cost.as_ref())?);
    let _ = first.send(());
    let sink: INetworkListManagerEvents = Sink {
        tx: Mutex::new(sink_tx),
    }
    .into();
    let advised = advise(&manager, &sink);
    if let Err(e) = &advised {
        // Read once, not kept current: said, and the thread waits for its stop.
        tracing::warn!(error = %crate::error::chain(e), "the Network List Manager's hint is not kept current");
    }
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Changed => match read(&manager, cost.as_ref()) {
                Ok(hint) => publish(hint),
                Err(e) => {
                    tracing::debug!(error = %crate::error::chain(&e), "reading the Network List Manager failed")
                }
            },
            Msg::Stop => break,
        }
    }
    drop(advised);
    Ok(())
}

fn advise(
    manager: &INetworkListManager,
    sink: &INetworkListManagerEvents,
) -> Result<Advised, NlmError> {
    let container: IConnectionPointContainer = manager.cast().map_err(NlmError::Advise)?;
    // SAFETY: a live interface; the IID is the sink's interface's.
    let point = unsafe { container.FindConnectionPoint(&INetworkListManagerEvents::IID) }
        .map_err(NlmError::Advise)?;
    // SAFETY: `sink` is a live COM object implementing the point's interface.
    let cookie = unsafe { point.Advise(sink) }.map_err(NlmError::Advise)?;
    Ok(Advised { point, cookie })
}
