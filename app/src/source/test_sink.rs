//! A [`Sink`] for the sources' unit tests: it parses what a source writes the way
//! the supervisor's ingest does, checks capture times are recent, asks to stop
//! after some access units or at a deadline, and asks for keyframes when told to.

use std::time::{Duration, Instant, SystemTime};

use super::Sink;
use crate::h264::{AccessUnit, AccessUnitReader};

/// Records what a source writes.
pub struct Recording {
    /// The parser, with its error counters.
    pub reader: AccessUnitReader,
    /// The access units so far.
    pub units: Vec<AccessUnit>,
    /// Every write: its length and whether it ended a frame.
    pub writes: Vec<(usize, bool)>,
    /// Stop after this many access units.
    pub stop_after: usize,
    /// Stop at this instant whatever came.
    pub deadline: Instant,
    /// Ask for a keyframe once this many access units came, one request each.
    pub keyframe_requests_at: Vec<usize>,
    /// How many access units had come at each request the source took.
    pub keyframes_requested_at: Vec<usize>,
}

impl Recording {
    /// Stops after `stop_after` access units or `within`.
    pub fn new(stop_after: usize, within: Duration) -> Recording {
        Recording {
            reader: AccessUnitReader::new(),
            units: Vec::new(),
            writes: Vec::new(),
            stop_after,
            deadline: Instant::now() + within,
            keyframe_requests_at: Vec::new(),
            keyframes_requested_at: Vec::new(),
        }
    }

    /// Indexes (in [`Recording::units`]) of the keyframes.
    pub fn keyframe_indexes(&self) -> Vec<usize> {
        (0..self.units.len())
            .filter(|&i| self.units[i].is_keyframe())
            .collect()
    }
}

impl Sink for Recording {
    fn write(&mut self, annex_b: &[u8], frame_end: bool, captured: SystemTime) {
        let age = SystemTime::now()
            .duration_since(captured)
            .unwrap_or_default();
        assert!(age < Duration::from_secs(5), "captured {age:?} ago");
        self.writes.push((annex_b.len(), frame_end));
        self.reader.push(annex_b, &mut self.units);
        if frame_end {
            self.reader.flush(&mut self.units);
        }
    }

    fn should_stop(&self) -> bool {
        self.units.len() >= self.stop_after || Instant::now() >= self.deadline
    }

    fn keyframe_requested(&mut self) -> bool {
        let now = self.units.len();
        let due = self.keyframe_requests_at.iter().position(|&at| at <= now);
        if let Some(due) = due {
            self.keyframe_requests_at.remove(due);
            self.keyframes_requested_at.push(now);
        }
        due.is_some()
    }
}
