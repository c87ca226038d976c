#[stoat::operator]
fn method(self, value: u64) -> u64 {
    value
}

fn main() {}
