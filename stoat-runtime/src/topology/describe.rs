//! What a topology looks like, for people: a graph of its sources, operators (re-key points and
//! stores named in their labels), sinks and schedules, recorded as the DSL builds it, and drawn as
//! text and as an SVG picture (`Program::description`, `GET /topology`). The SVG is laid out here
//! (layers by distance from the sources), so the picture needs no script or network to render.

use std::fmt::Write;

/// What a node of the picture is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Reads a topic.
    Source,
    /// Transforms, aggregates or joins.
    Operator,
    /// Writes a topic.
    Sink,
    /// Emits on a schedule.
    Schedule,
}

/// One node: what it is, its label, the nodes it reads from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Node {
    /// Its index in [`Description::nodes`].
    pub id: usize,
    /// What it is.
    pub kind: NodeKind,
    /// A short text (a topic, an operator and its store).
    pub label: String,
    /// The nodes whose records it takes.
    pub inputs: Vec<usize>,
    /// Whether records reach it re-keyed, from the lanes owning their new keys.
    pub rekeyed: bool,
}

/// A topology's graph.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Description {
    /// Every node, in the order the topology was built (inputs come first).
    pub nodes: Vec<Node>,
}

impl Description {
    /// Adds a node; returns its id.
    pub(crate) fn add(&mut self, kind: NodeKind, label: impl Into<String>, inputs: Vec<usize>) -> usize {
        let id = self.nodes.len();
        let label = label.into();
        let label = label.strip_prefix("the output of ").map(str::to_string).unwrap_or(label);
        let label = label.strip_prefix("operator ").map(str::to_string).unwrap_or(label);
        self.nodes.push(Node { id, kind, label, inputs, rekeyed: false });
        id
    }

    /// Adds `from` as another input of `to` (a join's or merge's other side).
    pub(crate) fn link(&mut self, from: usize, to: usize) {
        if let Some(node) = self.nodes.get_mut(to) {
            if from != to && !node.inputs.contains(&from) {
                node.inputs.push(from);
            }
        }
    }

    /// Marks `node` as reached by re-keyed records.
    pub(crate) fn rekeyed(&mut self, node: usize) {
        if let Some(node) = self.nodes.get_mut(node) {
            node.rekeyed = true;
        }
    }

    /// One line per node: `[id] kind label <- inputs`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let kind = match n.kind {
                NodeKind::Source => "source",
                NodeKind::Operator => "operator",
                NodeKind::Sink => "sink",
                NodeKind::Schedule => "schedule",
            };
            let _ = write!(out, "[{}] {kind} {}", n.id, n.label);
            if !n.inputs.is_empty() {
                let inputs: Vec<String> = n.inputs.iter().map(|i| format!("[{i}]")).collect();
                let _ = write!(out, " <- {}", inputs.join(", "));
            }
            if n.rekeyed {
                out.push_str(" (re-keyed in memory)");
            }
            out.push('\n');
        }
        out
    }

    /// Each node's layer: 0 for sources, else one more than its deepest input.
    fn layers(&self) -> Vec<usize> {
        let mut layer = vec![0usize; self.nodes.len()];
        for n in &self.nodes {
            let deepest = n.inputs.iter().filter(|&&i| i < n.id).map(|&i| layer[i] + 1).max().unwrap_or(0);
            layer[n.id] = deepest;
        }
        layer
    }

    /// The graph as a standalone SVG picture: layers left to right, one box per node, an arrow
    /// per input (dashed when records are re-keyed on the way).
    pub fn svg(&self) -> String {
        const W: usize = 220;
        const H: usize = 44;
        const GAP_X: usize = 70;
        const GAP_Y: usize = 26;
        let layers = self.layers();
        let mut row_in_layer = vec![0usize; layers.iter().max().map_or(0, |m| m + 1)];
        let mut at = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let layer = layers[n.id];
            let row = row_in_layer[layer];
            row_in_layer[layer] += 1;
            at.push((20 + layer * (W + GAP_X), 20 + row * (H + GAP_Y)));
        }
        let width = 40 + row_in_layer.len().max(1) * (W + GAP_X);
        let height = 40 + row_in_layer.iter().max().copied().unwrap_or(1).max(1) * (H + GAP_Y);
        let mut out = String::new();
        let _ = write!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##
        );
        for n in &self.nodes {
            let (x, y) = at[n.id];
            for &i in &n.inputs {
                let Some(&(fx, fy)) = at.get(i) else { continue };
                let dash = if n.rekeyed { r#" stroke-dasharray="6,4""# } else { "" };
                let _ = write!(
                    out,
                    r##"<path class="edge" d="M{} {} C{} {} {} {} {} {}" fill="none" stroke="#555"{dash} marker-end="url(#arrow)"/>"##,
                    fx + W,
                    fy + H / 2,
                    fx + W + GAP_X / 2,
                    fy + H / 2,
                    x - GAP_X / 2,
                    y + H / 2,
                    x,
                    y + H / 2
                );
            }
        }
        for n in &self.nodes {
            let (x, y) = at[n.id];
            let (fill, kind) = match n.kind {
                NodeKind::Source => ("#d7ecd9", "source"),
                NodeKind::Operator => ("#dbe7f5", "operator"),
                NodeKind::Sink => ("#f7e3c8", "sink"),
                NodeKind::Schedule => ("#ece0f3", "schedule"),
            };
            let label: String = n.label.chars().take(34).collect();
            let _ = write!(
                out,
                r##"<g class="node {kind}"><title>{}</title><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="6" fill="{fill}" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">{}</text><text x="{}" y="{}" text-anchor="middle" fill="#666" font-size="10">{kind}</text></g>"##,
                escape(&n.label),
                x + W / 2,
                y + 18,
                escape(&label),
                x + W / 2,
                y + 34
            );
        }
        out.push_str("</svg>");
        out
    }
}

/// Text safe inside SVG/HTML.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_follow_inputs_and_the_svg_has_a_box_per_node_and_an_arrow_per_input() {
        let mut d = Description::default();
        let a = d.add(NodeKind::Source, "orders", vec![]);
        let b = d.add(NodeKind::Source, "customers", vec![]);
        let j = d.add(NodeKind::Operator, "the output of `join` <with>", vec![a]);
        d.link(b, j);
        d.rekeyed(j);
        let s = d.add(NodeKind::Sink, "enriched", vec![j]);
        assert_eq!(d.layers(), vec![0, 0, 1, 2]);
        assert_eq!(d.nodes[s].inputs, vec![j]);
        let svg = d.svg();
        assert_eq!(svg.matches("<rect").count(), 4);
        assert_eq!(svg.matches(r#"class="edge""#).count(), 3);
        assert!(svg.contains("`join` &lt;with&gt;"), "labels are escaped and shortened: {svg}");
        assert!(svg.contains("stroke-dasharray"), "a re-keyed input is dashed");
        let text = d.text();
        assert!(text.contains("[2] operator `join` <with> <- [0], [1] (re-keyed in memory)"), "{text}");
    }
}
