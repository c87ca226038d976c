use stoat::prelude::*;

#[stoat::operator]
fn bump(value: &mut u64) -> u64 {
    *value + 1
}

fn main() {}
