//! Keeps the source running and feeds what it produces to the hub.
//!
//! The supervisor owns one thread. It builds the source from its [`SourcePlan`],
//! runs it with an ingest [`Sink`] (H.264 reader -> [`Hub::publish`]), and when the
//! source fails, ends, or stalls (no frame for [`SupervisorSettings::stall_timeout`]),
//! reports the source offline and starts it again after an exponential backoff.
//! The server never exits because of its source.
//!
//! Stall detection works through [`Sink::should_stop`]: it turns true once no frame
//! arrived in time, and every source calls it at least every ~100 ms. Video that
//! arrives but cannot be decoded does not count as a frame: a keyframe with no SPS
//! and PPS that parse before it (the hub refuses it) starts the stall timer, so a
//! source whose parameter sets are missing or broken is reported offline, with that
//! reason, after [`SupervisorSettings::stall_timeout`]. What the H.264 reader skipped
//! (input that is not H.264, units over the size bound) is counted in the hub and
//! named in the reason.
//!
//! While it retries a source that failed, the state stays `offline` with the last
//! reason: `starting` is only the first start (and the start after `idle`).
//!
//! Keyframe requests of viewers (PLI/FIR of a WebRTC viewer), already limited by
//! the hub to one a second, reach the running source through
//! [`Sink::keyframe_requested`]: the sink watches [`Hub::keyframe_requests`]
//! without waiting, and a source that can make a keyframe on demand asks it once
//! per picture.

use std::cell::Cell;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::{Sink, Source, SourceError};
use crate::h264::{AccessUnit, AccessUnitReader, NalType, Pps, ReaderStats, Sps};
use crate::hub::{Hub, InputStats, Published, SourceState, SourceStatus};

/// Builds a fresh source for every (re)start.
pub type SourceFactory = Box<dyn Fn() -> Result<Box<dyn Source>, SourceError> + Send>;

/// Which source to run and why.
pub struct SourcePlan {
    /// Source kind, e.g. `test`.
    pub kind: String,
    /// What it reads.
    pub description: String,
    /// Why this source was chosen, shown while it is live (e.g. "no camera found").
    pub reason: Option<String>,
    /// Builds it.
    pub factory: SourceFactory,
}

/// Timings of supervision.
#[derive(Debug, Clone, Copy)]
pub struct SupervisorSettings {
    /// A running source with no frame for this long is restarted; so is one whose
    /// video could not be decoded for this long (no parameter sets that parse).
    pub stall_timeout: Duration,
    /// A starting source has this long to deliver its first frame.
    pub start_timeout: Duration,
    /// First delay before a restart.
    pub backoff_initial: Duration,
    /// Longest delay between restarts.
    pub backoff_max: Duration,
    /// A source that ran this long without trouble restarts quickly again.
    pub healthy_after: Duration,
    /// On demand (`camera.on_demand`): stop the source once nobody watched for
    /// this long, start it when a viewer comes. `None`: it runs all the time.
    pub on_demand: Option<Duration>,
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        SupervisorSettings {
            stall_timeout: Duration::from_secs(2),
            start_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(30),
            on_demand: None,
        }
    }
}

/// How long an on-demand source keeps running after the last viewer left.
pub const ON_DEMAND_GRACE: Duration = Duration::from_secs(10);

/// How often an idle on-demand supervisor looks for viewers.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// A flag to stop a thread, with an interruptible sleep.
#[derive(Debug, Default)]
pub struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    /// Asks the thread to stop and wakes it from [`StopSignal::sleep`].
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    /// True once [`StopSignal::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps for `duration` or until stopped; returns true when stopped.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *stopped
    }
}

/// The running supervisor; [`SupervisorHandle::stop`] ends it.
pub struct SupervisorHandle {
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
}

impl SupervisorHandle {
    /// Stops the source and waits up to `timeout` for its thread.
    pub fn stop(mut self, timeout: Duration) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + timeout;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!("source did not stop in time; leaving it behind");
            }
        }
    }
}

/// Starts supervising `plan` on a thread of its own.
pub fn spawn(hub: Hub, plan: SourcePlan, settings: SupervisorSettings) -> SupervisorHandle {
    let stop = Arc::new(StopSignal::default());
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("source-{}", plan.kind))
        .spawn(move || supervise(&hub, &plan, settings, &thread_stop));
    match thread {
        Ok(thread) => SupervisorHandle {
            stop,
            thread: Some(thread),
        },
        Err(error) => {
            tracing::error!(%error, "cannot start the source thread");
            SupervisorHandle { stop, thread: None }
        }
    }
}

