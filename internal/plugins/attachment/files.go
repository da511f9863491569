package attachment

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Files is where attachments are kept: names are slash-separated paths
// relative to the store, never leaving it.
type Files interface {
	// Receive copies r into a new temporary file, at most limit bytes
	// (more is ErrTooLarge), and returns it with its size and sha256.
	Receive(r io.Reader, limit int64) (tmp string, size int64, hash string, err error)
	// Place moves a received file to name, or to name-1, name-2... when
	// taken, and returns the name it got; the file is durable then.
	Place(tmp, name string) (string, error)
	// Replace moves a received file to name, replacing what name held
	// at once (readers see the old file or the new one); durable then.
	Replace(tmp, name string) error
	// Discard removes a received file that was not placed.
	Discard(tmp string)
	// Delete removes a file; a missing file is no error.
	Delete(name string) error
	// FS is the files to serve, without the store's own (hidden) ones.
	FS() fs.FS
}

// ErrTooLarge is returned by Receive beyond its limit.
var ErrTooLarge = errors.New("file too large")

// localFiles keeps attachments in a directory. Files are received in its
// .tmp folder and linked into place, so that no name ever designates a
// partly written file; every access goes through an os.Root, which
// refuses paths (and symbolic links) that leave the directory.
type localFiles struct {
	root *os.Root
	dir  string
}

const tmpDir = ".tmp"

func openLocal(dir string) (*localFiles, error) {
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), 0o755); err != nil {
		return nil, fmt.Errorf("attachment.base_path: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("attachment.base_path: %w", err)
	}
	// What a crash left half received.
	if entries, err := os.ReadDir(filepath.Join(dir, tmpDir)); err == nil {
		for _, e := range entries {
			root.Remove(path.Join(tmpDir, e.Name()))
		}
	}
	return &localFiles{root: root, dir: dir}, nil
}

func (l *localFiles) Receive(r io.Reader, limit int64) (string, int64, string, error) {
	f, err := os.CreateTemp(filepath.Join(l.dir, tmpDir), "upload-*")
	if err != nil {
		return "", 0, "", err
	}
	tmp := path.Join(tmpDir, filepath.Base(f.Name()))
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = ErrTooLarge
	}
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		l.Discard(tmp)
		return "", 0, "", err
	}
	return tmp, n, hex.EncodeToString(h.Sum(nil)), nil
}

func (l *localFiles) Place(tmp, name string) (string, error) {
	if !fs.ValidPath(name) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("invalid attachment name %q", name)
	}
	if dir := path.Dir(name); dir != "." {
		if err := l.root.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
	}
	ext := extension(path.Base(name))
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 1000; i++ {
		candidate := name
		if i > 0 {
			candidate = fmt.Sprintf("%s-%d%s", stem, i, ext)
		}
		// A hard link never replaces an existing file.
		err := l.root.Link(tmp, candidate)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		l.root.Remove(tmp)
		l.syncDir(path.Dir(candidate))
		return candidate, nil
	}
	return "", fmt.Errorf("no free name for %q", name)
}

func (l *localFiles) Replace(tmp, name string) error {
	if !fs.ValidPath(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("invalid attachment name %q", name)
	}
	if dir := path.Dir(name); dir != "." {
		if err := l.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := l.root.Rename(tmp, name); err != nil {
		return err
	}
	l.syncDir(path.Dir(name))
	return nil
}

// syncDir makes a directory's entries durable.
func (l *localFiles) syncDir(dir string) {
	if d, err := l.root.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func (l *localFiles) Discard(tmp string) { l.root.Remove(tmp) }

func (l *localFiles) Delete(name string) error {
	err := l.root.Remove(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (l *localFiles) FS() fs.FS { return visible{l.root.FS()} }

// visible hides the names with a segment starting with "." (the received
// files in .tmp).
type visible struct{ fs.FS }

func (v visible) Open(name string) (fs.File, error) {
	if strings.HasPrefix(name, ".") || strings.Contains(name, "/.") {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return v.FS.Open(name)
}
