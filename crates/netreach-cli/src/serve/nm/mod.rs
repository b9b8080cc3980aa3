//! `netreach serve --nm-compat`: the subset of NetworkManager's D-Bus API that Qt's and GLib's
//! network monitors read, served on the system bus from the status monitor (docs/nm-compat.md).
//!
//! A thin face: [`map`] turns connectivity and probe verdicts into NetworkManager's values (a
//! pure function); this module only exports them with zbus and says when they change. It owns
//! `org.freedesktop.NetworkManager` only if nobody does (never queued, never replacing, and
//! never replaceable), so a real NetworkManager always wins.
//!
//! Objects, all answering `Introspect` and `org.freedesktop.DBus.Properties`:
//!
//! - `/org/freedesktop/NetworkManager`, `org.freedesktop.NetworkManager`: `State`,
//!   `Connectivity`, `PrimaryConnection`, `Metered`, `Version`; `CheckConnectivity()`;
//!   `StateChanged(u)`;
//! - the primary connection, `/org/freedesktop/NetworkManager/ActiveConnection/N`,
//!   `org.freedesktop.NetworkManager.Connection.Active`: `Devices`, `Id`, `State`;
//! - its device, `/org/freedesktop/NetworkManager/Devices/IFINDEX`,
//!   `org.freedesktop.NetworkManager.Device`: `DeviceType`, `Metered`, `Interface`.
//!
//! Order of an update: a new primary connection is exported before `PrimaryConnection` names
//! it (Qt reads its device at once, from inside the signal handler), and the one it replaces
//! is removed after. `N` starts from the clock, so a restarted service never reuses a path a
//! running client has cached (Qt re-reads the device only when the path changes).

pub mod map;

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use netreach::StatusMonitor;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use zbus::fdo::{RequestNameFlags, RequestNameReply};
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};

use self::map::View;
use crate::Failure;

/// The bus name, and the manager's path and interface.
pub const NAME: &str = "org.freedesktop.NetworkManager";
const PATH: &str = "/org/freedesktop/NetworkManager";
const IFACE: &str = "org.freedesktop.NetworkManager";
const DEVICE_IFACE: &str = "org.freedesktop.NetworkManager.Device";

/// `NM_ACTIVE_CONNECTION_STATE_ACTIVATED`.
const ACTIVATED: u32 = 2;

/// The face on the bus: the connection (dropping it releases the name) and what it serves.
#[derive(Debug)]
pub struct Face {
    conn: zbus::Connection,
    state: Mutex<Exported>,
    /// Why the face ended, once it has: the name lost, or the bus connection gone.
    lost: Option<tokio::sync::watch::Receiver<Option<String>>>,
}

/// What is exported now.
#[derive(Debug)]
struct Exported {
    view: View,
    /// The primary connection's path and its device's, while there is one.
    active: Option<(OwnedObjectPath, OwnedObjectPath)>,
    next_id: u64,
}

