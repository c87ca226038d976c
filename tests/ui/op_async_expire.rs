#[stoat::operator(expire_after = "10s")]
async fn enrich(#[key] key: &String, value: String) -> String {
    value
}

fn main() {}
