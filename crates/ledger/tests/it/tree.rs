use ledger::hash::{Hash, leaf_hash, node_hash};
use ledger::tree::{MemoryTiles, verify_consistency, verify_inclusion};

fn leaves(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

/// RFC 9162 §2.1.1 MTH, by its definition.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => ledger::empty_root(),
        1 => d[0],
        n => {
            let k = 1 << (63 - (n as u64 - 1).leading_zeros());
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.1 PATH, by its definition.
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        return vec![];
    }
    let k = 1 << (63 - (n as u64 - 1).leading_zeros());
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

/// RFC 9162 §2.1.4.1 SUBPROOF, by its definition.
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = 1 << (63 - (n as u64 - 1).leading_zeros());
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

#[test]
fn roots_and_proofs_match_the_rfc_definitions_across_tile_boundaries() {
    let all = leaves(600);
    let mut tiles = MemoryTiles::default();
    // Appends of uneven sizes: partial tiles are read back and grown.
    let mut at = 0;
    for chunk in [1usize, 2, 5, 250, 3, 1, 100, 238].iter().cycle() {
        if at >= all.len() {
            break;
        }
        let end = (at + chunk).min(all.len());
        tiles.push(&all[at..end]);
        at = end;
    }
    for size in [1u64, 2, 3, 7, 8, 255, 256, 257, 511, 512, 513, 600] {
        let mut tree = ledger::Tree::new(&mut tiles, size);
        let d = &all[..size as usize];
        let root = tree.root().unwrap();
        assert_eq!(root, mth(d), "root of {size}");
        for m in [0, 1, size / 2, size - 1].into_iter().filter(|m| *m < size) {
            let proof = tree.inclusion_proof(m).unwrap();
            assert_eq!(proof, path(m as usize, d), "path {m} in {size}");
            assert!(verify_inclusion(m, size, &d[m as usize], &proof, &root));
            assert!(!verify_inclusion(
                m,
                size,
                &leaf_hash(b"other"),
                &proof,
                &root
            ));
            if size > 1 {
                let wrong = (m + 1) % size;
                assert!(!verify_inclusion(
                    wrong,
                    size,
                    &d[m as usize],
                    &proof,
                    &root
                ));
            }
        }
        for first in [1u64, 2, 3, 100, 256, 300] {
            if first >= size {
                continue;
            }
            let proof = tree.consistency_proof(first).unwrap();
            assert_eq!(
                proof,
                subproof(first as usize, d, true),
                "consistency {first}→{size}"
            );
            let old = mth(&all[..first as usize]);
            assert!(verify_consistency(first, size, &old, &root, &proof));
            let mut bent = proof.clone();
            bent[0][0] ^= 1;
            assert!(!verify_consistency(first, size, &old, &root, &bent));
            assert!(!verify_consistency(
                first,
                size,
                &leaf_hash(b"x"),
                &root,
                &proof
            ));
        }
    }
}

#[test]
fn every_small_tree_and_every_pair_of_sizes() {
    let all = leaves(40);
    let mut tiles = MemoryTiles::default();
    tiles.push(&all);
    for size in 1..=40u64 {
        let mut tree = ledger::Tree::new(&mut tiles, size);
        let d = &all[..size as usize];
        let root = tree.root().unwrap();
        for m in 0..size {
            let proof = tree.inclusion_proof(m).unwrap();
            assert!(verify_inclusion(m, size, &d[m as usize], &proof, &root));
        }
        for first in 1..=size {
            let proof = tree.consistency_proof(first).unwrap();
            let old = mth(&all[..first as usize]);
            assert!(
                verify_consistency(first, size, &old, &root, &proof),
                "{first}→{size}"
            );
        }
    }
}

#[test]
fn a_tree_two_tile_levels_high() {
    // 70,000 leaves: full level-1 tiles (each a level-0 tile's root) and a level-2 tile.
    let all = leaves(70_000);
    let mut tiles = MemoryTiles::default();
    for chunk in all.chunks(9_999) {
        tiles.push(chunk);
    }
    assert!(tiles.tiles.contains_key(&(1, 0)));
    let mut tree = tiles.tree();
    let root = tree.root().unwrap();
    assert_eq!(root, mth(&all));
    for m in [0u64, 65_535, 65_536, 69_999] {
        let proof = tree.inclusion_proof(m).unwrap();
        assert!(verify_inclusion(m, 70_000, &all[m as usize], &proof, &root));
    }
    let proof = tree.consistency_proof(65_537).unwrap();
    assert!(verify_consistency(
        65_537,
        70_000,
        &mth(&all[..65_537]),
        &root,
        &proof
    ));
}

#[test]
fn out_of_range_requests_are_errors_not_panics() {
    let mut tiles = MemoryTiles::default();
    tiles.push(&leaves(10));
    let mut tree = tiles.tree();
    assert!(tree.inclusion_proof(10).is_err());
    assert!(tree.consistency_proof(11).is_err());
    assert!(tree.consistency_proof(0).unwrap().is_empty());
    assert!(!verify_inclusion(
        10,
        10,
        &leaf_hash(b"x"),
        &[],
        &leaf_hash(b"x")
    ));
    assert!(!verify_consistency(
        11,
        10,
        &leaf_hash(b"x"),
        &leaf_hash(b"y"),
        &[]
    ));
    // A tree larger than its tiles: the damage is reported, not a panic.
    let mut short = ledger::Tree::new(&mut tiles, 20);
    assert!(matches!(
        short.root(),
        Err(ledger::TreeError::Damaged { .. })
    ));
}

#[test]
fn a_root_built_leaf_by_leaf_is_the_rfc_root_at_every_size() {
    let all = leaves(300);
    let mut builder = ledger::RootBuilder::default();
    assert_eq!(builder.root(), ledger::empty_root());
    for (i, leaf) in all.iter().enumerate() {
        builder.push(*leaf);
        assert_eq!(builder.root(), mth(&all[..=i]), "size {}", i + 1);
    }
}
