// Command autograph runs kintogo's Autograph-compatible test server
// (internal/contentsig/autographtest) for the signer's scripts: the
// reference server and kintogo sign through it alike.
//
//	go run ./clients/signer/autograph -listen 127.0.0.1:8000 -hawk-id alice -hawk-key fs5wgcer9qj819kfptdlp8gm227ewxnzvsuj9ztycsx08hfhzu [-fixed SIG] [-keys DIR]
//
// With -keys (a directory made by `kintogo signer-keys`) it signs with
// signer-key.pem and serves chain.pem; without, with a fresh chain. With
// -fixed it answers that signature to every request (recordings).
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"kintogo/internal/contentsig"
	"kintogo/internal/contentsig/autographtest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	id := flag.String("hawk-id", "alice", "Hawk id")
	key := flag.String("hawk-key", "fs5wgcer9qj819kfptdlp8gm227ewxnzvsuj9ztycsx08hfhzu", "Hawk key")
	fixed := flag.String("fixed", "", "answer this signature to every request")
	keys := flag.String("keys", "", "directory of signer-key.pem and chain.pem (default: a fresh chain)")
	flag.Parse()
	s := &autographtest.Server{Credentials: map[string]string{*id: *key}, Fixed: *fixed,
		X5U: "http://" + *listen + "/x5u/chain.pem"}
	if *keys != "" {
		k, err := contentsig.LoadPrivateKey(filepath.Join(*keys, "signer-key.pem"))
		if err != nil {
			log.Fatal(err)
		}
		chain, err := os.ReadFile(filepath.Join(*keys, "chain.pem"))
		if err != nil {
			log.Fatal(err)
		}
		s.Key, s.Chain = k, chain
	} else {
		ch, err := contentsig.NewChain(contentsig.DefaultSubject, time.Now(), 30*24*time.Hour)
		if err != nil {
			log.Fatal(err)
		}
		s.Key, s.Chain = ch.LeafKey, ch.PEM()
	}
	log.Printf("autograph test server on http://%s", *listen)
	log.Fatal(http.ListenAndServe(*listen, s))
}
