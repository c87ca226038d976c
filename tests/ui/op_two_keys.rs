#[stoat::operator]
fn pair(#[key] a: u64, #[key] b: u64, value: u64) -> u64 {
    a + b + value
}

fn main() {}
