package app

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kintogo/internal/events"
	"kintogo/internal/storage/postgres"
)

// Announcements carry the commit's time with the events; too many events
// leave only the time (anything may have changed); earlier versions'
// payloads (the events alone) and unreadable ones are understood.
func TestAnnouncements(t *testing.T) {
	at := time.UnixMicro(time.Now().UnixMicro())
	evs := []events.Event{{Action: "create", ResourceName: "record", BucketID: "b", CollectionID: "c", ID: "r", Timestamp: 42}}
	for _, tc := range []struct {
		name    string
		payload string
		evs     []events.Event
		at      time.Time
	}{
		{"events", encodeAnnouncement(evs, at), evs, at},
		{"no events", encodeAnnouncement(nil, at), []events.Event{}, at},
		{"too many", encodeAnnouncement(manyEvents(), at), nil, at},
		{"earlier version", `[{"Action":"delete","ResourceName":"bucket","BucketID":"b"}]`, []events.Event{{Action: "delete", ResourceName: "bucket", BucketID: "b"}}, time.Time{}},
		{"missed", "", nil, time.Time{}},
		{"garbage", "{nope", nil, time.Time{}},
	} {
		if len(tc.payload) > postgres.MaxPayload {
			t.Errorf("%s: %d bytes", tc.name, len(tc.payload))
		}
		gotEvs, gotAt := decodeAnnouncement(tc.payload)
		if diff := cmp.Diff(tc.evs, gotEvs); diff != "" || (gotEvs == nil) != (tc.evs == nil) {
			t.Errorf("%s: events %s", tc.name, diff)
		}
		if !gotAt.Equal(tc.at) {
			t.Errorf("%s: time %v, want %v", tc.name, gotAt, tc.at)
		}
	}
}

func manyEvents() []events.Event {
	var evs []events.Event
	for i := 0; i < 200; i++ {
		evs = append(evs, events.Event{Action: "update", ResourceName: "record", BucketID: "b", CollectionID: "c", ID: strings.Repeat("x", 30)})
	}
	return evs
}
