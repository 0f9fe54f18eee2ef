//! The tree kept in tiles (the layout of C2SP `tlog-tiles`): a tile at level `t` and index `i`
//! holds, in order, the hashes of up to 256 nodes of tree height `8t`, those with indices
//! `256i ..`. Level 0 holds the leaf hashes; each full tile's root is one hash in the tile above.
//! Any complete subtree's hash is then at most 255 hashings of one tile away, so a proof at a
//! hundred million leaves reads a handful of tiles however large the tree. Tiles only grow: a
//! node's hash, once its subtree is complete, never changes, so a proof for an older size can be
//! built from newer tiles.
//!
//! Proofs are RFC 9162's: PATH (§2.1.3.1) and SUBPROOF (§2.1.4.1) over the tiles, and the
//! verification algorithms of §2.1.3.2 and §2.1.4.2.

use std::collections::HashMap;

use crate::hash::{Hash, empty_root, node_hash};

/// Tile height: 8 levels of the tree, 256 hashes, in one tile.
pub const TILE_HEIGHT: u32 = 8;
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// Where tiles are read from: the store, or memory in tests and benchmarks.
pub trait TileSource {
    type Error;

    /// The tile's hashes, concatenated; `None` when the tile has none yet.
    fn tile(&mut self, level: u32, index: u64) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Several tiles at once (a store over the network answers them in one round trip).
    fn tiles(&mut self, keys: &[(u32, u64)]) -> Result<Vec<Option<Vec<u8>>>, Self::Error> {
        keys.iter()
            .map(|&(level, index)| self.tile(level, index))
            .collect()
    }
}

/// Why a proof or a root could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TreeError<E> {
    #[error("{0}")]
    Source(E),
    /// A tile is shorter than the tree says it must be: the store was damaged or cut short.
    #[error("tile {level}/{index} holds {held} hashes; the tree needs {needed}")]
    Damaged {
        level: u32,
        index: u64,
        held: usize,
        needed: usize,
    },
    #[error("{0}")]
    OutOfRange(String),
}

/// A tile to write: its place and its whole contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileWrite {
    pub level: u32,
    pub index: u64,
    pub hashes: Vec<u8>,
}

fn hash_at(tile: &[u8], position: usize) -> Hash {
    tile[position * 32..position * 32 + 32]
        .try_into()
        .expect("a 32-byte slice")
}

/// The root of `2^k` consecutive hashes (`k` ≤ 8), hashed up pairwise.
fn fold(hashes: &[u8], count: usize) -> Hash {
    let mut level: Vec<Hash> = (0..count).map(|i| hash_at(hashes, i)).collect();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

/// The tiles that appending `leaves` (leaf hashes) to a tree of `size` leaves writes. Tiles at
/// the right edge are read from `source` and come back whole, grown.
pub fn append<S: TileSource>(
    source: &mut S,
    size: u64,
    leaves: &[Hash],
) -> Result<Vec<TileWrite>, TreeError<S::Error>> {
    let mut writes = Vec::new();
    let mut first = size;
    let mut new: Vec<Hash> = leaves.to_vec();
    let mut level = 0u32;
    while !new.is_empty() {
        let mut completed = Vec::new();
        let mut position = first;
        let mut remaining = &new[..];
        while !remaining.is_empty() {
            let index = position / TILE_WIDTH;
            let offset = (position % TILE_WIDTH) as usize;
            let mut tile = if offset == 0 {
                Vec::with_capacity(TILE_WIDTH as usize * 32)
            } else {
                let tile = source
                    .tile(level, index)
                    .map_err(TreeError::Source)?
                    .unwrap_or_default();
                if tile.len() < offset * 32 {
                    return Err(TreeError::Damaged {
                        level,
                        index,
                        held: tile.len() / 32,
                        needed: offset,
                    });
                }
                let mut tile = tile;
                tile.truncate(offset * 32);
                tile
            };
            let take = remaining.len().min(TILE_WIDTH as usize - offset);
            for hash in &remaining[..take] {
                tile.extend_from_slice(hash);
            }
            remaining = &remaining[take..];
            position += take as u64;
            if tile.len() == TILE_WIDTH as usize * 32 {
                completed.push(fold(&tile, TILE_WIDTH as usize));
            }
            writes.push(TileWrite {
                level,
                index,
                hashes: tile,
            });
        }
        first /= TILE_WIDTH;
        new = completed;
        level += 1;
    }
    Ok(writes)
}

/// Reads of one tree: tiles are fetched once each.
pub struct Tree<'s, S: TileSource> {
    source: &'s mut S,
    size: u64,
    tiles: HashMap<(u32, u64), Vec<u8>>,
    /// While planning: the tiles a computation asks for, fetched afterwards in one call.
    planning: Option<Vec<(u32, u64)>>,
}

fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

impl<'s, S: TileSource> Tree<'s, S> {
    /// The tree of the first `size` leaves, read from `source`.
    pub fn new(source: &'s mut S, size: u64) -> Self {
        Tree {
            source,
            size,
            tiles: HashMap::new(),
            planning: None,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Drops the tiles read so far (a walk through every leaf would otherwise keep them all).
    pub fn forget(&mut self) {
        self.tiles.clear();
    }

    /// Runs `work` twice: first to learn which tiles it reads (every node a zero hash), which
    /// are then fetched in one call, then for real. Which nodes a proof or a root needs depends on
    /// the sizes and indexes alone, never on the hashes.
    fn planned<T>(
        &mut self,
        work: impl Fn(&mut Self) -> Result<T, TreeError<S::Error>>,
    ) -> Result<T, TreeError<S::Error>> {
        self.planning = Some(Vec::new());
        let _ = work(self);
        let mut keys = self.planning.take().unwrap_or_default();
        keys.sort_unstable();
        keys.dedup();
        keys.retain(|key| !self.tiles.contains_key(key));
        if !keys.is_empty() {
            let fetched = self.source.tiles(&keys).map_err(TreeError::Source)?;
            for (key, tile) in keys.into_iter().zip(fetched) {
                self.tiles.insert(key, tile.unwrap_or_default());
            }
        }
        work(self)
    }

    fn tile(
        &mut self,
        level: u32,
        index: u64,
        needed: usize,
    ) -> Result<&[u8], TreeError<S::Error>> {
        if !self.tiles.contains_key(&(level, index)) {
            let tile = self
                .source
                .tile(level, index)
                .map_err(TreeError::Source)?
                .unwrap_or_default();
            self.tiles.insert((level, index), tile);
        }
        let tile = &self.tiles[&(level, index)];
        if tile.len() < needed * 32 {
            return Err(TreeError::Damaged {
                level,
                index,
                held: tile.len() / 32,
                needed,
            });
        }
        Ok(tile)
    }

    /// The hash of the complete subtree of height `height` at `index` (its leaves are
    /// `index·2^height ..`).
    pub fn node(&mut self, height: u32, index: u64) -> Result<Hash, TreeError<S::Error>> {
        let level = height / TILE_HEIGHT;
        let within = height % TILE_HEIGHT;
        let base = index << within;
        let tile_index = base / TILE_WIDTH;
        let offset = (base % TILE_WIDTH) as usize;
        let count = 1usize << within;
        if let Some(planned) = &mut self.planning {
            planned.push((level, tile_index));
            return Ok([0; 32]);
        }
        let tile = self.tile(level, tile_index, offset + count)?;
        Ok(fold(&tile[offset * 32..], count))
    }

    /// RFC 9162's MTH of the leaves `start..end`, where `start` is a multiple of the largest
    /// power of two below `end - start` (as every range the proofs ask for is).
    fn subtree(&mut self, start: u64, end: u64) -> Result<Hash, TreeError<S::Error>> {
        let n = end - start;
        if n.is_power_of_two() && start.is_multiple_of(n) {
            return self.node(n.trailing_zeros(), start >> n.trailing_zeros());
        }
        let k = largest_power_of_two_below(n);
        let left = self.subtree(start, start + k)?;
        let right = self.subtree(start + k, end)?;
        Ok(node_hash(&left, &right))
    }

    /// The root hash of the tree.
    pub fn root(&mut self) -> Result<Hash, TreeError<S::Error>> {
        if self.size == 0 {
            return Ok(empty_root());
        }
        let size = self.size;
        self.planned(|tree| tree.subtree(0, size))
    }

    /// The leaf hash at `index`.
    pub fn leaf(&mut self, index: u64) -> Result<Hash, TreeError<S::Error>> {
        if index >= self.size {
            return Err(TreeError::OutOfRange(format!(
                "leaf {index} is not in a tree of {} leaves",
                self.size
            )));
        }
        self.node(0, index)
    }

    /// The inclusion proof of leaf `index` (RFC 9162 §2.1.3.1), nearest the leaf first.
    pub fn inclusion_proof(&mut self, index: u64) -> Result<Vec<Hash>, TreeError<S::Error>> {
        if index >= self.size {
            return Err(TreeError::OutOfRange(format!(
                "leaf {index} is not in a tree of {} leaves",
                self.size
            )));
        }
        let size = self.size;
        self.planned(|tree| {
            let mut path = Vec::new();
            tree.path(index, 0, size, &mut path)?;
            Ok(path)
        })
    }

    fn path(
        &mut self,
        m: u64,
        start: u64,
        end: u64,
        out: &mut Vec<Hash>,
    ) -> Result<(), TreeError<S::Error>> {
        let n = end - start;
        if n == 1 {
            return Ok(());
        }
        let k = largest_power_of_two_below(n);
        if m < k {
            self.path(m, start, start + k, out)?;
            out.push(self.subtree(start + k, end)?);
        } else {
            self.path(m - k, start + k, end, out)?;
            out.push(self.subtree(start, start + k)?);
        }
        Ok(())
    }

    /// The consistency proof from the tree's first `first` leaves to the whole tree (RFC 9162
    /// §2.1.4.1). Empty when `first` is 0 or the tree's size.
    pub fn consistency_proof(&mut self, first: u64) -> Result<Vec<Hash>, TreeError<S::Error>> {
        if first > self.size {
            return Err(TreeError::OutOfRange(format!(
                "a tree of {first} leaves is not part of one of {}",
                self.size
            )));
        }
        let size = self.size;
        self.planned(|tree| {
            let mut proof = Vec::new();
            if first > 0 && first < size {
                tree.subproof(first, 0, size, true, &mut proof)?;
            }
            Ok(proof)
        })
    }

    fn subproof(
        &mut self,
        m: u64,
        start: u64,
        end: u64,
        complete: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), TreeError<S::Error>> {
        let n = end - start;
        if m == n {
            if !complete {
                out.push(self.subtree(start, end)?);
            }
            return Ok(());
        }
        let k = largest_power_of_two_below(n);
        if m <= k {
            self.subproof(m, start, start + k, complete, out)?;
            out.push(self.subtree(start + k, end)?);
        } else {
            self.subproof(m - k, start + k, end, false, out)?;
            out.push(self.subtree(start, start + k)?);
        }
        Ok(())
    }
}

/// RFC 9162 §2.1.3.2: whether `path` proves the leaf with hash `leaf` at `index` in the tree of
/// `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && &r == root
}

/// RFC 9162 §2.1.4.2: whether `path` proves the tree of `first` leaves with root `first_root`
/// a prefix of the one of `second` leaves with root `second_root`.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    path: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return path.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return path.is_empty();
    }
    let mut path = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let Some((head, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    &fr == first_root && &sr == second_root && s == 0
}

/// A tree's root built leaf by leaf, keeping only the perfect subtrees along its right edge:
/// how a verifier recomputes a root from the leaves alone, in memory logarithmic in their number.
#[derive(Debug, Default, Clone)]
pub struct RootBuilder {
    edge: Vec<(u32, Hash)>,
    size: u64,
}

impl RootBuilder {
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.edge.last() {
            if height != node.0 {
                break;
            }
            self.edge.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.edge.push(node);
        self.size += 1;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// RFC 9162's MTH of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.edge.iter().rev();
        let Some(&(_, mut root)) = nodes.next() else {
            return empty_root();
        };
        for (_, left) in nodes {
            root = node_hash(left, &root);
        }
        root
    }
}

/// Tiles in memory: for tests, benchmarks, and a verifier rebuilding a tree from its leaves.
#[derive(Debug, Default, Clone)]
pub struct MemoryTiles {
    pub tiles: HashMap<(u32, u64), Vec<u8>>,
    pub size: u64,
}

impl TileSource for MemoryTiles {
    type Error = std::convert::Infallible;

    fn tile(&mut self, level: u32, index: u64) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(self.tiles.get(&(level, index)).cloned())
    }
}

impl MemoryTiles {
    /// Appends leaf hashes.
    pub fn push(&mut self, leaves: &[Hash]) {
        let writes = match append(self, self.size, leaves) {
            Ok(writes) => writes,
            Err(TreeError::Source(never)) => match never {},
            Err(error) => unreachable!("memory tiles are whole: {error}"),
        };
        for write in writes {
            self.tiles.insert((write.level, write.index), write.hashes);
        }
        self.size += leaves.len() as u64;
    }

    pub fn tree(&mut self) -> Tree<'_, MemoryTiles> {
        let size = self.size;
        Tree::new(self, size)
    }
}
