//! The snapshot service: the async shell around [`GopDecoder`] and [`jpeg`].
//!
//! - Frames come from the hub's GOP cache ([`Hub::gop`]): no viewer place, no
//!   queue, no extra camera access while the camera runs.
//! - One decoder and one cached JPEG, keyed by the newest frame's hub sequence
//!   number. Requests for a frame already encoded are served from the cache; the
//!   rest queue for the one decoder (single flight), and the first of them decodes,
//!   in `spawn_blocking`, only the frames since the last one decoded.
//! - Fresh: the answer is the newest frame at the moment of the request or newer.
//!   When the source is not live (starting, offline, or idle with
//!   `camera.on_demand`) the cached frames are from before; the request then
//!   holds a viewer place (which starts an on-demand camera) and waits up to
//!   [`SnapshotSettings::wait`] for a new frame.
//! - After [`SnapshotSettings::idle`] without requests the decoder and the JPEG
//!   are dropped: an unused snapshot costs nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::decode::GopDecoder;
use super::jpeg;
use crate::hub::{Frame, Hub, SourceState, SubscribeError, Transport};

/// How snapshots are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// JPEG quality, 1..=100.
    pub quality: u8,
    /// The decoder and the cached JPEG are dropped after this long without requests.
    pub idle: Duration,
    /// How long a request waits for video when the source is not live.
    pub wait: Duration,
    /// A request that would decode more than this many frames (cold, late in a
    /// GOP) asks the source for a keyframe instead and decodes that alone.
    pub keyframe_after_frames: usize,
    /// How long it waits for that keyframe before decoding the frames it has.
    pub keyframe_wait: Duration,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            quality: jpeg::QUALITY,
            idle: Duration::from_secs(30),
            wait: Duration::from_secs(5),
            // About 80 ms of decoding a 1080p High-profile frame each here.
            keyframe_after_frames: 4,
            // Three frame times at 25-30 fps: the encoder makes the next
            // picture a keyframe.
            keyframe_wait: Duration::from_millis(150),
        }
    }
}

