use stoat::prelude::*;

#[stoat::state]
struct Counts {
    n: Table<String, u64>,
}

#[stoat::operator]
fn nothing_to_process(counts: &mut Counts) -> u64 {
    0
}

fn main() {}
