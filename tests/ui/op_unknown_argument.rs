#[stoat::operator(nme = "typo")]
fn double(value: u64) -> u64 {
    value * 2
}

fn main() {}
