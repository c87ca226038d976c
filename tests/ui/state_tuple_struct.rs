use stoat::prelude::*;

#[stoat::state]
struct Counts(Table<String, u64>);

fn main() {}
