//! Encoder models behind one streaming interface: given the plain bytes, each produces the
//! exact compressed bytes the original encoder wrote (or different bytes, which the caller's
//! digest check catches).

use std::io;

use flate2::{Compress, Compression, FlushCompress, Status};
use zstd::zstd_safe;

use super::method::{Deflate, KpVariant, ZstdFrame, ZstdModel};

pub trait StreamEncoder: Send {
    /// Consume `input`, appending every output byte produced so far to `out`.
    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()>;
    /// End the stream.
    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()>;
}

/// The encoder for a deflate model, or None for preflate (which works piecewise and is
/// driven separately) and for models this build does not have.
pub fn deflate_encoder(model: &Deflate) -> Option<Box<dyn StreamEncoder>> {
    match model {
        Deflate::Zlib { level, mem_level } if *mem_level == 8 => {
            Some(Box::new(ZlibEncoder::new(*level as u32)))
        }
        Deflate::Zlib { .. } => None,
        Deflate::GoStd { level } => go_std_encoder(*level),
        Deflate::Klauspost {
            variant,
            level,
            block_size: 0,
        } => klauspost_encoder(*level, *variant),
        Deflate::Klauspost {
            variant,
            level,
            block_size,
        } => pgzip_encoder(*level, *block_size, *variant),
        Deflate::Preflate { .. } | Deflate::Replay { .. } => None,
    }
}

/// zlib's deflate with a raw stream (no zlib header), window 15, memLevel 8.
pub struct ZlibEncoder {
    z: Compress,
    buf: Vec<u8>,
}

impl ZlibEncoder {
    pub fn new(level: u32) -> ZlibEncoder {
        ZlibEncoder {
            z: Compress::new_with_window_bits(Compression::new(level), false, 15),
            buf: vec![0; 128 * 1024],
        }
    }

    fn run(&mut self, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> io::Result<()> {
        loop {
            let before_in = self.z.total_in();
            let before_out = self.z.total_out();
            let status = self
                .z
                .compress(input, &mut self.buf, flush)
                .map_err(io::Error::other)?;
            let used = (self.z.total_in() - before_in) as usize;
            let produced = (self.z.total_out() - before_out) as usize;
            out.extend_from_slice(&self.buf[..produced]);
            input = &input[used..];
            match flush {
                FlushCompress::Finish if status == Status::StreamEnd => return Ok(()),
                FlushCompress::Finish => {}
                _ if input.is_empty() && produced < self.buf.len() => return Ok(()),
                _ => {}
            }
        }
    }
}

impl StreamEncoder for ZlibEncoder {
    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.run(input, out, FlushCompress::None)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.run(&[], out, FlushCompress::Finish)
    }
}

fn go_std_encoder(level: i8) -> Option<Box<dyn StreamEncoder>> {
    super::goflate::Encoder::new(level as i32).map(|e| Box::new(Infallible(e)) as Box<dyn StreamEncoder>)
}

fn pgzip_encoder(level: i8, block_size: u32, variant: KpVariant) -> Option<Box<dyn StreamEncoder>> {
    super::kpflate::PgzipEncoder::with_variant(level as i32, block_size as usize, variant)
        .map(|e| Box::new(Infallible(e)) as Box<dyn StreamEncoder>)
}

fn klauspost_encoder(level: i8, variant: KpVariant) -> Option<Box<dyn StreamEncoder>> {
    super::kpflate::Encoder::with_variant(level as i32, variant)
        .map(|e| Box::new(Infallible(e)) as Box<dyn StreamEncoder>)
}

/// An encoder of this crate: its writes cannot fail, so one wrapper serves them all
/// behind the model interface (klauspost's and Go's flate, klauspost's zstd frames).
pub(crate) struct Infallible<E>(pub E);

pub(crate) trait PlainEncoder: Send {
    fn write(&mut self, input: &[u8], out: &mut Vec<u8>);
    fn finish(&mut self, out: &mut Vec<u8>);
}

impl<E: PlainEncoder> StreamEncoder for Infallible<E> {
    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.0.write(input, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.0.finish(out);
        Ok(())
    }
}

/// The models whose `write` and `finish` cannot fail: a klauspost flate stream
/// (klauspost's `gzip.Writer`, Go 1.27's `compress/gzip`), Go's `compress/flate` up to
/// 1.26, and pgzip.
macro_rules! plain_encoders {
    ($($model:ty),*) => {$(
        impl PlainEncoder for $model {
            fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
                <$model>::write(self, input, out)
            }

            fn finish(&mut self, out: &mut Vec<u8>) {
                <$model>::finish(self, out)
            }
        }
    )*};
}

plain_encoders!(
    super::kpflate::Encoder,
    super::goflate::Encoder,
    super::kpflate::PgzipEncoder
);

/// libzstd with the recorded frame parameters.
pub struct ZstdEncoder {
    cctx: zstd_safe::CCtx<'static>,
    buf: Vec<u8>,
}

fn zstd_err(code: usize) -> io::Error {
    io::Error::other(format!("zstd: {}", zstd_safe::get_error_name(code)))
}

impl ZstdEncoder {
    pub fn new(f: &ZstdFrame) -> io::Result<ZstdEncoder> {
        use zstd_safe::CParameter;
        let ZstdModel::Lib {
            level,
            pledged_size,
            checksum,
            workers,
        } = f.model
        else {
            return Err(io::Error::other("not a libzstd frame"));
        };
        let mut cctx = zstd_safe::CCtx::create();
        cctx.set_parameter(CParameter::CompressionLevel(level))
            .map_err(zstd_err)?;
        cctx.set_parameter(CParameter::ChecksumFlag(checksum))
            .map_err(zstd_err)?;
        cctx.set_parameter(CParameter::ContentSizeFlag(pledged_size))
            .map_err(zstd_err)?;
        if workers > 0 {
            // The multi-threaded layout depends on the level's job size, never on how many
            // threads run the jobs: one worker writes the same bytes as any other count, so
            // a record cannot make a rebuild start a thread (and a window) per worker.
            cctx.set_parameter(CParameter::NbWorkers(1)).map_err(zstd_err)?;
        }
        if pledged_size {
            cctx.set_pledged_src_size(Some(f.plain_len)).map_err(zstd_err)?;
        }
        Ok(ZstdEncoder {
            cctx,
            buf: vec![0; zstd_safe::CCtx::out_size()],
        })
    }
}

impl ZstdEncoder {
    /// One `compress_stream2` pass over `input` with `directive`, output appended to
    /// `out`; returns what libzstd says is left to flush.
    fn pass(
        &mut self,
        input: &mut zstd_safe::InBuffer<'_>,
        directive: zstd_safe::zstd_sys::ZSTD_EndDirective,
        out: &mut Vec<u8>,
    ) -> io::Result<usize> {
        let mut outb = zstd_safe::OutBuffer::around(&mut self.buf[..]);
        let remaining = self
            .cctx
            .compress_stream2(&mut outb, input, directive)
            .map_err(zstd_err)?;
        let n = outb.pos();
        out.extend_from_slice(&self.buf[..n]);
        Ok(remaining)
    }
}

impl StreamEncoder for ZstdEncoder {
    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let mut inb = zstd_safe::InBuffer::around(input);
        while inb.pos() < input.len() {
            self.pass(
                &mut inb,
                zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_continue,
                out,
            )?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut inb = zstd_safe::InBuffer::around(&[]);
        while self.pass(&mut inb, zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_end, out)? != 0 {}
        Ok(())
    }
}
