use stoat::prelude::*;

#[stoat::operator]
fn limited(value: u64, config: &Config) -> u64 {
    value.min(config.lanes as u64)
}

fn main() {}
