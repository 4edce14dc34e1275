// Port of klauspost/compress zstd/bitwriter.go (1.18.0); it follows the Go design closely.
//
// Copyright 2018 Klaus Post. All rights reserved.
// Based on work Copyright (c) 2013, Yann Collet, released under BSD License.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! The zstd bit writer: a 64-bit container filled from the least significant bit, flushed
//! 32 bits at a time. Used forwards by the sequence and FSE coders, and by huff0.

/// Masks of 0..=31 low bits.
pub(crate) const BIT_MASK32: [u32; 32] = {
    let mut t = [0u32; 32];
    let mut i = 0;
    while i < 32 {
        t[i] = ((1u64 << i) - 1) as u32;
        i += 1;
    }
    t
};

/// Masks of 0..=16 low bits (16 and above: all 16).
const BIT_MASK16: [u16; 32] = {
    let mut t = [0u16; 32];
    let mut i = 0;
    while i < 32 {
        t[i] = if i >= 16 { 0xffff } else { ((1u32 << i) - 1) as u16 };
        i += 1;
    }
    t
};

pub(crate) struct BitWriter {
    pub container: u64,
    pub n_bits: u8,
    pub out: Vec<u8>,
}

impl BitWriter {
    pub fn new(out: Vec<u8>) -> BitWriter {
        BitWriter {
            container: 0,
            n_bits: 0,
            out,
        }
    }

    /// Up to 16 bits of `value` (masked); no room check.
    #[inline(always)]
    pub fn add_bits16_nc(&mut self, value: u16, bits: u8) {
        self.container |= ((value & BIT_MASK16[(bits & 31) as usize]) as u64) << (self.n_bits & 63);
        self.n_bits += bits;
    }

    /// Up to 31 bits of `value` (masked); no room check.
    #[inline(always)]
    pub fn add_bits32_nc(&mut self, value: u32, bits: u8) {
        self.container |= ((value & BIT_MASK32[(bits & 31) as usize]) as u64) << (self.n_bits & 63);
        self.n_bits += bits;
    }

    /// Up to 64 bits; there must be room for 32.
    #[inline(always)]
    pub fn add_bits64_nc(&mut self, value: u64, bits: u8) {
        if bits <= 31 {
            self.add_bits32_clean(value as u32, bits);
            return;
        }
        self.add_bits32_clean(value as u32, 32);
        self.flush32();
        self.add_bits32_clean((value >> 32) as u32, bits - 32);
    }

    /// `value` must not have bits above `bits`.
    #[inline(always)]
    pub fn add_bits32_clean(&mut self, value: u32, bits: u8) {
        self.container |= (value as u64) << (self.n_bits & 63);
        self.n_bits += bits;
    }

    #[inline(always)]
    pub fn add_bits16_clean(&mut self, value: u16, bits: u8) {
        self.container |= (value as u64) << (self.n_bits & 63);
        self.n_bits += bits;
    }

    /// Writes out 32 bits if there are at least 32.
    #[inline(always)]
    pub fn flush32(&mut self) {
        if self.n_bits < 32 {
            return;
        }
        self.out.extend_from_slice(&(self.container as u32).to_le_bytes());
        self.n_bits -= 32;
        self.container >>= 32;
    }

    /// Writes out every started byte and empties the container.
    pub fn flush_align(&mut self) {
        let n = (self.n_bits + 7) >> 3;
        for i in 0..n {
            self.out.push((self.container >> (i * 8)) as u8);
        }
        self.n_bits = 0;
        self.container = 0;
    }

    /// The end mark (a 1 bit), then byte alignment.
    pub fn close(&mut self) {
        self.add_bits16_clean(1, 1);
        self.flush_align();
    }
}
