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
	"strings"
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
	show := fs.Bool("show", false, "print the root's hash (and the leaf's validity) of the chain already in DIR, writing nothing")
	return func(c *ctx, args []string) error {
		if len(args) != 1 {
			return errors.New("signer-keys takes one argument: the directory to write to")
		}
		dir := args[0]
		if *show {
			return showChain(c, filepath.Join(dir, "chain.pem"))
		}
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
				return fmt.Errorf("%s already exists (kintogo signer-keys --show %s prints its chain's root hash)", filepath.Join(dir, f.name), dir)
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
		ignored, err := ignoreSecrets(dir, "signer-key.pem", "intermediate-key.pem")
		if err != nil {
			return err
		}
		abs, _ := filepath.Abs(dir)
		fmt.Fprint(c.out, ignored)
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

Clients verify with the root's hash (kintogo signer-keys --show %s prints it again):
  %s
`, abs, ch.Leaf.Subject.CommonName, ch.Leaf.NotAfter.Format(time.RFC3339),
			filepath.Join(abs, "signer-key.pem"), filepath.Join(abs, "chain.pem"), dir, contentsig.RootHash(ch.Root))
		return nil
	}
}

// showChain prints the root's hash and the leaf's validity of a chain.
func showChain(c *ctx, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var certs []*x509.Certificate
	for rest := raw; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return fmt.Errorf("%s: no certificate", path)
	}
	leaf, root := certs[0], certs[len(certs)-1]
	fmt.Fprintf(c.out, "%s: the leaf (%s) is valid until %s.\nClients verify with the root's hash:\n  %s\n",
		path, leaf.Subject.CommonName, leaf.NotAfter.Format(time.RFC3339), contentsig.RootHash(root))
	return nil
}

// ignoreSecrets makes git ignore secret files written in dir: it adds
// them to dir's .gitignore (made when missing), and says so.
func ignoreSecrets(dir string, names ...string) (string, error) {
	path := filepath.Join(dir, ".gitignore")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	var add []string
	for _, n := range names {
		if !lines[n] && !lines["/"+n] {
			add = append(add, "/"+n)
		}
	}
	if len(add) == 0 {
		return "", nil
	}
	text := string(old)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += "# secrets written by kintogo: never commit them\n" + strings.Join(add, "\n") + "\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", err
	}
	return fmt.Sprintf("Added %s to %s: git will not show these secrets.\n", strings.Join(names, ", "), path), nil
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
