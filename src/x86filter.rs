//! Filters for x86 machine code (calls, and RIP-relative data references), applied to both
//! sides of a delta.
//!
//! A rebuilt shared library moves most of its code by a few bytes, which changes the
//! relative displacement of nearly every `call` (opcode E8, 32-bit displacement) even
//! where the callee is the same. Rewriting each displacement as the absolute position of
//! its target (within the file) turns those into identical bytes in the old and the new
//! version, so the delta coder finds longer matches. Measured on the python app update of
//! the test bed (`zstd -19 --patch-from` of the changed `.so` files, concatenated): 5.25 MB
//! unfiltered, 4.95 MB filtering E8 and E9 (`jmp`), 4.64 MB filtering E8 only (−11.8 %):
//! jumps mostly stay inside their function, where the relative form is the stable one.
//!
//! Position-independent code reaches its data the same way, through `mov`/`lea` with a
//! `[rip + disp32]` operand, and the variant booster writes rewrites those too.
//!
//! Each transform is a bijection on any byte string (data that is not code survives it
//! unchanged in meaning): scanning from the start, an opcode byte that starts an
//! instruction to rewrite consumes the bytes up to the end of its displacement, and the
//! displacement is rewritten only when it is small (top byte 00 or FF) — a property the
//! rewritten value keeps, and the opcode and ModRM bytes that decided are never rewritten,
//! so the inverse makes the same decisions. `origin` is the position of `buf[0]` within its
//! file, so that a piece cut from the middle of a file and its reference agree on target
//! addresses.

/// Which instructions a filter rewrites. Each variant is a bijection of its own; a bundle
/// names the one its sender used (store-format.md 6.4.1, 6.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `call rel32` (E8) only: payload group kind 2.
    Calls,
    /// `call rel32`, and `mov`/`lea` (8B/8D) addressing memory relative to the instruction
    /// pointer: payload group kind 3, what booster writes.
    CallsAndRipData,
}

/// The variant booster writes. Position-independent code reaches its globals, strings and
/// GOT slots through `mov`/`lea reg, [rip + disp32]`; when code moves, so does every such
/// displacement. Measured on the test bed's changed `.so` files (concatenated, `zstd
/// --patch-from`): the python app update 5.81 → 5.29 MB at level 9 (−9 %) and 4.64 →
/// 4.08 MB at level 19 (−12 %); the Debian refresh 531 → 445 KB at level 9 (−16 %). Also
/// rewriting every other opcode with a RIP-relative operand gained under 1.5 % more, and
/// costs the SIMD scan for three opcode bytes.
pub const WRITTEN: Variant = Variant::CallsAndRipData;

/// Bytes the filter is applied to by position: `origin + index` is the file offset.
pub fn encode(buf: &mut [u8], origin: u64, variant: Variant) {
    transform(buf, origin, variant, true)
}

/// The inverse of [`encode`] with the same `origin` and variant.
pub fn decode(buf: &mut [u8], origin: u64, variant: Variant) {
    transform(buf, origin, variant, false)
}

/// `call rel32`: E8 and its displacement.
const CALL: u8 = 0xE8;
/// `mov r, r/m` and `lea r, m`, whose ModRM byte may name `[rip + disp32]`.
const MOV: u8 = 0x8B;
const LEA: u8 = 0x8D;

fn transform(buf: &mut [u8], origin: u64, variant: Variant, forward: bool) {
    let mut i = 0usize;
    while i + 5 <= buf.len() {
        // Opcode bytes are a few per hundred even in code: find the next one with SIMD
        // rather than testing every byte (the scan was 5 % of an import's CPU).
        let hay = &buf[i..buf.len() - 4];
        let found = match variant {
            Variant::Calls => memchr::memchr(CALL, hay),
            Variant::CallsAndRipData => memchr::memchr3(CALL, MOV, LEA, hay),
        };
        let Some(k) = found else { break };
        i += k;
        // The displacement's position and the position it is relative to (the end of the
        // instruction), or None for an opcode byte that does not start one to rewrite.
        let field = if buf[i] == CALL {
            Some((i + 1, i + 5))
        } else if i + 6 <= buf.len() && (buf[i + 1] & 0xC7) == 0x05 {
            // ModRM mod = 00, r/m = 101: [rip + disp32], any register.
            Some((i + 2, i + 6))
        } else {
            None
        };
        let Some((at, end)) = field else {
            i += 1;
            continue;
        };
        rewrite(&mut buf[at..end], origin.wrapping_add(end as u64) as u32, forward);
        // The bytes up to the end of the instruction are consumed either way: otherwise a
        // rewrite could change the bytes a later decision (in the other direction) reads.
        i = end;
    }
}

/// A small displacement (top byte 00 or FF) becomes the absolute position it points at,
/// or back: `next` is the position it is relative to.
fn rewrite(disp: &mut [u8], next: u32, forward: bool) {
    let top = disp[3];
    if top != 0x00 && top != 0xFF {
        return;
    }
    let v = u32::from_le_bytes([disp[0], disp[1], disp[2], disp[3]]);
    let r = if forward {
        v.wrapping_add(next)
    } else {
        v.wrapping_sub(next)
    };
    // Keep 25 bits, sign-extended: the top byte stays 00 or FF both ways.
    let r = ((r << 7) as i32 >> 7) as u32;
    disp.copy_from_slice(&r.to_le_bytes());
}

