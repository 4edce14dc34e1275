// A registry that serves the OCI 1.1 referrers API, for booster's referrer tests:
// go-containerregistry's registry (Debian's golang-github-google-go-containerregistry-dev)
// with its referrers support turned on, which `crane registry serve` leaves off. Debian's
// docker-registry (distribution 2.8) has no referrers API, and no registry in Debian's
// archive serves one. Listens on the address given as the only argument; blobs on disk
// under the directory given second.
package main

import (
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: referrers-registry ADDR BLOBDIR")
	}
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	h := registry.New(
		registry.WithReferrersSupport(true),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(os.Args[2])),
		registry.Logger(log.New(os.Stderr, "", log.LstdFlags)),
	)
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(s.Serve(l))
}
