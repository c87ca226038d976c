//! Workload (a): a stateless transform of 1 KB values. Keeps a record unless the FNV-1a hash of
//! its value is divisible by 10 (about 90 % kept), and maps the value to its ASCII upper case
//! followed by `:` and the hash in hex. Same as `Stateless.java`.

use stoat::prelude::*;

pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

#[stoat::operator]
fn transform(value: &[u8]) -> Option<Vec<u8>> {
    let hash = fnv1a(value);
    if hash.is_multiple_of(10) {
        return None;
    }
    let hex = format!("{hash:x}");
    let mut out = Vec::with_capacity(value.len() + 1 + hex.len());
    out.extend(value.iter().map(u8::to_ascii_uppercase));
    out.push(b':');
    out.extend_from_slice(hex.as_bytes());
    Some(out)
}

pub fn topology(app: &str, input: &str, output: &str) -> Topology {
    let topology = Topology::new(app);
    topology.stream_with(input, Utf8, RawBytes).process(transform {}).to_with(output, Utf8, RawBytes);
    topology
}
