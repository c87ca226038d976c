use stoat::prelude::*;

struct Limits {
    min: u64,
}

#[stoat::operator]
impl Limits {
    fn above(&self, value: u64) -> Option<u64> {
        (value >= self.min).then_some(value)
    }
    fn below(&self, value: u64) -> Option<u64> {
        (value < self.min).then_some(value)
    }
}

fn main() {}