fn supervise(hub: &Hub, plan: &SourcePlan, settings: SupervisorSettings, stop: &StopSignal) {
    let mut restarts = 0u64;
    let mut backoff = settings.backoff_initial;
    // What the plan says until a source exists, then what the source says about
    // itself (e.g. the camera node discovery found).
    let description = std::cell::RefCell::new(plan.description.clone());
    let status = |state: SourceState, message: Option<String>, restarts: u64| SourceStatus {
        kind: plan.kind.clone(),
        description: description.borrow().clone(),
        state,
        message,
        restarts,
    };
    // Why the source last failed; while it is set, restarts keep `offline`.
    let mut last_trouble: Option<String> = None;
    while !stop.is_stopped() {
        if settings.on_demand.is_some() && hub.viewer_count() == 0 {
            tracing::info!(source = %plan.kind, "nobody watches: source idle until a viewer comes");
            hub.set_source_status(status(
                SourceState::Idle,
                Some("on demand: the camera starts when someone watches".into()),
                restarts,
            ));
            while hub.viewer_count() == 0 {
                if stop.sleep(IDLE_POLL) {
                    tracing::info!(source = %plan.kind, "source stopped");
                    return;
                }
            }
            backoff = settings.backoff_initial;
            last_trouble = None;
        }
        match &last_trouble {
            None => {
                hub.set_source_status(status(SourceState::Starting, plan.reason.clone(), restarts))
            }
            Some(trouble) => hub.set_source_status(status(
                SourceState::Offline,
                Some(format!("{trouble}; retrying now")),
                restarts,
            )),
        }
        let started = Instant::now();
        let trouble = match (plan.factory)() {
            Err(error) => error.to_string(),
            Ok(mut source) => {
                let described = source.describe();
                tracing::info!(source = source.name(), description = %described, "source starting");
                *description.borrow_mut() = described;
                let mut sink = Ingest::new(
                    hub,
                    stop,
                    settings,
                    |hub: &Hub, restarts| {
                        hub.set_source_status(status(
                            SourceState::Live,
                            plan.reason.clone(),
                            restarts,
                        ))
                    },
                    restarts,
                );
                let result = source.run(&mut sink);
                if stop.is_stopped() {
                    break;
                }
                if result.is_ok() && sink.went_idle.get() {
                    last_trouble = None;
                    continue; // nobody watches: not a failure
                }
                match (result, sink.quiet_too_long()) {
                    (Err(error), _) => error.to_string(),
                    (Ok(()), Some(quiet)) => sink.no_video(&plan.kind, quiet),
                    (Ok(()), None) => format!("{} ended", plan.kind),
                }
            }
        };
        restarts += 1;
        if started.elapsed() >= settings.healthy_after {
            backoff = settings.backoff_initial;
        }
        tracing::warn!(source = %plan.kind, problem = %trouble, retry_in_s = backoff.as_secs_f64(), "source offline");
        hub.set_source_status(status(
            SourceState::Offline,
            Some(format!(
                "{trouble}; retrying in {:.1} s",
                backoff.as_secs_f64()
            )),
            restarts,
        ));
        last_trouble = Some(trouble);
        if stop.sleep(backoff) {
            break;
        }
        backoff = (backoff * 2).min(settings.backoff_max);
    }
    tracing::info!(source = %plan.kind, "source stopped");
}

/// The sink a supervised source writes into: H.264 reader -> hub.
struct Ingest<'a, F: Fn(&Hub, u64)> {
    hub: &'a Hub,
    stop: &'a StopSignal,
    settings: SupervisorSettings,
    reader: AccessUnitReader,
    units: Vec<AccessUnit>,
    started: Instant,
    last_frame: Option<Instant>,
    on_live: F,
    restarts: u64,
    /// Since when nobody watches (on demand only).
    no_viewers_since: Cell<Option<Instant>>,
    /// The source was asked to stop because nobody watched long enough.
    went_idle: Cell<bool>,
    /// The counters of the source's own H.264 reader, if it has one.
    source_reader: ReaderStats,
    /// What was added to the hub's input counters so far.
    reported: InputStats,
    /// Access units the hub refused since the last frame it published.
    refused: Refused,
    /// Changes each time the hub passes a viewer's keyframe request on.
    keyframe_requests: watch::Receiver<u64>,
}

