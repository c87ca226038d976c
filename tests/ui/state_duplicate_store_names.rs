use stoat::prelude::*;

#[stoat::state]
struct Counts {
    per_word: Table<String, u64>,
    #[store(name = "per_word")]
    per_line: Table<u64, u64>,
}

fn main() {}
