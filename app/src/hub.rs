//! The hub: one producer, many viewers.
//!
//! The source's supervisor [publishes](Hub::publish) access units; the hub turns each
//! into one [`Frame`] (Annex-B [`Bytes`], SPS+PPS in front of every keyframe) and
//! appends a reference to it to every viewer's queue. Nothing is copied per viewer.
//!
//! Invariants:
//! - The producer never waits for a viewer: publishing takes short, non-async locks
//!   and never awaits.
//! - Every viewer's queue is bounded (frames and bytes). A viewer that falls behind
//!   loses its queued frames, skips to the next keyframe and resumes there; its
//!   drops are counted.
//! - A viewer's first frame is a keyframe with SPS+PPS: a joining viewer is given
//!   the most recent keyframe and every frame since (the GOP cache) at once.
//! - Memory is bounded whatever the viewers do: at most `max_viewers` queues, each
//!   bounded, plus a bounded GOP cache.
//! - Viewers may ask for a keyframe ([`Hub::request_keyframe`], WebRTC's PLI/FIR);
//!   at most one request per [`KEYFRAME_REQUEST_INTERVAL`] reaches the source,
//!   however many viewers ask.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::h264::nal::START_CODE;
use crate::h264::{AccessUnit, Nal, NalType, Sps};

/// Microseconds since the Unix epoch (0 for times before it).
pub fn unix_micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One access unit as sent to viewers.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Number of the frame since the hub started, from 0.
    pub seq: u64,
    /// The access unit in Annex-B form; SPS+PPS first when `keyframe`.
    pub data: Bytes,
    /// A decoder can start here.
    pub keyframe: bool,
    /// When the source captured it, µs since the Unix epoch.
    pub captured_us: u64,
    /// When the hub published it, µs since the Unix epoch.
    pub published_us: u64,
}

/// Stream parameters a player needs, from the SPS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamInfo {
    /// RFC 6381 codec string, e.g. `avc1.640028`.
    pub codec: String,
    /// Width in pixels, after cropping.
    pub width: u32,
    /// Height in pixels, after cropping.
    pub height: u32,
    /// Frames per second: from the SPS timing info, else from the configuration.
    pub fps: Option<f64>,
}

/// What the source is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Starting (or restarting) and no frame yet.
    Starting,
    /// Frames are flowing.
    Live,
    /// Failed or stalled; the supervisor is retrying.
    Offline,
    /// Stopped on purpose because nobody watches (`camera.on_demand`); it starts
    /// when a viewer comes.
    Idle,
}

/// The source as reported to viewers and on `/api/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStatus {
    /// Source kind, e.g. `test` or `file`.
    pub kind: String,
    /// What it reads, e.g. the file path.
    pub description: String,
    /// What it is doing.
    pub state: SourceState,
    /// Why it is offline, or why this source was chosen; plain words.
    pub message: Option<String>,
    /// How many times it was restarted after a failure or stall.
    pub restarts: u64,
}

/// What the H.264 reader skipped of the source's output, totals since the server
/// started: input that is not H.264 or is too large to be real video. Bounded
/// memory has a price, and this is where it shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InputStats {
    /// Bytes skipped: outside any NAL unit (no start code before them), or in NAL
    /// units or access units over the size bound.
    pub skipped_bytes: u64,
    /// NAL units skipped because they exceeded the size bound (8 MiB).
    pub oversize_nal_units: u64,
    /// Access units skipped because they exceeded the size bound (8 MiB).
    pub oversize_access_units: u64,
    /// SPS or PPS NAL units that did not parse.
    pub bad_parameter_sets: u64,
}

impl InputStats {
    /// `self - earlier`, field by field (zero where `earlier` is larger).
    pub fn since(&self, earlier: &InputStats) -> InputStats {
        InputStats {
            skipped_bytes: self.skipped_bytes.saturating_sub(earlier.skipped_bytes),
            oversize_nal_units: self
                .oversize_nal_units
                .saturating_sub(earlier.oversize_nal_units),
            oversize_access_units: self
                .oversize_access_units
                .saturating_sub(earlier.oversize_access_units),
            bad_parameter_sets: self
                .bad_parameter_sets
                .saturating_sub(earlier.bad_parameter_sets),
        }
    }

    /// `self + other`, field by field.
    pub fn plus(&self, other: &InputStats) -> InputStats {
        InputStats {
            skipped_bytes: self.skipped_bytes.saturating_add(other.skipped_bytes),
            oversize_nal_units: self
                .oversize_nal_units
                .saturating_add(other.oversize_nal_units),
            oversize_access_units: self
                .oversize_access_units
                .saturating_add(other.oversize_access_units),
            bad_parameter_sets: self
                .bad_parameter_sets
                .saturating_add(other.bad_parameter_sets),
        }
    }
}

impl Default for SourceStatus {
    fn default() -> Self {
        SourceStatus {
            kind: "none".into(),
            description: String::new(),
            state: SourceState::Starting,
            message: None,
            restarts: 0,
        }
    }
}

/// What a viewer receives, in order.
#[derive(Debug, Clone)]
pub enum Item {
    /// Stream parameters, before the first frame that uses them.
    Stream(Arc<StreamInfo>),
    /// The source's state changed.
    Source(Arc<SourceStatus>),
    /// The next `frames` frames are the backlog of a joining viewer.
    Join {
        /// How many backlog frames follow.
        frames: usize,
    },
    /// The viewer fell behind; `dropped` frames were skipped and a keyframe follows.
    Resync {
        /// Frames skipped this time.
        dropped: u64,
    },
    /// One access unit.
    Frame(Frame),
}

/// How a viewer receives the stream, for `/api/status` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `GET /ws`: Annex-B access units in WebSocket messages.
    WebSocket,
    /// WHEP: RTP over WebRTC (SRTP on the one UDP port).
    WebRtc,
    /// RTSP: RTP interleaved in the RTSP connection, or over UDP.
    Rtsp,
    /// Inside the server (tests, the privacy LED's own watcher).
    Internal,
}

impl Transport {
    /// Every transport, in the order `/metrics` lists them.
    pub const ALL: [Transport; 4] = [
        Transport::WebSocket,
        Transport::WebRtc,
        Transport::Rtsp,
        Transport::Internal,
    ];

    /// The name used in `/api/status` and as the `/metrics` label.
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::WebRtc => "webrtc",
            Transport::Rtsp => "rtsp",
            Transport::Internal => "internal",
        }
    }
}

/// At most one keyframe request per this interval is passed to the source: a
/// keyframe is several times the size of other frames, and every viewer gets it.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// Bounds on memory and viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubLimits {
    /// Frames one viewer may have queued before it is resynchronised.
    pub viewer_queue_frames: usize,
    /// Bytes one viewer may have queued before it is resynchronised.
    pub viewer_queue_bytes: usize,
    /// Frames kept since the last keyframe for joining viewers.
    pub gop_cache_frames: usize,
    /// Bytes kept since the last keyframe for joining viewers.
    pub gop_cache_bytes: usize,
    /// Viewers at once.
    pub max_viewers: usize,
    /// Viewers at once from one IP address (IPv4-mapped IPv6 addresses count as
    /// their IPv4 address).
    pub max_viewers_per_address: usize,
}

