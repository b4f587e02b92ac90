//! The I/O shell: RAUC over D-Bus (zbus, on tokio). Service
//! `de.pengutronix.rauc`, object `/`, interface `de.pengutronix.rauc.Installer`
//! as RAUC 1.8 and 1.15 both have it: `InstallBundle(s, a{sv})`,
//! `GetSlotStatus`, `GetPrimary`, the properties `Operation`, `LastError`,
//! `Progress`, `Compatible`, `BootSlot` (read with one `GetAll`) and the
//! signal `Completed(i)`.
//!
//! The bus is RAUC's own choice (its `src/service.c`): the session bus when
//! `DBUS_STARTER_BUS_TYPE=session`, else the system bus. The connection is made
//! when first needed and made again after an error, so a RAUC that starts after
//! the streamer is found.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use zbus::export::futures_core::Stream;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, Proxy};

use super::install::Progress;
use super::rauc::{BoxFuture, Completion, Rauc, RaucError, RaucStatus, SlotStatus};

/// RAUC's bus name.
pub const SERVICE: &str = "de.pengutronix.rauc";
/// Its object.
pub const OBJECT: &str = "/";
/// Its interface.
pub const INTERFACE: &str = "de.pengutronix.rauc.Installer";

/// The longest a connection or a call may take (D-Bus's own default is 25 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an install's end is looked for besides the `Completed` signal (in
/// case the signal is missed: RAUC restarted, the bus dropped it).
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Whether RAUC would use the session bus: `DBUS_STARTER_BUS_TYPE=session`.
pub fn session_bus(starter_bus_type: Option<&str>) -> bool {
    starter_bus_type == Some("session")
}

/// RAUC over D-Bus.
#[derive(Debug)]
pub struct DbusRauc {
    session: bool,
    connection: tokio::sync::Mutex<Option<Connection>>,
}

impl DbusRauc {
    /// RAUC on the bus it would use in this environment.
    pub fn new() -> Self {
        DbusRauc {
            session: session_bus(std::env::var("DBUS_STARTER_BUS_TYPE").ok().as_deref()),
            connection: tokio::sync::Mutex::new(None),
        }
    }

    /// Which bus, for messages.
    fn bus(&self) -> &'static str {
        if self.session {
            "session"
        } else {
            "system"
        }
    }

    /// The connection, made now if there is none.
    async fn connection(&self) -> Result<Connection, RaucError> {
        let mut held = self.connection.lock().await;
        if let Some(connection) = held.as_ref() {
            return Ok(connection.clone());
        }
        let connect = async {
            if self.session {
                Connection::session().await
            } else {
                Connection::system().await
            }
        };
        let connection = tokio::time::timeout(CALL_TIMEOUT, connect)
            .await
            .map_err(|_| {
                RaucError::Unavailable(format!("the D-Bus {} bus did not answer", self.bus()))
            })?
            .map_err(|error| {
                RaucError::Unavailable(format!("no D-Bus {} bus ({error})", self.bus()))
            })?;
        *held = Some(connection.clone());
        Ok(connection)
    }

    /// Forgets the connection after an error, so the next call makes a new one.
    async fn forget(&self) {
        *self.connection.lock().await = None;
    }

    /// A proxy for `interface` on RAUC's object.
    async fn proxy(&self, interface: &'static str) -> Result<Proxy<'static>, RaucError> {
        let connection = self.connection().await?;
        let build = async {
            zbus::proxy::Builder::<Proxy<'static>>::new(&connection)
                .destination(SERVICE)?
                .path(OBJECT)?
                .interface(interface)?
                .cache_properties(CacheProperties::No)
                .build()
                .await
        };
        timed(build).await.map_err(|e| self.error(e))
    }

    /// An error of a call, in RAUC's terms.
    fn error(&self, error: CallError) -> RaucError {
        match error {
            CallError::Timeout => RaucError::Unavailable("RAUC did not answer in time".into()),
            CallError::Bus(error) => classify(&error, self.bus()),
        }
    }

    async fn read_status(&self) -> Result<RaucStatus, RaucError> {
        let properties = self.proxy("org.freedesktop.DBus.Properties").await?;
        let all: HashMap<String, OwnedValue> = timed(properties.call("GetAll", &(INTERFACE,)))
            .await
            .map_err(|e| self.error(e))?;
        let installer = self.proxy(INTERFACE).await?;
        let slots: Vec<(String, HashMap<String, OwnedValue>)> =
            timed(installer.call("GetSlotStatus", &()))
                .await
                .map_err(|e| self.error(e))?;
        // The bootloader backend may not know (or fail): shown as unknown.
        let primary: Option<String> = timed(installer.call("GetPrimary", &())).await.ok();
        Ok(RaucStatus {
            operation: text(all.get("Operation")).unwrap_or_default(),
            progress: all.get("Progress").map(progress).unwrap_or_default(),
            last_error: text(all.get("LastError")).unwrap_or_default(),
            compatible: text(all.get("Compatible")).unwrap_or_default(),
            boot_slot: text(all.get("BootSlot")).unwrap_or_default(),
            primary,
            slots: slots
                .into_iter()
                .map(|(name, fields)| slot(name, &fields))
                .collect(),
        })
    }

    async fn start_install(
        &self,
        bundle: PathBuf,
    ) -> Result<BoxFuture<'static, Completion>, RaucError> {
        let installer = self.proxy(INTERFACE).await?;
        // Listening before the call, so a quick install's signal is not missed.
        let completed = timed(installer.receive_signal("Completed"))
            .await
            .map_err(|e| self.error(e))?;
        let source = bundle.to_string_lossy().into_owned();
        let args: HashMap<&str, Value<'_>> = HashMap::new();
        timed(installer.call::<_, _, ()>("InstallBundle", &(source, args)))
            .await
            .map_err(|e| self.error(e))?;
        let properties = self.proxy("org.freedesktop.DBus.Properties").await?;
        Ok(Box::pin(wait_for_completion(completed, properties)))
    }
}

