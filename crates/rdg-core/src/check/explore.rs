//! Breadth-first search over the model's states, deduplicated by a 64-bit fingerprint of the
//! whole state (every [`crate::election::Node`] included; with a few million states a
//! collision is a one-in-a-million chance). A state reached again with no fewer faults spent
//! is not explored again. Breadth first, the first broken rule found comes with a shortest
//! path to it, replayed into a readable trace.

use super::model::{Action, Broken, Model, TraceLine, World};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{DefaultHasher, Hash, Hasher};

/// How a visited state was reached: its parent's position (None for a start) and the action.
struct Reached {
    parent: Option<u32>,
    action: Start,
}

#[derive(Clone, Copy)]
enum Start {
    /// A start state, by index into the start list.
    Root(usize),
    /// An action from the parent.
    Step(Action),
}

/// What one search found.
pub struct Outcome {
    /// Distinct states reached (start states included).
    pub states: u64,
    /// Steps taken (transitions, including those into states seen before).
    pub transitions: u64,
    /// Deepest level (actions after a start state) holding a new state.
    pub max_depth: usize,
    /// The frontier emptied before the depth bound: every reachable state was seen.
    pub exhausted: bool,
    /// The first broken rule, the depth of its step, and its trace.
    pub violation: Option<(Broken, usize, Vec<TraceLine>)>,
}

fn fingerprint(w: &World) -> u64 {
    let mut h = DefaultHasher::new();
    w.hash(&mut h);
    h.finish()
}

/// Explores every state reachable from `starts` within `depth` actions.
pub fn explore(model: &Model, starts: &[(World, Vec<Action>)], depth: usize) -> Outcome {
    // Fingerprint -> fewest faults spent on a path to it.
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut reached: Vec<Reached> = Vec::new();
    let mut frontier: Vec<(World, u32, u32)> = Vec::new();
    let mut outcome = Outcome {
        states: 0,
        transitions: 0,
        max_depth: 0,
        exhausted: false,
        violation: None,
    };
    for (i, (w, _)) in starts.iter().enumerate() {
        if seen.insert(fingerprint(w), 0).is_none() {
            reached.push(Reached {
                parent: None,
                action: Start::Root(i),
            });
            frontier.push((w.clone(), 0, (reached.len() - 1) as u32));
        }
    }
    for level in 1..=depth {
        let mut next = Vec::new();
        // Consumed as it goes: each state's memory is freed once expanded.
        for (w, spent, at) in std::mem::take(&mut frontier) {
            for a in model.actions(&w, spent) {
                let (t, broken) = model.step(&w, a, None);
                outcome.transitions += 1;
                let spent = spent + u32::from(a.is_fault());
                let fresh = match seen.entry(fingerprint(&t)) {
                    Entry::Vacant(e) => {
                        e.insert(spent);
                        true
                    }
                    Entry::Occupied(mut e) if *e.get() > spent => {
                        e.insert(spent);
                        true
                    }
                    Entry::Occupied(_) => false,
                };
                if !fresh && broken.is_empty() {
                    continue;
                }
                reached.push(Reached {
                    parent: Some(at),
                    action: Start::Step(a),
                });
                let id = (reached.len() - 1) as u32;
                if let Some(b) = broken.into_iter().next() {
                    outcome.states = seen.len() as u64;
                    outcome.max_depth = level;
                    let mut trace = replay(model, starts, &reached, id);
                    trace.push(TraceLine {
                        at_ms: t.now.as_millis() as u64,
                        member: String::new(),
                        text: format!("VIOLATION {}: {}", b.rule, b.detail),
                    });
                    outcome.violation = Some((b, level, trace));
                    return outcome;
                }
                next.push((t, spent, id));
            }
        }
        if next.is_empty() {
            outcome.exhausted = true;
            break;
        }
        outcome.max_depth = level;
        frontier = next;
    }
    outcome.states = seen.len() as u64;
    outcome
}

/// The path to state `id`, replayed from its start with every action and event in words.
fn replay(
    model: &Model,
    starts: &[(World, Vec<Action>)],
    reached: &[Reached],
    id: u32,
) -> Vec<TraceLine> {
    let mut path = Vec::new();
    let mut at = Some(id);
    let mut root = 0;
    while let Some(i) = at {
        let r = &reached[i as usize];
        match r.action {
            Start::Root(s) => root = s,
            Start::Step(a) => path.push(a),
        }
        at = r.parent;
    }
    path.reverse();
    // From the cold start, so that the trace shows how the start state came about too.
    let mut w = model.cold_start();
    let mut lines = vec![TraceLine {
        at_ms: 0,
        member: String::new(),
        text: format!("start all {} members", w.hosts.len()),
    }];
    let prefix = &starts[root].1;
    for (k, &a) in prefix.iter().chain(&path).enumerate() {
        if k == prefix.len() && !prefix.is_empty() {
            lines.push(TraceLine {
                at_ms: w.now.as_millis() as u64,
                member: String::new(),
                text: "(settled group: the search starts here)".into(),
            });
        }
        let (next, _) = model.step(&w, a, Some(&mut lines));
        w = next;
    }
    lines
}
