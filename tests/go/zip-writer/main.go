// zip-writer OUT FILE... writes FILEs into the zip OUT with Go's archive/zip, as Go tools
// write archives (flate level 5); the archive tests check booster rebuilds it exactly.
package main

import (
	"archive/zip"
	"os"
)

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	z := zip.NewWriter(f)
	for _, p := range os.Args[2:] {
		b, err := os.ReadFile(p)
		if err != nil {
			panic(err)
		}
		w, err := z.Create(p)
		if err != nil {
			panic(err)
		}
		if _, err := w.Write(b); err != nil {
			panic(err)
		}
	}
	if err := z.Close(); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
}
