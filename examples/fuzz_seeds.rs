//! Seeds for the fuzz targets that read booster's own binary records (fuzz/run.sh
//! --make-seeds), each input as its target reads it:
//! - `method`: a length byte, that many bytes of plain text, then an encoded rebuild
//!   method; one per kind booster records: every deflate model and every zstd frame kind,
//!   and a near miss whose corrections come from `replay::diff` between two real models;
//! - `records`: a selector byte, then a record: a tar index with the after-the-tar entry,
//!   and blob records holding the zstd and near-miss methods.
//!
//!   cargo run --example fuzz_seeds -- fuzz/seeds

use std::io::Cursor;
use std::path::PathBuf;

use booster::id::Digest;
use booster::store::records::{self, BlobRecord};
use booster::tarindex::TarEntry;
use recompress::codec::Writer;
use recompress::encode::encode_deflate;
use recompress::{Deflate, GzipMember, KpVariant, KzSpeed, KzVariant, Method, ZstdFrame, ZstdModel, replay};

fn plain() -> Vec<u8> {
    let words = ["layer", "chunk", "store", "bundle", "patch", "zstd", "gzip"];
    let mut out = Vec::new();
    let mut x = 7u32;
    while out.len() < 200 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        out.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
        out.push(b' ');
    }
    out.truncate(200);
    out
}

fn deflated(model: &Deflate, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_deflate(model, &mut Cursor::new(plain), plain.len() as u64, &mut out, None)
        .expect("the model encodes");
    out
}

fn gzip(deflate: Deflate, plain: &[u8]) -> Method {
    Method::Gzip {
        members: vec![GzipMember {
            header: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255],
            plain_len: plain.len() as u64,
            deflate,
        }],
        trailing: Vec::new(),
    }
}

fn main() {
    let seeds = PathBuf::from(std::env::args().nth(1).expect("usage: fuzz_seeds DIR"));
    let dir = seeds.join("method");
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    let text = plain();
    let go6 = Deflate::GoStd { level: 6 };
    let kp = |variant, level, block_size| Deflate::Klauspost {
        variant,
        level,
        block_size,
    };
    let corrections = replay::diff(
        Cursor::new(deflated(&kp(KpVariant::Go1_27, 6, 0), &text)),
        Cursor::new(deflated(&go6, &text)),
        1 << 20,
    )
    .expect("Go 1.27 is a near miss of Go 1.26 on a short text");
    let frame = |model, skippable| ZstdFrame {
        plain_len: if matches!(model, ZstdModel::Verbatim { .. }) {
            0
        } else {
            100
        },
        model,
        skippable,
    };
    let methods: Vec<(&str, Method)> = vec![
        (
            "gzip-zlib",
            gzip(
                Deflate::Zlib {
                    level: 6,
                    mem_level: 8,
                },
                &text,
            ),
        ),
        ("gzip-go", gzip(go6.clone(), &text)),
        ("gzip-pgzip", gzip(kp(KpVariant::Kp1_15, -1, 4096), &text)),
        ("gzip-kp120", gzip(kp(KpVariant::Kp1_20, 9, 0), &text)),
        ("gzip-go127", gzip(kp(KpVariant::Go1_27, -1, 0), &text)),
        (
            "gzip-replay",
            gzip(
                Deflate::Replay {
                    model: Box::new(go6),
                    corrections,
                },
                &text,
            ),
        ),
        (
            "zstd-lib",
            Method::Zstd {
                frames: vec![ZstdFrame::lib(200, 3, false, true, 0)],
            },
        ),
        (
            "zstd-chunked",
            Method::Zstd {
                frames: vec![
                    frame(
                        ZstdModel::Klauspost {
                            speed: KzSpeed::Default,
                            variant: KzVariant::Kp1_18,
                            cuts: vec![8],
                        },
                        None,
                    ),
                    frame(
                        ZstdModel::Klauspost {
                            speed: KzSpeed::Best,
                            variant: KzVariant::Kp1_15,
                            cuts: Vec::new(),
                        },
                        Some(0x184D_2A50),
                    ),
                    frame(
                        ZstdModel::Verbatim {
                            bytes: [&0x184D_2A50u32.to_le_bytes()[..], &4u32.to_le_bytes(), b"GnUl"].concat(),
                        },
                        None,
                    ),
                ],
            },
        ),
    ];
    let records_dir = seeds.join("records");
    std::fs::create_dir_all(&records_dir).expect("create the seed directory");
    for (name, method) in methods {
        let mut w = Writer::new();
        method.encode(&mut w);
        let mut input = vec![text.len() as u8];
        input.extend_from_slice(&text);
        input.extend_from_slice(&w.buf);
        std::fs::write(dir.join(name), input).expect("write a seed");
        if name.starts_with("zstd") || name == "gzip-replay" {
            let record = BlobRecord {
                media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
                size: 4096,
                content: Digest::of(&text),
                method,
            };
            // Selector 2: a blob record (fuzz/fuzz_targets/records.rs).
            let input = [&[2u8][..], &record.encode()].concat();
            std::fs::write(records_dir.join(format!("blob-{name}")), input).expect("write a seed");
        }
    }
    let index = records::encode_tar_index(&[
        TarEntry {
            path: b"etc/hostname".to_vec(),
            kind: TarEntry::REGULAR,
            offset: 512,
            size: 4,
        },
        TarEntry {
            path: TarEntry::AFTER_THE_TAR.to_vec(),
            kind: TarEntry::REGULAR,
            offset: 2048,
            size: 30,
        },
    ]);
    // Selector 1: a tar index.
    std::fs::write(
        records_dir.join("tarindex-after-the-tar"),
        [&[1u8][..], &index].concat(),
    )
    .expect("write a seed");
}
