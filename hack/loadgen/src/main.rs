//! The load generator (skeleton; filled in by the load-generator work).
fn main() {}
