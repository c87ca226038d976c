#[stoat::operator]
fn name(value: u64) -> &'static str {
    if value > 0 { "positive" } else { "zero" }
}

fn main() {}