/// Access units the hub refused (nothing could decode them) since the last frame
/// it published.
#[derive(Debug, Default)]
struct Refused {
    /// Refused because no keyframe had come yet.
    before_keyframe: u64,
    /// Keyframes refused because no SPS and PPS that parse came before them.
    missing_parameter_sets: u64,
    /// When the first of those came: the stall timer runs from there.
    missing_since: Option<Instant>,
    /// Why the last parameter set that came with a refused keyframe does not parse.
    parameter_set_error: Option<String>,
}

impl<'a, F: Fn(&Hub, u64)> Ingest<'a, F> {
    fn new(
        hub: &'a Hub,
        stop: &'a StopSignal,
        settings: SupervisorSettings,
        on_live: F,
        restarts: u64,
    ) -> Self {
        Ingest {
            hub,
            stop,
            settings,
            reader: AccessUnitReader::new(),
            units: Vec::new(),
            started: Instant::now(),
            last_frame: None,
            on_live,
            restarts,
            no_viewers_since: Cell::new(None),
            went_idle: Cell::new(false),
            source_reader: ReaderStats::default(),
            reported: InputStats::default(),
            refused: Refused::default(),
            // Subscribed per run: a request made before this source started needs
            // nothing, as its first picture is a keyframe anyway.
            keyframe_requests: hub.keyframe_requests(),
        }
    }

    /// Adds what the readers skipped since the last report to the hub's counters.
    fn report_input(&mut self) {
        let own = self.reader.stats();
        let total = input_stats(&own).plus(&InputStats {
            // The source's reader parses the same parameter sets: count them once.
            bad_parameter_sets: 0,
            ..input_stats(&self.source_reader)
        });
        let new = total.since(&self.reported);
        if new != InputStats::default() {
            self.hub.add_input_stats(&new);
            self.reported = total;
        }
    }

    /// Why a source that ran but was quiet for `quiet` delivered no video, in plain
    /// words: what could not be decoded and what was skipped, when known.
    fn no_video(&self, kind: &str, quiet: Duration) -> String {
        let refused = &self.refused;
        let mut why = Vec::new();
        if refused.missing_parameter_sets > 0 {
            let n = refused.missing_parameter_sets;
            why.push(match &refused.parameter_set_error {
                Some(error) => format!(
                    "its parameter sets do not parse ({error}), so none of its {n} keyframe(s) can be decoded"
                ),
                None => format!(
                    "no SPS/PPS (parameter sets) came before its {n} keyframe(s), so none can be decoded"
                ),
            });
        } else if refused.before_keyframe > 0 {
            why.push(format!(
                "{} frame(s) came but no keyframe to start decoding at",
                refused.before_keyframe
            ));
        }
        why.extend(self.source_reader.describe_skipped());
        why.extend(self.reader.stats().describe_skipped());
        let seconds = quiet.as_secs_f64();
        if why.is_empty() {
            format!("{kind} delivered no video for {seconds:.1} s")
        } else {
            format!(
                "{kind} delivered no decodable video for {seconds:.1} s: {}",
                why.join("; ")
            )
        }
    }
}

/// The hub's input counters from a reader's.
fn input_stats(stats: &ReaderStats) -> InputStats {
    InputStats {
        skipped_bytes: stats.skipped_bytes(),
        oversize_nal_units: stats.split.oversize_nals,
        oversize_access_units: stats.assembler.oversize_access_units,
        bad_parameter_sets: stats.assembler.bad_parameter_sets,
    }
}

/// Why the first SPS or PPS of `unit` that does not parse fails, if one does not.
fn parameter_set_error(unit: &AccessUnit) -> Option<String> {
    unit.nals.iter().find_map(|nal| match nal.nal_type() {
        NalType::Sps => Sps::parse(nal.data()).err().map(|e| format!("SPS: {e}")),
        NalType::Pps => Pps::parse(nal.data()).err().map(|e| format!("PPS: {e}")),
        _ => None,
    })
}

