#[stoat::operator]
fn three(a: u64, b: u64, c: u64) -> u64 {
    a + b + c
}

fn main() {}
