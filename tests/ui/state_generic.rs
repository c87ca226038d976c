use stoat::prelude::*;

#[stoat::state]
struct Counts<K> {
    per_key: Table<K, u64>,
}

fn main() {}
