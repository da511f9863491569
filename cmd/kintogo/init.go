package main

import (
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"kintogo/internal/app"
)

//go:embed kinto.ini.tmpl
var iniTemplate string

func initFlags(fs *flag.FlagSet) func(*ctx, []string) error {
	backend := fs.String("backend", "sqlite", "storage backend: sqlite, postgresql or memory")
	host := fs.String("host", "127.0.0.1", "address the server listens on")
	storageURL := fs.String("storage-url", "", "SQLite file or PostgreSQL URL (default: kintogo.db, or postgresql://postgres:postgres@localhost/postgres)")
	return func(c *ctx, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("init takes no arguments (got %q)", args)
		}
		path := c.ini
		if path == "" {
			path = defaultINI
		}
		url := *storageURL
		switch *backend {
		case "sqlite":
			if url == "" {
				url = "kintogo.db"
			}
		case "postgresql":
			if url == "" {
				url = "postgresql://postgres:postgres@localhost/postgres"
			}
		case "memory":
		default:
			return fmt.Errorf("--backend: %q is not sqlite, postgresql or memory", *backend)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		// O_EXCL: an existing file is never replaced, even by a race.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists", path)
		}
		if err != nil {
			return err
		}
		err = template.Must(template.New("ini").Parse(iniTemplate)).Execute(f, map[string]string{
			"Created": time.Now().Format(time.RFC1123Z), "Version": app.Version,
			"Host": *host, "Port": "8888", "Backend": *backend, "StorageURL": url,
			"Secret": secret(), "BucketSecret": secret(),
		})
		if e := f.Close(); err == nil {
			err = e
		}
		if err != nil {
			os.Remove(path)
			return err
		}
		ignored, err := ignoreSecrets(filepath.Dir(path), filepath.Base(path))
		if err != nil {
			return err
		}
		fmt.Fprint(c.out, ignored)
		fmt.Fprintf(c.out, "Created %s (storage: %s; its HMAC secrets make it secret: readable by you only). Next:\n\n", path, *backend)
		iniFlag := ""
		if path != defaultINI {
			iniFlag = " --ini " + path
		}
		if *backend == "postgresql" {
			fmt.Fprintf(c.out, "    kintogo migrate%s\n", iniFlag)
		}
		if *backend != "memory" {
			fmt.Fprintf(c.out, "    kintogo create-user%s --username admin\n", iniFlag)
		}
		fmt.Fprintf(c.out, "    kintogo start%s\n", iniFlag)
		return nil
	}
}

// secret is 32 random bytes in hex, as Kinto's init writes.
func secret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
