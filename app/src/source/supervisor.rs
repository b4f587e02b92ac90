//! Source supervision. SKELETON.
