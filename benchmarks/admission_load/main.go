// admission-load: the kube-apiserver's side of benchmarks/bench_admission.py, in Go as the apiserver is.
//
// An open loop: review i is due at start + i/rate and goes out on one of -connections keep-alive
// connections (mutual TLS, the client certificate the apiservers present); each answer is timed
// from its due instant, so a slow answer cannot hide the ones queued behind it. The reviews are
// read from stdin (one JSON document a line, sent in turn); one line a review is written to
// stdout: "latency_ms service_ms status allowed". A Python client would add its own interpreter's
// pauses to every figure, the baseline's and the bot's alike; this one adds microseconds.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

type answer struct {
	Response struct {
		Allowed bool `json:"allowed"`
	} `json:"response"`
}

type result struct {
	latency, service float64
	status           int
	allowed          bool
}

func client(ca, cert, key string, connections int) (*http.Client, error) {
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", ca)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}},
		MaxIdleConnsPerHost: connections,
		MaxConnsPerHost:     connections,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: transport, Timeout: 10 * time.Second}, nil
}

func main() {
	url := flag.String("url", "", "https://HOST:PORT/admission/CLUSTER")
	ca := flag.String("ca", "", "the CA the webhook's certificate chains to")
	cert := flag.String("cert", "", "client certificate")
	key := flag.String("key", "", "client key")
	rate := flag.Float64("rate", 200, "reviews per second")
	seconds := flag.Float64("seconds", 15, "how long")
	connections := flag.Int("connections", 8, "keep-alive connections")
	flag.Parse()
	httpClient, err := client(*ca, *cert, *key, *connections)
	if err != nil {
		fmt.Fprintln(os.Stderr, "admission-load:", err)
		os.Exit(2)
	}
	var bodies [][]byte
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		bodies = append(bodies, append([]byte(nil), scanner.Bytes()...))
	}
	if len(bodies) == 0 {
		fmt.Fprintln(os.Stderr, "admission-load: no reviews on stdin")
		os.Exit(2)
	}
	total := int(*rate * *seconds)
	results := make([]result, total)
	due := make(chan int, total)
	start := time.Now().Add(500 * time.Millisecond)
	var wg sync.WaitGroup
	for w := 0; w < *connections; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range due {
				scheduled := start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
				sent := time.Now()
				r := result{}
				resp, err := httpClient.Post(*url, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					r.status = resp.StatusCode
					var a answer
					if json.Unmarshal(body, &a) == nil {
						r.allowed = a.Response.Allowed
					}
				}
				done := time.Now()
				r.latency = float64(done.Sub(scheduled).Microseconds()) / 1000
				r.service = float64(done.Sub(sent).Microseconds()) / 1000
				results[i] = r
			}
		}()
	}
	for i := 0; i < total; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))))
		due <- i
	}
	close(due)
	wg.Wait()
	out := bufio.NewWriter(os.Stdout)
	for _, r := range results {
		fmt.Fprintf(out, "%.3f %.3f %d %t\n", r.latency, r.service, r.status, r.allowed)
	}
	out.Flush()
}
