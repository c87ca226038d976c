//! The partition of a keyed record, as Kafka's Java clients choose it: murmur2 of the key bytes
//! (the default partitioner's `partitionForKey`). The embedded log partitions with it, and the
//! Kafka producer is set to librdkafka's `murmur2_random`, the same function, so a key lands on
//! the same partition whether stoat, Kafka Streams or any Java producer writes it.

/// Kafka's murmur2 hash (seed `0x9747b28c`) of `data`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition among `partitions` of a record with key `key`.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) as u32 & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::partition_for_key;

    #[test]
    fn matches_the_java_client() {
        // From `tests/kafka/Partitions.java` (Kafka 4.4.0's BuiltInPartitioner) with 8 partitions;
        // the Kafka tests compare many more keys against it.
        assert_eq!(partition_for_key(b"a", 8), 4);
        assert_eq!(partition_for_key(b"key-1", 8), 0);
        assert_eq!(partition_for_key(b"hello", 8), 5);
    }
}