impl Face {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket),
    /// exports `view`, owns the name if it is free, and announces every property once: a
    /// client that outlived a previous owner never reads them again by itself.
    ///
    /// The name taken, or not allowed by the bus's policy: bad input (exit 2), and the owner
    /// is untouched. The bus unreachable: a run-time failure.
    pub async fn start(view: View) -> Result<Face, Failure> {
        let conn = zbus::connection::Builder::system()
            .map(|b| b.method_timeout(std::time::Duration::from_secs(10)))
            .map_err(|e| bus_error("connect to the system bus", e))?
            .build()
            .await
            .map_err(|e| bus_error("connect to the system bus", e))?;
        let next_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs());
        let mut face = Face {
            conn,
            state: Mutex::new(Exported {
                view: View::default(),
                active: None,
                next_id,
            }),
            lost: None,
        };
        let manager = Manager {
            view: View::default(),
            primary: root(),
        };
        face.conn
            .object_server()
            .at(PATH, manager)
            .await
            .map_err(|e| bus_error("export the manager object", e))?;
        face.export(view, false).await;
        let reply = face
            .conn
            .request_name_with_flags(NAME, RequestNameFlags::DoNotQueue.into())
            .await;
        match reply {
            Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => {}
            Ok(RequestNameReply::Exists | RequestNameReply::InQueue)
            | Err(zbus::Error::NameTaken) => {
                let owner = face
                    .owner()
                    .await
                    .unwrap_or_else(|| "another process".into());
                return Err(Failure::input(format!(
                    "nm-compat: {NAME} is already owned on the system bus (by {owner}); \
                     netreach never replaces it"
                )));
            }
            Err(zbus::Error::MethodError(name, msg, _))
                if name.as_str() == "org.freedesktop.DBus.Error.AccessDenied" =>
            {
                return Err(Failure::input(format!(
                    "nm-compat: the system bus does not let this user own {NAME} (install \
                     contrib/dbus/org.freedesktop.NetworkManager.conf): {}",
                    msg.unwrap_or_default()
                )));
            }
            Err(e) => return Err(bus_error("own the name", e)),
        }
        face.lost = Some(face.watch_ownership().await?);
        face.announce_all().await;
        // One line on stdout, as for each listener: from here clients find the name.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "owning {NAME} on the system bus");
        let _ = out.flush();
        Ok(face)
    }

    /// A task that says why, once the name is lost or the connection to the bus ends (the
    /// bus stopped): the face cannot serve any more, and the service ends (a unit restarts it).
    async fn watch_ownership(
        &self,
    ) -> Result<tokio::sync::watch::Receiver<Option<String>>, Failure> {
        let dbus = zbus::fdo::DBusProxy::new(&self.conn)
            .await
            .map_err(|e| bus_error("watch the name", e))?;
        let mut lost = dbus
            .receive_name_lost()
            .await
            .map_err(|e| bus_error("watch the name", e))?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            use futures_core::Stream;
            let why = loop {
                let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut lost).poll_next(cx));
                match next.await {
                    Some(signal) if signal.args().is_ok_and(|a| a.name() == NAME) => {
                        break format!("nm-compat: lost {NAME} on the system bus");
                    }
                    Some(_) => {}
                    None => break "nm-compat: the connection to the system bus ended".to_owned(),
                }
            };
            let _ = tx.send(Some(why));
        });
        Ok(rx)
    }

    /// Resolves, with why, once the face can no longer serve; never while it can.
    pub async fn ended(&self) -> String {
        let Some(mut rx) = self.lost.clone() else {
            return std::future::pending().await;
        };
        match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => "nm-compat: the bus watcher stopped".to_owned(),
        }
    }

    /// The unique name owning [`NAME`], if any.
    async fn owner(&self) -> Option<String> {
        let dbus = zbus::fdo::DBusProxy::new(&self.conn).await.ok()?;
        let name = zbus::names::BusName::try_from(NAME).ok()?;
        dbus.get_name_owner(name).await.ok().map(|o| o.to_string())
    }

    /// Serves `view` from now on, announcing what changed (nothing if nothing did).
    pub async fn update(&self, view: View) {
        self.export(view, true).await;
    }

    /// Exports `new` (objects first), then, if `announce`, emits the changes.
    async fn export(&self, new: View, announce: bool) {
        let mut st = self.state.lock().await;
        if st.view == new && announce {
            return;
        }
        let server = self.conn.object_server();
        let old = std::mem::replace(&mut st.view, new.clone());
        let mut retired = None;
        let mut device_changed = Vec::new();
        if old.new_connection(&new) {
            retired = st.active.take();
            if let Some(d) = &new.primary {
                let id = st.next_id;
                st.next_id += 1;
                let active = path(&format!("{PATH}/ActiveConnection/{id}"));
                let device = path(&format!("{PATH}/Devices/{}", d.index));
                let reused = retired.as_ref().is_some_and(|(_, dev)| *dev == device);
                if reused {
                    self.set_device(&device, d.clone()).await;
                } else {
                    let _ = server.at(&device, DeviceObject { dev: d.clone() }).await;
                }
                let _ = server
                    .at(
                        &active,
                        Active {
                            devices: vec![device.clone()],
                            id: d.name.clone(),
                        },
                    )
                    .await;
                st.active = Some((active, device));
            }
        } else if let (Some(o), Some(n), Some((_, device))) =
            (&old.primary, &new.primary, &st.active)
        {
            if o.metered != n.metered {
                self.set_device(device, n.clone()).await;
                device_changed.push(("Metered", Value::from(n.metered)));
            }
            if o.name != n.name {
                self.set_device(device, n.clone()).await;
                device_changed.push(("Interface", Value::from(n.name.clone())));
            }
        }
        let primary = st.active.as_ref().map_or_else(root, |(a, _)| a.clone());
        if let Ok(m) = server.interface::<_, Manager>(PATH).await {
            let mut m = m.get_mut().await;
            m.view = new.clone();
            m.primary = primary.clone();
        }
        if announce {
            let mut changed: HashMap<&str, Value<'_>> = HashMap::new();
            if old.state != new.state {
                changed.insert("State", new.state.into());
            }
            if old.connectivity != new.connectivity {
                changed.insert("Connectivity", new.connectivity.into());
            }
            if old.metered != new.metered {
                changed.insert("Metered", new.metered.into());
            }
            if old.new_connection(&new) {
                changed.insert("PrimaryConnection", Value::from(primary.clone()));
            }
            if let Some((_, device)) = &st.active {
                if !device_changed.is_empty() {
                    self.emit(device, DEVICE_IFACE, device_changed.into_iter().collect())
                        .await;
                }
            }
            if !changed.is_empty() {
                self.emit(&path(PATH), IFACE, changed).await;
            }
            if old.state != new.state {
                if let Ok(e) = SignalEmitter::new(&self.conn, PATH) {
                    let _ = Manager::state_signal(&e, new.state).await;
                }
            }
        }
        if let Some((active, device)) = retired {
            let _ = server.remove::<Active, _>(&active).await;
            let still = st.active.as_ref().is_some_and(|(_, d)| *d == device);
            if !still {
                let _ = server.remove::<DeviceObject, _>(&device).await;
            }
        }
    }

    async fn set_device(&self, device: &OwnedObjectPath, dev: map::Device) {
        if let Ok(d) = self
            .conn
            .object_server()
            .interface::<_, DeviceObject>(device)
            .await
        {
            d.get_mut().await.dev = dev;
        }
    }

    /// Every property of the manager in one `PropertiesChanged`.
    async fn announce_all(&self) {
        let st = self.state.lock().await;
        let v = &st.view;
        let primary = st.active.as_ref().map_or_else(root, |(a, _)| a.clone());
        let all: HashMap<&str, Value<'_>> = [
            ("State", Value::from(v.state)),
            ("Connectivity", v.connectivity.into()),
            ("PrimaryConnection", primary.into()),
            ("Metered", v.metered.into()),
            ("Version", map::VERSION.into()),
        ]
        .into_iter()
        .collect();
        self.emit(&path(PATH), IFACE, all).await;
        if let Ok(e) = SignalEmitter::new(&self.conn, PATH) {
            let _ = Manager::state_signal(&e, v.state).await;
        }
    }

    async fn emit(
        &self,
        at: &OwnedObjectPath,
        iface: &'static str,
        changed: HashMap<&str, Value<'_>>,
    ) {
        let Ok(e) = SignalEmitter::new(&self.conn, at.clone()) else {
            return;
        };
        let _ = zbus::fdo::Properties::properties_changed(
            &e,
            InterfaceName::from_static_str_unchecked(iface),
            changed,
            Cow::Borrowed(&[]),
        )
        .await;
    }
}

