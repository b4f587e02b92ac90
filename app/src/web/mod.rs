//! HTTP and WebSocket server. SKELETON.
