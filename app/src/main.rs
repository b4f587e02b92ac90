//! The `streamer` command line.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use streamer::access::Access;
use streamer::config::{self, Config, ServerConfig};
use streamer::hub::{Hub, HubLimits};
use streamer::rtsp::{Rtsp, RtspService};
use streamer::source::{self, supervisor};
use streamer::webrtc::{whep::Whep, WebRtc};
use streamer::{privacy_led, probe, service, setup, v4l2, web};

/// Live H.264 from a Raspberry Pi camera to many browsers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). A missing file means built-in defaults.
    #[arg(long, global = true, default_value = "/boot/streamer.toml")]
    config: PathBuf,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stream (the default).
    Run,
    /// Validate a configuration file and print the effective configuration;
    /// exits 1 and lists every problem when it is invalid.
    CheckConfig {
        /// The file to check (default: --config).
        path: Option<PathBuf>,
    },
    /// Print a fully commented default configuration file.
    PrintDefaultConfig {
        /// Print every key as Markdown tables instead (the README's reference).
        #[arg(long)]
        markdown: bool,
    },
    /// Report the hardware (Raspberry Pi model, hardware encoder, cameras, and
    /// what each video node offers over V4L2) and which source the configuration
    /// would run, and why.
    Probe {
        /// Print JSON (the `device` part of /api/status, with every video node's
        /// full description: the source of test fixtures) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the hash of a password for `[access] password` (Argon2id, PHC
    /// format), so that the password itself need not be on the card. The
    /// password is read from standard input (asked for twice, not shown, on a
    /// terminal), never from the command line, where other users and the shell's
    /// history would see it.
    HashPassword,
    /// Ask the running streamer (on this machine, at the configuration's port)
    /// whether video flows: exits 0 when its `/healthz` answers 200, 1 otherwise,
    /// printing its answer. The update check commits a new system only then.
    Health {
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Write the network's runtime files (hostname, systemd-networkd units,
    /// wpa_supplicant configuration) under /run from the [network] section; run at
    /// every start by streamer-setup.service, before the network. Problems in the
    /// file are printed and the defaults used for them; exits 1 only when the
    /// files cannot be written.
    Setup {
        /// Write under this folder instead of / (to try a configuration).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Do not set the running system's hostname (only write the file).
        #[arg(long)]
        no_hostname: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::PrintDefaultConfig { markdown } => {
            if markdown {
                print!("{}", config::reference_markdown());
            } else {
                print!("{}", config::default_toml());
            }
            ExitCode::SUCCESS
        }
        Command::CheckConfig { path } => check_config(path.as_deref().unwrap_or(&cli.config)),
        Command::Probe { json } => probe(&cli.config, json),
        Command::HashPassword => hash_password(),
        Command::Health { timeout } => health(&cli.config, Duration::from_secs(timeout)),
        Command::Setup { root, no_hostname } => setup(&cli.config, &root, !no_hostname),
        Command::Run => match run(&cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!("{error:#}");
                eprintln!("streamer: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `streamer health`: GET /healthz from the server this configuration runs,
/// at its `server.bind` address (loopback for a wildcard one) or, when that
/// does not answer (the server fell back to the wildcard address), at
/// 127.0.0.1.
fn health(config_path: &Path, timeout: Duration) -> ExitCode {
    let loaded = config::load_or_defaults(config_path);
    let port = loaded.config.server.port;
    let mut addresses = Vec::new();
    let bind = loaded.config.server.bind;
    if !bind.is_unspecified() {
        addresses.push(SocketAddr::new(bind, port));
    }
    addresses.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    let mut last = String::new();
    for address in addresses {
        match healthz(address, timeout) {
            Ok((200, body)) => {
                print!("{body}");
                return ExitCode::SUCCESS;
            }
            Ok((status, body)) => {
                println!("{status} {}", body.trim_end());
                return ExitCode::FAILURE;
            }
            Err(error) => last = format!("http://{address}/healthz: {error}"),
        }
    }
    println!("no answer: {last}");
    ExitCode::FAILURE
}

/// One `GET /healthz` over HTTP/1.0: the status code and the body.
fn healthz(address: SocketAddr, timeout: Duration) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let host = match address.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{}", address.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", address.port()),
    };
    write!(stream, "GET /healthz HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "not an HTTP answer"))?;
    Ok((status, body.to_owned()))
}

fn check_config(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(loaded) => {
            if !loaded.file_found {
                eprintln!("{}: no such file; these are the defaults", path.display());
            }
            print!("{}", config::effective_toml(&loaded.config));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn hash_password() -> ExitCode {
    let password = match read_password() {
        Ok(password) => password,
        Err(error) => {
            eprintln!("streamer hash-password: {error}");
            return ExitCode::FAILURE;
        }
    };
    match streamer::access::password::hash(&password) {
        Ok(hash) => {
            println!("{hash}");
            eprintln!("Put it in streamer.toml:\n[access]\npassword = \"{hash}\"");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("streamer hash-password: the password {error}");
            ExitCode::FAILURE
        }
    }
}

/// The password from standard input: on a terminal asked for twice without
/// echo; else its first line.
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let read_line = || -> anyhow::Result<String> {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password")?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    };
    if !stdin.is_terminal() {
        return read_line();
    }
    let _echo_off = EchoOff::new();
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
        let line = read_line();
        eprintln!();
        line
    };
    let first = ask("Password: ")?;
    let again = ask("Again: ")?;
    if first != again {
        anyhow::bail!("the two passwords differ");
    }
    Ok(first)
}

/// Turns the terminal's echo off while it lives.
struct EchoOff {
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> Self {
        // SAFETY: tcgetattr/tcsetattr on standard input with a termios we own.
        unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut termios) != 0 {
                return EchoOff { saved: None };
            }
            let saved = termios;
            termios.c_lflag &= !libc::ECHO;
            termios.c_lflag |= libc::ECHONL;
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &termios);
            EchoOff { saved: Some(saved) }
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}

fn setup(config_path: &Path, root: &Path, set_hostname: bool) -> ExitCode {
    let loaded = config::load_or_defaults(config_path);
    if !loaded.file_found {
        println!(
            "{}: no such file; using the defaults",
            config_path.display()
        );
    }
    for problem in &loaded.errors {
        println!("configuration problem: {problem}");
    }
    if loaded.network_set_aside {
        println!(
            "because of the problems in [network], the network is set up as if the \
             file had no [network] section (the defaults, and STREAMER_NETWORK__* variables)"
        );
    }
    let network = &loaded.config.network;
    let files = setup::runtime_files(network);
    let result = setup::apply(root, &files, set_hostname);
    let report = match &result {
        Ok(report) => Some(report.clone()),
        // The files were written before the hostname was set.
        Err(setup::SetupError::Hostname { .. }) => Some(setup::Report {
            written: files.iter().map(|f| f.path.clone()).collect(),
            ..setup::Report::default()
        }),
        Err(_) => None,
    };
    if let Some(report) = report {
        for path in &report.written {
            println!("wrote {}", path.display());
        }
        for path in &report.removed {
            println!("removed {}", path.display());
        }
        if let Some(name) = &report.hostname_set {
            println!("hostname set to {name}");
        }
    }
    for line in setup::summary(network) {
        println!("{line}");
    }
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("streamer setup: {error}");
            ExitCode::FAILURE
        }
    }
}

fn probe(config_path: &Path, json: bool) -> ExitCode {
    let mut hardware = probe::probe(Path::new("/"));
    probe::inspect_nodes(&mut hardware, &v4l2::device::open_node);
    let loaded = config::load_or_defaults(config_path);
    let plan = source::plan(&loaded.config, &hardware);
    if json {
        match serde_json::to_string_pretty(&hardware) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("streamer: {error}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    for note in &hardware.notes {
        println!("{note}");
    }
    match &hardware.hardware_encoder {
        Some(node) => println!("hardware H.264 encoder: {node}"),
        None => println!("hardware H.264 encoder: none"),
    }
    println!(
        "legacy camera: {}",
        hardware.legacy_camera.as_deref().unwrap_or("none")
    );
    println!(
        "libcamera camera (CSI): {}",
        if hardware.libcamera_csi {
            "yes"
        } else {
            "none"
        }
    );
    for camera in &hardware.uvc_cameras {
        println!("USB camera: {} ({})", camera.name, camera.node);
    }
    let nodes = probe::node_lines(&hardware);
    if nodes.is_empty() {
        println!("V4L2 nodes: none");
    } else {
        println!("V4L2 nodes, as they describe themselves:");
        for line in nodes {
            println!("  {line}");
        }
    }
    for problem in &loaded.errors {
        println!("configuration error: {problem}");
    }
    println!("source: {} ({})", plan.kind, plan.description);
    if let Some(reason) = &plan.reason {
        println!("why: {reason}");
    }
    ExitCode::SUCCESS
}

fn run(config_path: &Path) -> anyhow::Result<()> {
    let loaded = config::load_or_defaults(config_path);
    let target = service::init_logging(&loaded.config.log.level);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), log = ?target, "streamer starting");
    if !loaded.file_found {
        tracing::info!(path = %config_path.display(), "no configuration file; using defaults");
    }
    for error in &loaded.errors {
        tracing::error!(path = %config_path.display(), %error, "configuration error; running on defaults");
    }
    let report = config::ConfigReport {
        path: config_path.to_path_buf(),
        found: loaded.file_found,
        errors: loaded.errors.clone(),
        problem_count: loaded.problem_count,
    };
    let access = Arc::new(access_policy(&loaded));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("streamer-io")
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(loaded.config, report, access))
}

