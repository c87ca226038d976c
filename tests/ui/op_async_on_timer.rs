use stoat::prelude::*;

struct Enricher;

#[stoat::operator]
impl Enricher {
    async fn enrich(&self, #[key] key: &String, value: String) -> String {
        value
    }
    #[on_timer]
    fn fire(&self, #[key] key: &String, timer: Timer) -> String {
        key.clone()
    }
}

fn main() {}
