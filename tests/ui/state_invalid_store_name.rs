use stoat::prelude::*;

#[stoat::state]
struct Counts {
    #[store(name = "per word")]
    per_word: Table<String, u64>,
}

#[stoat::state]
struct Dashed {
    #[store(name = "b-c")]
    entries: Table<String, u64>,
}

fn main() {}
