//! Binary merkle trees over leaf hashes, with inclusion proofs; shared by the
//! main chain (transactions in a block) and the SQL chain (requests in a block).
//!
//! - A leaf is `hash(Tag::MerkleLeaf, leaf_hash)`, an interior node
//!   `hash(Tag::MerkleNode, left || right)`: the distinct tags keep a leaf from
//!   ever posing as a node (second-preimage attacks).
//! - An odd node at the end of a level is **promoted** unchanged to the next
//!   level, never duplicated, so `[a, b, c]` and `[a, b, c, c]` have different
//!   roots (the duplication ambiguity of CVE-2012-2459 does not arise).
//! - The root of an empty list is [`Hash::ZERO`].
//! - A [`MerkleProof`] names its leaf's index and the tree's leaf count, and
//!   verification checks the sibling sides against them, so a proof binds the
//!   position as well as the membership. The root does not commit to the
//!   count: take it from a trusted header (the SQL-chain header carries it).
//!
//! Pure functions over `hash`; must not import chain, network or storage code.

use serde::{Deserialize, Serialize};

use crate::codec::Versioned;
use crate::hash::{Hash, Tag, hash, hash_parts};

/// The hash of a leaf as it enters the tree.
pub fn leaf_node(leaf: &Hash) -> Hash {
    hash(Tag::MerkleLeaf, leaf.as_bytes())
}

/// The hash of an interior node.
pub fn interior_node(left: &Hash, right: &Hash) -> Hash {
    hash_parts(Tag::MerkleNode, &[left.as_bytes(), right.as_bytes()])
}

/// The root over `leaves` without keeping the tree.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    let mut level: Vec<Hash> = leaves.iter().map(leaf_node).collect();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level.first().copied().unwrap_or(Hash::ZERO)
}

fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => interior_node(l, r),
            [odd] => *odd,
            _ => Hash::ZERO, // chunks(2) yields only 1 or 2 items
        })
        .collect()
}

/// Which side of the path a sibling sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// The sibling is the left input of the parent.
    Left,
    /// The sibling is the right input of the parent.
    Right,
}

/// Proof that a leaf sits at `index` in a tree of `leaf_count` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// The leaf's position.
    pub index: u64,
    /// How many leaves the tree has.
    pub leaf_count: u64,
    /// Siblings from the leaf level up; promoted levels have none.
    pub siblings: Vec<(Hash, Side)>,
}

impl MerkleProof {
    /// Whether `leaf` at this proof's position hashes up to `root`.
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> bool {
        if self.index >= self.leaf_count {
            return false;
        }
        let mut idx = self.index;
        let mut n = self.leaf_count;
        let mut cur = leaf_node(leaf);
        let mut siblings = self.siblings.iter();
        while n > 1 {
            let promoted = idx == n - 1 && n % 2 == 1;
            if !promoted {
                let Some((sibling, side)) = siblings.next() else {
                    return false;
                };
                cur = match (idx.is_multiple_of(2), side) {
                    (true, Side::Right) => interior_node(&cur, sibling),
                    (false, Side::Left) => interior_node(sibling, &cur),
                    _ => return false,
                };
            }
            idx /= 2;
            n = n.div_ceil(2);
        }
        siblings.next().is_none() && cur == *root
    }
}

impl Versioned for MerkleProof {
    const KIND: &'static str = "merkle proof";
    const VERSION: u16 = 1;
}

