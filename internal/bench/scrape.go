package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// serverCounters are the resolver's metrics summed over the bench tables.
type serverCounters struct {
	Reads   float64 // wail_resolver_reads_total
	Events  float64 // wail_resolver_events_total
	Covered float64 // wail_resolver_covered_intents_total
	Lag     float64 // wail_resolver_lag_intents
}

// perEvent returns the reads and covered intents per event between two
// scrapes (0 when no event was published).
func perEvent(before, after serverCounters) (reads, covered float64) {
	ev := after.Events - before.Events
	if ev <= 0 {
		return 0, 0
	}
	return (after.Reads - before.Reads) / ev, (after.Covered - before.Covered) / ev
}

// scraper reads /metrics of the target.
type scraper struct {
	hc     *http.Client
	url    string
	tables map[string]bool
}

func newScraper(hc *http.Client, base string, tables []string) *scraper {
	s := &scraper{hc: hc, url: base + "/metrics", tables: map[string]bool{}}
	for _, t := range tables {
		s.tables[t] = true
	}
	return s
}

func (s *scraper) scrape(ctx context.Context) (serverCounters, error) {
	var c serverCounters
	err := ReadMetrics(ctx, s.hc, s.url, func(r io.Reader) error {
		var err error
		c, err = parseMetrics(r, s.tables)
		return err
	})
	return c, err
}

// ReadMetrics GETs url (a /metrics page) and hands its body to parse.
func ReadMetrics(ctx context.Context, hc *http.Client, url string, parse func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parse(resp.Body)
}

// EachSample calls each with the name, label block and value of every
// sample line (`name{labels} value [timestamp]`) of the Prometheus text
// in r whose name begins with prefix.
func EachSample(r io.Reader, prefix string, each func(name, labels, value string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if name, labels, value, ok := splitSample(line); ok {
			if err := each(name, labels, value); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

// parseMetrics sums the resolver series of the given tables from the
// Prometheus text format. It reads only what it needs: sample lines
// `name{labels} value [timestamp]`, with the table label.
func parseMetrics(r io.Reader, tables map[string]bool) (serverCounters, error) {
	var c serverCounters
	targets := map[string]*float64{
		"wail_resolver_reads_total":           &c.Reads,
		"wail_resolver_events_total":          &c.Events,
		"wail_resolver_covered_intents_total": &c.Covered,
		"wail_resolver_lag_intents":           &c.Lag,
	}
	err := EachSample(r, "wail_resolver_", func(name, labels, value string) error {
		dst := targets[name]
		if dst == nil || !tables[labelValue(labels, "table")] {
			return nil
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("metrics: %s{%s} %s: %w", name, labels, value, err)
		}
		*dst += v
		return nil
	})
	return c, err
}

// splitSample splits a sample line into name, label block and value.
func splitSample(line string) (name, labels, value string, ok bool) {
	rest := line
	if i := strings.IndexByte(line, '{'); i >= 0 {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return "", "", "", false
		}
		name, labels, rest = line[:i], line[i+1:j], line[j+1:]
	} else {
		var found bool
		name, rest, found = strings.Cut(line, " ")
		if !found {
			return "", "", "", false
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return "", "", "", false
	}
	return name, labels, fields[0], true
}

// labelValue returns the value of label name in a label block
// (a="x",b="y"). Table names never hold quotes or backslashes.
func labelValue(labels, name string) string {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.TrimSpace(k) == name {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}
