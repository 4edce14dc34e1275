// Port of the parts of Go's math package (Frexp, Log as amd64's log_amd64.s computes it,
// Log2) and of klauspost/compress compressible.go (ShannonEntropyBits) that the best
// speed's literal cost depends on; the same operations in the same order, with no fused
// multiply-add, so the results are the same doubles.
//
// Copyright 2009 The Go Authors. All rights reserved.
// Copyright 2019+ Klaus Post. All rights reserved.
// Use of this source code is governed by a BSD-style license that can be found in the
// LICENSE file in this directory.

//! Go's `math.Log2` to the last bit, for `ShannonEntropyBits`: libm's `log2` may round
//! differently, and the ceiling that follows can expose one ulp.

// The constants as exact bit patterns (the hex in Go's log.go comments).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const L1: f64 = f64::from_bits(0x3FE5_5555_5555_5593);
const L2: f64 = f64::from_bits(0x3FD9_9999_9997_FA04);
const L3: f64 = f64::from_bits(0x3FD2_4924_9422_9359);
const L4: f64 = f64::from_bits(0x3FCC_71C5_1D8E_78AF);
const L5: f64 = f64::from_bits(0x3FC7_4664_96CB_03DE);
const L6: f64 = f64::from_bits(0x3FC3_9A09_D078_C69F);
const L7: f64 = f64::from_bits(0x3FC2_F112_DF3E_5244);
/// sqrt(2)/2, as the assembly's `HSqrt2` rounds.
const H_SQRT2: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// `math.Frexp` for finite, positive, normal `x` (all the callers pass).
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let (mut x, mut exp) = (x, 0i64);
    if x.abs() < f64::MIN_POSITIVE {
        x *= (1u64 << 52) as f64;
        exp = -52;
    }
    let bits = x.to_bits();
    exp += ((bits >> 52) & 0x7ff) as i64 - 1022;
    let frac = f64::from_bits(bits & !(0x7ffu64 << 52) | (1022u64 << 52));
    (frac, exp)
}

/// `math.Log` as amd64 computes it (`archLog`).
fn log(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    // The assembly reduces without subnormal handling; inputs here are never subnormal.
    let bits = x.to_bits();
    let mut f1 = f64::from_bits(bits & 0x000F_FFFF_FFFF_FFFF | 0x3FE0_0000_0000_0000);
    let mut k = (((bits >> 52) & 0x7FF) as i32 - 0x3FE) as f64;
    // `cmpnlt`: f1 <= sqrt(2)/2 (the portable Go code tests `<`).
    if f1 <= H_SQRT2 {
        k -= 1.0;
        f1 *= 2.0;
    } else {
        f1 *= 1.0;
    }
    let f = f1 - 1.0;
    let s = f / (2.0 + f);
    let s2 = s * s;
    let s4 = s2 * s2;
    let t1 = (((L7 * s4 + L5) * s4 + L3) * s4 + L1) * s2;
    let t2 = ((L6 * s4 + L4) * s4 + L2) * s4;
    let r = t1 + t2;
    let hfsq = 0.5 * f * f;
    k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
}

/// `math.Log2`.
pub(crate) fn log2(x: f64) -> f64 {
    let (frac, exp) = frexp(x);
    if frac == 0.5 {
        return (exp - 1) as f64;
    }
    log(frac) * std::f64::consts::LOG2_E + exp as f64
}

/// `compress.ShannonEntropyBits`: the bits an ideal entropy coder needs for `b`.
pub(crate) fn shannon_entropy_bits(b: &[u8]) -> i64 {
    if b.is_empty() {
        return 0;
    }
    let mut hist = [0u64; 256];
    for &c in b {
        hist[c as usize] += 1;
    }
    let mut shannon = 0.0f64;
    let inv_total = 1.0 / b.len() as f64;
    for &v in &hist {
        if v > 0 {
            let n = v as f64;
            shannon += (-log2(n * inv_total) * n).ceil();
        }
    }
    shannon.ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact results of Go 1.19's `math.Log2` on amd64 (printed as bits), including
    /// sqrt(2)/2, where the assembly's reduction differs from the portable Go code.
    #[test]
    fn log2_matches_go_bit_for_bit() {
        for (x, want) in [
            (0x3fb999999999999au64, 0xc00a934f0979a371u64),
            (0x3fe8000000000000, 0xbfda8ff971810a5d),
            (0x3fd5555555555555, 0xbff95c01a39fbd69),
            (0x3feffffde7210be9, 0xbeb83454c4167fe4),
            (0x3e112e0be826d695, 0xc03de5b8eaa8d7e0),
            (0x3fe6a09e667f3bcd, 0xbfdffffffffffffe),
            (0x3f0c000000000000, 0xc02c62a2602afef5),
            (0x3fb81c8000000000, 0xc00b4452a8a0f4a3),
        ] {
            let got = log2(f64::from_bits(x)).to_bits();
            assert_eq!(got, want, "log2 of {:e}", f64::from_bits(x));
        }
        assert_eq!(log2(0.5), -1.0);
        assert_eq!(log2(8.0), 3.0);
    }

    #[test]
    fn shannon_of_uniform_bytes() {
        let b: Vec<u8> = (0..=255u8).collect();
        assert_eq!(shannon_entropy_bits(&b), 8 * 256);
        assert_eq!(shannon_entropy_bits(&[7; 100]), 0);
    }
}
