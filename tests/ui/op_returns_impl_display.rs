#[stoat::operator]
fn shown(value: u64) -> impl std::fmt::Display {
    value
}

fn main() {}
