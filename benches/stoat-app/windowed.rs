//! Workload (d): a 1-minute tumbling count per key with 10 s grace, emitted once when each window
//! closes; output key `user@window-start`, value the count as decimal text. Same as
//! `Windowed.java` (`suppress(untilWindowCloses)`).

use std::time::Duration;

use stoat::prelude::*;

pub fn topology(app: &str, input: &str, output: &str) -> Topology {
    let topology = Topology::new(app);
    topology
        .stream::<String, String>(input)
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(10)))
        .emit_on_window_close()
        .count("counts")
        .map(|w, n| (format!("{}@{}", w.key, w.window.start), n.to_string()))
        .to(output);
    topology
}
