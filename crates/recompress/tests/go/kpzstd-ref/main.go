// kpzstd-ref: the reference for booster's Rust port of the klauspost/compress zstd
// encoder (src/compress/kpzstd). Build in GOPATH mode against Debian's
// golang-github-klauspost-compress-dev (bookworm's 1.15.12 with the system Go, or 1.18.0 /
// 1.20.3 with Go 1.27 as scripts/go-refs.sh unpacks them; tests/common/goref.rs does this).
//
// Batch mode (-batch) answers many cases per process. Every integer is a little-endian
// uint32. A request is
//
//	level (int32) | reuse | nSegs | nSegs x (segLen | seg | op)
//
// level 0 makes the writer with zstd.NewWriter(w) alone (skopeo's default); any other
// value adds WithEncoderLevel(EncoderLevelFromZstd(level)). With reuse 1 the writer of
// the previous request with the same level is Reset onto the new output instead of made
// anew. op 0 writes the segment with Write, 1 writes it and calls Flush, 2 hands it to
// ReadFrom (through a reader that is not a WriterTo, as containers/image's pipeline does).
// The stream ends with Close. The answer is `outLen | out`.
//
// Single mode: stdin -> zstd on stdout at -level, written with Write.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func newWriter(w io.Writer, level int) *zstd.Encoder {
	var opts []zstd.EOption
	if level != 0 {
		opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
	}
	e, err := zstd.NewWriter(w, opts...)
	if err != nil {
		panic(err)
	}
	return e
}

func readU32(r io.Reader) (uint32, bool) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if err == io.EOF {
			return 0, false
		}
		panic(err)
	}
	return binary.LittleEndian.Uint32(b[:]), true
}

func main() {
	level := flag.Int("level", 0, "zstd level (0: NewWriter defaults)")
	batch := flag.Bool("batch", false, "answer length-prefixed requests on stdin (see source)")
	flag.Parse()
	if !*batch {
		out := bufio.NewWriterSize(os.Stdout, 1<<20)
		e := newWriter(out, *level)
		if _, err := io.Copy(e, os.Stdin); err != nil {
			panic(err)
		}
		if err := e.Close(); err != nil {
			panic(err)
		}
		if err := out.Flush(); err != nil {
			panic(err)
		}
		return
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	writers := map[int]*zstd.Encoder{}
	for {
		lv, ok := readU32(in)
		if !ok {
			break
		}
		level := int(int32(lv))
		reuse, _ := readU32(in)
		nSegs, _ := readU32(in)
		var buf bytes.Buffer
		e, had := writers[level]
		if reuse == 1 && had {
			e.Reset(&buf)
		} else {
			e = newWriter(&buf, level)
			writers[level] = e
		}
		for i := uint32(0); i < nSegs; i++ {
			n, _ := readU32(in)
			seg := make([]byte, n)
			if _, err := io.ReadFull(in, seg); err != nil {
				panic(err)
			}
			op, _ := readU32(in)
			var err error
			switch op {
			case 0:
				_, err = e.Write(seg)
			case 1:
				if _, err = e.Write(seg); err == nil {
					err = e.Flush()
				}
			case 2:
				_, err = e.ReadFrom(onlyReader{bytes.NewReader(seg)})
			}
			if err != nil {
				panic(err)
			}
		}
		if err := e.Close(); err != nil {
			panic(err)
		}
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], uint32(buf.Len()))
		out.Write(l[:])
		out.Write(buf.Bytes())
	}
	if err := out.Flush(); err != nil {
		panic(err)
	}
}
