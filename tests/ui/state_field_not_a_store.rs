use stoat::prelude::*;

#[stoat::state]
struct Counts {
    per_word: Table<String, u64>,
    total: u64,
}

fn main() {}