impl<F: Fn(&Hub, u64)> Sink for Ingest<'_, F> {
    fn write(&mut self, annex_b: &[u8], frame_end: bool, captured: SystemTime) {
        self.reader.push(annex_b, &mut self.units);
        if frame_end {
            self.reader.flush(&mut self.units);
        }
        for unit in self.units.drain(..) {
            match self.hub.publish(&unit, captured) {
                Published::Frame(_) => {
                    if self.last_frame.is_none() {
                        (self.on_live)(self.hub, self.restarts);
                    }
                    self.last_frame = Some(Instant::now());
                    self.refused = Refused::default();
                }
                Published::WaitingForKeyframe => self.refused.before_keyframe += 1,
                Published::MissingParameterSets => {
                    let refused = &mut self.refused;
                    refused.missing_parameter_sets += 1;
                    refused.missing_since.get_or_insert_with(Instant::now);
                    if let Some(error) = parameter_set_error(&unit) {
                        refused.parameter_set_error = Some(error);
                    }
                }
                Published::Empty => {}
            }
        }
        self.report_input();
    }

    fn reader_stats(&mut self, stats: &ReaderStats) {
        self.source_reader = *stats;
        self.report_input();
    }

    fn keyframe_requested(&mut self) -> bool {
        // `has_changed` fails only once the hub is gone: then nobody asks.
        if self.keyframe_requests.has_changed().unwrap_or(false) {
            self.keyframe_requests.mark_unchanged();
            true
        } else {
            false
        }
    }

    fn should_stop(&self) -> bool {
        if self.stop.is_stopped() {
            return true;
        }
        if let Some(grace) = self.settings.on_demand {
            if self.hub.viewer_count() > 0 {
                self.no_viewers_since.set(None);
            } else {
                let since = self.no_viewers_since.get().unwrap_or_else(Instant::now);
                self.no_viewers_since.set(Some(since));
                if since.elapsed() >= grace {
                    self.went_idle.set(true);
                    return true;
                }
            }
        }
        self.quiet_too_long().is_some()
    }
}

