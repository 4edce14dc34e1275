// kpflate-ref: the reference for booster's Rust port of klauspost/compress
// flate (src/compress/kpflate). Build against Debian's copy of
// klauspost/compress 1.15.12:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o kpflate-ref .
//
// or, for the port's newer variants, with Go 1.27 against 1.18.0 or 1.20.3 as
// scripts/go-refs.sh unpacks them (tests/common/goref.rs does this).
//
// Single mode (default): stdin -> raw deflate on stdout at -level, optionally
// with a preset dictionary (-dict FILE, applied with Writer.ResetDict).
//
// Batch mode (-batch) answers many cases per process, because spawning Go is
// slow compared to compressing a few KiB. Every integer is a little-endian
// uint32. A request is
//
//	level (int32) | dictLen | dict | chunk | nSegs | nSegs x (segLen | seg | flush)
//
// The segments are written in order, each in writes of `chunk` bytes (0: one
// Write per segment), followed by Flush() when `flush` is 1; the stream ends
// with Close(). Levels -100 and -101 select the stateless encoder instead
// (see runStateless). The answer is `outLen | out`. One Writer per level is kept
// and re-armed with ResetDict, as pgzip does with its pool, so the reference
// also shows that stale encoder state never leaks into the output.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"io"
	"os"

	"github.com/klauspost/compress/flate"
)

func main() {
	level := flag.Int("level", flate.DefaultCompression, "compression level (-2..9, -1 = default = 5)")
	dictFile := flag.String("dict", "", "file holding a preset dictionary (Writer.ResetDict)")
	batch := flag.Bool("batch", false, "answer length-prefixed requests on stdin (see source)")
	flag.Parse()
	if *batch {
		runBatch()
		return
	}
	var dict []byte
	if *dictFile != "" {
		var err error
		if dict, err = os.ReadFile(*dictFile); err != nil {
			panic(err)
		}
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	zw, err := flate.NewWriter(out, *level)
	if err != nil {
		panic(err)
	}
	if dict != nil {
		zw.ResetDict(out, dict)
	}
	if _, err := io.Copy(zw, bufio.NewReaderSize(os.Stdin, 1<<20)); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	if err := out.Flush(); err != nil {
		panic(err)
	}
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

func mustU32(r io.Reader) uint32 {
	v, ok := readU32(r)
	if !ok {
		panic("truncated request")
	}
	return v
}

func readBytes(r io.Reader) []byte {
	b := make([]byte, mustU32(r))
	if _, err := io.ReadFull(r, b); err != nil {
		panic(err)
	}
	return b
}

func runBatch() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	writers := map[int]*flate.Writer{}
	var buf bytes.Buffer
	for {
		lv, ok := readU32(in)
		if !ok {
			break
		}
		level := int(int32(lv))
		dict := readBytes(in)
		chunk := int(mustU32(in))
		buf.Reset()
		if level == statelessDeflate || level == statelessWriter {
			runStateless(level, in, &buf, dict)
			answer(out, buf.Bytes())
			continue
		}
		zw := writers[level]
		if zw == nil {
			var err error
			if zw, err = flate.NewWriter(&buf, level); err != nil {
				panic(err)
			}
			writers[level] = zw
		}
		zw.ResetDict(&buf, dict)
		nSegs := mustU32(in)
		for i := uint32(0); i < nSegs; i++ {
			seg := readBytes(in)
			flush := mustU32(in)
			writeChunked(zw, seg, chunk)
			if flush != 0 {
				if err := zw.Flush(); err != nil {
					panic(err)
				}
			}
		}
		if err := zw.Close(); err != nil {
			panic(err)
		}
		answer(out, buf.Bytes())
	}
}

// Pseudo-levels for the stateless encoder: statelessDeflate calls
// StatelessDeflate(out, seg, flush != 0, dict) per segment (flush is the eof
// flag); statelessWriter writes each segment to NewStatelessWriter and closes
// it. The output of both depends on the segments, so chunk is ignored.
const (
	statelessDeflate = -100
	statelessWriter  = -101
)

func runStateless(level int, in io.Reader, buf *bytes.Buffer, dict []byte) {
	nSegs := mustU32(in)
	sw := flate.NewStatelessWriter(buf)
	for i := uint32(0); i < nSegs; i++ {
		seg := readBytes(in)
		flag := mustU32(in)
		if level == statelessDeflate {
			if err := flate.StatelessDeflate(buf, seg, flag != 0, dict); err != nil {
				panic(err)
			}
		} else if _, err := sw.Write(seg); err != nil {
			panic(err)
		}
	}
	if level == statelessWriter {
		if err := sw.Close(); err != nil {
			panic(err)
		}
	}
}

// answer writes outLen | out and flushes at once: the caller may wait for
// it before sending the next request.
func answer(out *bufio.Writer, b []byte) {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(b)))
	out.Write(n[:])
	out.Write(b)
	if err := out.Flush(); err != nil {
		panic(err)
	}
}

func writeChunked(w io.Writer, b []byte, chunk int) {
	if chunk <= 0 {
		chunk = len(b)
	}
	for len(b) > 0 {
		n := chunk
		if n > len(b) {
			n = len(b)
		}
		if _, err := w.Write(b[:n]); err != nil {
			panic(err)
		}
		b = b[n:]
	}
}
