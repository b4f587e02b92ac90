//! UVC image controls (H4 fills this in).
