//! The real `streamer` binary as a child process on a loopback port, for end-to-end
//! tests and the load benchmark.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The variables of a small, quick streamer for tests of its HTTP side: the
/// test pattern at 320x240 and 15 fps, no RTSP, WebRTC on a UDP port of the
/// system's choice. A test's own variables go after these (later ones win).
pub const SMALL_TEST_PATTERN: [(&str, &str); 6] = [
    ("STREAMER_CAMERA__SOURCE", "test"),
    ("STREAMER_CAMERA__WIDTH", "320"),
    ("STREAMER_CAMERA__HEIGHT", "240"),
    ("STREAMER_CAMERA__FRAMERATE", "15"),
    ("STREAMER_RTSP__ENABLED", "false"),
    ("STREAMER_WEBRTC__UDP_PORT", "0"),
];

/// A running `streamer` process.
pub struct StreamerProcess {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl StreamerProcess {
    /// Starts `binary` with `--config config` and the given `STREAMER_*` variables,
    /// listening on 127.0.0.1 port 0, and waits until it says where it listens.
    /// Panics with its log when it does not start within 20 s.
    pub fn start(binary: &Path, config: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with_runner(&[], binary, config, env)
    }

    /// Like [`StreamerProcess::start`], with the binary run by `runner` (e.g.
    /// `qemu-aarch64-static -L /usr/aarch64-linux-gnu`) when it is not empty.
    pub fn start_with_runner(
        runner: &[&str],
        binary: &Path,
        config: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = match runner.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .arg("--config")
            .arg(config)
            .env("STREAMER_SERVER__BIND", "127.0.0.1")
            .env("STREAMER_SERVER__PORT", "0")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let log = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        spawn_log_reader(stderr, log.clone(), Some(address_tx));
        spawn_log_reader(stdout, log.clone(), None);
        let address = match address_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "streamer did not report its address; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        StreamerProcess {
            child,
            address,
            log,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends a signal by name (`TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Blocking HTTP/1.1 GET on loopback: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.address, path)
    }

    /// Polls `path` until it answers 200, up to `timeout`.
    pub fn wait_for_ok(&self, path: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.get(path);
            if status == 200 {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} still answers {status}: {body}\nlog:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl StreamerProcess {
    /// `/api/status` as JSON.
    pub fn status(&self) -> serde_json::Value {
        let body = self.wait_for_ok("/api/status", Duration::from_secs(10));
        serde_json::from_str(&body).expect("/api/status is JSON")
    }

    /// Waits until the source is live and the stream is known (a keyframe was
    /// published), so that a viewer can be answered; the status then.
    pub fn wait_live(&self) -> serde_json::Value {
        self.wait_live_as(None)
    }

    /// [`StreamerProcess::wait_live`], asking `/api/status` with this
    /// `Authorization` value (a server with a password).
    pub fn wait_live_as(&self, authorization: Option<&str>) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = match authorization {
                None => self.status(),
                Some(value) => {
                    let more = format!("Authorization: {value}\r\n");
                    let (code, body) = http_get_with(self.address, "/api/status", &more);
                    match code {
                        200 => serde_json::from_str(&body).expect("/api/status is JSON"),
                        _ => serde_json::json!({ "answered": code, "body": body }),
                    }
                }
            };
            if status["source"]["state"] == "live"
                && !status["stream"].is_null()
                && status["video"]["keyframes"].as_u64().unwrap_or(0) > 0
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no live video within 30 s: {status}\nlog:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// A value from the process's `/proc/PID/status`, e.g. `VmRSS` in kB.
    pub fn proc_status(&self, key: &str) -> u64 {
        proc_status(self.pid(), key)
    }
}

/// A value from `/proc/PID/status`, e.g. `VmRSS` in kB.
pub fn proc_status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

impl Drop for StreamerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_log_reader(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    address_tx: Option<mpsc::Sender<SocketAddr>>,
) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &address_tx {
                if let Some(address) = listening_address(&line) {
                    let _ = tx.send(address);
                }
            }
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

/// The address in the streamer's "listening on http://ADDRESS" log line.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let address = &rest[..end];
    // Listening on every address is shown as localhost.
    match address.strip_prefix("localhost:") {
        Some(port) => Some(SocketAddr::from(([127, 0, 0, 1], port.parse().ok()?))),
        None => address.parse().ok(),
    }
}

/// Blocking HTTP/1.1 GET: status and body (`Connection: close`).
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    http_get_with(address, path, "")
}

/// `GET path` with more header lines (`more`, each ending in CRLF), e.g.
/// `Authorization`; the status code (0 when none came) and the body.
pub fn http_get_with(address: SocketAddr, path: &str, more: &str) -> (u16, String) {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))
    else {
        return (0, String::from("connection refused"));
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{more}Connection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::from("write failed"));
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    status_and_body(&String::from_utf8_lossy(&response))
}

/// The status code (0 when there is none) and the body of a whole HTTP/1.1
/// response.
pub fn status_and_body(response: &str) -> (u16, String) {
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}
