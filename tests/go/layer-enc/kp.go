//go:build kp

package main

import (
	"io"
	"runtime"

	kpgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// zstdWriter makes a writer as containers/image does: NewWriter alone for level 0 (its
// default), else WithEncoderLevel(EncoderLevelFromZstd(level)).
func zstdWriter(w io.Writer, level int) (*zstd.Encoder, error) {
	if level == 0 {
		return zstd.NewWriter(w)
	}
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
}

// peek8 feeds an encoder as containers/image's copy pipeline feeds it when it compresses
// an uncompressed layer: the 8 bytes its format sniffing read, with Write, then the rest
// through ReadFrom.
type peek8 struct {
	e   *zstd.Encoder
	buf []byte
}

func (p *peek8) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	return len(b), nil
}

type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(b []byte) (int, error) { return o.r.Read(b) }

func (p *peek8) Close() error {
	n := 8
	if len(p.buf) < n {
		n = len(p.buf)
	}
	if _, err := p.e.Write(p.buf[:n]); err != nil {
		return err
	}
	if _, err := p.e.ReadFrom(onlyReader{&sliceReader{p.buf[n:]}}); err != nil {
		return err
	}
	return p.e.Close()
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

func init() {
	modes["kpgzip"] = func(w io.Writer, level, _ int) (io.WriteCloser, error) {
		return kpgzip.NewWriterLevel(w, level)
	}
	modes["kpzstd"] = func(w io.Writer, level, _ int) (io.WriteCloser, error) {
		return zstdWriter(w, level)
	}
	modes["kpzstd-peek8"] = func(w io.Writer, level, _ int) (io.WriteCloser, error) {
		e, err := zstdWriter(w, level)
		return &peek8{e: e}, err
	}
	modes["pgzip"] = func(w io.Writer, level, block int) (io.WriteCloser, error) {
		zw, err := pgzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, err
		}
		return zw, zw.SetConcurrency(block, runtime.GOMAXPROCS(0))
	}
}
