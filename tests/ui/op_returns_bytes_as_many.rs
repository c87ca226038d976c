// `Vec<u8>` reads as "a record per byte": refused, with what to return instead.

#[stoat::operator]
fn passthrough(payload: Vec<u8>) -> Vec<u8> {
    payload
}

#[stoat::operator]
fn checked(payload: Vec<u8>) -> Result<Vec<u8>, String> {
    Ok(payload)
}

fn main() {}
