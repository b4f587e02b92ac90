//! systemd integration. SKELETON.
