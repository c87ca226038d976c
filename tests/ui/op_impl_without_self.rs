use stoat::prelude::*;

struct Limits;

#[stoat::operator]
impl Limits {
    fn above(value: u64) -> Option<u64> {
        Some(value)
    }
}

fn main() {}
