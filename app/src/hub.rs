//! Fan-out hub. SKELETON.
