// pgzip-ref: the reference for booster's Rust model of klauspost/pgzip 1.2.5
// (src/compress/kpflate, PgzipEncoder). Encodes exactly like
// ../../../../shared/bench/encoders/pgzip-recompress: NewWriterLevel, zero
// ModTime, SetConcurrency(block, 4). Build against Debian's copies of pgzip
// 1.2.5 and klauspost/compress 1.15.12:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o pgzip-ref .
//
// or with Go 1.27 against pgzip 1.2.6 over klauspost/compress 1.18.0 or 1.20.3
// (scripts/go-refs.sh; tests/common/goref.rs).
//
// Single mode (default): stdin -> gzip on stdout at -level and -block
// (-procs sets the blocks in flight; the speed script uses 1 with
// GOMAXPROCS=1 to measure one core).
//
// Batch mode (-batch): every integer is a little-endian uint32; a request is
//
//	level (int32) | block | chunk | dataLen | data
//
// and the answer is `outLen | out`, the whole gzip member. `chunk` is the size
// of the Write calls (0: one Write).
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"io"
	"os"

	gzip "github.com/klauspost/pgzip"
)

func main() {
	block := flag.Int("block", 1<<20, "pgzip block size (umoci: 262144, pgzip default: 1048576)")
	level := flag.Int("level", gzip.DefaultCompression, "compression level")
	procs := flag.Int("procs", 4, "blocks in flight (SetConcurrency)")
	batch := flag.Bool("batch", false, "answer length-prefixed requests on stdin (see source)")
	flag.Parse()
	if *batch {
		runBatch()
		return
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	zw, err := gzip.NewWriterLevel(out, *level)
	if err != nil {
		panic(err)
	}
	if err := zw.SetConcurrency(*block, *procs); err != nil {
		panic(err)
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

func mustU32(r io.Reader) (uint32, bool) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if err == io.EOF {
			return 0, false
		}
		panic(err)
	}
	return binary.LittleEndian.Uint32(b[:]), true
}

func runBatch() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	var buf bytes.Buffer
	for {
		lv, ok := mustU32(in)
		if !ok {
			break
		}
		block, _ := mustU32(in)
		chunk, _ := mustU32(in)
		n, _ := mustU32(in)
		data := make([]byte, n)
		if _, err := io.ReadFull(in, data); err != nil {
			panic(err)
		}
		buf.Reset()
		zw, err := gzip.NewWriterLevel(&buf, int(int32(lv)))
		if err != nil {
			panic(err)
		}
		if err := zw.SetConcurrency(int(block), 4); err != nil {
			panic(err)
		}
		step := int(chunk)
		if step <= 0 {
			step = len(data)
		}
		for rest := data; len(rest) > 0; {
			k := step
			if k > len(rest) {
				k = len(rest)
			}
			if _, err := zw.Write(rest[:k]); err != nil {
				panic(err)
			}
			rest = rest[k:]
		}
		if err := zw.Close(); err != nil {
			panic(err)
		}
		var hdr [4]byte
		binary.LittleEndian.PutUint32(hdr[:], uint32(buf.Len()))
		out.Write(hdr[:])
		out.Write(buf.Bytes())
		if err := out.Flush(); err != nil {
			panic(err)
		}
	}
}
