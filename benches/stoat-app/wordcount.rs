//! Workload (b): word count, the example's topology (split, re-key by word in memory, count).
//! Same as `WordCount.java`, which re-keys through a repartition topic.

#[path = "../../examples/word_count/app.rs"]
#[allow(dead_code)]
mod word_count;

pub fn topology(app: &str, input: &str, output: &str) -> stoat::Topology {
    word_count::topology_for(app, input, output)
}