/// An ELF file for x86-64 (header of at least 20 bytes): the files the filter pays off on.
pub fn is_x86_64_elf(head: &[u8]) -> bool {
    head.len() >= 20
        && head.starts_with(b"\x7fELF")
        && head[4] == 2
        && head[5] == 1
        && head[18] == 62
        && head[19] == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn variant() -> impl Strategy<Value = Variant> {
        prop_oneof![Just(Variant::Calls), Just(Variant::CallsAndRipData)]
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(mut data in proptest::collection::vec(
            prop_oneof![Just(CALL), Just(MOV), Just(LEA), Just(0x05), Just(0x0D), Just(0x00),
                Just(0xFF), any::<u8>()], 0..400),
            origin in any::<u64>(), v in variant()) {
            let original = data.clone();
            encode(&mut data, origin, v);
            decode(&mut data, origin, v);
            prop_assert_eq!(data, original);
        }
    }

    /// The kind 2 transform as it shipped (before the variants), kept verbatim: bundles
    /// written with it must keep decoding to the same bytes.
    fn kind2_as_shipped(buf: &mut [u8], origin: u64, forward: bool) {
        let mut i = 0usize;
        while i + 5 <= buf.len() {
            match memchr::memchr(0xE8, &buf[i..buf.len() - 4]) {
                Some(k) => i += k,
                None => break,
            }
            let top = buf[i + 4];
            if top == 0x00 || top == 0xFF {
                let v = u32::from_le_bytes([buf[i + 1], buf[i + 2], buf[i + 3], buf[i + 4]]);
                let next = origin.wrapping_add(i as u64 + 5) as u32;
                let r = if forward {
                    v.wrapping_add(next)
                } else {
                    v.wrapping_sub(next)
                };
                let r = ((r << 7) as i32 >> 7) as u32;
                buf[i + 1..i + 5].copy_from_slice(&r.to_le_bytes());
            }
            i += 5;
        }
    }

    proptest! {
        #[test]
        fn the_calls_variant_is_the_kind_2_transform_as_shipped(data in proptest::collection::vec(
            prop_oneof![Just(CALL), Just(MOV), Just(0x05), Just(0x00), Just(0xFF), any::<u8>()],
            0..400), origin in any::<u64>(), forward in any::<bool>()) {
            let mut ours = data.clone();
            transform(&mut ours, origin, Variant::Calls, forward);
            let mut shipped = data;
            kind2_as_shipped(&mut shipped, origin, forward);
            prop_assert_eq!(ours, shipped);
        }
    }

    /// Code with one instruction at `at` whose displacement (`disp_at` bytes into it, the
    /// instruction `len` bytes long) points at `target`.
    fn code(head: &[u8], at: u32, len: u32, target: u32) -> Vec<u8> {
        let mut b = vec![0x90u8; 2000];
        let rel = target.wrapping_sub(at + len);
        let at = at as usize;
        b[at..at + head.len()].copy_from_slice(head);
        b[at + head.len()..at + head.len() + 4].copy_from_slice(&rel.to_le_bytes());
        b
    }

    #[test]
    fn calls_to_the_same_target_match_after_code_moves() {
        // A call at 100 to 1000, and the same call moved to 140 (code inserted before it).
        for v in [Variant::Calls, Variant::CallsAndRipData] {
            let (mut old, mut new) = (code(&[CALL], 100, 5, 1000), code(&[CALL], 140, 5, 1000));
            assert_ne!(old[101..105], new[141..145]);
            encode(&mut old, 0, v);
            encode(&mut new, 0, v);
            assert_eq!(old[101..105], new[141..145]);
        }
    }

    #[test]
    fn data_references_match_after_code_moves_with_the_rip_variant() {
        // `mov rax, [rip + …]` (48 8B 05) and `lea rdi, [rip + …]` (48 8D 3D) to 1500.
        for head in [[0x48, MOV, 0x05], [0x48, LEA, 0x3D]] {
            let (old, new) = (code(&head, 100, 7, 1500), code(&head, 140, 7, 1500));
            let (mut a, mut b) = (old.clone(), new.clone());
            encode(&mut a, 0, Variant::CallsAndRipData);
            encode(&mut b, 0, Variant::CallsAndRipData);
            assert_eq!(a[103..107], b[143..147]);
            // The calls-only variant leaves them as they were.
            let (mut a, mut b) = (old.clone(), new.clone());
            encode(&mut a, 0, Variant::Calls);
            encode(&mut b, 0, Variant::Calls);
            assert_eq!((a, b), (old, new));
        }
    }

    #[test]
    fn the_calls_variant_is_the_kind_2_transform() {
        // Golden bytes: bundles of kind 2 must keep decoding exactly as they were written.
        let mut b = vec![0u8; 16];
        b[0] = CALL;
        b[1..5].copy_from_slice(&0x0000_0100u32.to_le_bytes());
        b[5] = MOV;
        b[6] = 0x05;
        b[7..11].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        b[11] = CALL;
        b[12..16].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        let mut calls = b.clone();
        encode(&mut calls, 1000, Variant::Calls);
        assert_eq!(&calls[1..5], &(0x100u32 + 1005).to_le_bytes());
        assert_eq!(calls[5..], b[5..]);
        let mut both = b.clone();
        encode(&mut both, 1000, Variant::CallsAndRipData);
        assert_eq!(&both[1..5], &(0x100u32 + 1005).to_le_bytes());
        assert_eq!(&both[7..11], &(0xFFFF_FF00u32.wrapping_add(1011)).to_le_bytes());
        assert_eq!(both[11..], b[11..]);
    }

    #[test]
    fn recognises_x86_64_elf() {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18] = 62;
        assert!(is_x86_64_elf(&h));
        h[18] = 183; // aarch64
        assert!(!is_x86_64_elf(&h));
        assert!(!is_x86_64_elf(b"\x7fELF"));
    }
}
