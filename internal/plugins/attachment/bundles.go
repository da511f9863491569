package attachment

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pierrec/lz4/v4"

	"kintogo/internal/events"
)

// Bundles: what Remote Settings' build_bundles job publishes beside the
// attachments, built here by the server itself, so that a new Firefox
// profile imports its startup collections in one request and a
// collection's attachments in one more (Remote Settings' ADR 003):
//
//   - bundles/changesets.json.mozlz4: the changesets of every monitored
//     collection outside preview buckets;
//   - bundles/startup.json.mozlz4: those whose metadata flags contain
//     "startup";
//   - bundles/{bid}--{cid}.zip, for collections whose metadata has
//     attachment.bundle true: each record with an attachment as
//     {id}.meta.json, its file as {id}; none when they weigh more than
//     attachment.bundle_max_size_bytes (or the flag goes away).
//
// The changesets are the server's own public answers (Server.Get), byte
// for byte: a bundle says what the changeset endpoints said at its
// building, signatures included. Bundles are built after commits that
// touch a monitored collection (this node's or another's, through the
// engine's Feed: never in the publishing transaction), coalesced, by every
// node that writes, into the attachments' folder: nodes that share it
// write the same bytes (a bundle is a function of the data), each by an
// atomic rename. A bundle whose bytes do not change is not written again,
// so that its Last-Modified and ETag say when its content changed.

// BundlesDir is the folder of the bundles, under the attachments' base
// URL (where Firefox asks for them).
const BundlesDir = "bundles"

// DefaultBundleMaxSize is Remote Settings' BUNDLE_MAX_SIZE_BYTES: the
// attachments of a collection weighing more are not bundled.
const DefaultBundleMaxSize = 20_000_000

// bundleDelay lets the commits of one publication (and of a burst of
// them) gather before a build.
const bundleDelay = 300 * time.Millisecond

// mozLz4Magic starts Firefox's mozlz4 files, then the size of the data
// (little endian, 32 bits) and an LZ4 block of it.
var mozLz4Magic = []byte("mozLz40\x00")

// MozLz4 encodes data as Firefox's IOUtils.readUTF8(…, {decompress: true})
// reads it.
func MozLz4(data []byte) ([]byte, error) {
	if uint64(len(data)) > 1<<32-1 {
		return nil, errors.New("mozlz4: data larger than 4 GiB")
	}
	out := make([]byte, len(mozLz4Magic)+4+lz4.CompressBlockBound(len(data)))
	copy(out, mozLz4Magic)
	binary.LittleEndian.PutUint32(out[len(mozLz4Magic):], uint32(len(data)))
	n, err := lz4.CompressBlock(data, out[len(mozLz4Magic)+4:], nil)
	if err != nil {
		return nil, err
	}
	if n == 0 && len(data) > 0 {
		return nil, errors.New("mozlz4: the data did not fit its bound")
	}
	return out[:len(mozLz4Magic)+4+n], nil
}

// UnMozLz4 decodes a mozlz4 file, at most max bytes of data.
func UnMozLz4(b []byte, max int) ([]byte, error) {
	rest, ok := bytes.CutPrefix(b, mozLz4Magic)
	if !ok || len(rest) < 4 {
		return nil, errors.New("mozlz4: no mozLz40 header")
	}
	size := binary.LittleEndian.Uint32(rest)
	if uint64(size) > uint64(max) {
		return nil, fmt.Errorf("mozlz4: %d bytes of data, more than %d", size, max)
	}
	out := make([]byte, size)
	n, err := lz4.UncompressBlock(rest[4:], out)
	if err != nil {
		return nil, err
	}
	if n != int(size) {
		return nil, fmt.Errorf("mozlz4: %d bytes of data, the header says %d", n, size)
	}
	return out, nil
}

// bundler builds the bundles of one node.
type bundler struct {
	p     *plugin
	max   int64
	log   *slog.Logger
	dirty chan struct{}
	// monitored are the collections of the last build's monitor: their
	// records' changes make the next build.
	mu        sync.Mutex
	monitored map[[2]string]bool
	// zipped is, per collection, the hash of what its zip holds (or of
	// why it has none), to build a zip only when its records changed.
	zipped  map[string][32]byte
	failing bool
}

