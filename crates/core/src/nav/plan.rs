//! Route planning: the cheapest path between two screens (Dijkstra over the directed edges, each
//! weighted by its learned expected time to succeed). Trees are small (tens of screens), so a
//! plain binary-heap Dijkstra is all it takes.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap},
};

use serde::{Deserialize, Serialize};

use super::{NavError, NavigationTree};

/// One edge of a planned path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedEdge {
    pub edge_id: String,
    pub from: String,
    pub to: String,
    pub cost_ms: f64,
}

/// The cheapest way from one screen to another. Empty when `from == to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Path {
    pub from: String,
    pub to: String,
    pub edges: Vec<PlannedEdge>,
    /// Sum of the edges' expected times.
    pub cost_ms: f64,
}

#[derive(PartialEq)]
struct Entry {
    cost: f64,
    screen: usize,
}

impl Eq for Entry {}

impl Ord for Entry {
    /// Reversed: `BinaryHeap` is a max-heap and we want the cheapest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .cost
            .total_cmp(&self.cost)
            .then_with(|| other.screen.cmp(&self.screen))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The cheapest path from screen `from` to screen `to`.
pub fn plan(tree: &NavigationTree, from: &str, to: &str) -> Result<Path, NavError> {
    let index: HashMap<&str, usize> = tree
        .screens
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let (Some(&start), Some(&goal)) = (index.get(from), index.get(to)) else {
        let unknown = if index.contains_key(from) { to } else { from };
        return Err(NavError::UnknownScreen(unknown.to_owned()));
    };
    let edges = tree.directed_edges();
    // Adjacency: screen -> (edge index, destination, cost).
    let mut adj: Vec<Vec<(usize, usize, f64)>> = vec![Vec::new(); tree.screens.len()];
    for (i, e) in edges.iter().enumerate() {
        if let (Some(&a), Some(&b)) = (index.get(e.from), index.get(e.to)) {
            adj[a].push((i, b, tree.edge_cost_ms(e)));
        }
    }
    let mut best = vec![f64::INFINITY; tree.screens.len()];
    let mut via: Vec<Option<(usize, usize)>> = vec![None; tree.screens.len()];
    let mut heap = BinaryHeap::from([Entry {
        cost: 0.0,
        screen: start,
    }]);
    best[start] = 0.0;
    while let Some(Entry { cost, screen }) = heap.pop() {
        if screen == goal {
            break;
        }
        if cost > best[screen] {
            continue;
        }
        for &(edge, next, c) in &adj[screen] {
            let nc = cost + c;
            if nc < best[next] {
                best[next] = nc;
                via[next] = Some((edge, screen));
                heap.push(Entry {
                    cost: nc,
                    screen: next,
                });
            }
        }
    }
    if !best[goal].is_finite() {
        return Err(NavError::Unreachable {
            from: from.to_owned(),
            to: to.to_owned(),
        });
    }
    let mut out = Vec::new();
    let mut at = goal;
    while let Some((edge, prev)) = via[at] {
        let e = &edges[edge];
        out.push(PlannedEdge {
            edge_id: e.id.clone(),
            from: e.from.to_owned(),
            to: e.to.to_owned(),
            cost_ms: tree.edge_cost_ms(e),
        });
        at = prev;
    }
    out.reverse();
    Ok(Path {
        from: from.to_owned(),
        to: to.to_owned(),
        edges: out,
        cost_ms: best[goal],
    })
}