/// A snapshot: one frame of the stream as a JPEG file.
#[derive(Debug, Clone)]
pub struct Jpeg {
    /// The JPEG file.
    pub bytes: Bytes,
    /// The frame's hub sequence number.
    pub seq: u64,
    /// When the source captured the frame, µs since the Unix epoch.
    pub captured_us: u64,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// Why there is no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No picture to take: the camera is not sending (503).
    #[error("{0}")]
    NoVideo(String),
    /// The video did not decode or the picture did not encode (500).
    #[error("the current picture cannot be made into a JPEG: {0}")]
    Failed(String),
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SnapshotStats {
    /// Snapshots answered (from the cache or decoded).
    pub served: u64,
    /// Decoding runs (each ending in one JPEG, or an error).
    pub decodes: u64,
    /// Frames fed to the decoder.
    pub frames_decoded: u64,
    /// Requests that ended in an error.
    pub failures: u64,
    /// Seconds spent decoding and encoding, all runs.
    pub decode_seconds: f64,
    /// The decoder is set up now (it is dropped when unused).
    pub decoder_active: bool,
    /// Cold requests answered from a keyframe asked of the source rather than
    /// by decoding the GOP.
    pub keyframe_shortcuts: u64,
}

/// Snapshots of the hub's stream. Cheap to clone.
#[derive(Clone)]
pub struct Snapshots {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    settings: SnapshotSettings,
    /// The one decoder; held while decoding, so requests decode one at a time.
    decoder: tokio::sync::Mutex<Option<GopDecoder>>,
    /// The last JPEG made.
    cached: Mutex<Option<Arc<Jpeg>>>,
    /// When the last request came, and whether a task watches for idleness.
    idle: Mutex<Idle>,
    served: AtomicU64,
    decodes: AtomicU64,
    frames_decoded: AtomicU64,
    failures: AtomicU64,
    decode_micros: AtomicU64,
    /// The hub sequence number of the last frame the decoder was fed
    /// ([`NOTHING_DECODED`] when it has none).
    decoded_upto: AtomicU64,
    /// Until when the source is taken not to make keyframes on request (the last
    /// request went unanswered): no waiting for one meanwhile.
    no_keyframes_until: Mutex<Option<Instant>>,
    keyframe_shortcuts: AtomicU64,
}

/// `decoded_upto` when the decoder has no frame.
const NOTHING_DECODED: u64 = u64::MAX;
/// After a keyframe request went unanswered (a file, rpicam-vid), requests
/// decode the GOP for this long without asking again.
const NO_KEYFRAMES_BACKOFF: Duration = Duration::from_secs(60);

struct Idle {
    last_request: Instant,
    watching: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Snapshots {
    /// Snapshots of `hub`'s stream; nothing is set up before the first request.
    pub fn new(hub: Hub, settings: SnapshotSettings) -> Self {
        Snapshots {
            inner: Arc::new(Inner {
                hub,
                settings,
                decoder: tokio::sync::Mutex::new(None),
                cached: Mutex::new(None),
                idle: Mutex::new(Idle {
                    last_request: Instant::now(),
                    watching: false,
                }),
                served: AtomicU64::new(0),
                decodes: AtomicU64::new(0),
                frames_decoded: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                decode_micros: AtomicU64::new(0),
                decoded_upto: AtomicU64::new(NOTHING_DECODED),
                no_keyframes_until: Mutex::new(None),
                keyframe_shortcuts: AtomicU64::new(0),
            }),
        }
    }

    /// The counters.
    pub fn stats(&self) -> SnapshotStats {
        let i = &self.inner;
        SnapshotStats {
            served: i.served.load(Ordering::Relaxed),
            decodes: i.decodes.load(Ordering::Relaxed),
            frames_decoded: i.frames_decoded.load(Ordering::Relaxed),
            failures: i.failures.load(Ordering::Relaxed),
            decode_seconds: i.decode_micros.load(Ordering::Relaxed) as f64 / 1e6,
            keyframe_shortcuts: i.keyframe_shortcuts.load(Ordering::Relaxed),
            decoder_active: i.decoder.try_lock().map_or(true, |d| d.is_some()),
        }
    }

    /// The current picture as a JPEG: of the newest frame when the request came, or
    /// a newer one. Must be called within a tokio runtime.
    pub async fn take(&self) -> Result<Arc<Jpeg>, SnapshotError> {
        self.touch();
        let result = match self.fresh_gop().await {
            Ok(gop) => {
                // The decoding runs as its own task: a client that goes away does
                // not abandon a decoder half way (nor let a second one start).
                let this = self.clone();
                tokio::spawn(async move { this.jpeg_of(gop).await })
                    .await
                    .unwrap_or_else(|error| {
                        Err(SnapshotError::Failed(format!(
                            "the snapshot task failed: {error}"
                        )))
                    })
            }
            Err(error) => Err(error),
        };
        let counter = match &result {
            Ok(_) => &self.inner.served,
            Err(_) => &self.inner.failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// The frames to decode: the GOP cache, once its newest frame is the newest
    /// frame of a live source.
    async fn fresh_gop(&self) -> Result<Vec<Frame>, SnapshotError> {
        let hub = &self.inner.hub;
        let gop = hub.gop();
        if hub.source_status().state == SourceState::Live && !gop.is_empty() {
            if self.frames_to_decode(&gop) > self.inner.settings.keyframe_after_frames {
                if let Some(fresh) = self.keyframe_instead(&gop).await {
                    return Ok(fresh);
                }
            }
            return Ok(gop);
        }
        // What is cached is from before the source stopped (or there is nothing):
        // wait for a new frame, as a viewer, so that an on-demand camera starts.
        let seen = gop.last().map(|f| f.seq);
        let _place = match hub.subscribe(None, Transport::Internal) {
            Ok(viewer) => Some(viewer),
            Err(SubscribeError::Closed) => {
                return Err(SnapshotError::NoVideo("the server is shutting down".into()))
            }
            // Every place is taken: then the camera runs anyway.
            Err(_) => None,
        };
        let deadline = tokio::time::Instant::now() + self.inner.settings.wait;
        loop {
            let gop = hub.gop();
            if gop
                .last()
                .is_some_and(|newest| seen.is_none_or(|seen| newest.seq > seen))
            {
                return Ok(gop);
            }
            if tokio::time::Instant::now() >= deadline {
                let source = hub.source_status();
                let why = source.message.map(|m| format!(": {m}")).unwrap_or_default();
                return Err(SnapshotError::NoVideo(format!(
                    "no video: the camera sent no picture for {:.0} s (source {} is {:?}{why}); try again in a moment",
                    self.inner.settings.wait.as_secs_f64(),
                    source.kind,
                    source.state,
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many of `gop`'s frames the decoder would be fed for its newest.
    fn frames_to_decode(&self, gop: &[Frame]) -> usize {
        let upto = self.inner.decoded_upto.load(Ordering::Relaxed);
        match gop.iter().position(|f| f.seq == upto) {
            Some(at) => gop.len() - 1 - at,
            None => gop.len(),
        }
    }

    /// Asks the source for a keyframe and waits up to `keyframe_wait` for it: a
    /// GOP of that keyframe alone (and any frame after it), newer than `gop`, to
    /// decode in one step. `None` when none came (then the source is not asked
    /// again for a while).
    async fn keyframe_instead(&self, gop: &[Frame]) -> Option<Vec<Frame>> {
        let inner = &self.inner;
        if lock(&inner.no_keyframes_until).is_some_and(|until| Instant::now() < until) {
            return None;
        }
        let newest = gop.last()?.seq;
        // Rate-limited by the hub (one a second reaches the source, whoever asks).
        inner.hub.request_keyframe();
        let deadline = tokio::time::Instant::now() + inner.settings.keyframe_wait;
        loop {
            let now = inner.hub.gop();
            if now.first().is_some_and(|key| key.seq > newest) {
                inner.keyframe_shortcuts.fetch_add(1, Ordering::Relaxed);
                return Some(now);
            }
            if tokio::time::Instant::now() >= deadline {
                *lock(&inner.no_keyframes_until) = Some(Instant::now() + NO_KEYFRAMES_BACKOFF);
                tracing::debug!(
                    "snapshot: the source made no keyframe on request; decoding the GOP"
                );
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The cached JPEG when it is of frame `seq` or newer.
    fn cached_from(&self, seq: u64) -> Option<Arc<Jpeg>> {
        lock(&self.inner.cached)
            .as_ref()
            .filter(|jpeg| jpeg.seq >= seq)
            .cloned()
    }

    /// A JPEG of `gop`'s newest frame or newer: cached, or decoded by the one
    /// decoder.
    async fn jpeg_of(&self, gop: Vec<Frame>) -> Result<Arc<Jpeg>, SnapshotError> {
        let wanted = gop.last().map_or(0, |f| f.seq);
        if let Some(jpeg) = self.cached_from(wanted) {
            return Ok(jpeg);
        }
        let mut slot = self.inner.decoder.lock().await;
        // Whoever held the decoder before may have made it meanwhile.
        if let Some(jpeg) = self.cached_from(wanted) {
            return Ok(jpeg);
        }
        // Newer frames may have come while waiting: take them too, one decode
        // for everyone who waited.
        let newest = self.inner.hub.gop();
        let gop = if newest.last().is_some_and(|f| f.seq >= wanted) {
            newest
        } else {
            gop
        };
        let mut decoder = slot.take().unwrap_or_default();
        let quality = self.inner.settings.quality;
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let result = decoder.decode_latest(&gop, |picture| {
                jpeg::encode(picture, quality).map(|bytes| (bytes, picture.width, picture.height))
            });
            let captured_us = gop.last().map_or(0, |f| f.captured_us);
            (decoder, result, captured_us)
        })
        .await;
        let elapsed = started.elapsed();
        let inner = &self.inner;
        inner.decodes.fetch_add(1, Ordering::Relaxed);
        inner
            .decode_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let (decoder, result, captured_us) = outcome
            .map_err(|error| SnapshotError::Failed(format!("the decoder failed: {error}")))?;
        inner.decoded_upto.store(
            decoder.last_fed().unwrap_or(NOTHING_DECODED),
            Ordering::Relaxed,
        );
        *slot = Some(decoder);
        let (encoded, decoded) = result.map_err(|error| {
            tracing::warn!(%error, "snapshot: the current frame does not decode");
            SnapshotError::Failed(error.to_string())
        })?;
        inner
            .frames_decoded
            .fetch_add(decoded.frames_fed as u64, Ordering::Relaxed);
        let (bytes, width, height) = encoded.map_err(|error| {
            tracing::warn!(%error, "snapshot: the picture does not encode");
            SnapshotError::Failed(error.to_string())
        })?;
        tracing::debug!(
            frame = decoded.seq,
            frames_decoded = decoded.frames_fed,
            from_keyframe = decoded.from_keyframe,
            bytes = bytes.len(),
            ms = elapsed.as_secs_f64() * 1e3,
            "snapshot made"
        );
        let jpeg = Arc::new(Jpeg {
            bytes: Bytes::from(bytes),
            seq: decoded.seq,
            captured_us,
            width,
            height,
        });
        *lock(&inner.cached) = Some(jpeg.clone());
        Ok(jpeg)
    }

    /// Notes a request, and makes sure a task drops the decoder once requests stop.
    fn touch(&self) {
        let mut idle = lock(&self.inner.idle);
        idle.last_request = Instant::now();
        if idle.watching {
            return;
        }
        idle.watching = true;
        let inner = Arc::downgrade(&self.inner);
        let after = self.inner.settings.idle;
        tokio::spawn(async move {
            let mut wait = after;
            loop {
                tokio::time::sleep(wait).await;
                let Some(inner) = inner.upgrade() else { return };
                let mut idle = lock(&inner.idle);
                let quiet = idle.last_request.elapsed();
                if quiet < after {
                    wait = after - quiet;
                    continue;
                }
                // A decode under way is a request under way: look again later.
                let Ok(mut decoder) = inner.decoder.try_lock() else {
                    wait = after;
                    continue;
                };
                *decoder = None;
                inner.decoded_upto.store(NOTHING_DECODED, Ordering::Relaxed);
                *lock(&inner.cached) = None;
                idle.watching = false;
                release_free_memory();
                tracing::debug!("snapshot: decoder dropped after {after:?} without requests");
                return;
            }
        });
    }
}

/// Gives the memory the decoder freed back to the system: its picture buffers
/// (about 25 MB at 1080p) stay with glibc's allocator otherwise.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it takes no
    // pointers and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::SourceStatus;
    use crate::snapshot::decode::tests::pi_sample_hub;
    use std::time::SystemTime;

    fn live(hub: &Hub) {
        hub.set_source_status(SourceStatus {
            kind: "file".into(),
            state: SourceState::Live,
            ..SourceStatus::default()
        });
    }

    fn quick() -> SnapshotSettings {
        SnapshotSettings {
            idle: Duration::from_millis(300),
            wait: Duration::from_millis(300),
            ..SnapshotSettings::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_requests_at_once_cost_one_decode_and_a_later_frame_costs_one_more() {
        let (hub, units) = pi_sample_hub();
        live(&hub);
        for unit in &units[..10] {
            hub.publish(unit, SystemTime::now());
        }
        let snapshots = Snapshots::new(hub.clone(), quick());
        let requests: Vec<_> = (0..16)
            .map(|_| {
                let s = snapshots.clone();
                tokio::spawn(async move { s.take().await })
            })
            .collect();
        let mut jpegs = Vec::new();
        for request in requests {
            jpegs.push(request.await.unwrap().unwrap());
        }
        assert!(jpegs
            .iter()
            .all(|j| j.seq == 9 && Arc::ptr_eq(j, &jpegs[0])));
        assert_eq!((jpegs[0].width, jpegs[0].height), (1920, 1080));
        assert_eq!(&jpegs[0].bytes[..2], [0xff, 0xd8]);
        let stats = snapshots.stats();
        assert_eq!(
            (stats.served, stats.decodes, stats.frames_decoded),
            (16, 1, 10)
        );

        hub.publish(&units[10], SystemTime::now());
        let next = snapshots.take().await.unwrap();
        assert_eq!(next.seq, 10, "never older than the newest frame");
        let stats = snapshots.stats();
        assert_eq!(
            (stats.decodes, stats.frames_decoded),
            (2, 11),
            "only the new frame"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cold_request_late_in_a_gop_asks_for_a_keyframe_and_decodes_it_alone() {
        let (hub, units) = pi_sample_hub();
        live(&hub);
        for unit in &units[..10] {
            hub.publish(unit, SystemTime::now());
        }
        let next_keyframe = units
            .iter()
            .skip(1)
            .find(|u| u.is_keyframe())
            .expect("the sample has a second keyframe")
            .clone();
        // The source: makes its next picture a keyframe when asked.
        let mut asked = hub.keyframe_requests();
        let source = hub.clone();
        let answering = tokio::spawn(async move {
            asked.changed().await.unwrap();
            source.publish(&next_keyframe, SystemTime::now());
        });
        let snapshots = Snapshots::new(hub.clone(), quick());
        let jpeg = snapshots.take().await.unwrap();
        answering.await.unwrap();
        assert_eq!(
            jpeg.seq, 10,
            "the new keyframe, newer than the newest frame asked for"
        );
        let stats = snapshots.stats();
        assert_eq!(
            (
                stats.decodes,
                stats.frames_decoded,
                stats.keyframe_shortcuts
            ),
            (1, 1, 1),
            "the keyframe alone, not the ten frames of the GOP before it"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_video_is_an_error_after_the_wait_and_an_idle_source_is_woken() {
        let (hub, units) = pi_sample_hub();
        let snapshots = Snapshots::new(hub.clone(), quick());
        let started = Instant::now();
        let error = snapshots.take().await.unwrap_err();
        assert!(matches!(error, SnapshotError::NoVideo(_)), "{error}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(hub.viewer_count(), 0, "the waiting place is given back");

        // An idle source with old frames cached: the snapshot waits for a new
        // frame, holding a viewer place meanwhile (which starts the camera).
        for unit in &units[..3] {
            hub.publish(unit, SystemTime::now());
        }
        hub.set_source_status(SourceStatus {
            state: SourceState::Idle,
            ..SourceStatus::default()
        });
        let camera = {
            let hub = hub.clone();
            let unit = units[3].clone();
            tokio::spawn(async move {
                while hub.viewer_count() == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                hub.publish(&unit, SystemTime::now());
            })
        };
        let jpeg = snapshots.take().await.unwrap();
        camera.await.unwrap();
        assert_eq!(jpeg.seq, 3, "a frame from after the request");
        assert_eq!(hub.viewer_count(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_decoder_is_dropped_when_unused() {
        let (hub, units) = pi_sample_hub();
        live(&hub);
        hub.publish(&units[0], SystemTime::now());
        let snapshots = Snapshots::new(hub.clone(), quick());
        snapshots.take().await.unwrap();
        assert!(snapshots.stats().decoder_active);
        let deadline = Instant::now() + Duration::from_secs(10);
        while snapshots.stats().decoder_active {
            assert!(Instant::now() < deadline, "the decoder is still there");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(lock(&snapshots.inner.cached).is_none());
        // And it comes back when asked.
        snapshots.take().await.unwrap();
        assert_eq!(snapshots.stats().decodes, 2);
    }
}
