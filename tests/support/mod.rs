//! Shared test helpers: a seeded generator of Zipf-distributed text (with non-ASCII words) and an
//! independent word count oracle.

#![allow(dead_code)]

use std::collections::BTreeMap;

pub mod flaky;
pub mod http;
pub mod kafka;
pub mod oracle;
pub mod orders;

/// xorshift64*: a small seeded generator, so corpora are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "qu", "ä", "ö", "ß", "é", "ñ", "жи", "вой", "日",
    "本", "Ω", "ç",
];

/// A vocabulary of `n` distinct words, some capitalised (the count lowercases them).
pub fn vocabulary(rng: &mut Rng, n: usize) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut words = Vec::with_capacity(n);
    while words.len() < n {
        let len = 1 + rng.below(4);
        let mut w: String = (0..len).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect();
        if rng.below(5) == 0 {
            let mut cs = w.chars();
            if let Some(first) = cs.next() {
                w = first.to_uppercase().chain(cs).collect();
            }
        }
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    words
}

/// `lines` lines of Zipf-distributed words (exponent 1.1) joined by assorted separators.
pub fn zipf_corpus(seed: u64, lines: usize, vocab: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let words = vocabulary(&mut rng, vocab);
    let weights: Vec<f64> = (1..=vocab).map(|r| 1.0 / (r as f64).powf(1.1)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(vocab);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let seps = [" ", " ", " ", ", ", ". ", "\t", " -- ", "!", "?  ", "_", "'"];
    (0..lines)
        .map(|_| {
            let n = rng.below(12);
            let mut line = String::new();
            for i in 0..n {
                if i > 0 {
                    line.push_str(seps[rng.below(seps.len())]);
                }
                let u = rng.unit();
                let idx = cdf.partition_point(|&c| c < u).min(vocab - 1);
                line.push_str(&words[idx]);
            }
            line
        })
        .collect()
}

/// The oracle: counts words with a hand-written scanner (a word is a maximal run of
/// alphanumeric characters, lowercased), independent of the topology's operators.
pub fn oracle<'a>(lines: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in lines {
        let mut word = String::new();
        for c in line.chars().chain(std::iter::once(' ')) {
            if c.is_alphanumeric() {
                word.push(c);
            } else if !word.is_empty() {
                *counts.entry(word.to_lowercase()).or_insert(0) += 1;
                word.clear();
            }
        }
    }
    counts
}
