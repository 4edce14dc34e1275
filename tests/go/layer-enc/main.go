// layer-enc compresses a layer (a tar on stdin) the way image tools do, onto stdout, with
// the encoder this program is built against:
//
//	-mode stdgzip -level N           compress/gzip NewWriterLevel, zero header (moby, BuildKit)
//	-mode kpgzip  -level N           github.com/klauspost/compress/gzip (build tag kp)
//	-mode pgzip   -level N -block B  github.com/klauspost/pgzip, SetConcurrency(B, GOMAXPROCS)
//	                                 (build tag kp; containers/image, umoci)
//	-mode kpzstd  -level N           github.com/klauspost/compress/zstd (build tag kp); level 0 is
//	                                 NewWriter's default, others go through EncoderLevelFromZstd
//	-mode kpzstd-peek8 -level N      the same, fed as containers/image feeds an uncompressed layer:
//	                                 Write(first 8 bytes), then ReadFrom(the rest)
//
// Input reaches the encoder in 32 KiB writes through a bufio.Writer, as moby's pool does.
// Build in GOPATH mode, for example with Go 1.27 and Debian's klauspost/compress 1.20.3:
//
//	GO111MODULE=off GOROOT=… GOPATH=…/kp-1.20.3/usr/share/gocode:… go build -tags kp .
package main

import (
	"bufio"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
)

// modes registered by kp.go when built with -tags kp
var modes = map[string]func(w io.Writer, level, block int) (io.WriteCloser, error){
	"stdgzip": func(w io.Writer, level, _ int) (io.WriteCloser, error) {
		return gzip.NewWriterLevel(w, level)
	},
}

func main() {
	mode := flag.String("mode", "stdgzip", "stdgzip | kpgzip | pgzip | kpzstd | kpzstd-peek8")
	level := flag.Int("level", -1, "compression level (-1: the encoder's default)")
	block := flag.Int("block", 1<<20, "pgzip block size")
	version := flag.Bool("version", false, "print the Go version and exit")
	flag.Parse()
	if *version {
		fmt.Println(runtime.Version())
		return
	}
	newWriter, ok := modes[*mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "layer-enc: mode %q is not built in (build with -tags kp)\n", *mode)
		os.Exit(2)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	zw, err := newWriter(out, *level, *block)
	if err == nil {
		in := bufio.NewWriterSize(zw, 32<<10)
		if _, err = io.Copy(in, os.Stdin); err == nil {
			if err = in.Flush(); err == nil {
				if err = zw.Close(); err == nil {
					err = out.Flush()
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "layer-enc:", err)
		os.Exit(1)
	}
}
