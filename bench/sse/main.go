// Command sse measures kintogo's event streams: it opens many Server-Sent
// Events subscribers on the changes monitor, writes one record per second
// through the API, and reports how long each write takes to reach every
// subscriber, and the server's memory per subscriber.
//
//	sse -base http://127.0.0.1:18855/v1 -n 10000 -writes 20 -pid 1234
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func rss(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func main() {
	base := flag.String("base", "http://127.0.0.1:18855/v1", "kintogo API root")
	n := flag.Int("n", 10000, "subscribers")
	writes := flag.Int("writes", 20, "writes, one per second")
	pid := flag.Int("pid", 0, "server pid, for its memory")
	flag.Parse()

	transport := &http.Transport{
		MaxIdleConnsPerHost: -1,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}
	client := &http.Client{Transport: transport}
	do := func(method, path, body string) (*http.Response, error) {
		req, _ := http.NewRequest(method, *base+path, bytes.NewBufferString(body))
		req.SetBasicAuth("bench", "pw")
		req.Header.Set("Content-Type", "application/json")
		return client.Do(req)
	}
	for _, p := range []string{"/buckets/main", "/buckets/main/collections/c"} {
		resp, err := do("PUT", p, "")
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	before := rss(*pid)

	type receipt struct {
		ts int64
		at time.Time
	}
	receipts := make(chan receipt, *n*4)
	var connected, failed atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", *base+"/buckets/monitor/collections/changes/records", nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
				return
			}
			defer resp.Body.Close()
			connected.Add(1)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
					ts, _ := strconv.ParseInt(id, 10, 64)
					receipts <- receipt{ts, time.Now()}
				}
			}
		}()
		if i%500 == 499 {
			time.Sleep(50 * time.Millisecond) // do not flood the accept queue
		}
	}
	for connected.Load()+failed.Load() < int64(*n) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	after := rss(*pid)

	var got []receipt
	collected := make(chan struct{})
	go func() {
		for r := range receipts {
			got = append(got, r)
		}
		close(collected)
	}()
	acked := map[int64]time.Time{} // write timestamp -> when its answer came
	for i := 0; i < *writes; i++ {
		start := time.Now()
		resp, err := do("POST", "/buckets/main/collections/c/records", `{"data": {"n": 1}}`)
		if err != nil {
			log.Fatal(err)
		}
		var out struct {
			Data struct {
				LastModified int64 `json:"last_modified"`
			} `json:"data"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		acked[out.Data.LastModified] = time.Now()
		time.Sleep(time.Until(start.Add(time.Second)))
	}
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	close(receipts)
	<-collected
	var latencies []time.Duration
	for _, r := range got {
		at, ok := acked[r.ts]
		if !ok {
			continue
		}
		// The event leaves when the commit is published, just before the
		// writer's answer: it can arrive first.
		latencies = append(latencies, max(0, r.at.Sub(at)))
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	fmt.Printf("subscribers: %d connected, %d refused\n", connected.Load(), failed.Load())
	if after > before && connected.Load() > 0 {
		fmt.Printf("server memory: %.1f MiB before, %.1f MiB with subscribers: %.1f KiB per subscriber\n",
			float64(before)/(1<<20), float64(after)/(1<<20), float64(after-before)/float64(connected.Load())/1024)
	}
	fmt.Printf("deliveries: %d of %d (writes x subscribers)\n", len(latencies), int64(*writes)*connected.Load())
	if len(latencies) > 0 {
		pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
		fmt.Printf("delivery latency after the write's answer: p50 %v, p99 %v, max %v\n", pct(0.5), pct(0.99), latencies[len(latencies)-1])
	}
}
