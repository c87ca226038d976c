use stoat::prelude::*;

#[stoat::operator]
fn tag(value: u64, #[key] key: String) -> String {
    format!("{key}{value}")
}

fn main() {}