impl Default for DbusRauc {
    fn default() -> Self {
        Self::new()
    }
}

impl Rauc for DbusRauc {
    fn status(&self) -> BoxFuture<'_, Result<RaucStatus, RaucError>> {
        Box::pin(async {
            let status = self.read_status().await;
            if status.is_err() {
                self.forget().await;
            }
            status
        })
    }

    fn install(
        &self,
        bundle: PathBuf,
    ) -> BoxFuture<'_, Result<BoxFuture<'static, Completion>, RaucError>> {
        Box::pin(async move {
            let started = self.start_install(bundle).await;
            if started.is_err() {
                self.forget().await;
            }
            started
        })
    }
}

/// Waits for `Completed(i)`, and also looks at `Operation` every
/// [`POLL_INTERVAL`]: back to `idle` twice running ends the wait too (with
/// `LastError` deciding), as does the bus going away.
async fn wait_for_completion(
    mut completed: zbus::proxy::SignalStream<'static>,
    properties: Proxy<'static>,
) -> Completion {
    let mut idle_seen = 0;
    loop {
        let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut completed).poll_next(cx));
        tokio::select! {
            message = next => {
                let code = match message {
                    Some(message) => message.body().deserialize::<i32>().unwrap_or(1),
                    None => return Completion {
                        code: 1,
                        last_error: "the connection to RAUC was lost during the install".into(),
                    },
                };
                let last_error = last_error(&properties).await.unwrap_or_default();
                return Completion { code, last_error };
            }
            () = tokio::time::sleep(POLL_INTERVAL) => {
                let operation: Result<OwnedValue, _> =
                    timed(properties.call("Get", &(INTERFACE, "Operation"))).await;
                match operation {
                    Ok(value) if text(Some(&value)).as_deref() == Some("idle") => idle_seen += 1,
                    Ok(_) => idle_seen = 0,
                    Err(_) => idle_seen += 1,
                }
                if idle_seen >= 2 {
                    let last_error = last_error(&properties).await.unwrap_or_default();
                    let code = i32::from(!last_error.is_empty());
                    return Completion { code, last_error };
                }
            }
        }
    }
}

/// `LastError`.
async fn last_error(properties: &Proxy<'static>) -> Option<String> {
    let value: OwnedValue = timed(properties.call("Get", &(INTERFACE, "LastError")))
        .await
        .ok()?;
    text(Some(&value))
}

/// Why a call failed.
enum CallError {
    Timeout,
    Bus(zbus::Error),
}

/// `call` within [`CALL_TIMEOUT`].
async fn timed<T>(
    call: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(CallError::Bus(error)),
        Err(_) => Err(CallError::Timeout),
    }
}

