package contentsig

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"
)

// TestCanonicalVectors checks Canonical byte for byte against
// canonicaljson-rs on random values (clients/canonicaljson/vectors.py):
// the committed vectors, and those of KINTOGO_CANONICAL_VECTORS (a fresh
// seed in each run of scripts/clients.sh).
func TestCanonicalVectors(t *testing.T) {
	files := []string{"testdata/canonicaljson-rs.jsonl.gz"}
	if extra := os.Getenv("KINTOGO_CANONICAL_VECTORS"); extra != "" {
		files = append(files, extra)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var r io.Reader = f
		if bytes.HasSuffix([]byte(name), []byte(".gz")) {
			if r, err = gzip.NewReader(f); err != nil {
				t.Fatal(err)
			}
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<24)
		cases, refused := 0, 0
		for sc.Scan() {
			var vec struct {
				In    string
				Out   string
				Error bool
			}
			if err := json.Unmarshal(sc.Bytes(), &vec); err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader([]byte(vec.In)))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s: %v", vec.In, err)
			}
			got, err := Canonical(nil, v)
			cases++
			switch {
			case vec.Error:
				refused++
				if !errors.Is(err, ErrNotCanonical) {
					t.Errorf("%s: canonicaljson-rs refuses it, Canonical gave %s (%v)", vec.In, got, err)
				}
			case err != nil:
				t.Errorf("%s: %v, want %s", vec.In, err, vec.Out)
			case string(got) != vec.Out:
				t.Errorf("%s:\n got %s\nwant %s", vec.In, got, vec.Out)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		if cases < 1000 {
			t.Fatalf("%s: only %d cases", name, cases)
		}
		t.Logf("%s: %d cases (%d refused by both)", name, cases, refused)
	}
}

func TestCollectionPayload(t *testing.T) {
	records := []map[string]any{
		{"id": "b", "last_modified": json.Number("2"), "title": "é"},
		{"id": "a", "last_modified": json.Number("1")},
		{"id": "c", "deleted": true, "last_modified": json.Number("3")},
	}
	got, err := Collection(records, 1234)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"data":[{"id":"a","last_modified":1},{"id":"b","last_modified":2,"title":"\u00e9"}],"last_modified":"1234"}`
	if string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

// Floats as canonicaljson-rs writes them (Rust's {:e}), ties included:
// 695770633031756.25 is exactly between two shortest decimals, where Go
// picks the even one and Rust the larger.
func TestCanonicalFloats(t *testing.T) {
	for in, want := range map[string]string{
		"695770633031756.2":    "6.957706330317563E14",
		"0.5":                  "5E-1",
		"1e23":                 "1E23",
		"5e-324":               "5E-324",
		"-0.0":                 "-0E0",
		"123.125":              "1.23125E2",
		"1E400":                "error",
		"-0":                   "0",
		"18446744073709551616": "error",
	} {
		got, err := Canonical(nil, json.Number(in))
		if err != nil {
			got = []byte("error")
		}
		if string(got) != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}
