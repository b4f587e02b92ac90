//! Raw frame layouts (H3 fills this in).
