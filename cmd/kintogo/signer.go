package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"kintogo/internal/app"
	"kintogo/internal/contentsig"
	"kintogo/internal/plugins/signer"
)

// signerKeysFlags: `kintogo signer-keys DIR` makes a key and its
// certificate chain for the signer's local backend.
func signerKeysFlags(fs *flag.FlagSet) func(*ctx, []string) error {
	subject := fs.String("subject", contentsig.DefaultSubject, "the leaf certificate's name (clients check it)")
	days := fs.Int("days", 90, "validity of the leaf certificate, in days (the intermediate lasts twice as long, the root three times)")
	return func(c *ctx, args []string) error {
		if len(args) != 1 {
			return errors.New("signer-keys takes one argument: the directory to write to")
		}
		dir := args[0]
		if *days <= 0 {
			return fmt.Errorf("--days: %d is not a positive number of days", *days)
		}
		ch, err := contentsig.NewChain(*subject, time.Now(), time.Duration(*days)*24*time.Hour)
		if err != nil {
			return err
		}
		leafKey, err := contentsig.EncodePrivateKey(ch.LeafKey)
		if err != nil {
			return err
		}
		interKey, err := contentsig.EncodePrivateKey(ch.IntermediateKey)
		if err != nil {
			return err
		}
		pub, err := contentsig.EncodePublicKey(&ch.LeafKey.PublicKey)
		if err != nil {
			return err
		}
		root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ch.Root.Raw})
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		files := []struct {
			name string
			data []byte
			mode os.FileMode
		}{
			{"signer-key.pem", leafKey, 0o600},
			{"signer-public.pem", pub, 0o644},
			{"chain.pem", ch.PEM(), 0o644},
			{"root.pem", root, 0o644},
			{"intermediate-key.pem", interKey, 0o600},
		}
		for _, f := range files {
			// O_EXCL: keys are never replaced.
			fh, err := os.OpenFile(filepath.Join(dir, f.name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s already exists", filepath.Join(dir, f.name))
			}
			if err != nil {
				return err
			}
			_, err = fh.Write(f.data)
			if cerr := fh.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
		abs, _ := filepath.Abs(dir)
		fmt.Fprintf(c.out, `Wrote the signer's key and its certificate chain in %s:
  signer-key.pem        the leaf's private key (P-384): keep it secret
  chain.pem             leaf, intermediate, root: the x5u kintogo serves
  root.pem              the root, for clients
  intermediate-key.pem  issues the next leaf: keep it offline
The leaf (%s) is valid until %s.

Settings (kinto.ini):
  kinto.signer.ecdsa.private_key = %s
  kinto.signer.ecdsa.certificate_chain = %s
  kinto.http_host = <the public host of the server, for the x5u URL>

Clients verify with the root's hash:
  %s
`, abs, ch.Leaf.Subject.CommonName, ch.Leaf.NotAfter.Format(time.RFC3339),
			filepath.Join(abs, "signer-key.pem"), filepath.Join(abs, "chain.pem"), contentsig.RootHash(ch.Root))
		return nil
	}
}

// resignFlags: `kintogo resign` signs again the previews and destinations
// whose signatures were made with a certificate chain that is not the
// current one or that expires soon.
func resignFlags(fs *flag.FlagSet) func(*ctx, []string) error {
	within := fs.Duration("within", 30*24*time.Hour, "re-sign signatures whose chain expires within this duration")
	all := fs.Bool("all", false, "re-sign every signed collection")
	return func(c *ctx, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("resign takes no arguments (got %q)", args)
		}
		settings, err := c.settings()
		if err != nil {
			return err
		}
		ctx := context.Background()
		a, err := app.OpenAdmin(ctx, settings, c.logger(settings))
		if err != nil {
			return err
		}
		n, err := signer.Resign(ctx, a.Server, signer.ResignOptions{
			All: *all, Within: *within, Now: time.Now(), Fetch: fetchChain,
		}, func(uri, why string) { fmt.Fprintf(c.out, "re-signed %s (%s)\n", uri, why) })
		if e := a.Close(); err == nil {
			err = e
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%d collections re-signed\n", n)
		return nil
	}
}

// fetchChain reads the certificates of an x5u URL.
func fetchChain(ctx context.Context, url string) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return contentsig.ParseCertificates(data)
}
