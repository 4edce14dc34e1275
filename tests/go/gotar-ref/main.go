// gotar-ref: re-writes a tar from stdin as a gzip layer the way moby's pkg/archive does:
// archive/tar writing straight into compress/gzip (DefaultCompression, zero header), file
// data copied through a 32 KiB bufio.Writer wrapped around the tar writer. The gzip
// writer therefore sees moby's write boundaries: headers, 32 KiB data pieces, the end of
// each file's data, padding. Stdlib only: GO111MODULE=off go build.
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"io"
	"os"
)

func main() {
	out := bufio.NewWriterSize(os.Stdout, 32*1024)
	zw := gzip.NewWriter(out)
	tw := tar.NewWriter(zw)
	buf := bufio.NewWriterSize(nil, 32*1024)
	tr := tar.NewReader(bufio.NewReaderSize(os.Stdin, 1<<20))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			buf.Reset(tw)
			if _, err := io.Copy(buf, tr); err != nil {
				panic(err)
			}
			if err := buf.Flush(); err != nil {
				panic(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	if err := out.Flush(); err != nil {
		panic(err)
	}
}
