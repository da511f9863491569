package events

import "testing"

func TestPublishReachesSubscribersInOrder(t *testing.T) {
	var b Bus
	var got []string
	b.Subscribe(func(evs []Event) { got = append(got, "a:"+evs[0].ID) })
	b.Subscribe(func(evs []Event) { got = append(got, "b:"+evs[len(evs)-1].ID) })
	b.Publish()
	b.Publish(Event{ID: "1"}, Event{ID: "2"})
	if len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Errorf("got %v", got)
	}
}
