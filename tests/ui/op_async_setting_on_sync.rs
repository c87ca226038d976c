#[stoat::operator(concurrency = 8)]
fn enrich(value: String) -> String {
    value
}

fn main() {}