/// A whole tree, for producing several proofs over the same leaves.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `levels[0]` are the leaf nodes; the last level is the root (absent if empty).
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`.
    pub fn new(leaves: &[Hash]) -> MerkleTree {
        let mut levels = Vec::new();
        if !leaves.is_empty() {
            let mut level: Vec<Hash> = leaves.iter().map(leaf_node).collect();
            while level.len() > 1 {
                let next = next_level(&level);
                levels.push(level);
                level = next;
            }
            levels.push(level);
        }
        MerkleTree { levels }
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root ([`Hash::ZERO`] when empty); equals [`merkle_root`].
    pub fn root(&self) -> Hash {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(Hash::ZERO)
    }

    /// The proof for leaf `index`, or `None` if out of range.
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        if index >= self.len() {
            return None;
        }
        let mut siblings = Vec::new();
        let mut idx = index;
        for level in &self.levels {
            if level.len() <= 1 {
                break;
            }
            let sibling_idx = idx ^ 1;
            if let Some(s) = level.get(sibling_idx) {
                let side = if idx.is_multiple_of(2) {
                    Side::Right
                } else {
                    Side::Left
                };
                siblings.push((*s, side));
            }
            idx /= 2;
        }
        Some(MerkleProof {
            index: index as u64,
            leaf_count: self.len() as u64,
            siblings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| hash(Tag::Message, &(i as u64).to_le_bytes()))
            .collect()
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(merkle_root(&[]), Hash::ZERO);
        assert_eq!(MerkleTree::new(&[]).root(), Hash::ZERO);
        assert!(MerkleTree::new(&[]).proof(0).is_none());
        let l = leaves(1);
        assert_eq!(merkle_root(&l), leaf_node(&l[0]));
        let p = MerkleTree::new(&l).proof(0).unwrap();
        assert!(p.siblings.is_empty());
        assert!(p.verify(&l[0], &merkle_root(&l)));
    }

    #[test]
    fn known_shape_of_three() {
        // [a, b, c] -> node(node(a, b), c): c is promoted, not duplicated.
        let l = leaves(3);
        let (a, b, c) = (leaf_node(&l[0]), leaf_node(&l[1]), leaf_node(&l[2]));
        assert_eq!(merkle_root(&l), interior_node(&interior_node(&a, &b), &c));
        let mut four = l.clone();
        four.push(l[2]);
        assert_ne!(merkle_root(&four), merkle_root(&l));
    }

    #[test]
    fn every_index_of_sizes_1_to_17_verifies() {
        for n in 1..=17 {
            let l = leaves(n);
            let tree = MerkleTree::new(&l);
            let root = merkle_root(&l);
            assert_eq!(tree.root(), root, "n={n}");
            assert_eq!(tree.len(), n);
            for (i, leaf) in l.iter().enumerate() {
                let p = tree.proof(i).unwrap();
                assert!(p.verify(leaf, &root), "n={n} i={i}");
                // The proof is for this leaf only.
                let other = l[(i + 1) % n];
                if n > 1 {
                    assert!(!p.verify(&other, &root), "n={n} i={i} other leaf");
                }
                let bytes = crate::codec::encode_versioned(&p).unwrap();
                assert_eq!(
                    crate::codec::decode_versioned::<MerkleProof>(&bytes).unwrap(),
                    p
                );
            }
            assert!(tree.proof(n).is_none());
        }
    }

    #[test]
    fn tampered_proofs_fail() {
        let l = leaves(11);
        let tree = MerkleTree::new(&l);
        let root = tree.root();
        for (i, leaf) in l.iter().enumerate() {
            let good = tree.proof(i).unwrap();
            assert!(good.verify(leaf, &root));
            // Wrong root.
            assert!(!good.verify(leaf, &hash(Tag::Message, b"root")));
            // Each sibling changed, or its side flipped.
            for k in 0..good.siblings.len() {
                let mut p = good.clone();
                p.siblings[k].0 = hash(Tag::Message, b"evil");
                assert!(!p.verify(leaf, &root), "i={i} k={k} hash");
                let mut p = good.clone();
                p.siblings[k].1 = match p.siblings[k].1 {
                    Side::Left => Side::Right,
                    Side::Right => Side::Left,
                };
                assert!(!p.verify(leaf, &root), "i={i} k={k} side");
            }
            // Missing or extra siblings.
            let mut p = good.clone();
            p.siblings.pop();
            assert!(!p.verify(leaf, &root));
            let mut p = good.clone();
            p.siblings.push((Hash::ZERO, Side::Right));
            assert!(!p.verify(leaf, &root));
            // Claimed at another position or in a tree of another size.
            let mut p = good.clone();
            p.index = (p.index + 1) % 11;
            assert!(!p.verify(leaf, &root), "i={i} moved");
            let mut p = good.clone();
            p.leaf_count = p.index;
            assert!(!p.verify(leaf, &root), "i={i} out of range");
            let mut p = good.clone();
            p.index = 11;
            assert!(!p.verify(leaf, &root));
        }
        // The last leaf of 11 is promoted at the first level; a proof claiming
        // 12 leaves expects a sibling there and fails.
        let mut p = tree.proof(10).unwrap();
        p.leaf_count = 12;
        assert!(!p.verify(&l[10], &root));
        // A leaf hash can never pose as an interior node.
        let two = leaves(2);
        let inner = interior_node(&leaf_node(&two[0]), &leaf_node(&two[1]));
        let p = MerkleProof {
            index: 0,
            leaf_count: 1,
            siblings: vec![],
        };
        assert!(!p.verify(&inner, &merkle_root(&two)));
    }
}
