// A Rust port of klauspost/compress v1.15.12 `flate` (the encoder) and a
// model of klauspost/pgzip 1.2.5's block structure. The files of this module
// follow the Go design closely, file by file.
//
// Copyright (c) 2012 The Go Authors. All rights reserved.
// Copyright (c) 2019 Klaus Post. All rights reserved.
// Copyright (c) 2014 Klaus Post (pgzip).
// Use of this source code is governed by the BSD-3-Clause (compress) and
// MIT (pgzip) licenses in the LICENSE file in this directory.

//! Bit-exact klauspost/compress 1.15.12 deflate, and the pgzip 1.2.5 stream
//! layout on top of it, so booster can rebuild gzip layers written by
//! containers/image (skopeo, podman, buildah: pgzip level −1 = 5, 1 MiB
//! blocks) and umoci (256 KiB blocks) from their decompressed tar.
//!
//! Owns: the encoder only (no decoder, no gzip framing beyond
//! [`pgzip_header`]). Pure std, no `unsafe`.
//!
//! Supported levels, all verified byte for byte against Go (see
//! `tests/kpflate_differential.rs`): −2 (Huffman only), −1 (= 5), 0 (stored),
//! 1–6 (the single-pass `levelN.go` encoders) and 7–9 (lazy hash chains).
//! The stateless encoder (`StatelessDeflate`, `NewStatelessWriter`) is
//! ported too ([`stateless_deflate`], [`StatelessWriter`]), though no layer
//! pipeline uses it.
//!
//! [`Encoder`] output depends only on the input bytes and the flush points:
//! the Go writer buffers input into fixed-size windows and encodes a window
//! only when it is full and more input arrives (or on Flush/Close), so write
//! sizes never matter, and encoder state left over from before `ResetDict`
//! is out of reach of every match search. That is also why pgzip's output
//! does not depend on its goroutines, and why [`pgzip_block`] can rebuild
//! any block alone. (The stateless encoder is the exception: each call
//! stands alone, so its output follows the call boundaries.)

mod bit_writer;
mod compressor;
mod fast;
mod lazy;
mod level1;
mod level2;
mod level3;
mod level4;
mod level56;
mod pgzip;
mod single_pass;
mod stateless;
mod token;
mod variant;

pub use compressor::{DEFAULT_COMPRESSION, Encoder, HUFFMAN_ONLY};
pub use pgzip::{
    PGZIP_DEFAULT_BLOCK_SIZE, PGZIP_TAIL_SIZE, PgzipEncoder, pgzip_block, pgzip_block_variant,
    pgzip_block_with, pgzip_header,
};
pub use stateless::{StatelessWriter, stateless_deflate};
pub use variant::Variant;
