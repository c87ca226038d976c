#[stoat::operator]
fn log_it(value: String) {
    println!("{value}");
}

fn main() {}