impl<F: Fn(&Hub, u64)> Ingest<'_, F> {
    /// How long the source has been quiet, once that is longer than allowed: no
    /// frame for the stall timeout since the last one, or since the first keyframe
    /// that could not be decoded, else for the start timeout since the start.
    fn quiet_too_long(&self) -> Option<Duration> {
        let (since, limit) = match (self.last_frame, self.refused.missing_since) {
            (Some(last), _) => (last, self.settings.stall_timeout),
            (None, Some(first)) => (first, self.settings.stall_timeout),
            (None, None) => (self.started, self.settings.start_timeout),
        };
        let quiet = since.elapsed();
        (quiet > limit).then_some(quiet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubLimits;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// One decodable frame: SPS, PPS and an IDR slice of a 64x48 stream.
    const KEYFRAME: &[u8] = &[
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0a, 0xd9, 0x04, 0x7b, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x22, 0x64, 0x80, 0, 0, 0, 1, 0x68, 0xcb, 0x83,
        0xcb, 0x20, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33,
    ];

    fn fast_settings() -> SupervisorSettings {
        SupervisorSettings {
            stall_timeout: Duration::from_millis(200),
            start_timeout: Duration::from_millis(300),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(80),
            healthy_after: Duration::from_secs(30),
            on_demand: None,
        }
    }

    fn hub() -> Hub {
        Hub::new(HubLimits::for_frame_rate(25.0, 4), None)
    }

    /// Writes `frames` keyframes, then either fails, returns, or goes quiet.
    struct Scripted {
        frames: u32,
        then: Then,
    }

    #[derive(Clone, Copy)]
    enum Then {
        Fail,
        GoQuiet,
        /// Keep streaming until asked to stop.
        Stream,
    }

    impl Source for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn describe(&self) -> String {
            "a scripted test source".into()
        }
        fn run(&mut self, sink: &mut dyn Sink) -> Result<(), SourceError> {
            for _ in 0..self.frames {
                sink.write(KEYFRAME, true, SystemTime::now());
                std::thread::sleep(Duration::from_millis(5));
            }
            match self.then {
                Then::Fail => Err(SourceError::Failed {
                    source_name: "scripted",
                    reason: "the camera went away".into(),
                }),
                Then::GoQuiet => {
                    while !sink.should_stop() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Ok(())
                }
                Then::Stream => {
                    while !sink.should_stop() {
                        sink.write(KEYFRAME, true, SystemTime::now());
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Ok(())
                }
            }
        }
    }

    fn plan(then: Then, starts: Arc<AtomicU32>) -> SourcePlan {
        SourcePlan {
            kind: "scripted".into(),
            description: "scripted".into(),
            reason: None,
            factory: Box::new(move || {
                starts.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new(Scripted { frames: 3, then }) as Box<dyn Source>)
            }),
        }
    }

    fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_failing_source_is_restarted_and_reported_offline_with_the_reason() {
        let hub = hub();
        let starts = Arc::new(AtomicU32::new(0));
        let handle = spawn(
            hub.clone(),
            plan(Then::Fail, starts.clone()),
            fast_settings(),
        );
        wait_for("three starts", || starts.load(Ordering::SeqCst) >= 3);
        wait_for("offline status", || {
            hub.source_status().state == SourceState::Offline
        });
        let status = hub.source_status();
        assert!(status.restarts >= 2);
        let message = status.message.unwrap_or_default();
        assert!(message.contains("the camera went away"), "{message}");
        assert!(message.contains("retrying"), "{message}");
        assert!(
            hub.snapshot().frames >= 6,
            "frames of every run were published"
        );
        assert_eq!(
            status.description, "a scripted test source",
            "once a source exists, the status says what it says about itself"
        );
        handle.stop(Duration::from_secs(2));
    }

    #[test]
    fn an_on_demand_source_runs_only_while_someone_watches() {
        let hub = hub();
        let starts = Arc::new(AtomicU32::new(0));
        let settings = SupervisorSettings {
            on_demand: Some(Duration::from_millis(150)),
            ..fast_settings()
        };
        let handle = spawn(hub.clone(), plan(Then::Stream, starts.clone()), settings);
        wait_for("idle", || hub.source_status().state == SourceState::Idle);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(starts.load(Ordering::SeqCst), 0, "nobody watches");

        let viewer = hub
            .subscribe(None, crate::hub::Transport::Internal)
            .unwrap();
        wait_for("live", || hub.source_status().state == SourceState::Live);
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        drop(viewer);
        wait_for("idle after the grace", || {
            hub.source_status().state == SourceState::Idle
        });
        assert_eq!(hub.source_status().restarts, 0, "idle is not a failure");

        let _viewer = hub
            .subscribe(None, crate::hub::Transport::Internal)
            .unwrap();
        wait_for("live again", || {
            hub.source_status().state == SourceState::Live
        });
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        handle.stop(Duration::from_secs(2));
    }

    #[test]
    fn a_stalled_source_is_stopped_and_restarted() {
        let hub = hub();
        let starts = Arc::new(AtomicU32::new(0));
        let handle = spawn(
            hub.clone(),
            plan(Then::GoQuiet, starts.clone()),
            fast_settings(),
        );
        wait_for("live", || hub.source_status().state == SourceState::Live);
        wait_for("a restart after the stall", || {
            starts.load(Ordering::SeqCst) >= 2
        });
        let status = hub.source_status();
        assert!(status.restarts >= 1);
        handle.stop(Duration::from_secs(2));
    }

    #[test]
    fn a_source_that_cannot_start_is_retried_with_growing_backoff() {
        let hub = hub();
        let attempts = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
        let log = attempts.clone();
        let plan = SourcePlan {
            kind: "broken".into(),
            description: "broken".into(),
            reason: None,
            factory: Box::new(move || {
                log.lock().unwrap().push(Instant::now());
                Err(SourceError::Start {
                    source_name: "broken",
                    reason: "no such device".into(),
                })
            }),
        };
        let handle = spawn(hub.clone(), plan, fast_settings());
        wait_for("five attempts", || attempts.lock().unwrap().len() >= 5);
        handle.stop(Duration::from_secs(2));
        let times = attempts.lock().unwrap().clone();
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[0] >= Duration::from_millis(20));
        assert!(
            gaps[2] >= Duration::from_millis(80),
            "backoff grows: {gaps:?}"
        );
        let message = hub.source_status().message.unwrap_or_default();
        assert!(message.contains("no such device"), "{message}");
    }

    /// Writes `first` once, then `frame` (a frame end) every 10 ms until stopped.
    struct Looping {
        first: Vec<u8>,
        frame: Vec<u8>,
    }

    impl Source for Looping {
        fn name(&self) -> &'static str {
            "looping"
        }
        fn describe(&self) -> String {
            "a looping test source".into()
        }
        fn run(&mut self, sink: &mut dyn Sink) -> Result<(), SourceError> {
            sink.write(&self.first, false, SystemTime::now());
            while !sink.should_stop() {
                sink.write(&self.frame, true, SystemTime::now());
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(())
        }
    }

    fn looping_plan(first: Vec<u8>, frame: Vec<u8>) -> SourcePlan {
        SourcePlan {
            kind: "looping".into(),
            description: "looping".into(),
            reason: None,
            factory: Box::new(move || {
                Ok(Box::new(Looping {
                    first: first.clone(),
                    frame: frame.clone(),
                }) as Box<dyn Source>)
            }),
        }
    }

    /// Settings whose start timeout is far longer than the stall timeout.
    fn patient_start() -> SupervisorSettings {
        SupervisorSettings {
            start_timeout: Duration::from_secs(30),
            ..fast_settings()
        }
    }

    /// Waits for `offline`, then checks it stays so (no `starting` in between)
    /// while the supervisor retries; returns the message.
    fn offline_while_retrying(hub: &Hub) -> String {
        let began = Instant::now();
        wait_for("offline", || {
            hub.source_status().state == SourceState::Offline
        });
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the stall timer, not the start timeout, decided"
        );
        let restarts = hub.source_status().restarts;
        let deadline = Instant::now() + Duration::from_millis(1000);
        while Instant::now() < deadline {
            let status = hub.source_status();
            assert_eq!(status.state, SourceState::Offline, "{status:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        let status = hub.source_status();
        assert!(status.restarts > restarts, "it was retried meanwhile");
        assert_eq!(hub.snapshot().frames, 0);
        status.message.unwrap_or_default()
    }

    #[test]
    fn keyframes_without_parameter_sets_are_reported_offline_with_the_reason() {
        let hub = hub();
        // The IDR slice of KEYFRAME alone: no SPS, no PPS.
        let idr_only = KEYFRAME[KEYFRAME.len() - 9..].to_vec();
        assert_eq!(idr_only[..5], [0, 0, 0, 1, 0x65]);
        let handle = spawn(
            hub.clone(),
            looping_plan(Vec::new(), idr_only),
            patient_start(),
        );
        let message = offline_while_retrying(&hub);
        assert!(message.contains("no SPS/PPS"), "{message}");
        assert!(message.contains("no decodable video"), "{message}");
        handle.stop(Duration::from_secs(2));
    }

    #[test]
    fn an_sps_that_does_not_parse_is_reported_offline_with_the_reason() {
        let hub = hub();
        // KEYFRAME with its SPS cut after profile_idc.
        let sps_end = 4 + KEYFRAME[4..]
            .windows(4)
            .position(|w| w == [0, 0, 0, 1])
            .unwrap();
        let mut broken = vec![0, 0, 0, 1, 0x67, 0x42];
        broken.extend_from_slice(&KEYFRAME[sps_end..]);
        let handle = spawn(
            hub.clone(),
            looping_plan(Vec::new(), broken),
            patient_start(),
        );
        let message = offline_while_retrying(&hub);
        assert!(message.contains("do not parse"), "{message}");
        assert!(message.contains("SPS"), "{message}");
        assert!(hub.snapshot().input.bad_parameter_sets > 0);
        assert!(hub.snapshot().stream.is_none());
        handle.stop(Duration::from_secs(2));
    }

    #[test]
    fn what_the_reader_skips_is_counted_and_the_video_after_it_flows() {
        let hub = hub();
        // Bytes before any start code, then a NAL unit over the bound, then video.
        let mut first = vec![0x55u8; 100_000];
        first.extend_from_slice(&[0, 0, 0, 1, 0x06]);
        first.resize(first.len() + crate::h264::split::MAX_NAL_SIZE + 10, 0x77);
        let handle = spawn(
            hub.clone(),
            looping_plan(first, KEYFRAME.to_vec()),
            patient_start(),
        );
        wait_for("live", || hub.source_status().state == SourceState::Live);
        wait_for("frames", || hub.snapshot().frames >= 3);
        let input = hub.snapshot().input;
        assert_eq!(input.oversize_nal_units, 1, "{input:?}");
        assert!(
            input.skipped_bytes > 100_000 + crate::h264::split::MAX_NAL_SIZE as u64,
            "{input:?}"
        );
        handle.stop(Duration::from_secs(2));
    }

    #[test]
    fn stop_interrupts_a_long_backoff() {
        let hub = hub();
        let mut settings = fast_settings();
        settings.backoff_initial = Duration::from_secs(60);
        let starts = Arc::new(AtomicU32::new(0));
        let handle = spawn(hub.clone(), plan(Then::Fail, starts.clone()), settings);
        wait_for("offline", || {
            hub.source_status().state == SourceState::Offline
        });
        let stopping = Instant::now();
        handle.stop(Duration::from_secs(5));
        assert!(stopping.elapsed() < Duration::from_secs(1));
    }
}
