//! Huffman codes for the encoders: optimal code lengths from symbol counts, limited
//! to what a format allows (16 bits in JPEG, 15 in deflate), and the canonical codes
//! that follow from them.
//!
//! A JPEG table is described, as in the file's DHT segment, by how many codes there
//! are of each length (`counts[0]` for length 1 up to `counts[15]` for length 16) and
//! the symbols in order of increasing code length. The code made only of one bits at
//! some length is never handed out, as JPEG requires: a reserved symbol with the
//! smallest count joins the construction and is dropped afterwards, so that it takes
//! the last (all ones) code of the longest length.

/// A Huffman table as written in a DHT segment, plus the encoder's code per symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HuffmanTable {
    /// Number of codes of each length 1 to 16.
    pub(crate) counts: [u8; 16],
    /// Symbols in order of increasing code length.
    pub(crate) symbols: Vec<u8>,
    /// Code and code length per symbol; length 0 for symbols without a code.
    pub(crate) codes: [(u16, u8); 256],
}

impl HuffmanTable {
    /// The optimal table (lengths at most 16) for symbols counted `frequencies` times.
    /// Symbols with a count of zero get no code. At least one symbol must be counted.
    pub(crate) fn optimal(frequencies: &[u32; 256]) -> HuffmanTable {
        const RESERVED: usize = 256;
        let mut used: Vec<(u64, usize)> = frequencies
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(symbol, count)| (*count as u64, symbol))
            .collect();
        used.push((0, RESERVED));

        let lengths = code_lengths(&used);

        // Symbols by increasing length; ties by symbol, for a stable file.
        let mut order: Vec<(u32, usize)> = used
            .iter()
            .zip(&lengths)
            .map(|(&(_, symbol), &length)| (length, symbol))
            .collect();
        order.sort_unstable();

        let mut per_length = vec![0u32; 300];
        for &(length, _) in &order {
            per_length[length as usize] += 1;
        }
        limit_lengths(&mut per_length, 16);

        // The reserved symbol sorts last among the longest codes: drop one code there.
        let longest = (1..=16)
            .rev()
            .find(|&length| per_length[length] > 0)
            .expect("at least two symbols take part");
        per_length[longest] -= 1;
        let symbols: Vec<u8> = order
            .iter()
            .filter(|&&(_, symbol)| symbol != RESERVED)
            .map(|&(_, symbol)| symbol as u8)
            .collect();

        let mut counts = [0u8; 16];
        for length in 1..=16 {
            counts[length - 1] = per_length[length] as u8;
        }
        HuffmanTable::from_counts(counts, symbols)
    }

    /// The table with `counts` codes per length for `symbols`, assigning canonical
    /// codes.
    pub(crate) fn from_counts(counts: [u8; 16], symbols: Vec<u8>) -> HuffmanTable {
        let mut codes = [(0u16, 0u8); 256];
        let mut code = 0u32;
        let mut next = symbols.iter();
        for (index, &count) in counts.iter().enumerate() {
            for _ in 0..count {
                if let Some(&symbol) = next.next() {
                    codes[symbol as usize] = (code as u16, index as u8 + 1);
                }
                code += 1;
            }
            code <<= 1;
        }
        HuffmanTable {
            counts,
            symbols,
            codes,
        }
    }
}

/// Optimal code lengths, at most `limit` bits, for symbols counted `frequencies`
/// times (0 for a symbol never counted). A lone symbol gets length 1.
pub(crate) fn limited_code_lengths(frequencies: &[u32], limit: usize) -> Vec<u8> {
    let mut lengths = vec![0u8; frequencies.len()];
    let used: Vec<(u64, usize)> = frequencies
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(symbol, count)| (*count as u64, symbol))
        .collect();
    if used.len() == 1 {
        lengths[used[0].1] = 1;
        return lengths;
    }
    let depths = code_lengths(&used);
    let mut order: Vec<(u32, usize)> = depths
        .iter()
        .zip(&used)
        .map(|(&depth, &(_, symbol))| (depth, symbol))
        .collect();
    order.sort_unstable();
    let mut per_length = vec![0u32; 300];
    for &(depth, _) in &order {
        per_length[depth as usize] += 1;
    }
    limit_lengths(&mut per_length, limit);
    let mut next = order.iter();
    for (length, &count) in per_length.iter().enumerate() {
        for _ in 0..count {
            if let Some(&(_, symbol)) = next.next() {
                lengths[symbol] = length as u8;
            }
        }
    }
    lengths
}

/// Huffman code lengths for `(count, symbol)` pairs, in the same order, by merging
/// the two lightest subtrees until one is left. Ties take the subtree holding the
/// higher symbol number first, so the reserved symbol ends up deepest.
fn code_lengths(used: &[(u64, usize)]) -> Vec<u32> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    if used.len() < 2 {
        return vec![1; used.len()];
    }
    // Nodes 0..used.len() are leaves; merged nodes follow. parent[i] links upwards.
    let mut parent: Vec<usize> = vec![usize::MAX; used.len()];
    let mut heap: BinaryHeap<Reverse<(u64, Reverse<usize>, usize)>> = used
        .iter()
        .enumerate()
        .map(|(node, &(count, symbol))| Reverse((count, Reverse(symbol), node)))
        .collect();
    while heap.len() > 1 {
        let Reverse((weight_a, Reverse(symbol_a), node_a)) = heap.pop().expect("two nodes");
        let Reverse((weight_b, Reverse(symbol_b), node_b)) = heap.pop().expect("two nodes");
        let merged = parent.len();
        parent.push(usize::MAX);
        parent[node_a] = merged;
        parent[node_b] = merged;
        heap.push(Reverse((
            weight_a + weight_b,
            Reverse(symbol_a.max(symbol_b)),
            merged,
        )));
    }
    // Depth of each node, computed from the root down (parents come after children).
    let mut depth = vec![0u32; parent.len()];
    for node in (0..parent.len()).rev() {
        if parent[node] != usize::MAX {
            depth[node] = depth[parent[node]] + 1;
        }
    }
    depth.truncate(used.len());
    depth
}

