use stoat::prelude::*;

#[stoat::state]
struct Counts {
    n: Table<String, u64>,
}

#[stoat::operator]
fn count(value: u64, counts: Counts) -> u64 {
    value
}

fn main() {}