impl HubLimits {
    /// Limits for a stream of about `fps` frames per second: a viewer may be up to
    /// two seconds (at least 20 frames, at most 4 MiB) behind before it skips ahead.
    /// One address may take every viewer place; set `max_viewers_per_address` to
    /// limit that.
    pub fn for_frame_rate(fps: f64, max_viewers: usize) -> Self {
        let two_seconds = (fps * 2.0).ceil().clamp(20.0, 240.0) as usize;
        HubLimits {
            viewer_queue_frames: two_seconds,
            viewer_queue_bytes: 4 << 20,
            gop_cache_frames: 1200,
            gop_cache_bytes: 16 << 20,
            max_viewers,
            max_viewers_per_address: max_viewers,
        }
    }
}

/// Why a viewer was turned away.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubscribeError {
    /// `max_viewers` are already watching.
    #[error("too many viewers ({0} already watching)")]
    Full(usize),
    /// `max_viewers_per_address` are already watching from the viewer's address.
    #[error(
        "too many viewers from your address ({0} already watching from it; \
         the limit is server.max_viewers_per_address)"
    )]
    AddressFull(usize),
    /// The hub is shutting down.
    #[error("the server is shutting down")]
    Closed,
}

/// What happened to a published access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Sent to the viewers, with this sequence number.
    Frame(u64),
    /// Dropped: no keyframe yet (nothing could decode it).
    WaitingForKeyframe,
    /// Dropped: a keyframe whose SPS/PPS the hub has never seen.
    MissingParameterSets,
    /// Dropped: no picture data.
    Empty,
}

/// Counters over the hub's life.
#[derive(Debug, Default)]
struct Counters {
    frames: AtomicU64,
    bytes: AtomicU64,
    keyframes: AtomicU64,
    undecodable: AtomicU64,
    viewer_drops: AtomicU64,
    viewer_resyncs: AtomicU64,
    viewers_total: AtomicU64,
    viewers_rejected: AtomicU64,
    viewers_rejected_address: AtomicU64,
    keyframe_requests: AtomicU64,
    keyframe_requests_forwarded: AtomicU64,
}

/// A viewer's statistics, for `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ViewerStats {
    /// Viewer number since the start.
    pub id: u64,
    /// Peer address.
    pub remote: Option<SocketAddr>,
    /// How it receives the stream.
    pub transport: Transport,
    /// Seconds since it connected.
    pub connected_s: f64,
    /// Frames written to its socket.
    pub sent_frames: u64,
    /// Bytes written to its socket.
    pub sent_bytes: u64,
    /// Frames it lost by falling behind.
    pub dropped_frames: u64,
    /// Times it fell behind and skipped to a keyframe.
    pub resyncs: u64,
    /// Frames queued for it right now.
    pub queued_frames: usize,
}

/// Everything `/api/status` and `/metrics` report about the hub.
#[derive(Debug, Clone, Serialize)]
pub struct HubSnapshot {
    /// Stream parameters, once known.
    pub stream: Option<StreamInfo>,
    /// The source.
    pub source: SourceStatus,
    /// Frames published.
    pub frames: u64,
    /// Bytes published.
    pub bytes: u64,
    /// Keyframes published.
    pub keyframes: u64,
    /// Access units dropped because no viewer could decode them.
    pub undecodable: u64,
    /// What the H.264 reader skipped of the source's output.
    pub input: InputStats,
    /// Frames lost by viewers that fell behind, all viewers ever.
    pub viewer_drops: u64,
    /// Times a viewer fell behind, all viewers ever.
    pub viewer_resyncs: u64,
    /// Viewers that ever connected.
    pub viewers_total: u64,
    /// Viewers turned away because the hub was full.
    pub viewers_rejected: u64,
    /// Viewers turned away because their address had `max_viewers_per_address`
    /// watching.
    pub viewers_rejected_address: u64,
    /// Keyframe requests from viewers (WebRTC PLI/FIR).
    pub keyframe_requests: u64,
    /// Keyframe requests passed to the source (at most one per
    /// [`KEYFRAME_REQUEST_INTERVAL`]).
    pub keyframe_requests_forwarded: u64,
    /// Frames in the GOP cache.
    pub gop_frames: usize,
    /// Bytes in the GOP cache.
    pub gop_bytes: usize,
    /// Seconds since the last frame, if any.
    pub last_frame_age_s: Option<f64>,
    /// Viewers watching now.
    pub viewers: Vec<ViewerStats>,
}

/// The fan-out point between the source and the viewers. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    limits: HubLimits,
    fallback_fps: Option<f64>,
    started: Instant,
    counters: Counters,
    state: Mutex<State>,
    /// Counts the keyframe requests passed to the source; the source watches it.
    keyframe_requests: watch::Sender<u64>,
    /// When the last keyframe request was passed to the source.
    last_keyframe_request: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct State {
    /// Latest SPS and PPS NAL units, by id.
    sps: BTreeMap<u32, Nal>,
    pps: BTreeMap<u32, Nal>,
    stream: Option<Arc<StreamInfo>>,
    source: Arc<SourceStatus>,
    /// What the H.264 reader skipped of the source's output so far.
    input: InputStats,
    /// The last keyframe and every frame since; empty when too large or none yet.
    gop: Vec<Frame>,
    gop_bytes: usize,
    next_seq: u64,
    next_viewer_id: u64,
    last_frame: Option<Instant>,
    viewers: Vec<Arc<ViewerShared>>,
    closed: bool,
}

impl Hub {
    /// A hub with these limits. `fallback_fps` is reported when the SPS has no timing.
    pub fn new(limits: HubLimits, fallback_fps: Option<f64>) -> Self {
        Hub {
            inner: Arc::new(Inner {
                limits,
                fallback_fps,
                started: Instant::now(),
                counters: Counters::default(),
                state: Mutex::new(State::default()),
                keyframe_requests: watch::Sender::new(0),
                last_keyframe_request: Mutex::new(None),
            }),
        }
    }

