#[stoat::state]
struct Nothing {}

fn main() {}
