package main

import (
	"context"
	"crypto/x509"
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
// certificate chain for the signer's local backend: a whole new chain, or
// only the leaf under an existing issuer (an organization's
// content-signing intermediate, or the development one Firefox trusts).
func signerKeysFlags(fs *flag.FlagSet) func(*ctx, []string) error {
	subject := fs.String("subject", contentsig.DefaultSubject, "the leaf certificate's name (clients check it)")
	days := fs.Int("days", 90, "validity of the leaf certificate, in days (a new intermediate lasts twice as long, a new root three times; under --issuer-certificate, at most the issuer's)")
	issuerCert := fs.String("issuer-certificate", "", "issue only the leaf, under this intermediate: its certificate (PEM), optionally followed by its issuers up to the root")
	issuerKey := fs.String("issuer-key", "", "the private key of --issuer-certificate (PEM)")
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
		if (*issuerCert == "") != (*issuerKey == "") {
			return errors.New("--issuer-certificate and --issuer-key go together: the issuer's certificate and its private key")
		}
		now, validity := time.Now(), time.Duration(*days)*24*time.Hour
		var ch *contentsig.Chain
		var files []secretFile
		if *issuerCert != "" {
			certPEM, err := os.ReadFile(*issuerCert)
			if err != nil {
				return fmt.Errorf("--issuer-certificate: %w", err)
			}
			keyPEM, err := os.ReadFile(*issuerKey)
			if err != nil {
				return fmt.Errorf("--issuer-key: %w", err)
			}
			if ch, err = contentsig.Issuer(certPEM, keyPEM, now); err != nil {
				return fmt.Errorf("%s, %s: %w", *issuerCert, *issuerKey, err)
			}
			if err := ch.Permits(*subject); err != nil {
				return fmt.Errorf("--subject: %w", err)
			}
			key, err := contentsig.GenerateKey()
			if err != nil {
				return err
			}
			if err := ch.NewLeaf(*subject, key, now, validity); err != nil {
				return err
			}
		} else {
			var err error
			if ch, err = contentsig.NewChain(*subject, now, validity); err != nil {
				return err
			}
			interKey, err := contentsig.EncodeSigner(ch.IntermediateKey)
			if err != nil {
				return err
			}
			files = append(files,
				secretFile{"issuer.pem", contentsig.EncodeCertificates(append([]*x509.Certificate{ch.Intermediate}, ch.Upper...)...), 0o644},
				secretFile{"intermediate-key.pem", interKey, 0o600})
		}
		leafKey, err := contentsig.EncodePrivateKey(ch.LeafKey)
		if err != nil {
			return err
		}
		pub, err := contentsig.EncodePublicKey(&ch.LeafKey.PublicKey)
		if err != nil {
			return err
		}
		files = append([]secretFile{
			{"signer-key.pem", leafKey, 0o600},
			{"signer-public.pem", pub, 0o644},
			{"chain.pem", ch.PEM(), 0o644},
		}, files...)
		root := ch.Root()
		if root != nil {
			files = append(files, secretFile{"root.pem", contentsig.EncodeCertificates(root), 0o644})
		}
		if err := writeNew(dir, files); err != nil {
			return err
		}
		secrets := []string{"signer-key.pem"}
		if *issuerCert == "" {
			secrets = append(secrets, "intermediate-key.pem")
		}
		ignored, err := ignoreSecrets(dir, secrets...)
		if err != nil {
			return err
		}
		abs, _ := filepath.Abs(dir)
		fmt.Fprint(c.out, ignored)
		fmt.Fprintf(c.out, "Wrote the signer's key and its certificate chain in %s:\n", abs)
		fmt.Fprintln(c.out, "  signer-key.pem        the leaf's private key (P-384): keep it secret")
		fmt.Fprintln(c.out, "  chain.pem             leaf, intermediate, root: the x5u kintogo serves")
		if root != nil {
			fmt.Fprintln(c.out, "  root.pem              the root, for clients")
		}
		if *issuerCert == "" {
			fmt.Fprintln(c.out, "  issuer.pem            intermediate and root: with intermediate-key.pem, issues the next leaf")
			fmt.Fprintln(c.out, "  intermediate-key.pem  keep it offline (--issuer-certificate issuer.pem --issuer-key intermediate-key.pem)")
		}
		until := ch.Leaf.NotAfter.Format(time.RFC3339)
		if ch.Leaf.NotAfter.Equal(ch.Intermediate.NotAfter) {
			until += ", when its issuer expires"
		}
		fmt.Fprintf(c.out, `The leaf (%s), issued by %q, is valid until %s.

Settings (kinto.ini):
  kinto.signer.ecdsa.private_key = %s
  kinto.signer.ecdsa.certificate_chain = %s
  kinto.http_host = <the public host of the server, for the x5u URL>

`, ch.Leaf.Subject.CommonName, ch.Intermediate.Subject.CommonName, until,
			filepath.Join(abs, "signer-key.pem"), filepath.Join(abs, "chain.pem"))
		printRoot(c, root, dir)
		return nil
	}
}

// printRoot says what clients verify the chain with: the root's hash, as
// the last line.
func printRoot(c *ctx, root *x509.Certificate, dir string) {
	if root == nil {
		fmt.Fprintln(c.out, "The chain ends below its root: clients verify it with the root they trust.")
		return
	}
	if contentsig.RootHash(root) == contentsig.FirefoxLocalRootHash {
		fmt.Fprintln(c.out, "Firefox trusts this root for servers on localhost or 127.0.0.1 (with MOZ_REMOTE_SETTINGS_DEVTOOLS=1; see README, Firefox).")
	}
	fmt.Fprintf(c.out, "Clients verify with the root's hash (kintogo signer-keys --show %s prints it again):\n  %s\n", dir, contentsig.RootHash(root))
}

// secretFile is a file signer-keys writes.
type secretFile struct {
	name string
	data []byte
	mode os.FileMode
}

// writeNew writes files in dir, none of which may exist: keys are never
// replaced.
func writeNew(dir string, files []secretFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil {
			return fmt.Errorf("%s already exists (kintogo signer-keys --show %s prints its chain's root hash)", filepath.Join(dir, f.name), dir)
		}
	}
	for _, f := range files {
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
	return nil
}

// showChain prints the root's hash and the leaf's validity of a chain.
func showChain(c *ctx, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	certs, err := contentsig.ParseCertificates(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	leaf, root := certs[0], certs[len(certs)-1]
	if root.CheckSignatureFrom(root) != nil {
		root = nil
	}
	fmt.Fprintf(c.out, "%s: the leaf (%s) is valid until %s.\n", path, leaf.Subject.CommonName, leaf.NotAfter.Format(time.RFC3339))
	printRoot(c, root, filepath.Dir(path))
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