/// Rewrites a count of codes per length so that no code is longer than `limit`,
/// keeping the code complete: a pair of the longest codes becomes one code a bit
/// shorter, and a shorter code splits in two to make up for it.
fn limit_lengths(per_length: &mut [u32], limit: usize) {
    for length in (limit + 1..per_length.len()).rev() {
        while per_length[length] > 0 {
            let mut shorter = length - 2;
            while per_length[shorter] == 0 {
                shorter -= 1;
            }
            per_length[length] -= 2;
            per_length[length - 1] += 1;
            per_length[shorter + 1] += 2;
            per_length[shorter] -= 1;
        }
    }
}

/// Canonical codes for `lengths` (deflate's and VP8L's assignment: shorter codes
/// first, then by symbol), bit-reversed for LSB-first output: `(code, length)`.
pub(crate) fn lsb_canonical_codes(lengths: &[u8]) -> Vec<(u32, u32)> {
    let mut per_length = [0u32; 16];
    for &length in lengths {
        per_length[length as usize] += 1;
    }
    per_length[0] = 0;
    let mut next = [0u32; 16];
    let mut code = 0;
    for length in 1..16 {
        code = (code + per_length[length - 1]) << 1;
        next[length] = code;
    }
    lengths
        .iter()
        .map(|&length| {
            if length == 0 {
                return (0, 0);
            }
            let code = next[length as usize];
            next[length as usize] += 1;
            (code.reverse_bits() >> (32 - length as u32), length as u32)
        })
        .collect()
}

/// A code-length sequence in the run-length alphabet of deflate and VP8L:
/// `(symbol, extra bits)`. Code 16 only follows the length it repeats, so it means
/// the same in both formats.
pub(crate) fn run_length_code_lengths(lengths: &[u8]) -> Vec<(u8, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < lengths.len() {
        let value = lengths[at];
        let run = lengths[at..].iter().take_while(|&&l| l == value).count();
        let mut left = run;
        if value == 0 {
            while left >= 11 {
                let take = left.min(138);
                out.push((18, (take - 11) as u32));
                left -= take;
            }
            if left >= 3 {
                out.push((17, (left - 3) as u32));
                left = 0;
            }
        } else {
            out.push((value, 0));
            left -= 1;
            while left >= 3 {
                let take = left.min(6);
                out.push((16, (take - 3) as u32));
                left -= take;
            }
        }
        for _ in 0..left {
            out.push((value, 0));
        }
        at += run;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft_sum(table: &HuffmanTable) -> f64 {
        table
            .counts
            .iter()
            .enumerate()
            .map(|(index, &count)| count as f64 / f64::powi(2.0, index as i32 + 1))
            .sum()
    }

    #[test]
    fn frequent_symbols_get_short_codes_and_none_is_all_ones() {
        let mut frequencies = [0u32; 256];
        frequencies[0] = 1000;
        frequencies[1] = 10;
        frequencies[2] = 10;
        frequencies[0x55] = 1;
        let table = HuffmanTable::optimal(&frequencies);
        assert_eq!(table.codes[0].1, 1);
        assert!(table.codes[0x55].1 >= table.codes[1].1);
        for (symbol, &(code, length)) in table.codes.iter().enumerate() {
            if length > 0 {
                let all_ones = ((1u32 << length) - 1) as u16;
                assert_ne!(code, all_ones, "symbol {symbol} took the all-ones code");
            }
        }
        assert_eq!(table.symbols.len(), 4);
        assert!(kraft_sum(&table) < 1.0);
    }

    #[test]
    fn a_single_symbol_gets_a_one_bit_code() {
        let mut frequencies = [0u32; 256];
        frequencies[7] = 5;
        let table = HuffmanTable::optimal(&frequencies);
        assert_eq!(table.codes[7], (0, 1));
        assert_eq!(table.counts[0], 1);
    }

    #[test]
    fn skewed_counts_are_limited_to_sixteen_bits() {
        // Fibonacci counts make the unlimited Huffman tree as deep as it gets.
        let mut frequencies = [0u32; 256];
        let (mut a, mut b) = (1u32, 1u32);
        for slot in frequencies.iter_mut().take(30) {
            *slot = a;
            (a, b) = (b, a.saturating_add(b));
        }
        let table = HuffmanTable::optimal(&frequencies);
        assert!(table.codes.iter().all(|&(_, length)| length <= 16));
        assert_eq!(table.symbols.len(), 30);
        assert!(kraft_sum(&table) <= 1.0);
        assert_eq!(table.counts.iter().map(|&c| c as usize).sum::<usize>(), 30);
    }
}
