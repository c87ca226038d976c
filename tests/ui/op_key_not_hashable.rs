#[stoat::operator]
fn scale(key: f64, value: u64) -> u64 {
    value * key as u64
}

fn main() {}
