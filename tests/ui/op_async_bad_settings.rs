#[stoat::operator(concurrency = 0)]
async fn none_at_once(value: String) -> String {
    value
}

#[stoat::operator(timeout = "soon")]
async fn no_timeout(value: String) -> String {
    value
}

fn main() {}
