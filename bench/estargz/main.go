// Command estargz writes a tar from stdin as an eStargz layer on stdout, as
// stargz-snapshotter's estargz.Build does for `ctr-remote image optimize` and BuildKit's
// compression=estargz (gzip members per file chunk, a TOC member and a footer). Built in
// GOPATH mode against Debian's golang-github-containerd-stargz-snapshotter-dev
// (bench/estargz.sh). The TOC digest goes to stderr.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/containerd/stargz-snapshotter/estargz"
)

func main() {
	tmp, err := os.CreateTemp("", "estargz-in")
	if err != nil {
		panic(err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, os.Stdin)
	if err != nil {
		panic(err)
	}
	blob, err := estargz.Build(io.NewSectionReader(tmp, 0, n))
	if err != nil {
		panic(err)
	}
	defer blob.Close()
	if _, err := io.Copy(os.Stdout, blob); err != nil {
		panic(err)
	}
	fmt.Fprintln(os.Stderr, "toc", blob.TOCDigest())
}