/// The task feeding `face` from `status`: one update per batch of status changes. Ends when
/// the status monitor's subscription does; the configuration that owns it aborts it first.
pub fn pump(face: Arc<Face>, status: StatusMonitor, probing: bool) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut sub = status.subscribe();
        loop {
            face.update(view_of(&status, probing)).await;
            if sub.recv_async().await.is_none() {
                break;
            }
            // What else is queued is in the state read next.
            while let Ok(Some(_)) = sub.try_recv() {}
        }
    })
}

/// The view of the status monitor now.
pub fn view_of(status: &StatusMonitor, probing: bool) -> View {
    let c = status.connectivity();
    let v = status.verification();
    let kind = c.primary_index().and_then(|i| {
        status
            .monitor()
            .snapshot()
            .interface(i)
            .map(|i| i.kind.clone())
    });
    View::of(&c, &v, probing, kind.as_ref())
}

fn bus_error(what: &str, e: zbus::Error) -> Failure {
    std::io::Error::other(format!("nm-compat: {what}: {e}")).into()
}

/// An object path built from constants and numbers: always valid.
fn path(p: &str) -> OwnedObjectPath {
    ObjectPath::try_from(p.to_owned())
        .map(OwnedObjectPath::from)
        .unwrap_or_else(|_| root())
}

