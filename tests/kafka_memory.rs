//! Memory under back-pressure on a real Apache Kafka 4.4.0 broker: a fast source (60,000 records
//! of 1 KB, all there at the start) and a slow operator (100 µs a record). The app reads ahead
//! only as far as its bounds allow (`Config::max_in_flight`, librdkafka's fetch queue of 4 MiB,
//! the producer's queue of 16 MiB), so its resident memory stays within a budget however far
//! behind it is. The only test of its binary: the process's RSS is the app's.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stoat::prelude::*;
use support::kafka::Kafka;

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[stoat::operator]
fn slow(payload: Vec<u8>) -> Option<Vec<u8>> {
    std::thread::sleep(Duration::from_micros(100));
    Some(payload)
}

#[test]
fn a_slow_operator_behind_a_fast_source_stays_within_its_memory_budget() -> stoat::Result<()> {
    const RECORDS: usize = 60_000;
    const BUDGET: u64 = 48 << 20;
    let k = Kafka::single();
    k.create_topic("mem-in", 4);
    k.create_topic("mem-out", 4);
    // Produced in slices (each producer flushed and gone) so the test's own producer does not
    // hold the input in memory.
    for slice in 0..(RECORDS / 5_000) {
        let records = (0..5_000).map(|i| {
            let n = slice * 5_000 + i;
            let mut value = vec![b'x'; 1_000];
            value[..8].copy_from_slice(&(n as u64).to_be_bytes());
            (Some(format!("k{}", n % 997).into_bytes()), value)
        });
        k.produce("mem-in", records);
    }
    let topology = Topology::new("mem");
    topology.stream::<String, Vec<u8>>("mem-in").process(slow {}).to("mem-out");
    let config = Config::default().lanes(4).max_in_flight(4_096);
    let before = rss();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut app = App::kafka(&topology, config, KafkaConfig::new(&k.bootstrap))?;
    let shutdown = Shutdown::new();
    app.stop_when_idle(&shutdown, Duration::from_secs(2));
    let stats = app.run_until_stopped(&shutdown)?;
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    drop(app);
    let grew = peak.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!(
        "memory: RSS {:.1} MiB before the app, peak {:.1} MiB while it ran {} records of 1 KB behind a slow operator: +{:.1} MiB (budget {} MiB; peak in flight {})",
        before as f64 / 1048576.0,
        peak.load(Ordering::Relaxed) as f64 / 1048576.0,
        stats.records_in,
        grew as f64 / 1048576.0,
        BUDGET >> 20,
        stats.peak_in_flight
    );
    assert_eq!(stats.records_in, RECORDS as u64);
    assert_eq!(stats.records_out, RECORDS as u64);
    assert_eq!(k.read_committed("mem-out").len(), RECORDS);
    assert!(stats.peak_in_flight <= 4_096 + 256 * 4, "in flight: {}", stats.peak_in_flight);
    assert!(grew < BUDGET, "the app's memory grew by {} MiB (budget {} MiB)", grew >> 20, BUDGET >> 20);
    Ok(())
}
