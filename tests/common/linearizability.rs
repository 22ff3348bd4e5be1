//! A small linearizability checker for a map of integer registers, in the
//! style of Wing & Gong's search with Lowe's memoisation (as Knossos and
//! Porcupine do it).
//!
//! A [`History`] records, for each operation a client ran, when it was
//! invoked, when (and whether) its answer came back, and what it read. An
//! operation whose answer was lost (a write that may or may not have taken
//! effect) has no completion: it may be placed anywhere after its
//! invocation, or nowhere. An operation that definitely failed is not
//! recorded at all. Linearizability is local (P-compositional), so the
//! history is checked one key at a time.
//!
//! Pure code: no network, no clock but the recorder's monotonic one. Not a
//! child of `common`: a test that needs it includes it with
//! `#[path = "common/linearizability.rs"] mod linearizability;`, so its own
//! unit tests run in that test binary only.
#![allow(dead_code)] // Test binaries use different parts.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

/// What an operation did to one key's register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Set the register to this value.
    Write(i64),
    /// Read the register and saw this value.
    Read(i64),
}

/// One operation of a concurrent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Which client ran it (for the report only).
    pub client: usize,
    /// The key (register) it touched.
    pub key: u32,
    /// What it did.
    pub action: Action,
    /// When it was invoked (ns on the recorder's clock).
    pub call: u64,
    /// When its answer came back; `None` when the answer was lost and the
    /// effect is unknown (only meaningful for writes).
    pub ret: Option<u64>,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        let what = match self.action {
            Action::Write(v) => format!("write {v}"),
            Action::Read(v) => format!("read -> {v}"),
        };
        match self.ret {
            Some(ret) => write!(
                f,
                "[{:>10.3} .. {:>10.3} ms] client {:>2} key {} {what}",
                ms(self.call),
                ms(ret),
                self.client,
                self.key
            ),
            None => write!(
                f,
                "[{:>10.3} .. (unknown)  ] client {:>2} key {} {what} (outcome unknown)",
                ms(self.call),
                self.client,
                self.key
            ),
        }
    }
}

/// Records a concurrent history from many tasks.
#[derive(Debug)]
pub struct History {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Default for History {
    fn default() -> History {
        History::new()
    }
}

impl History {
    /// An empty history whose clock starts now.
    pub fn new() -> History {
        History {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Now on the history's clock (ns). Take it right before sending a
    /// request and right after its answer arrived.
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Adds a completed (or unknown-outcome) operation.
    pub fn push(&self, op: Op) {
        self.ops.lock().unwrap().push(op);
    }

    /// The operations recorded so far.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap().clone()
    }
}

/// Why a history could not be shown linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// No order of the operations on `key` explains what the reads saw.
    NotLinearizable {
        /// The key whose history is impossible.
        key: u32,
        /// That key's operations, by invocation time, one per line.
        ops: String,
        /// The longest prefix of operations the search could order.
        best_prefix: String,
    },
    /// The search gave up after visiting its budget of states.
    Inconclusive {
        /// The key being checked.
        key: u32,
        /// States visited.
        states: usize,
    },
    /// A completion precedes its invocation: the recording is wrong.
    Malformed(String),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::NotLinearizable {
                key,
                ops,
                best_prefix,
            } => write!(
                f,
                "the history of key {key} is not linearizable.\noperations:\n{ops}\n\
                 longest order found:\n{best_prefix}"
            ),
            CheckError::Inconclusive { key, states } => write!(
                f,
                "gave up on key {key} after {states} states; record a smaller history"
            ),
            CheckError::Malformed(m) => write!(f, "malformed history: {m}"),
        }
    }
}

/// Default number of search states per key before giving up.
pub const DEFAULT_BUDGET: usize = 2_000_000;

/// Checks `ops` against registers that all start at `initial`, key by key.
pub fn check(ops: &[Op], initial: i64) -> Result<(), CheckError> {
    check_with_budget(ops, initial, DEFAULT_BUDGET)
}

