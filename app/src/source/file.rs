//! File source. SKELETON.