    /// The limits it was made with.
    pub fn limits(&self) -> HubLimits {
        self.inner.limits
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent in a
        // way that matters more than losing the stream: carry on with it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes one access unit to every viewer. Never blocks on viewers.
    pub fn publish(&self, au: &AccessUnit, captured: SystemTime) -> Published {
        if !au.nals.iter().any(|n| n.nal_type().is_vcl()) {
            return Published::Empty;
        }
        let mut state = self.state();
        if state.closed {
            return Published::Empty;
        }
        let stream_changed = state.learn_parameter_sets(au, self.inner.fallback_fps);
        if stream_changed {
            if let Some(info) = state.stream.clone() {
                tracing::info!(codec = %info.codec, width = info.width, height = info.height, fps = ?info.fps, "stream parameters");
                for viewer in &state.viewers {
                    viewer.push_item(Item::Stream(info.clone()));
                }
            }
        }

        let keyframe = au.is_keyframe();
        if !keyframe && state.gop.is_empty() && state.next_seq == 0 {
            self.inner
                .counters
                .undecodable
                .fetch_add(1, Ordering::Relaxed);
            return Published::WaitingForKeyframe;
        }
        let data = if keyframe {
            match state.keyframe_with_parameter_sets(au) {
                Some(data) => data,
                None => {
                    self.inner
                        .counters
                        .undecodable
                        .fetch_add(1, Ordering::Relaxed);
                    return Published::MissingParameterSets;
                }
            }
        } else {
            au.to_annex_b()
        };

        let frame = Frame {
            seq: state.next_seq,
            data,
            keyframe,
            captured_us: unix_micros(captured),
            published_us: unix_micros(SystemTime::now()),
        };
        state.next_seq += 1;
        state.last_frame = Some(Instant::now());
        let counters = &self.inner.counters;
        counters.frames.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes
            .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
        if keyframe {
            counters.keyframes.fetch_add(1, Ordering::Relaxed);
        }

        state.remember_for_joiners(&frame, &self.inner.limits);
        for viewer in &state.viewers {
            viewer.push_frame(&frame, &self.inner.limits, counters);
        }
        Published::Frame(frame.seq)
    }

    /// Reports a change of the source's state to every viewer.
    pub fn set_source_status(&self, status: SourceStatus) {
        let mut state = self.state();
        if *state.source == status {
            return;
        }
        let status = Arc::new(status);
        state.source = status.clone();
        for viewer in &state.viewers {
            viewer.push_item(Item::Source(status.clone()));
        }
    }

    /// Adds to what the H.264 reader skipped of the source's output.
    pub fn add_input_stats(&self, more: &InputStats) {
        let mut state = self.state();
        state.input = state.input.plus(more);
    }

    /// The source's state as last reported.
    pub fn source_status(&self) -> SourceStatus {
        (*self.state().source).clone()
    }

    /// A viewer asks for a keyframe (it lost one, or its decoder needs one). Passed
    /// to the source unless one was passed within [`KEYFRAME_REQUEST_INTERVAL`];
    /// returns whether it was. A source that cannot make keyframes on request
    /// ignores it, and the viewer waits for the next one.
    pub fn request_keyframe(&self) -> bool {
        let counters = &self.inner.counters;
        counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        {
            let mut last = self
                .inner
                .last_keyframe_request
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL) {
                return false;
            }
            *last = Some(now);
        }
        counters
            .keyframe_requests_forwarded
            .fetch_add(1, Ordering::Relaxed);
        self.inner.keyframe_requests.send_modify(|n| *n += 1);
        true
    }

    /// For the source: changes each time a keyframe request is passed on
    /// ([`Hub::request_keyframe`]). `has_changed` tells a running source, without
    /// waiting, that it should make the next picture a keyframe.
    pub fn keyframe_requests(&self) -> watch::Receiver<u64> {
        self.inner.keyframe_requests.subscribe()
    }

    /// Adds a viewer. Its queue starts with the stream parameters, the source's
    /// state and, when a keyframe has been seen, the backlog since it.
    pub fn subscribe(
        &self,
        remote: Option<SocketAddr>,
        transport: Transport,
    ) -> Result<Viewer, SubscribeError> {
        let mut state = self.state();
        if state.closed {
            return Err(SubscribeError::Closed);
        }
        if state.viewers.len() >= self.inner.limits.max_viewers {
            self.inner
                .counters
                .viewers_rejected
                .fetch_add(1, Ordering::Relaxed);
            return Err(SubscribeError::Full(state.viewers.len()));
        }
        if let Some(address) = remote.map(|r| r.ip().to_canonical()) {
            let from_address = state
                .viewers
                .iter()
                .filter(|v| v.remote.map(|r| r.ip().to_canonical()) == Some(address))
                .count();
            if from_address >= self.inner.limits.max_viewers_per_address {
                self.inner
                    .counters
                    .viewers_rejected_address
                    .fetch_add(1, Ordering::Relaxed);
                return Err(SubscribeError::AddressFull(from_address));
            }
        }
        let id = state.next_viewer_id;
        state.next_viewer_id += 1;
        let queue = state.joining_queue();
        let shared = Arc::new(ViewerShared {
            id,
            remote,
            transport,
            connected: Instant::now(),
            queue: Mutex::new(queue),
            notify: Notify::new(),
            sent_frames: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
        });
        shared.notify.notify_one();
        state.viewers.push(shared.clone());
        self.inner
            .counters
            .viewers_total
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(viewer = id, remote = ?remote, transport = transport.name(), viewers = state.viewers.len(), "viewer joined");
        Ok(Viewer {
            shared,
            hub: self.clone(),
        })
    }

    fn unsubscribe(&self, id: u64) {
        let mut state = self.state();
        state.viewers.retain(|v| v.id != id);
        tracing::info!(viewer = id, viewers = state.viewers.len(), "viewer left");
    }

