package attachment_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kintogo/internal/storage/storetest"
)

// Issue 24's findings on attachments, over HTTP on every backend.

// A Range header of tens of thousands of ranges costs what a plain
// request costs: beyond a handful the ranges are ignored (as nginx's
// max_ranges does), and overlapping ones are merged.
func TestRangesAreBounded(t *testing.T) {
	s := newServer(t, storetest.Memory, nil)
	content := strings.Repeat("0123456789", 20000) // 200 kB
	a := s.upload("r1", 201, part{name: "attachment", filename: "big.txt", content: content})
	loc := a.body["location"].(string)
	var ranges []string
	for i := 0; i < 80000; i++ {
		ranges = append(ranges, fmt.Sprintf("%d-%d", i*2, i*2))
	}
	start := time.Now()
	r := s.do("GET", "/attachments/"+loc, "", nil, "Range", "bytes="+strings.Join(ranges, ","))
	if r.code != 200 || len(r.raw) != len(content) {
		t.Errorf("80,000 ranges: %d, %d bytes; want the whole file", r.code, len(r.raw))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("80,000 ranges took %v", d)
	}
	// Overlapping and adjacent ranges are one.
	r = s.do("GET", "/attachments/"+loc, "", nil, "Range", "bytes=0-3,2-5,6-9,4-7")
	if r.code != 206 || r.raw != "0123456789" {
		t.Errorf("overlapping ranges: %d %q", r.code, r.raw)
	}
	// A few distinct ranges still make a multipart answer.
	r = s.do("GET", "/attachments/"+loc, "", nil, "Range", "bytes=0-1,10-11,20-21")
	if r.code != 206 || !strings.HasPrefix(r.header.Get("Content-Type"), "multipart/byteranges") {
		t.Errorf("three ranges: %d %s", r.code, r.header.Get("Content-Type"))
	}
}

// An upload repeating its data field is refused, not decoded again and
// again; a name the file system cannot hold is the client's 400.
func TestUploadFieldsOnceAndNames(t *testing.T) {
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		s := newServer(t, open, nil)
		parts := []part{{name: "attachment", filename: "a.txt", content: "x"}}
		for i := 0; i < 3; i++ {
			parts = append(parts, part{name: "data", content: `{"author": "me"}`})
		}
		if a := s.upload("r1", 0, parts...); a.code != 400 || !strings.Contains(a.raw, "only one 'data' field") {
			t.Errorf("repeated data fields: %d %s", a.code, a.raw)
		}
		kept := newServer(t, open, map[string]string{"attachment.randomize": "false"})
		long := strings.Repeat("n", 300) + ".txt"
		if a := kept.upload("r2", 0, part{name: "attachment", filename: long, content: "x"}); a.code != 400 || !strings.Contains(a.raw, "too long") {
			t.Errorf("a file name longer than the file system allows: %d %s", a.code, a.raw)
		}
		for _, dir := range []string{s.dir, kept.dir} {
			if entries, _ := os.ReadDir(filepath.Join(dir, ".tmp")); len(entries) != 0 {
				t.Errorf("received files left behind: %v", entries)
			}
		}
	})
}

// Concurrent uploads to one record leave exactly one file, the one the
// record names: none is lost track of (on PostgreSQL they run in
// parallel).
func TestConcurrentUploadsToOneRecord(t *testing.T) {
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		s := newServer(t, open, nil)
		s.upload("r1", 201)
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.upload("r1", 0, part{name: "attachment", filename: fmt.Sprintf("f%d.txt", i), content: "x"})
			}()
		}
		wg.Wait()
		named := s.json("GET", "/v1/buckets/fennec/collections/fonts/records/r1", "", 200).body["data"].(map[string]any)["attachment"].(map[string]any)["location"].(string)
		var files []string
		filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.Contains(p, string(filepath.Separator)+".") {
				rel, _ := filepath.Rel(s.dir, p)
				files = append(files, filepath.ToSlash(rel))
			}
			return nil
		})
		deadline := time.Now().Add(5 * time.Second)
		for len(files) != 1 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			files = files[:0]
			filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && !strings.Contains(p, string(filepath.Separator)+".") {
					rel, _ := filepath.Rel(s.dir, p)
					files = append(files, filepath.ToSlash(rel))
				}
				return nil
			})
		}
		if len(files) != 1 || files[0] != named {
			t.Errorf("files %v, the record names %s", files, named)
		}
	})
}

// Attachment writes answer with the record's new timestamp, in ETag and
// Last-Modified, as Kinto's do.
func TestAttachmentWritesCarryTheTimestamp(t *testing.T) {
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		s := newServer(t, open, nil)
		writes := []func() answer{
			func() answer { return s.upload("r1", 201) },
			func() answer {
				return s.do("DELETE", "/v1/buckets/fennec/collections/fonts/records/r1/attachment", "", nil)
			},
		}
		for _, write := range writes {
			a := write()
			rec := s.json("GET", "/v1/buckets/fennec/collections/fonts/records/r1", "", 200)
			ts := rec.header.Get("ETag")
			if a.header.Get("ETag") != ts || a.header.Get("Last-Modified") == "" {
				t.Errorf("%d: ETag %q, Last-Modified %q; the record's ETag is %s", a.code, a.header.Get("ETag"), a.header.Get("Last-Modified"), ts)
			}
		}
	})
}
