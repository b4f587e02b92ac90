//! A fake bcm2835-codec encoder node for tests (H3 fills this in).