    /// Ends every viewer's stream (server shutdown); later subscriptions fail.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        for viewer in &state.viewers {
            viewer.close();
        }
    }

    /// How many viewers are watching.
    pub fn viewer_count(&self) -> usize {
        self.state().viewers.len()
    }

    /// Time since the last published frame, `None` before the first.
    pub fn last_frame_age(&self) -> Option<Duration> {
        self.state().last_frame.map(|t| t.elapsed())
    }

    /// Time since the hub was made.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Current stream parameters, once an SPS was seen.
    pub fn stream_info(&self) -> Option<StreamInfo> {
        self.state().stream.as_deref().cloned()
    }

    /// The stream's parameters, waiting up to `wait` for a source that is starting
    /// (on demand, or after a restart) to send them.
    pub async fn stream_info_within(&self, wait: Duration) -> Option<StreamInfo> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(stream) = self.stream_info() {
                return Some(stream);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The latest sequence and picture parameter sets (the lowest ids when there
    /// are several), for out-of-band descriptions of the stream (RTSP's SDP);
    /// `None` before both were seen.
    pub fn parameter_sets(&self) -> Option<(Nal, Nal)> {
        let state = self.state();
        let sps = state.sps.values().next()?.clone();
        let pps = state.pps.values().next()?.clone();
        Some((sps, pps))
    }

    /// The GOP cache: the latest keyframe (with its SPS+PPS) and every frame since,
    /// in order, sequence numbers consecutive; empty before the first keyframe and
    /// while the keyframe interval is too long to cache. For a consumer that decodes
    /// the current picture (`/snapshot.jpg`) without being a viewer: no viewer
    /// place, no queue, no camera start. Cloning a [`Frame`] shares its bytes.
    pub fn gop(&self) -> Vec<Frame> {
        self.state().gop.clone()
    }

    /// Counters, source, stream and viewers, for status and metrics.
    pub fn snapshot(&self) -> HubSnapshot {
        let state = self.state();
        let c = &self.inner.counters;
        let viewers = state
            .viewers
            .iter()
            .map(|v| {
                let q = v.lock();
                ViewerStats {
                    id: v.id,
                    remote: v.remote,
                    transport: v.transport,
                    connected_s: v.connected.elapsed().as_secs_f64(),
                    sent_frames: v.sent_frames.load(Ordering::Relaxed),
                    sent_bytes: v.sent_bytes.load(Ordering::Relaxed),
                    dropped_frames: q.dropped_total,
                    resyncs: q.resyncs,
                    queued_frames: q.frames,
                }
            })
            .collect();
        HubSnapshot {
            stream: state.stream.as_deref().cloned(),
            source: (*state.source).clone(),
            frames: c.frames.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            keyframes: c.keyframes.load(Ordering::Relaxed),
            undecodable: c.undecodable.load(Ordering::Relaxed),
            input: state.input,
            viewer_drops: c.viewer_drops.load(Ordering::Relaxed),
            viewer_resyncs: c.viewer_resyncs.load(Ordering::Relaxed),
            viewers_total: c.viewers_total.load(Ordering::Relaxed),
            viewers_rejected: c.viewers_rejected.load(Ordering::Relaxed),
            viewers_rejected_address: c.viewers_rejected_address.load(Ordering::Relaxed),
            keyframe_requests: c.keyframe_requests.load(Ordering::Relaxed),
            keyframe_requests_forwarded: c.keyframe_requests_forwarded.load(Ordering::Relaxed),
            gop_frames: state.gop.len(),
            gop_bytes: state.gop_bytes,
            last_frame_age_s: state.last_frame.map(|t| t.elapsed().as_secs_f64()),
            viewers,
        }
    }

    /// Debug self-check of the hub's bookkeeping; panics when an invariant is broken.
    pub fn check_invariants(&self) {
        let state = self.state();
        let limits = &self.inner.limits;
        assert!(state.gop.len() <= limits.gop_cache_frames);
        assert!(state.gop_bytes <= limits.gop_cache_bytes);
        assert_eq!(
            state.gop_bytes,
            state.gop.iter().map(|f| f.data.len()).sum::<usize>()
        );
        assert!(state.gop.first().is_none_or(|f| f.keyframe));
        assert!(state.viewers.len() <= limits.max_viewers);
        for viewer in &state.viewers {
            viewer.lock().check_invariants(limits);
        }
    }
}

impl State {
    /// A joining viewer's queue: the stream parameters, the source's state and,
    /// when a keyframe has been seen, the backlog since it.
    fn joining_queue(&self) -> ViewerQueue {
        let mut queue = ViewerQueue::default();
        if let Some(stream) = &self.stream {
            queue.push_item(Item::Stream(stream.clone()));
        }
        queue.push_item(Item::Source(self.source.clone()));
        if self.gop.is_empty() {
            // No keyframe to start from: wait for the next one.
            queue.waiting_for_keyframe = true;
            queue.announce_resync = false;
        } else {
            queue.push_item(Item::Join {
                frames: self.gop.len(),
            });
            for frame in &self.gop {
                queue.push_backlog(frame.clone());
            }
        }
        queue
    }

    /// Remembers SPS/PPS units of `au`; returns true when the stream info changed.
    fn learn_parameter_sets(&mut self, au: &AccessUnit, fallback_fps: Option<f64>) -> bool {
        let mut changed = false;
        for nal in &au.nals {
            match nal.nal_type() {
                NalType::Sps => match Sps::parse(nal.data()) {
                    Ok(sps) => {
                        if self.sps.get(&sps.id) != Some(nal) {
                            self.sps.insert(sps.id, nal.clone());
                            let info = StreamInfo {
                                codec: sps.codec_string(),
                                width: sps.width,
                                height: sps.height,
                                fps: sps.frame_rate.or(fallback_fps),
                            };
                            if self.stream.as_deref() != Some(&info) {
                                self.stream = Some(Arc::new(info));
                                changed = true;
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "ignoring a sequence parameter set that does not parse")
                    }
                },
                NalType::Pps => match crate::h264::pps::Pps::parse(nal.data()) {
                    Ok(pps) => {
                        self.pps.insert(pps.id, nal.clone());
                    }
                    Err(error) => {
                        tracing::warn!(%error, "ignoring a picture parameter set that does not parse")
                    }
                },
                _ => {}
            }
        }
        changed
    }

    /// The keyframe as Annex-B with every known SPS and PPS in front, unless it
    /// carries its own. `None` when the hub has no SPS and PPS that parse (from this
    /// access unit or before): no player could decode it, nor even be set up for it.
    fn keyframe_with_parameter_sets(&self, au: &AccessUnit) -> Option<Bytes> {
        if self.sps.is_empty() || self.pps.is_empty() {
            return None;
        }
        let has_sps = au.contains(NalType::Sps);
        let has_pps = au.contains(NalType::Pps);
        if has_sps && has_pps {
            return Some(au.to_annex_b());
        }
        let mut prefix: Vec<&Nal> = Vec::new();
        if !has_sps {
            prefix.extend(self.sps.values());
        }
        if !has_pps {
            prefix.extend(self.pps.values());
        }
        let prefix_len: usize = prefix
            .iter()
            .map(|n| START_CODE.len() + n.data().len())
            .sum();
        let mut out = BytesMut::with_capacity(prefix_len + au.annex_b_len());
        // An access unit delimiter, if any, must stay first.
        let (aud, rest): (Vec<&Nal>, Vec<&Nal>) =
            au.nals.iter().partition(|n| n.nal_type() == NalType::Aud);
        for nal in aud.into_iter().chain(prefix).chain(rest) {
            out.put_slice(&START_CODE);
            out.put_slice(nal.data());
        }
        Some(out.freeze())
    }

    fn remember_for_joiners(&mut self, frame: &Frame, limits: &HubLimits) {
        if frame.keyframe {
            self.gop.clear();
            self.gop_bytes = 0;
        } else if self.gop.is_empty() {
            return;
        }
        let len = frame.data.len();
        if self.gop.len() + 1 > limits.gop_cache_frames
            || self.gop_bytes + len > limits.gop_cache_bytes
        {
            // Too long since the last keyframe to replay it all: joiners wait for
            // the next keyframe instead.
            tracing::warn!(
                frames = self.gop.len(),
                bytes = self.gop_bytes,
                "keyframe interval too long for the join cache; new viewers wait for the next keyframe"
            );
            self.gop.clear();
            self.gop_bytes = 0;
            return;
        }
        self.gop.push(frame.clone());
        self.gop_bytes += len;
    }
}

/// One viewer's subscription. Dropping it removes the viewer from the hub.
pub struct Viewer {
    shared: Arc<ViewerShared>,
    hub: Hub,
}

impl Viewer {
    /// The viewer's number.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Waits for items, then moves up to `max` of them into `out`. Returns false
    /// once the hub is closed and everything was taken.
    pub async fn recv(&self, out: &mut Vec<Item>, max: usize) -> bool {
        loop {
            {
                let mut queue = self.shared.lock();
                if !queue.items.is_empty() {
                    queue.take(out, max);
                    return true;
                }
                if queue.closed {
                    return false;
                }
            }
            self.shared.notify.notified().await;
        }
    }

    /// Starts this viewer over as if it had just joined: what is queued is
    /// replaced by the stream parameters, the source's state and the backlog since
    /// the latest keyframe. For a viewer that could take no frames while it was
    /// connecting (WebRTC's ICE and DTLS), so that it begins with the freshest
    /// picture rather than a queue that went stale meanwhile. Frames replaced are
    /// not counted as dropped: the viewer never had them.
    pub fn restart_at_keyframe(&self) {
        let state = self.hub.state();
        let fresh = state.joining_queue();
        let mut queue = self.shared.lock();
        if queue.closed {
            return;
        }
        let (dropped_total, resyncs) = (queue.dropped_total, queue.resyncs);
        *queue = fresh;
        queue.dropped_total = dropped_total;
        queue.resyncs = resyncs;
        drop(queue);
        drop(state);
        self.shared.notify.notify_one();
    }

    /// Records that a frame of `bytes` bytes was written to the socket.
    pub fn record_sent(&self, bytes: usize) {
        self.shared.sent_frames.fetch_add(1, Ordering::Relaxed);
        self.shared
            .sent_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Frames this viewer lost so far by falling behind.
    pub fn dropped(&self) -> u64 {
        self.shared.lock().dropped_total
    }

    /// The hub it watches.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.shared.id);
    }
}

struct ViewerShared {
    id: u64,
    remote: Option<SocketAddr>,
    transport: Transport,
    connected: Instant,
    queue: Mutex<ViewerQueue>,
    notify: Notify,
    sent_frames: AtomicU64,
    sent_bytes: AtomicU64,
}

impl ViewerShared {
    fn lock(&self) -> MutexGuard<'_, ViewerQueue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push_item(&self, item: Item) {
        self.lock().push_item(item);
        self.notify.notify_one();
    }

    fn push_frame(&self, frame: &Frame, limits: &HubLimits, counters: &Counters) {
        let outcome = self.lock().push_frame(frame, limits);
        if outcome.dropped > 0 {
            counters
                .viewer_drops
                .fetch_add(outcome.dropped, Ordering::Relaxed);
        }
        if outcome.overflowed {
            counters.viewer_resyncs.fetch_add(1, Ordering::Relaxed);
            let mut queue = self.lock();
            if queue.warn_limit.allow() {
                let suppressed = std::mem::take(&mut queue.warn_limit.suppressed);
                tracing::warn!(
                    viewer = self.id,
                    remote = ?self.remote,
                    dropped_total = queue.dropped_total,
                    resyncs = queue.resyncs,
                    similar_warnings_suppressed = suppressed,
                    "viewer too slow: skipping to the next keyframe"
                );
            }
        }
        self.notify.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }
}

/// Allows one warning per interval and counts the rest.
#[derive(Debug)]
struct WarnLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimit {
    const INTERVAL: Duration = Duration::from_secs(10);

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < Self::INTERVAL => {
                self.suppressed += 1;
                false
            }
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct PushOutcome {
    dropped: u64,
    overflowed: bool,
}

/// A viewer's bounded queue; see the module invariants.
#[derive(Debug)]
struct ViewerQueue {
    items: VecDeque<Item>,
    /// Frames and their bytes in `items`.
    frames: usize,
    bytes: usize,
    /// Backlog frames (and bytes) still queued, allowed beyond the limits.
    backlog_frames: usize,
    backlog_bytes: usize,
    /// Skipping frames until the next keyframe.
    waiting_for_keyframe: bool,
    /// Announce the skip with a `Resync` item when the keyframe comes.
    announce_resync: bool,
    dropped_pending: u64,
    dropped_total: u64,
    resyncs: u64,
    closed: bool,
    warn_limit: WarnLimit,
}

impl Default for ViewerQueue {
    fn default() -> Self {
        ViewerQueue {
            items: VecDeque::new(),
            frames: 0,
            bytes: 0,
            backlog_frames: 0,
            backlog_bytes: 0,
            waiting_for_keyframe: false,
            announce_resync: false,
            dropped_pending: 0,
            dropped_total: 0,
            resyncs: 0,
            closed: false,
            warn_limit: WarnLimit {
                last: None,
                suppressed: 0,
            },
        }
    }
}

impl ViewerQueue {
    fn push_item(&mut self, item: Item) {
        if let Item::Frame(frame) = &item {
            self.frames += 1;
            self.bytes += frame.data.len();
        }
        self.items.push_back(item);
    }

    fn push_backlog(&mut self, frame: Frame) {
        self.backlog_frames += 1;
        self.backlog_bytes += frame.data.len();
        self.push_item(Item::Frame(frame));
    }

    fn push_frame(&mut self, frame: &Frame, limits: &HubLimits) -> PushOutcome {
        let mut outcome = PushOutcome::default();
        if self.closed {
            return outcome;
        }
        if self.waiting_for_keyframe {
            if !frame.keyframe {
                self.dropped_pending += 1;
                self.dropped_total += 1;
                outcome.dropped = 1;
                return outcome;
            }
            self.resume_at_keyframe();
        } else if self.frames + 1 > limits.viewer_queue_frames + self.backlog_frames
            || self.bytes + frame.data.len() > limits.viewer_queue_bytes + self.backlog_bytes
        {
            // Too far behind: drop every queued frame (keep the stream and source
            // items, which later frames depend on) and restart at a keyframe.
            let dropped = self.frames as u64;
            self.items
                .retain(|item| matches!(item, Item::Stream(_) | Item::Source(_)));
            self.frames = 0;
            self.bytes = 0;
            self.backlog_frames = 0;
            self.backlog_bytes = 0;
            self.resyncs += 1;
            self.dropped_pending = dropped;
            self.announce_resync = true;
            outcome.overflowed = true;
            if frame.keyframe {
                self.dropped_total += dropped;
                outcome.dropped = dropped;
                self.resume_at_keyframe();
            } else {
                self.dropped_total += dropped + 1;
                self.dropped_pending += 1;
                outcome.dropped = dropped + 1;
                self.waiting_for_keyframe = true;
                return outcome;
            }
        }
        self.push_item(Item::Frame(frame.clone()));
        outcome
    }

    fn resume_at_keyframe(&mut self) {
        if self.announce_resync {
            self.items.push_back(Item::Resync {
                dropped: self.dropped_pending,
            });
        }
        self.waiting_for_keyframe = false;
        self.announce_resync = false;
        self.dropped_pending = 0;
    }

    fn take(&mut self, out: &mut Vec<Item>, max: usize) {
        for _ in 0..max.max(1) {
            let Some(item) = self.items.pop_front() else {
                break;
            };
            if let Item::Frame(frame) = &item {
                self.frames -= 1;
                self.bytes -= frame.data.len();
                if self.backlog_frames > 0 {
                    self.backlog_frames -= 1;
                    self.backlog_bytes = self.backlog_bytes.saturating_sub(frame.data.len());
                }
            }
            out.push(item);
        }
    }

    fn check_invariants(&self, limits: &HubLimits) {
        let frames: Vec<&Frame> = self
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Frame(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(self.frames, frames.len());
        assert_eq!(
            self.bytes,
            frames.iter().map(|f| f.data.len()).sum::<usize>()
        );
        assert!(self.frames <= limits.viewer_queue_frames + self.backlog_frames);
        assert!(self.bytes <= limits.viewer_queue_bytes + self.backlog_bytes);
        assert!(self.backlog_frames <= self.frames);
        if self.waiting_for_keyframe {
            assert!(
                frames.is_empty(),
                "no frames queued while waiting for a keyframe"
            );
        }
        // Frames are queued in order.
        assert!(frames.windows(2).all(|w| w[0].seq < w[1].seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::testing::{idr, nal, unhex, PPS, SPS};
    use crate::h264::RandomAccess;
    use proptest::prelude::*;

    fn delta(tag: u8, size: usize) -> AccessUnit {
        let mut data = vec![0x41, 0x9a, tag];
        data.resize(size.max(3), 0x55);
        AccessUnit {
            nals: vec![nal(&data)],
            random_access: RandomAccess::None,
        }
    }

    fn limits() -> HubLimits {
        HubLimits {
            viewer_queue_frames: 5,
            viewer_queue_bytes: 1 << 20,
            gop_cache_frames: 50,
            gop_cache_bytes: 1 << 20,
            max_viewers: 3,
            max_viewers_per_address: 3,
        }
    }

    fn drain(viewer: &Viewer) -> Vec<Item> {
        let mut out = Vec::new();
        let mut queue = viewer.shared.lock();
        queue.take(&mut out, usize::MAX);
        out
    }

    fn frames(items: &[Item]) -> Vec<&Frame> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Frame(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    fn nal_types(data: &[u8]) -> Vec<u8> {
        data.windows(5)
            .filter(|w| w[..4] == START_CODE)
            .map(|w| w[4] & 0x1f)
            .collect()
    }

    #[test]
    fn keyframe_requests_reach_the_source_at_most_once_per_interval() {
        let hub = Hub::new(limits(), Some(25.0));
        let mut requests = hub.keyframe_requests();
        assert!(!requests.has_changed().unwrap());
        assert!(hub.request_keyframe());
        assert!(requests.has_changed().unwrap());
        requests.mark_unchanged();
        // Many viewers asking at once: one request reaches the source.
        for _ in 0..50 {
            assert!(!hub.request_keyframe());
        }
        assert!(!requests.has_changed().unwrap());
        let snapshot = hub.snapshot();
        assert_eq!(snapshot.keyframe_requests, 51);
        assert_eq!(snapshot.keyframe_requests_forwarded, 1);
    }

    #[test]
    fn a_restarted_viewer_begins_at_the_latest_keyframe() {
        let hub = Hub::new(limits(), Some(25.0));
        hub.publish(&idr(true, 1), SystemTime::now());
        let viewer = hub.subscribe(None, Transport::WebRtc).unwrap();
        hub.publish(&delta(2, 10), SystemTime::now());
        hub.publish(&idr(true, 3), SystemTime::now());
        hub.publish(&delta(4, 10), SystemTime::now());
        viewer.restart_at_keyframe();
        hub.check_invariants();
        let items = drain(&viewer);
        assert!(matches!(items[0], Item::Stream(_)));
        assert!(matches!(items[1], Item::Source(_)));
        assert!(matches!(items[2], Item::Join { frames: 2 }));
        let seqs: Vec<u64> = frames(&items).iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [2, 3], "the latest keyframe and the frame since");
        assert!(frames(&items)[0].keyframe);
        assert_eq!(viewer.dropped(), 0);
    }

    #[test]
    fn the_gop_is_the_latest_keyframe_and_the_frames_since_without_a_viewer() {
        let hub = Hub::new(limits(), Some(25.0));
        assert!(hub.gop().is_empty());
        hub.publish(&idr(true, 1), SystemTime::now());
        hub.publish(&delta(2, 10), SystemTime::now());
        hub.publish(&idr(true, 3), SystemTime::now());
        hub.publish(&delta(4, 10), SystemTime::now());
        hub.publish(&delta(5, 10), SystemTime::now());
        let gop = hub.gop();
        assert_eq!(gop.iter().map(|f| f.seq).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(gop[0].keyframe && !gop[1].keyframe);
        assert_eq!(
            hub.viewer_count(),
            0,
            "reading the GOP takes no viewer place"
        );
    }

    #[test]
    fn the_parameter_sets_are_there_once_a_keyframe_brought_them() {
        let hub = Hub::new(limits(), Some(25.0));
        assert!(hub.parameter_sets().is_none());
        hub.publish(&idr(true, 1), SystemTime::now());
        let (sps, pps) = hub.parameter_sets().unwrap();
        assert_eq!(sps.data()[..], unhex(SPS)[..]);
        assert_eq!(pps.data()[..], unhex(PPS)[..]);
    }

    #[test]
    fn a_viewer_is_listed_with_its_transport() {
        let hub = Hub::new(limits(), Some(25.0));
        let _ws = hub.subscribe(None, Transport::WebSocket).unwrap();
        let _rtc = hub.subscribe(None, Transport::WebRtc).unwrap();
        let transports: Vec<Transport> =
            hub.snapshot().viewers.iter().map(|v| v.transport).collect();
        assert_eq!(transports, [Transport::WebSocket, Transport::WebRtc]);
    }

    #[test]
    fn nothing_is_published_before_the_first_keyframe() {
        let hub = Hub::new(limits(), Some(25.0));
        assert_eq!(
            hub.publish(&delta(1, 10), SystemTime::now()),
            Published::WaitingForKeyframe
        );
        assert_eq!(
            hub.publish(&idr(true, 2), SystemTime::now()),
            Published::Frame(0)
        );
        assert_eq!(hub.snapshot().undecodable, 1);
    }

    #[test]
    fn a_keyframe_whose_sps_does_not_parse_is_not_published() {
        let hub = Hub::new(limits(), Some(25.0));
        let mut unit = idr(true, 1);
        // An SPS cut after its first bytes: it cannot parse.
        unit.nals[0] = nal(&[0x67, 0x64, 0x00]);
        assert_eq!(
            hub.publish(&unit, SystemTime::now()),
            Published::MissingParameterSets
        );
        let snapshot = hub.snapshot();
        assert_eq!((snapshot.frames, snapshot.undecodable), (0, 1));
        assert!(snapshot.stream.is_none());
        // With parameter sets that parse, the stream starts.
        assert_eq!(
            hub.publish(&idr(true, 2), SystemTime::now()),
            Published::Frame(0)
        );
    }

    #[test]
    fn input_stats_add_up() {
        let hub = Hub::new(limits(), Some(25.0));
        let some = InputStats {
            skipped_bytes: 10,
            oversize_nal_units: 1,
            oversize_access_units: 2,
            bad_parameter_sets: 3,
        };
        hub.add_input_stats(&some);
        hub.add_input_stats(&some);
        assert_eq!(hub.snapshot().input, some.plus(&some));
        assert_eq!(some.plus(&some).since(&some), some);
        assert_eq!(InputStats::default().since(&some), InputStats::default());
    }

    #[test]
    fn keyframes_without_parameter_sets_get_the_cached_ones_in_front() {
        let hub = Hub::new(limits(), Some(25.0));
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        hub.publish(&idr(true, 1), SystemTime::now());
        hub.publish(&delta(2, 10), SystemTime::now());
        hub.publish(&idr(false, 3), SystemTime::now());
        let items = drain(&viewer);
        let frames = frames(&items);
        assert_eq!(frames.len(), 3);
        assert_eq!(nal_types(&frames[0].data), vec![7, 8, 5]);
        assert_eq!(nal_types(&frames[1].data), vec![1]);
        assert_eq!(nal_types(&frames[2].data), vec![7, 8, 5]);
        assert!(frames[2].keyframe && !frames[1].keyframe);
        hub.check_invariants();
    }

    #[test]
    fn an_access_unit_delimiter_stays_first() {
        let hub = Hub::new(limits(), None);
        hub.publish(&idr(true, 1), SystemTime::now());
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        drain(&viewer);
        let mut unit = idr(false, 2);
        unit.nals.insert(0, nal(&[0x09, 0xf0]));
        hub.publish(&unit, SystemTime::now());
        let items = drain(&viewer);
        assert_eq!(nal_types(&frames(&items)[0].data), vec![9, 7, 8, 5]);
    }

    #[test]
    fn a_late_joiner_gets_the_last_keyframe_and_everything_since_at_once() {
        let hub = Hub::new(limits(), Some(25.0));
        hub.publish(&idr(true, 1), SystemTime::now());
        for tag in 2..6 {
            hub.publish(&delta(tag, 10), SystemTime::now());
        }
        hub.publish(&idr(false, 6), SystemTime::now());
        hub.publish(&delta(7, 10), SystemTime::now());
        hub.publish(&delta(8, 10), SystemTime::now());

        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        let items = drain(&viewer);
        let stream = items.iter().position(|i| matches!(i, Item::Stream(_)));
        let join = items
            .iter()
            .position(|i| matches!(i, Item::Join { frames: 3 }));
        assert!(stream.is_some(), "stream info first: {items:?}");
        assert!(join.is_some(), "join announces the backlog: {items:?}");
        let frames = frames(&items);
        assert_eq!(
            frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
            vec![5, 6, 7]
        );
        assert!(frames[0].keyframe);
        assert_eq!(nal_types(&frames[0].data), vec![7, 8, 5]);
        if let Some(Item::Stream(info)) = stream.map(|i| &items[i]) {
            assert_eq!((info.width, info.height), (64, 48));
            assert_eq!(info.codec, "avc1.42c00a");
        }
        hub.check_invariants();
    }

    #[test]
    fn a_viewer_before_any_keyframe_starts_at_the_first_one() {
        let hub = Hub::new(limits(), None);
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        hub.publish(&idr(true, 1), SystemTime::now());
        let items = drain(&viewer);
        assert!(!items.iter().any(|i| matches!(i, Item::Resync { .. })));
        assert_eq!(frames(&items).len(), 1);
        assert_eq!(viewer.dropped(), 0);
    }

    #[test]
    fn a_slow_viewer_skips_to_the_next_keyframe_and_a_fast_one_loses_nothing() {
        let hub = Hub::new(limits(), None);
        let slow = hub.subscribe(None, Transport::Internal).unwrap();
        let fast = hub.subscribe(None, Transport::Internal).unwrap();
        let mut fast_seen = Vec::new();
        hub.publish(&idr(true, 0), SystemTime::now());
        for tag in 1..=20 {
            hub.publish(&delta(tag, 100), SystemTime::now());
            hub.check_invariants();
            fast_seen.extend(frames(&drain(&fast)).iter().map(|f| f.seq));
        }
        assert_eq!(slow.shared.lock().frames, 0, "waiting for a keyframe");
        assert!(slow.dropped() >= 15, "dropped {}", slow.dropped());
        hub.publish(&idr(false, 21), SystemTime::now());
        fast_seen.extend(frames(&drain(&fast)).iter().map(|f| f.seq));
        let items = drain(&slow);
        let resync = items
            .iter()
            .find_map(|i| match i {
                Item::Resync { dropped } => Some(*dropped),
                _ => None,
            })
            .expect("resync announced");
        assert!(resync > 0);
        let slow_frames = frames(&items);
        assert_eq!(slow_frames.len(), 1);
        assert!(slow_frames[0].keyframe);
        assert_eq!(slow_frames[0].seq, 21);
        assert_eq!(fast_seen, (0..=21).collect::<Vec<_>>());
        assert_eq!(fast.dropped(), 0);
        let snapshot = hub.snapshot();
        assert_eq!(snapshot.viewer_drops, slow.dropped());
        assert_eq!(snapshot.viewer_resyncs, 1);
    }

    #[test]
    fn an_overflow_at_a_keyframe_resumes_at_once() {
        let hub = Hub::new(limits(), None);
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        hub.publish(&idr(true, 0), SystemTime::now());
        for tag in 1..5 {
            hub.publish(&delta(tag, 10), SystemTime::now());
        }
        // The queue holds 5 frames: the next one overflows it, and is a keyframe.
        hub.publish(&idr(false, 5), SystemTime::now());
        let items = drain(&viewer);
        assert!(matches!(
            items.iter().find(|i| matches!(i, Item::Resync { .. })),
            Some(Item::Resync { dropped: 5 })
        ));
        assert_eq!(
            frames(&items).iter().map(|f| f.seq).collect::<Vec<_>>(),
            vec![5]
        );
    }

    #[test]
    fn the_join_backlog_may_exceed_the_queue_limit() {
        let hub = Hub::new(limits(), None);
        hub.publish(&idr(true, 0), SystemTime::now());
        for tag in 1..20 {
            hub.publish(&delta(tag, 10), SystemTime::now());
        }
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        // A live frame arrives before the viewer drained its 20-frame backlog.
        hub.publish(&delta(20, 10), SystemTime::now());
        hub.check_invariants();
        let items = drain(&viewer);
        assert_eq!(frames(&items).len(), 21);
        assert_eq!(viewer.dropped(), 0);
    }

    #[test]
    fn stream_parameter_changes_reach_viewers_before_the_frames() {
        let hub = Hub::new(limits(), Some(30.0));
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        hub.publish(&idr(true, 0), SystemTime::now());
        let items = drain(&viewer);
        let first_stream = items.iter().position(|i| matches!(i, Item::Stream(_)));
        let first_frame = items.iter().position(|i| matches!(i, Item::Frame(_)));
        assert!(first_stream.unwrap() < first_frame.unwrap());
        // Same SPS again: no new stream message.
        hub.publish(&idr(true, 1), SystemTime::now());
        assert!(!drain(&viewer).iter().any(|i| matches!(i, Item::Stream(_))));
        // A different SPS (another level): announced again.
        let mut sps = unhex(SPS);
        sps[3] = 0x1f;
        let unit = AccessUnit {
            nals: vec![nal(&sps), nal(&unhex(PPS)), nal(&[0x65, 0x88, 9])],
            random_access: RandomAccess::Idr,
        };
        hub.publish(&unit, SystemTime::now());
        let items = drain(&viewer);
        match &items[0] {
            Item::Stream(info) => assert_eq!(info.codec, "avc1.42c01f"),
            other => panic!("expected stream info first, got {other:?}"),
        }
    }

    #[test]
    fn viewers_are_limited_and_removed_when_dropped() {
        let hub = Hub::new(limits(), None);
        let a = hub.subscribe(None, Transport::Internal).unwrap();
        let _b = hub.subscribe(None, Transport::Internal).unwrap();
        let _c = hub.subscribe(None, Transport::Internal).unwrap();
        assert_eq!(
            hub.subscribe(None, Transport::Internal).err(),
            Some(SubscribeError::Full(3))
        );
        drop(a);
        assert_eq!(hub.viewer_count(), 2);
        assert!(hub.subscribe(None, Transport::Internal).is_ok());
        assert_eq!(hub.snapshot().viewers_rejected, 1);
    }

    #[test]
    fn one_address_cannot_take_every_place() {
        let hub = Hub::new(
            HubLimits {
                max_viewers_per_address: 2,
                ..limits()
            },
            None,
        );
        let squatter: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let squatter_v6: SocketAddr = "[::ffff:192.0.2.7]:40001".parse().unwrap();
        let a = hub.subscribe(Some(squatter), Transport::Internal).unwrap();
        let _b = hub
            .subscribe(Some(squatter_v6), Transport::Internal)
            .unwrap();
        // The same address over IPv4 or as an IPv4-mapped IPv6 address.
        assert_eq!(
            hub.subscribe(Some(squatter), Transport::Internal).err(),
            Some(SubscribeError::AddressFull(2))
        );
        assert_eq!(
            hub.subscribe(Some(squatter_v6), Transport::Internal).err(),
            Some(SubscribeError::AddressFull(2))
        );
        // Someone else still gets the last place.
        let _c = hub
            .subscribe(
                Some("192.0.2.8:40000".parse().unwrap()),
                Transport::Internal,
            )
            .unwrap();
        let snapshot = hub.snapshot();
        assert_eq!(snapshot.viewers_rejected_address, 2);
        assert_eq!(snapshot.viewers_rejected, 0);
        drop(a);
        assert!(hub.subscribe(Some(squatter), Transport::Internal).is_ok());
    }

    #[test]
    fn the_join_cache_is_bounded() {
        let mut small = limits();
        small.gop_cache_frames = 10;
        let hub = Hub::new(small, None);
        hub.publish(&idr(true, 0), SystemTime::now());
        for tag in 1..30 {
            hub.publish(&delta(tag, 10), SystemTime::now());
            hub.check_invariants();
        }
        assert_eq!(hub.snapshot().gop_frames, 0);
        // A joiner now waits for the next keyframe.
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        hub.publish(&delta(31, 10), SystemTime::now());
        assert!(frames(&drain(&viewer)).is_empty());
        hub.publish(&idr(false, 32), SystemTime::now());
        assert_eq!(frames(&drain(&viewer)).len(), 1);
        assert_eq!(hub.snapshot().gop_frames, 1);
    }

    #[tokio::test]
    async fn closing_the_hub_ends_every_viewer() {
        let hub = Hub::new(limits(), None);
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        let mut out = Vec::new();
        assert!(viewer.recv(&mut out, 16).await, "source state is queued");
        hub.close();
        out.clear();
        assert!(!viewer.recv(&mut out, 16).await);
        assert_eq!(
            hub.subscribe(None, Transport::Internal).err(),
            Some(SubscribeError::Closed)
        );
    }

    #[tokio::test]
    async fn recv_wakes_up_when_a_frame_is_published() {
        let hub = Hub::new(limits(), None);
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        drain(&viewer);
        let publisher = hub.clone();
        let handle = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            publisher.publish(&idr(true, 0), SystemTime::now());
        });
        // The stream info may wake the viewer just before the frame is queued.
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), async {
            while !out.iter().any(|i| matches!(i, Item::Frame(_))) {
                assert!(viewer.recv(&mut out, 16).await, "hub open");
            }
        })
        .await
        .expect("woken by the frame");
        handle.join().unwrap();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Keyframe,
        Delta(usize),
        Drain(usize, usize),
        Join,
        Leave(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => Just(Op::Keyframe),
            8 => (1usize..5000).prop_map(Op::Delta),
            4 => (0usize..4, 0usize..8).prop_map(|(v, n)| Op::Drain(v, n)),
            1 => Just(Op::Join),
            1 => (0usize..4).prop_map(Op::Leave),
        ]
    }

    proptest! {
        /// Whatever the viewers do, queues stay bounded, every viewer sees frames
        /// in order starting at a keyframe, and gaps come only after a resync.
        #[test]
        fn queues_stay_bounded_and_ordered(ops in proptest::collection::vec(op(), 1..300)) {
            let mut limits = limits();
            limits.max_viewers = 4;
            limits.viewer_queue_bytes = 20_000;
            let hub = Hub::new(limits, None);
            let mut viewers: Vec<(Viewer, Option<u64>, bool)> = Vec::new();
            let mut tag = 0u8;
            for op in ops {
                tag = tag.wrapping_add(1);
                match op {
                    Op::Keyframe => { hub.publish(&idr(true, tag), SystemTime::now()); }
                    Op::Delta(size) => { hub.publish(&delta(tag, size), SystemTime::now()); }
                    Op::Join => {
                        if let Ok(v) = hub.subscribe(None, Transport::Internal) { viewers.push((v, None, false)); }
                    }
                    Op::Leave(i) => { if i < viewers.len() { viewers.remove(i); } }
                    Op::Drain(i, n) => {
                        if let Some((viewer, last, resynced)) = viewers.get_mut(i) {
                            let mut out = Vec::new();
                            viewer.shared.lock().take(&mut out, n);
                            for item in out {
                                match item {
                                    Item::Resync { .. } => *resynced = true,
                                    Item::Frame(f) => {
                                        match *last {
                                            None => prop_assert!(f.keyframe, "first frame is a keyframe"),
                                            Some(prev) => {
                                                prop_assert!(f.seq > prev);
                                                if f.seq != prev + 1 {
                                                    prop_assert!(*resynced && f.keyframe, "gap without resync");
                                                }
                                            }
                                        }
                                        *resynced = false;
                                        *last = Some(f.seq);
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                }
                hub.check_invariants();
            }
        }
    }
}