/// A D-Bus error as RAUC's absence or its refusal.
fn classify(error: &zbus::Error, bus: &str) -> RaucError {
    let name = match error {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str().to_owned()),
        zbus::Error::FDO(fdo) => Some(zbus::DBusError::name(&**fdo).to_string()),
        _ => None,
    };
    match name.as_deref() {
        Some(
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner",
        ) => RaucError::Unavailable(format!("RAUC is not running on the D-Bus {bus} bus")),
        // The bus's policy, not RAUC: the image's is
        // /etc/dbus-1/system.d/streamer-rauc.conf.
        Some("org.freedesktop.DBus.Error.AccessDenied") => RaucError::Unavailable(format!(
            "the D-Bus {bus} bus does not let this user talk to RAUC \
             (its policy: /etc/dbus-1/system.d/streamer-rauc.conf)"
        )),
        Some(_) => match error {
            zbus::Error::MethodError(_, Some(message), _) => RaucError::Refused(message.clone()),
            zbus::Error::FDO(fdo) => RaucError::Refused(fdo.to_string()),
            other => RaucError::Refused(other.to_string()),
        },
        None => RaucError::Unavailable(format!("the D-Bus {bus} bus failed ({error})")),
    }
}

/// A string value.
fn text(value: Option<&OwnedValue>) -> Option<String> {
    match value.map(|v| &**v) {
        Some(Value::Str(s)) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// `Progress` `(isi)`.
fn progress(value: &OwnedValue) -> Progress {
    let Value::Structure(structure) = &**value else {
        return Progress::default();
    };
    match structure.fields() {
        [Value::I32(percent), Value::Str(message), Value::I32(depth)] => {
            Progress::from_rauc((*percent, message.as_str().to_owned(), *depth))
        }
        _ => Progress::default(),
    }
}

/// One `GetSlotStatus` entry.
fn slot(name: String, fields: &HashMap<String, OwnedValue>) -> SlotStatus {
    let field = |key: &str| -> Option<String> {
        match fields.get(key).map(|v| &**v) {
            Some(Value::Str(s)) => Some(s.as_str().to_owned()),
            Some(Value::U64(n)) => Some(n.to_string()),
            Some(Value::I64(n)) => Some(n.to_string()),
            Some(Value::U32(n)) => Some(n.to_string()),
            _ => None,
        }
    };
    SlotStatus {
        bootname: field("bootname"),
        state: field("state"),
        boot_status: field("boot-status"),
        device: field("device"),
        bundle_version: field("bundle.version"),
        installed_timestamp: field("installed.timestamp"),
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bus_is_chosen_as_rauc_chooses_it() {
        assert!(session_bus(Some("session")));
        assert!(!session_bus(Some("system")));
        assert!(!session_bus(Some("Session")));
        assert!(!session_bus(None));
    }

    #[test]
    fn slot_fields_and_progress_are_read_from_their_variants() {
        let mut fields = HashMap::new();
        fields.insert(
            "bootname".to_owned(),
            OwnedValue::try_from(Value::from("B")).unwrap(),
        );
        fields.insert(
            "boot-status".to_owned(),
            OwnedValue::try_from(Value::from("good")).unwrap(),
        );
        fields.insert(
            "installed.count".to_owned(),
            OwnedValue::try_from(Value::from(3u32)).unwrap(),
        );
        let slot = slot("rootfs.1".into(), &fields);
        assert_eq!(slot.name, "rootfs.1");
        assert_eq!(slot.bootname.as_deref(), Some("B"));
        assert_eq!(slot.boot_status.as_deref(), Some("good"));
        assert_eq!(slot.state, None);
        let value = OwnedValue::try_from(Value::from((42i32, "Updating slots...", 1i32))).unwrap();
        assert_eq!(
            progress(&value),
            Progress {
                percent: 42,
                message: "Updating slots...".into(),
                depth: 1
            }
        );
        let wrong = OwnedValue::try_from(Value::from("x")).unwrap();
        assert_eq!(progress(&wrong), Progress::default());
    }

    #[test]
    fn a_refusal_by_the_bus_policy_is_not_called_rauc_missing() {
        let error = |name: &'static str| {
            zbus::Error::MethodError(
                zbus::names::OwnedErrorName::try_from(name).unwrap(),
                Some("nope".into()),
                zbus::message::Message::method_call("/", "Ping")
                    .unwrap()
                    .build(&())
                    .unwrap(),
            )
        };
        let denied = classify(&error("org.freedesktop.DBus.Error.AccessDenied"), "system");
        assert!(
            matches!(&denied, RaucError::Unavailable(m) if m.contains("streamer-rauc.conf")),
            "{denied:?}"
        );
        let missing = classify(
            &error("org.freedesktop.DBus.Error.ServiceUnknown"),
            "system",
        );
        assert!(
            matches!(&missing, RaucError::Unavailable(m) if m.contains("not running")),
            "{missing:?}"
        );
        let refused = classify(&error("de.pengutronix.rauc.Error.Failed"), "system");
        assert_eq!(refused, RaucError::Refused("nope".into()));
    }
}