func newBundler(p *plugin, max int64) *bundler {
	return &bundler{p: p, max: max, log: p.h.Logger(), dirty: make(chan struct{}, 1),
		monitored: map[[2]string]bool{}, zipped: map[string][32]byte{}}
}

// seen is the Feed's subscriber: a batch that may change a bundle makes
// the next build.
func (b *bundler) seen(batch events.Batch) {
	for _, ev := range batch.Events {
		if ev.Everything || ev.ResourceName == "bucket" || ev.ResourceName == "collection" ||
			ev.ResourceName == "record" && b.isMonitored(ev.BucketID, ev.CollectionID) {
			select {
			case b.dirty <- struct{}{}:
			default:
			}
			return
		}
	}
}

// run builds the bundles at start, then after the changes that may
// change them, until ctx ends.
func (b *bundler) run(ctx context.Context) {
	for {
		b.build(ctx)
		select {
		case <-ctx.Done():
			return
		case <-b.dirty:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(bundleDelay):
		}
		// What came during the delay is in this build.
		select {
		case <-b.dirty:
		default:
		}
	}
}

// monitorEntry is what a build needs of a monitor entry.
type monitorEntry struct {
	Bucket       string `json:"bucket"`
	Collection   string `json:"collection"`
	LastModified int64  `json:"last_modified"`
}

// changeset is what a bundle needs of a changeset answer.
type changeset struct {
	Metadata struct {
		Bucket     string `json:"bucket"`
		ID         string `json:"id"`
		Flags      []any  `json:"flags"`
		Attachment struct {
			Bundle bool `json:"bundle"`
		} `json:"attachment"`
	} `json:"metadata"`
	Timestamp int64             `json:"timestamp"`
	Changes   []json.RawMessage `json:"changes"`
}

// build builds every bundle from the changesets served now.
func (b *bundler) build(ctx context.Context) {
	if err := b.buildOnce(ctx); err != nil && ctx.Err() == nil {
		if !b.failing {
			b.log.Warn("bundles: cannot build them; they are built again after the next change", "err", err)
		}
		b.failing = true
		return
	}
	b.failing = false
}

