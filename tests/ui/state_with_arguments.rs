use stoat::prelude::*;

#[stoat::state(name = "counts")]
struct Counts {
    per_word: Table<String, u64>,
}

fn main() {}
