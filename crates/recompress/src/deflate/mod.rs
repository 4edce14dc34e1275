//! What the deflate encoder models share: the symbol tables and token layout (`tables`),
//! the Huffman code builder (`huffman`), the dynamic block header with its run-length
//! coded code lengths (`header`), and the bit writer with its token and literal loops
//! (`bits`).
//!
//! Families differ by data and small hooks only: the frequency sort of the Huffman builder
//! (`huffman::FreqOrder`), and their own block decisions, which sit in `goflate` and
//! `kpflate` above this.

pub mod bits;
pub mod header;
pub mod huffman;
pub mod tables;