/// [`check`] with an explicit per-key state budget.
pub fn check_with_budget(ops: &[Op], initial: i64, budget: usize) -> Result<(), CheckError> {
    let mut by_key: BTreeMap<u32, Vec<Op>> = BTreeMap::new();
    for op in ops {
        if let Some(ret) = op.ret
            && ret < op.call
        {
            return Err(CheckError::Malformed(format!(
                "{op} returns before it is invoked"
            )));
        }
        if matches!(op.action, Action::Read(_)) && op.ret.is_none() {
            // A read whose answer was lost tells nothing.
            continue;
        }
        by_key.entry(op.key).or_default().push(op.clone());
    }
    for (key, mut ops) in by_key {
        ops.sort_by_key(|o| (o.call, o.ret.unwrap_or(u64::MAX)));
        Search::new(&ops, budget)
            .run(initial)
            .map_err(|e| match e {
                Fail::Impossible(best) => CheckError::NotLinearizable {
                    key,
                    ops: ops.iter().map(|o| format!("  {o}\n")).collect(),
                    best_prefix: best.iter().map(|&i| format!("  {}\n", ops[i])).collect(),
                },
                Fail::Budget(states) => CheckError::Inconclusive { key, states },
            })?;
    }
    Ok(())
}

/// How one key's search ended without an order.
enum Fail {
    /// No order: the longest prefix found (indexes into the ops).
    Impossible(Vec<usize>),
    /// Too many states.
    Budget(usize),
}

