//! The `streamer` command line. SKELETON.

fn main() {}
