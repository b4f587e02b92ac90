//! A fake capture node for tests (H2 fills this in).