func (b *bundler) buildOnce(ctx context.Context) error {
	status, body := b.p.h.Get(ctx, "/v1/buckets/monitor/collections/changes/changeset?_expected=0")
	if status == 404 {
		return nil // no changes feed here: nothing to bundle
	}
	if status != 200 {
		return fmt.Errorf("the monitor answered %d", status)
	}
	var monitor struct {
		Changes []monitorEntry `json:"changes"`
	}
	if err := json.Unmarshal(body, &monitor); err != nil {
		return fmt.Errorf("the monitor: %w", err)
	}
	// In the monitor's order, which does not depend on the node.
	slices.SortFunc(monitor.Changes, func(a, c monitorEntry) int {
		return cmp.Or(strings.Compare(a.Bucket, c.Bucket), strings.Compare(a.Collection, c.Collection))
	})
	monitored := map[[2]string]bool{}
	var all, startup [][]byte
	zips := map[string]bool{}
	for _, e := range monitor.Changes {
		monitored[[2]string{e.Bucket, e.Collection}] = true
		status, raw := b.p.h.Get(ctx, "/v1/buckets/"+url.PathEscape(e.Bucket)+"/collections/"+url.PathEscape(e.Collection)+
			"/changeset?_expected="+strconv.FormatInt(e.LastModified, 10))
		if status != 200 {
			continue // not public: no client reads it anonymously either
		}
		var cs changeset
		if err := json.Unmarshal(raw, &cs); err != nil {
			return fmt.Errorf("the changeset of %s/%s: %w", e.Bucket, e.Collection, err)
		}
		if !strings.Contains(cs.Metadata.Bucket, "preview") {
			all = append(all, raw)
			if slices.Contains(cs.Metadata.Flags, any("startup")) {
				startup = append(startup, raw)
			}
		}
		if cs.Metadata.Attachment.Bundle {
			name, ok, err := b.zip(e.Bucket, e.Collection, &cs)
			if err != nil {
				return err
			}
			if ok {
				zips[name] = true
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	b.mu.Lock()
	b.monitored = monitored
	b.mu.Unlock()
	for name, changesets := range map[string][][]byte{"changesets.json.mozlz4": all, "startup.json.mozlz4": startup} {
		data, err := MozLz4(jsonArray(changesets))
		if err != nil {
			return err
		}
		if err := b.write(name, data); err != nil {
			return err
		}
	}
	// The zips of collections that have none any more.
	entries, err := fs.ReadDir(b.p.files.FS(), BundlesDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".zip") && !zips[e.Name()] {
			if err := b.p.files.Delete(path.Join(BundlesDir, e.Name())); err != nil {
				return err
			}
			delete(b.zipped, e.Name())
		}
	}
	return nil
}

// isMonitored reports whether the last build's monitor listed bid/cid.
func (b *bundler) isMonitored(bid, cid string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.monitored[[2]string{bid, cid}]
}

// jsonArray is the JSON array of JSON values.
func jsonArray(values [][]byte) []byte {
	return append(append([]byte("["), bytes.Join(values, []byte(", "))...), ']')
}

// zip makes the zip of a collection's attachments; ok is false when it
// has none (no attachment, or too many bytes of them).
func (b *bundler) zip(bid, cid string, cs *changeset) (name string, ok bool, err error) {
	name = bid + "--" + cid + ".zip"
	type entry struct {
		id, file string
		size     int64
		meta     json.RawMessage
	}
	var entries []entry
	var total int64
	h := sha256.New()
	for _, raw := range cs.Changes {
		var r struct {
			ID         string `json:"id"`
			Attachment *struct {
				Location string `json:"location"`
				Size     int64  `json:"size"`
			} `json:"attachment"`
		}
		if json.Unmarshal(raw, &r) != nil || r.Attachment == nil || r.ID == "" {
			continue
		}
		file, known := b.p.st.nameOf(r.Attachment.Location)
		if !known {
			continue
		}
		entries = append(entries, entry{id: r.ID, file: file, size: r.Attachment.Size, meta: raw})
		total += max(r.Attachment.Size, 0)
		h.Write(raw)
		h.Write([]byte{0})
	}
	// Remote Settings skips a bundle whose attachments weigh more than
	// the limit by their declared sizes; kintogo also removes it, and
	// bounds what it reads by the files' real sizes.
	if len(entries) == 0 || total > b.max {
		return name, false, nil
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if b.zipped[name] == sum {
		return name, true, nil
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// Fixed times: the same records give the same bytes on every node.
	modified := time.UnixMilli(cs.Timestamp).UTC()
	budget := b.max
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.id + ".meta.json", Method: zip.Deflate, Modified: modified})
		if err != nil {
			return name, false, err
		}
		if _, err := w.Write(e.meta); err != nil {
			return name, false, err
		}
	}
	for _, e := range entries {
		f, err := b.p.files.FS().Open(e.file)
		if err != nil {
			// A file missing from the store: the zip cannot be whole.
			b.log.Warn("bundles: an attachment is missing; its collection is not bundled", "collection", bid+"/"+cid, "record", e.id, "file", e.file)
			return name, false, nil
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.id, Method: zip.Deflate, Modified: modified})
		if err == nil {
			var n int64
			n, err = io.Copy(w, io.LimitReader(f, budget+1))
			budget -= n
		}
		f.Close()
		if err != nil {
			return name, false, err
		}
		if budget < 0 {
			return name, false, nil
		}
	}
	if err := zw.Close(); err != nil {
		return name, false, err
	}
	if err := b.write(name, buf.Bytes()); err != nil {
		return name, false, err
	}
	b.zipped[name] = sum
	return name, true, nil
}

// write puts a bundle in place, unless it already holds these bytes.
func (b *bundler) write(name string, data []byte) error {
	full := path.Join(BundlesDir, name)
	if old, err := fs.ReadFile(b.p.files.FS(), full); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, _, _, err := b.p.files.Receive(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	if err := b.p.files.Replace(tmp, full); err != nil {
		b.p.files.Discard(tmp)
		return err
	}
	return nil
}
