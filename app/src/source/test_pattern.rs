//! STUB
use super::*;
/// STUB
#[derive(Clone, Debug)]
pub struct TestPatternSettings {
    /// x
    pub width: u32,
    /// x
    pub height: u32,
    /// x
    pub framerate: u32,
    /// x
    pub bitrate: u32,
    /// x
    pub intra_period: u32,
}
/// STUB
pub struct TestPattern;
impl TestPattern {
    /// STUB
    pub fn new(_s: TestPatternSettings) -> Result<Self, SourceError> {
        Ok(TestPattern)
    }
}
impl Source for TestPattern {
    fn name(&self) -> &'static str {
        "test"
    }
    fn describe(&self) -> String {
        String::new()
    }
    fn run(&mut self, _s: &mut dyn Sink) -> Result<(), SourceError> {
        Ok(())
    }
}
