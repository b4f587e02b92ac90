//! STUB
/// STUB
pub struct Pps {
    /// x
    pub id: u32,
}
impl Pps {
    /// STUB
    pub fn parse(_d: &[u8]) -> Result<Pps, super::sps::SpsError> {
        Err(super::sps::SpsError)
    }
}
