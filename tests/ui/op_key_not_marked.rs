use stoat::prelude::*;

// The key must be marked `#[key]`; a second plain parameter is not the value.
#[stoat::operator]
fn add(key: u64, value: u64) -> u64 {
    key + value
}

fn main() {}