/// The access policy of `[access]`; closed (nobody gets in) when the section has
/// a mistake, so that a mistake never opens the camera to everyone.
fn access_policy(loaded: &config::Loaded) -> Access {
    let access = &loaded.config.access;
    let policy = if loaded.access_closed {
        Err("[access] has a mistake (see the configuration problems)".to_string())
    } else {
        Access::new(&access.user, &access.password).map_err(|e| e.to_string())
    };
    match policy {
        Ok(policy) if policy.locked() => {
            tracing::info!(user = %access.user, password = ?policy.password_state(), "a password is needed to watch");
            policy
        }
        Ok(policy) => {
            tracing::warn!("no access.password: anyone on the network can watch");
            policy
        }
        Err(error) => {
            tracing::error!(%error, "nobody can watch until streamer.toml is fixed");
            Access::closed()
        }
    }
}

async fn serve(
    config: Config,
    mut report: config::ConfigReport,
    access: Arc<Access>,
) -> anyhow::Result<()> {
    let framerate = f64::from(config.camera.framerate);
    let hub = Hub::new(
        HubLimits {
            max_viewers_per_address: config.server.max_viewers_per_address,
            ..HubLimits::for_frame_rate(framerate, config.server.max_viewers)
        },
        Some(framerate),
    );
    let connections = connection_limits(&config.server);
    let (listener, bind_problem) = bind(config.server.bind, config.server.port).await?;
    if let Some(problem) = bind_problem {
        tracing::error!(%problem, "configuration error");
        // First: it says where the device is not, ahead of a long list of the
        // file's problems and its "and N more" line.
        report.put_first(problem);
    }
    let address = listener.local_addr().context("listening socket")?;
    let (https, tls) = https(&config.server, address.ip(), &mut report).await;
    if !config.server.web_root.join("index.html").is_file() {
        tracing::warn!(web_root = %config.server.web_root.display(), "the web root has no index.html: the page will say the player is missing");
    }

    // Ask the video nodes what they are before any source opens one.
    let mut hardware = probe::probe(Path::new("/"));
    probe::inspect_nodes(&mut hardware, &v4l2::device::open_node);
    let hardware = Arc::new(hardware);
    for note in &hardware.notes {
        tracing::info!(%note, "hardware");
    }
    let plan = source::plan(&config, &hardware);
    tracing::info!(source = %plan.kind, description = %plan.description, reason = ?plan.reason, "source chosen");
    let settings = supervisor::SupervisorSettings {
        on_demand: config
            .camera
            .on_demand
            .then_some(supervisor::ON_DEMAND_GRACE),
        ..supervisor::SupervisorSettings::default()
    };
    let supervisor = supervisor::spawn(hub.clone(), plan, settings);

    tracing::info!(%address, "listening on http://{}", display_address(address));
    service::notify_ready();
    service::notify_status(&format!("serving on port {}", address.port()));
    if let Some(interval) = service::watchdog_interval() {
        tracing::info!(
            interval_s = interval.as_secs_f64(),
            "systemd watchdog enabled"
        );
        tokio::spawn(service::watchdog(hub.clone(), interval));
    }

    if let Some(pin) = config.gpio.privacy_led {
        match privacy_led::GpioLed::open(pin) {
            Ok(led) => {
                tracing::info!(pin, "privacy LED lit while someone watches");
                tokio::spawn(privacy_led::follow_viewers(
                    hub.clone(),
                    led,
                    privacy_led::POLL,
                ));
            }
            Err(error) => tracing::error!(%error, "no privacy LED"),
        }
    }

    let whep = if !config.webrtc.enabled {
        Whep::Off("WebRTC is turned off (webrtc.enabled = false)".into())
    } else {
        match WebRtc::start(
            &config.webrtc,
            address.ip(),
            hub.clone(),
            format!("streamer {}", env!("CARGO_PKG_VERSION")),
            report.errors.clone(),
        ) {
            Ok(webrtc) => Whep::On(webrtc),
            Err(error) => {
                tracing::error!(%error, "no WebRTC; players use the WebSocket");
                Whep::Off(format!("WebRTC is unavailable: {error}"))
            }
        }
    };
    let connections = web::connections::Connections::new(connections);
    let rtsp = if !config.rtsp.enabled {
        RtspService::Off("RTSP is turned off (rtsp.enabled = false)".into())
    } else {
        // The same policy as the web server's: one brake, one password.
        match Rtsp::start(
            &config.rtsp,
            address.ip(),
            hub.clone(),
            Arc::new(connections.clone()),
            access.clone(),
        )
        .await
        {
            Ok(server) => RtspService::On(server),
            Err(error) => {
                tracing::error!(%error, "no RTSP");
                RtspService::Off(format!("RTSP is unavailable: {error}"))
            }
        }
    };
    let updates = streamer::update::Updates::on_dbus(
        &report.path.clone(),
        config.update.allow_without_password,
    );
    let state = web::AppState {
        hub: hub.clone(),
        config: Arc::new(report),
        hardware,
        guard: Arc::new(web::guard::Guard::new(&config.server, &config.access)),
        access,
        whep,
        rtsp: rtsp.clone(),
        tls,
        updates,
    };
    let listeners = std::iter::once(web::connections::Listener::plain(listener))
        .chain(https)
        .collect();
    let served = web::serve(
        listeners,
        state,
        config.server.web_root.clone(),
        connections,
        async move {
            service::shutdown_signal().await;
            // RTSP clients go with the WebSocket and WebRTC viewers.
            if let RtspService::On(server) = &rtsp {
                server.stop();
            }
        },
        Duration::from_secs(2),
    )
    .await;
    service::notify_stopping();
    tokio::task::spawn_blocking(move || supervisor.stop(Duration::from_secs(2)))
        .await
        .context("stopping the source")?;
    served.context("HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// The connection limits: `server.max_connections_per_address` from one address,
/// and in all what the open-file limit leaves (see
/// [`web::connections::ConnectionLimits::from_file_limit`]).
fn connection_limits(server: &ServerConfig) -> web::connections::ConnectionLimits {
    use web::connections::{open_file_limit, ConnectionLimits};
    // Unlimited or unreadable: as many as the appliance's unit allows.
    let files = open_file_limit().unwrap_or(2048);
    let limits = ConnectionLimits::from_file_limit(files, server.max_connections_per_address);
    tracing::info!(
        open_files = files,
        connections = limits.total,
        per_address = limits.per_address,
        "connection limits"
    );
    if server.max_viewers > limits.total {
        tracing::warn!(
            max_viewers = server.max_viewers,
            connections = limits.total,
            "server.max_viewers is more than the open-file limit allows connections; \
             raise LimitNOFILE to serve that many"
        );
    }
    limits
}

/// HTTPS, when `server.tls_cert` and `server.tls_key` are set: the certificate
/// checked ([`web::tls::load`]) and `server.tls_port` bound on `ip` (the address
/// plain HTTP listens on). When either fails, HTTPS stays off: the reason is
/// logged, put first among the configuration's problems (the player's banner)
/// and shown in `/api/status` `tls`, and plain HTTP serves everything.
async fn https(
    server: &ServerConfig,
    ip: IpAddr,
    report: &mut config::ConfigReport,
) -> (Option<web::connections::Listener>, web::tls::TlsStatus) {
    use web::tls::TlsStatus;
    if server.tls_cert.as_os_str().is_empty() || server.tls_key.as_os_str().is_empty() {
        // One without the other is a configuration error, reported as such.
        return (None, TlsStatus::off());
    }
    let mut fail = |error: String| {
        tracing::warn!(%error, "no HTTPS; serving plain HTTP only");
        report.put_first(format!("{error}; serving plain HTTP only"));
        (None, TlsStatus::failed(error))
    };
    let certificate = match web::tls::load(
        &server.tls_cert,
        &server.tls_key,
        std::time::SystemTime::now(),
    ) {
        Ok(certificate) => certificate,
        Err(error) => return fail(error.to_string()),
    };
    let listener = match listen(ip, server.tls_port).await {
        Ok(listener) => listener,
        Err(error) => {
            return fail(format!(
                "server.tls_port: cannot listen on {} ({error})",
                SocketAddr::new(ip, server.tls_port)
            ))
        }
    };
    let address = match listener.local_addr() {
        Ok(address) => address,
        Err(error) => return fail(format!("server.tls_port: listening socket: {error}")),
    };
    for warning in &certificate.warnings {
        tracing::warn!(%warning, "HTTPS certificate");
    }
    tracing::info!(
        %address,
        expires = %certificate.expires,
        "listening on https://{}; plain HTTP redirects there",
        display_address(address)
    );
    tokio::spawn(web::tls::watch_expiry(
        server.tls_cert.clone(),
        certificate.not_after,
        certificate.expires.clone(),
    ));
    let status = TlsStatus::serving(address.port(), &certificate);
    (
        Some(web::connections::Listener::tls(
            listener,
            certificate.acceptor,
        )),
        status,
    )
}

/// Linux's "address family not supported" (no IPv6 in the kernel).
const EAFNOSUPPORT: i32 = 97;

/// How long a `server.bind` address that the device does not have is waited for
/// (the network may still be coming up) before serving on the default address.
/// Below the unit's `WatchdogSec`, which may run before the service is ready.
const BIND_WAIT: Duration = Duration::from_secs(5);

/// Binds the listening socket on `ip`, or, when the device does not have that
/// address (after [`BIND_WAIT`]), on the default address with the same port, and
/// then also returns the problem to report like a configuration error. Fails
/// when the port cannot be used at all (taken, or below 1024 without the right).
async fn bind(ip: IpAddr, port: u16) -> anyhow::Result<(TcpListener, Option<String>)> {
    let cannot = |ip: IpAddr| {
        format!(
            "cannot listen on {} (server.bind, server.port)",
            SocketAddr::new(ip, port)
        )
    };
    let default = ServerConfig::default().bind;
    let deadline = tokio::time::Instant::now() + BIND_WAIT;
    let mut waiting = false;
    let error = loop {
        match listen(ip, port).await {
            Ok(listener) => return Ok((listener, None)),
            Err(error) if ip != default && address_missing(&error) => {
                if tokio::time::Instant::now() >= deadline {
                    break error;
                }
                if !waiting {
                    waiting = true;
                    service::notify_status(&format!("waiting for the address {ip} (server.bind)"));
                    tracing::info!(%ip, %error, "the server.bind address is not here yet; waiting");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error).with_context(|| cannot(ip)),
        }
    };
    let listener = listen(default, port)
        .await
        .with_context(|| cannot(default))?;
    let serving = listener.local_addr().context("listening socket")?;
    let problem = format!(
        "server.bind: {ip} is not an address of this device ({error}); \
         serving on every address ({}) instead",
        serving.ip()
    );
    Ok((listener, Some(problem)))
}

/// Whether binding failed because the device does not have the address (or its
/// kind: IPv6 on a kernel without it).
fn address_missing(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::AddrNotAvailable | ErrorKind::Unsupported
    ) || error.raw_os_error() == Some(EAFNOSUPPORT)
}

/// Binds `ip`:`port`. `::` falls back to `0.0.0.0` on a machine without IPv6, so
/// the default works everywhere.
async fn listen(ip: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    match TcpListener::bind(SocketAddr::new(ip, port)).await {
        Err(error) if ip.is_unspecified() && ip.is_ipv6() && address_missing(&error) => {
            tracing::warn!(%error, "no IPv6 here; listening on IPv4 only");
            TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).await
        }
        result => result,
    }
}

/// An address a person can paste into a browser.
fn display_address(address: SocketAddr) -> String {
    if address.ip().is_unspecified() {
        format!("localhost:{}", address.port())
    } else {
        address.to_string()
    }
}
