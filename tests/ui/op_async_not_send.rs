use std::rc::Rc;

#[stoat::operator]
async fn enrich(value: String) -> String {
    let held = Rc::new(1);
    async {}.await;
    format!("{value}{held}")
}

fn main() {}