/// `/`: NetworkManager's "no primary connection".
fn root() -> OwnedObjectPath {
    OwnedObjectPath::from(ObjectPath::from_static_str_unchecked("/"))
}

/// `/org/freedesktop/NetworkManager`.
#[derive(Debug)]
struct Manager {
    view: View,
    primary: OwnedObjectPath,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager")]
impl Manager {
    /// `NMState`.
    #[zbus(property, name = "State")]
    fn state(&self) -> u32 {
        self.view.state
    }

    /// `NMConnectivityState`.
    #[zbus(property, name = "Connectivity")]
    fn connectivity(&self) -> u32 {
        self.view.connectivity
    }

    /// The primary active connection, `/` when there is none.
    #[zbus(property, name = "PrimaryConnection")]
    fn primary_connection(&self) -> OwnedObjectPath {
        self.primary.clone()
    }

    /// `NMMetered` of the primary device.
    #[zbus(property, name = "Metered")]
    fn metered(&self) -> u32 {
        self.view.metered
    }

    #[zbus(property(emits_changed_signal = "const"), name = "Version")]
    fn version(&self) -> String {
        map::VERSION.to_owned()
    }

    /// NetworkManager re-checks and answers when done; netreach's probes run on their own
    /// schedule, so this answers the current value at once.
    #[zbus(name = "CheckConnectivity")]
    fn check_connectivity(&self) -> u32 {
        self.view.connectivity
    }

    #[zbus(signal, name = "StateChanged")]
    async fn state_signal(emitter: &SignalEmitter<'_>, state: u32) -> zbus::Result<()>;
}

/// `/org/freedesktop/NetworkManager/ActiveConnection/N`: fixed for its life.
#[derive(Debug)]
struct Active {
    devices: Vec<OwnedObjectPath>,
    id: String,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Connection.Active")]
impl Active {
    #[zbus(property(emits_changed_signal = "const"), name = "Devices")]
    fn devices(&self) -> Vec<OwnedObjectPath> {
        self.devices.clone()
    }

    /// The interface's name (NetworkManager's is the connection profile's).
    #[zbus(property(emits_changed_signal = "const"), name = "Id")]
    fn id(&self) -> String {
        self.id.clone()
    }

    /// Always activated: only the primary connection is exported.
    #[zbus(property(emits_changed_signal = "const"), name = "State")]
    fn state(&self) -> u32 {
        ACTIVATED
    }
}

/// `/org/freedesktop/NetworkManager/Devices/IFINDEX`.
#[derive(Debug)]
struct DeviceObject {
    dev: map::Device,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Device")]
impl DeviceObject {
    /// `NMDeviceType`.
    #[zbus(property(emits_changed_signal = "false"), name = "DeviceType")]
    fn device_type(&self) -> u32 {
        self.dev.device_type
    }

    /// `NMMetered`.
    #[zbus(property, name = "Metered")]
    fn metered(&self) -> u32 {
        self.dev.metered
    }

    #[zbus(property(emits_changed_signal = "false"), name = "Interface")]
    fn interface(&self) -> String {
        self.dev.name.clone()
    }
}