/// The search over one key's operations (sorted by invocation).
struct Search<'a> {
    ops: &'a [Op],
    /// Operations with a known completion: all of them must be placed.
    definite: usize,
    budget: usize,
    states: usize,
    /// (placed set, register value) pairs already explored without success.
    seen: HashSet<(Vec<u64>, i64)>,
    /// The current partial order, and the longest one found.
    order: Vec<usize>,
    best: Vec<usize>,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [Op], budget: usize) -> Search<'a> {
        Search {
            ops,
            definite: ops.iter().filter(|o| o.ret.is_some()).count(),
            budget,
            states: 0,
            seen: HashSet::new(),
            order: Vec::new(),
            best: Vec::new(),
        }
    }

    fn run(mut self, initial: i64) -> Result<(), Fail> {
        let mut placed = vec![0u64; self.ops.len().div_ceil(64)];
        match self.step(&mut placed, initial, 0) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Fail::Impossible(self.best)),
            Err(states) => Err(Fail::Budget(states)),
        }
    }

    /// Tries to extend the order from this state; `Ok(true)` once every
    /// definite operation is placed.
    fn step(&mut self, placed: &mut [u64], value: i64, done: usize) -> Result<bool, usize> {
        if done == self.definite {
            return Ok(true);
        }
        self.states += 1;
        if self.states > self.budget {
            return Err(self.states);
        }
        if !self.seen.insert((placed.to_vec(), value)) {
            return Ok(false);
        }
        let is_placed = |p: &[u64], i: usize| p[i / 64] & (1 << (i % 64)) != 0;
        // An operation may go next only if no unplaced operation completed
        // before it was invoked.
        let horizon = (0..self.ops.len())
            .filter(|&i| !is_placed(placed, i))
            .filter_map(|i| self.ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        let candidates: Vec<usize> = (0..self.ops.len())
            .take_while(|&i| self.ops[i].call <= horizon)
            .filter(|&i| !is_placed(placed, i))
            .collect();
        // A read that sees the current value can always go first (it changes
        // nothing and every operation it must follow is placed).
        let greedy = candidates
            .iter()
            .copied()
            .find(|&i| self.ops[i].action == Action::Read(value));
        let tries: Vec<usize> = match greedy {
            Some(i) => vec![i],
            None => candidates,
        };
        for i in tries {
            let op = &self.ops[i];
            let next = match op.action {
                Action::Write(v) => v,
                Action::Read(v) if v == value => value,
                Action::Read(_) => continue,
            };
            let counts = usize::from(op.ret.is_some());
            placed[i / 64] |= 1 << (i % 64);
            self.order.push(i);
            if self.order.len() > self.best.len() {
                self.best = self.order.clone();
            }
            let found = self.step(placed, next, done + counts)?;
            self.order.pop();
            placed[i / 64] &= !(1 << (i % 64));
            if found {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(client: usize, key: u32, v: i64, call: u64, ret: u64) -> Op {
        Op {
            client,
            key,
            action: Action::Write(v),
            call,
            ret: Some(ret),
        }
    }
    fn w_unknown(client: usize, key: u32, v: i64, call: u64) -> Op {
        Op {
            client,
            key,
            action: Action::Write(v),
            call,
            ret: None,
        }
    }
    fn r(client: usize, key: u32, v: i64, call: u64, ret: u64) -> Op {
        Op {
            client,
            key,
            action: Action::Read(v),
            call,
            ret: Some(ret),
        }
    }

    #[test]
    fn sequential_histories() {
        let ok = [
            w(0, 1, 1, 0, 10),
            r(1, 1, 1, 20, 30),
            w(0, 1, 2, 40, 50),
            r(1, 1, 2, 60, 70),
        ];
        check(&ok, 0).unwrap();
        check(&[r(0, 1, 0, 0, 1)], 0).unwrap();
        // A stale read after a completed write.
        let stale = [w(0, 1, 1, 0, 10), w(0, 1, 2, 20, 30), r(1, 1, 1, 40, 50)];
        let e = check(&stale, 0).unwrap_err();
        assert!(
            matches!(e, CheckError::NotLinearizable { key: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("read -> 1"), "{e}");
        // A value nobody wrote.
        let e = check(&[w(0, 1, 1, 0, 10), r(1, 1, 7, 20, 30)], 0).unwrap_err();
        assert!(matches!(e, CheckError::NotLinearizable { .. }), "{e}");
        // The initial value is honoured.
        assert!(check(&[r(0, 1, 0, 0, 1)], 5).is_err());
    }

    #[test]
    fn concurrent_histories() {
        // A long write overlapping two reads: old then new is fine...
        let ok = [w(0, 1, 1, 0, 100), r(1, 1, 0, 10, 20), r(2, 1, 1, 30, 40)];
        check(&ok, 0).unwrap();
        // ...new then old is not: once seen, the write cannot be undone.
        let bad = [w(0, 1, 1, 0, 100), r(1, 1, 1, 10, 20), r(2, 1, 0, 30, 40)];
        assert!(check(&bad, 0).is_err());
        // Two overlapping writes may land in either order, but the reads
        // after both must agree with one of them, consistently.
        let either = [
            w(0, 1, 1, 0, 50),
            w(1, 1, 2, 10, 60),
            r(2, 1, 1, 70, 80),
            r(3, 1, 1, 90, 95),
        ];
        check(&either, 0).unwrap();
        let flip = [
            w(0, 1, 1, 0, 50),
            w(1, 1, 2, 10, 60),
            r(2, 1, 1, 70, 80),
            r(3, 1, 2, 90, 95),
        ];
        assert!(check(&flip, 0).is_err());
        // Overlapping reads may disagree while a write is in flight.
        let racing = [w(0, 1, 1, 0, 100), r(1, 1, 1, 10, 50), r(2, 1, 0, 20, 60)];
        check(&racing, 0).unwrap();
        // Equal times count as concurrent.
        check(&[w(0, 1, 1, 0, 10), r(1, 1, 0, 10, 20)], 0).unwrap();
    }

    #[test]
    fn unknown_outcomes() {
        // A lost write that took effect later...
        let late = [
            w_unknown(0, 1, 5, 0),
            r(1, 1, 0, 100, 110),
            r(1, 1, 5, 200, 210),
        ];
        check(&late, 0).unwrap();
        // ...or never.
        check(&[w_unknown(0, 1, 5, 0), r(1, 1, 0, 100, 110)], 0).unwrap();
        // But it cannot appear and then vanish without another write.
        let vanish = [
            w_unknown(0, 1, 5, 0),
            r(1, 1, 5, 100, 110),
            r(1, 1, 0, 200, 210),
        ];
        assert!(check(&vanish, 0).is_err());
        // Nor take effect before it was invoked.
        let early = [r(1, 1, 5, 0, 10), w_unknown(0, 1, 5, 20)];
        assert!(check(&early, 0).is_err());
        // A read whose answer was lost is ignored.
        let lost_read = Op {
            client: 3,
            key: 1,
            action: Action::Read(42),
            call: 0,
            ret: None,
        };
        check(&[lost_read], 0).unwrap();
    }

    #[test]
    fn keys_are_checked_apart() {
        let ops = [
            w(0, 1, 1, 0, 10),
            w(1, 2, 1, 0, 10),
            r(2, 1, 1, 20, 30),
            r(3, 2, 0, 20, 30),
        ];
        let e = check(&ops, 0).unwrap_err();
        assert!(
            matches!(e, CheckError::NotLinearizable { key: 2, .. }),
            "{e}"
        );
        check(&ops[..3], 0).unwrap();
    }

    #[test]
    fn malformed_and_budget() {
        let e = check(&[w(0, 1, 1, 10, 5)], 0).unwrap_err();
        assert!(matches!(e, CheckError::Malformed(_)), "{e}");
        // Many concurrent writes and an impossible read exhaust a tiny budget.
        let mut ops: Vec<Op> = (0..12).map(|i| w_unknown(i, 1, i as i64 + 1, 0)).collect();
        ops.push(r(99, 1, 100, 1, 2));
        let e = check_with_budget(&ops, 0, 50).unwrap_err();
        assert!(matches!(e, CheckError::Inconclusive { .. }), "{e}");
        // With the default budget the memo makes it decidable.
        let e = check(&ops, 0).unwrap_err();
        assert!(matches!(e, CheckError::NotLinearizable { .. }), "{e}");
    }

    /// A pseudo-random linearizable history: each operation takes effect at
    /// an instant inside its interval, on a sequential register per key.
    fn simulated(seed: u64, clients: usize, per_client: usize, keys: u32) -> Vec<Op> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // (effect time, op index) so effects apply in time order.
        let mut ops = Vec::new();
        for c in 0..clients {
            let mut t = next() % 50;
            for n in 0..per_client {
                let call = t;
                let effect = call + 1 + next() % 40;
                let ret = effect + 1 + next() % 40;
                let key = (next() % u64::from(keys)) as u32;
                let action = if next() % 2 == 0 {
                    Action::Write((c * 1000 + n) as i64)
                } else {
                    Action::Read(0)
                };
                let lost = matches!(action, Action::Write(_)) && next() % 10 == 0;
                ops.push((
                    effect,
                    lost,
                    Op {
                        client: c,
                        key,
                        action,
                        call,
                        ret: Some(ret),
                    },
                ));
                t = ret + 1 + next() % 20;
            }
        }
        ops.sort_by_key(|(effect, _, _)| *effect);
        let mut registers: BTreeMap<u32, i64> = BTreeMap::new();
        ops.into_iter()
            .map(|(_, lost, mut op)| {
                let reg = registers.entry(op.key).or_insert(0);
                match op.action {
                    Action::Write(v) => *reg = v,
                    Action::Read(_) => op.action = Action::Read(*reg),
                }
                if lost {
                    op.ret = None;
                }
                op
            })
            .collect()
    }

    #[test]
    fn simulated_histories_pass_and_corrupted_ones_fail() {
        let mut stale_cases = 0;
        for seed in 1..=20u64 {
            let ops = simulated(seed * 7919, 6, 60, 3);
            check(&ops, 0).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            // A read of a value no one ever wrote is caught.
            let mut bad = ops.clone();
            let i = bad
                .iter()
                .position(|o| matches!(o.action, Action::Read(_)))
                .unwrap();
            bad[i].action = Action::Read(-1);
            assert!(check(&bad, 0).is_err(), "seed {seed}");
            // So is a read of a value overwritten before the read began.
            if let Some((i, stale)) = stale_read(&ops) {
                let mut bad = ops.clone();
                bad[i].action = Action::Read(stale);
                let e = check(&bad, 0).unwrap_err();
                assert!(matches!(e, CheckError::NotLinearizable { .. }), "{e}");
                stale_cases += 1;
            }
        }
        assert!(
            stale_cases >= 10,
            "only {stale_cases} histories had a stale read to plant"
        );
    }

    /// A read and a value of its key that two completed writes made stale
    /// before the read was invoked (`w1` then `w2`, both over before it).
    fn stale_read(ops: &[Op]) -> Option<(usize, i64)> {
        let writes: Vec<&Op> = ops
            .iter()
            .filter(|o| matches!(o.action, Action::Write(_)) && o.ret.is_some())
            .collect();
        ops.iter().enumerate().find_map(|(i, read)| {
            if !matches!(read.action, Action::Read(_)) {
                return None;
            }
            writes.iter().find_map(|w1| {
                let (Action::Write(v), Some(r1)) = (w1.action, w1.ret) else {
                    return None;
                };
                let overwritten = writes.iter().any(|w2| {
                    w2.key == read.key && w2.call > r1 && w2.ret.is_some_and(|r2| r2 < read.call)
                });
                (w1.key == read.key && r1 < read.call && overwritten).then_some((i, v))
            })
        })
    }
}
