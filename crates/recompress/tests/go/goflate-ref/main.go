// Command goflate-ref compresses with Go's standard library exactly as moby
// does, as the reference for booster's bit-exact port
// (src/compress/goflate). Build with: GO111MODULE=off go build
//
// Stream mode (default): stdin -> raw deflate (or gzip with -gzip) at -level
// on stdout. gzip uses a zero Header (OS 255), as moby's gzip.NewWriter. The
// input reaches the compressor in 32 KiB writes through a bufio.Writer; that
// gives the same output as one big write (write boundaries at multiples of
// 512 never matter, see tests/goflate_differential.rs). moby's gzip.Writer
// instead gets its tar writer's writes (headers, 32 KiB data chunks, padding),
// whose only possibly significant boundaries are where file data ends.
//
// Batch mode (-batch) lets a test compress many inputs with one process.
// Every number is a little-endian uint32. Request on stdin, repeated to EOF:
//
//	level (int32), gzip (0/1), segment count, then per segment:
//	length, bytes, flush-after (0/1)
//
// Each segment is passed to one Write call (then Flush if asked); after the
// last one the writer is closed. Reply on stdout per request: length, bytes,
// segment count, then per segment the output length so far (what Go had
// passed to its io.Writer after that segment's Write and Flush).
package main

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// compressor is what flate.Writer and gzip.Writer have in common.
type compressor interface {
	io.WriteCloser
	Flush() error
}

func newCompressor(w io.Writer, level int, gz bool) (compressor, error) {
	if gz {
		// NewWriterLevel leaves Header zero (OS 255), as moby uses it.
		return gzip.NewWriterLevel(w, level)
	}
	return flate.NewWriter(w, level)
}

func stream(level int, gz bool) error {
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	c, err := newCompressor(out, level, gz)
	if err != nil {
		return err
	}
	in := bufio.NewWriterSize(c, 32*1024)
	if _, err := io.Copy(in, os.Stdin); err != nil {
		return err
	}
	if err := in.Flush(); err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	return out.Flush()
}

type reader struct{ r *bufio.Reader }

func (r reader) u32() (uint32, error) {
	var b [4]byte
	_, err := io.ReadFull(r.r, b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

func (r reader) bytes(n uint32) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r.r, b)
	return b, err
}

// sink collects one request's output.
type sink struct{ b []byte }

func (s *sink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// oneRequest handles one request; io.EOF means there was none left.
func oneRequest(r reader, w *bufio.Writer) error {
	level, err := r.u32()
	if err != nil {
		return err // io.EOF only at a request boundary: the clean end
	}
	if err := compressRequest(r, w, int(int32(level))); err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

func compressRequest(r reader, w *bufio.Writer, level int) error {
	gz, err := r.u32()
	if err != nil {
		return err
	}
	nseg, err := r.u32()
	if err != nil {
		return err
	}
	var s sink
	c, err := newCompressor(&s, level, gz != 0)
	if err != nil {
		return err
	}
	marks := make([]uint32, nseg)
	for i := uint32(0); i < nseg; i++ {
		n, err := r.u32()
		if err != nil {
			return err
		}
		data, err := r.bytes(n)
		if err != nil {
			return err
		}
		if _, err := c.Write(data); err != nil {
			return err
		}
		flush, err := r.u32()
		if err != nil {
			return err
		}
		if flush != 0 {
			if err := c.Flush(); err != nil {
				return err
			}
		}
		marks[i] = uint32(len(s.b))
	}
	if err := c.Close(); err != nil {
		return err
	}
	var hdr [4]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(s.b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := w.Write(s.b); err != nil {
		return err
	}
	return binary.Write(w, binary.LittleEndian, append([]uint32{nseg}, marks...))
}

func batch() error {
	r := reader{bufio.NewReaderSize(os.Stdin, 1<<20)}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	for {
		err := oneRequest(r, w)
		if errors.Is(err, io.EOF) {
			return w.Flush()
		}
		if err != nil {
			return err
		}
	}
}

func main() {
	level := flag.Int("level", flate.DefaultCompression, "compression level, -2..9")
	gz := flag.Bool("gzip", false, "write gzip instead of raw deflate")
	isBatch := flag.Bool("batch", false, "length-prefixed batch protocol (see source)")
	flag.Parse()
	var err error
	if *isBatch {
		err = batch()
	} else {
		err = stream(*level, *gz)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goflate-ref:", err)
		os.Exit(1)
	}
}
