//! The local node agent (skeleton; filled in by the node-agent work).
fn main() {}
