package signer_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"kintogo/internal/app/apptest"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/postgres"
	"kintogo/internal/storage/storetest"
)

// secondNode is another server on the flow's PostgreSQL database, with
// its settings.
func (f *flow) secondNode() *flow {
	f.t.Helper()
	store, err := postgres.Open(context.Background(), os.Getenv("KINTOGO_TEST_POSTGRES"), postgres.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { store.Close() })
	other := httptest.NewServer(apptest.Server(f.t, store, httpapi.Options{}, f.settings))
	f.t.Cleanup(other.Close)
	node := *f
	node.url = other.URL
	return &node
}

// Two nodes on one PostgreSQL database approve the same review at the
// same time, round after round (alone, or in a batch that read the source
// first): one approval wins, the other is told the
// collection is already signed, and the destination holds one signature
// per records timestamp, which verifies: signatures are never the same
// twice, so a second publication would show as a second signature.
func TestConcurrentApprovalsAcrossNodes(t *testing.T) {
	open := storetest.PostgreSQL()
	if open == nil {
		t.Skip("KINTOGO_TEST_POSTGRES is not set")
	}
	// Without history, whose lock of the bucket's history would
	// serialize these writes anyway.
	f := newFlow(t, open, map[string]string{"signer.to_review_enabled": "true", "includes": "kinto_remote_settings"})
	defaultSetUp(f)
	f.call("PUT", "/buckets/alice/groups/scid-reviewers", tarte,
		`{"data": {"members": ["`+f.users[sam]+`", "`+f.users["ray:weaver"]+`"]}}`, 200)

	nodeB := f.secondNode()

	seen := map[string]string{} // records timestamp -> signature
	for round := 0; round < 8; round++ {
		f.call("POST", source+"/records", tarte, `{"data": {"round": `+strconv.Itoa(round)+`}}`, 201)
		f.status(source, tarte, "to-review", 200)
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for i, node := range []*flow{f, nodeB} {
			reviewer := []string{sam, "ray:weaver"}[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				if round%2 == 0 {
					codes[i] = node.status(source, reviewer, "to-sign", 0).code
					return
				}
				// In a batch that read the source first: what it read
				// before the lock is not trusted after it.
				a := node.call("POST", "/batch", reviewer, `{"requests": [{"method": "GET", "path": "`+source+`"},
					{"method": "PATCH", "path": "`+source+`", "body": {"data": {"status": "to-sign"}}}]}`, 200)
				resp := a.body["responses"].([]any)[1].(map[string]any)
				n, _ := resp["status"].(json.Number).Int64()
				codes[i] = int(n)
			}()
		}
		wg.Wait()
		if !(codes[0] == 200 && codes[1] == 400 || codes[0] == 400 && codes[1] == 200) {
			t.Fatalf("round %d: approvals answered %v, want one 200 and one 400", round, codes)
		}
		for _, node := range []*flow{f, nodeB} {
			// One answer's signature and timestamp (another node may
			// answer an older one until it read the approval).
			sig, ts := node.verifyAt(dest)
			key := strconv.FormatInt(ts, 10)
			if prev, ok := seen[key]; ok && prev != sig {
				t.Fatalf("round %d: two signatures for the timestamp %s", round, key)
			}
			seen[key] = sig
		}
	}
	if n := f.count(dest, tarte); n != 2+8 {
		t.Fatalf("%d records in the destination, want 10", n)
	}
}

// Changesets computed while approvals commit (on two PostgreSQL nodes,
// the answer cache off so that every poll reads the database) always
// verify: a changeset's metadata, records and timestamp come from one
// snapshot, never a signature from before an approval with records from
// after it.
func TestChangesetsAlwaysVerify(t *testing.T) {
	open := storetest.PostgreSQL()
	if open == nil {
		t.Skip("KINTOGO_TEST_POSTGRES is not set")
	}
	f := newFlow(t, open, map[string]string{"signer.to_review_enabled": "false", "includes": "kinto_remote_settings",
		"response_cache_max_bytes": "0"})
	defaultSetUp(f)
	nodeB := f.secondNode()
	stop := make(chan struct{})
	var polls, mismatches atomic.Int64
	var wg sync.WaitGroup
	for _, node := range []*flow{f, nodeB, f, nodeB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := node.checkChangeset(dest); err != nil {
					if mismatches.Add(1) <= 3 {
						t.Errorf("a changeset that does not verify: %v", err)
					}
				}
				polls.Add(1)
			}
		}()
	}
	for round := 0; round < 40 || polls.Load() < 2000; round++ {
		f.call("POST", source+"/records", tarte, `{"data": {"round": `+strconv.Itoa(round)+`}}`, 201)
		f.status(source, tarte, "to-sign", 200)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d changesets polled during the approvals, %d did not verify", polls.Load(), mismatches.Load())
}
