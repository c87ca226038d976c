#[stoat::operator]
fn count(value: u64, total: &mut u64) -> u64 {
    *total += value;
    *total
}

fn main() {}
