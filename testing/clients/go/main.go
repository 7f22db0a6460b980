// fluent-go-sender sends numbered FireLens-shaped events with Debian's
// fluent-logger-golang, the library inside Docker's fluentd log driver.
//
// Used by host/tests/forward_clients.rs and forward_bad_input.rs. Built by
// scripts/install-test-deps with GO111MODULE=off GOPATH=/usr/share/gocode.
//
// Event i (0-based) is posted like Docker posts a line, with
// PostWithTime(tag, time.Unix(0, base_ns + i*1_000_003), map[string]string{...}):
//
//	container_id   "0123456789abcdef" repeated 4 times (64 hex characters)
//	container_name "/ecs-web-1-app"
//	source         "stdout" for even i, "stderr" for odd i
//	log            i%1000 == 7:  "long <i> " followed by "x" up to 16384 bytes (the
//	                             longest line Docker sends unsplit)
//	               i%1000 == 13: "bad utf8 \xff\xfe <i>" (not valid UTF-8, sent as-is)
//	               otherwise:    "line <i>: GET /health 200 - the quick brown fox"
//
// With -subsecond the time is an EventTime (nanoseconds), else integer seconds.
// With -pause-after N, after N events it prints "paused" on stdout and waits
// for a line on stdin before sending the rest on the same connection.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
)

const timeStepNs = 1_000_003

func record(i int) map[string]string {
	r := map[string]string{
		"container_id":   strings.Repeat("0123456789abcdef", 4),
		"container_name": "/ecs-web-1-app",
		"source":         "stdout",
	}
	if i%2 == 1 {
		r["source"] = "stderr"
	}
	switch i % 1000 {
	case 7:
		head := "long " + strconv.Itoa(i) + " "
		r["log"] = head + strings.Repeat("x", 16384-len(head))
	case 13:
		r["log"] = "bad utf8 \xff\xfe " + strconv.Itoa(i)
	default:
		r["log"] = "line " + strconv.Itoa(i) + ": GET /health 200 - the quick brown fox"
	}
	return r
}

func main() {
	network := flag.String("network", "tcp", "tcp or unix")
	address := flag.String("address", "", "host:port for tcp, a socket path for unix")
	tag := flag.String("tag", "", "the tag of every event")
	count := flag.Int("count", 1000, "number of events")
	baseNs := flag.Int64("base-ns", 1700000000123456789, "time of event 0, in ns since the epoch")
	ack := flag.Bool("ack", false, "RequestAck: ask for an ack per event and wait for it")
	subsecond := flag.Bool("subsecond", false, "SubSecondPrecision: send EventTime")
	async := flag.Bool("async", false, "Async, as FireLens runs the driver (fluentd-async=true)")
	pauseAfter := flag.Int("pause-after", -1, "after N events print \"paused\" and wait for a stdin line")
	flag.Parse()

	cfg := fluent.Config{
		FluentNetwork:      *network,
		RequestAck:         *ack,
		SubSecondPrecision: *subsecond,
		Async:              *async,
		Timeout:            10 * time.Second,
		WriteTimeout:       30 * time.Second,
		MaxRetry:           3,
		BufferLimit:        *count + 1,
	}
	asyncFailures := 0
	if *async {
		cfg.AsyncResultCallback = func(_ []byte, err error) {
			if err != nil {
				asyncFailures++
				fmt.Fprintf(os.Stderr, "async send: %v\n", err)
			}
		}
	}
	if *network == "unix" {
		cfg.FluentSocketPath = *address
	} else {
		host, port, found := strings.Cut(*address, ":")
		p, err := strconv.Atoi(port)
		if !found || err != nil {
			fmt.Fprintf(os.Stderr, "-address %q is not host:port\n", *address)
			os.Exit(2)
		}
		cfg.FluentHost, cfg.FluentPort = host, p
	}
	logger, err := fluent.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "connecting: %v\n", err)
		os.Exit(1)
	}
	stdin := bufio.NewReader(os.Stdin)
	for i := 0; i < *count; i++ {
		if i == *pauseAfter {
			fmt.Println("paused")
			if _, err := stdin.ReadString('\n'); err != nil {
				fmt.Fprintf(os.Stderr, "waiting on stdin: %v\n", err)
				os.Exit(1)
			}
		}
		if err := logger.PostWithTime(*tag, time.Unix(0, *baseNs+int64(i)*timeStepNs), record(i)); err != nil {
			fmt.Fprintf(os.Stderr, "event %d: %v\n", i, err)
			os.Exit(1)
		}
	}
	if err := logger.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "closing: %v\n", err)
		os.Exit(1)
	}
	if asyncFailures > 0 {
		fmt.Fprintf(os.Stderr, "%d events failed\n", asyncFailures)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "sent %d events\n", *count)
}
