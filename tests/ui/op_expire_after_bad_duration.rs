use stoat::prelude::*;

#[stoat::operator(expire_after = "ten minutes")]
fn seen(#[key] _user: &String, _e: String, count: &mut Keyed<u64>) -> Result<u64, StoreError> {
    let n = count.get()?.unwrap_or(0) + 1;
    count.set(n)?;
    Ok(n)
}

fn main() {}
