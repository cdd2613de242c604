// Package health is the health of one wail process, as /healthz and
// `wail doctor` report it. Components (the log, the store, the resolver's
// partitions, the proxy id's lease and the clock, the catalog's tables,
// the sinks, the TLS and token files, the start and the shutdown) raise
// conditions on a Registry while something is wrong and clear them once
// it is fixed; the process's state is the worst of them.
//
// States:
//   - ok: nothing is wrong.
//   - degraded: the process serves, but something needs a person (a parked
//     key, a stalled partition, a dead-letter record). /healthz answers
//     200, so a load balancer keeps sending traffic.
//   - unhealthy: the process cannot do its job (disk full, a dependency
//     down, durability unknown). /healthz answers 503, so a load balancer
//     or supervisor takes it out of rotation or restarts it.
//
// Each condition carries a reason (what is wrong) and an action (what to
// run or check), the same words docs/operations.md uses.
package health

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// State is how well a process or component works.
type State int

// States, from best to worst.
const (
	OK State = iota
	Degraded
	Unhealthy
)

func (s State) String() string {
	switch s {
	case OK:
		return "ok"
	case Degraded:
		return "degraded"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// MarshalText writes the state's name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state's name.
func (s *State) UnmarshalText(b []byte) error {
	switch string(b) {
	case "ok":
		*s = OK
	case "degraded":
		*s = Degraded
	case "unhealthy":
		*s = Unhealthy
	default:
		return fmt.Errorf("health: unknown state %q", b)
	}
	return nil
}

// Condition is one thing that is wrong.
type Condition struct {
	// Component names what raised it, e.g. "store", "log",
	// "resolver/orders/3". One condition per component.
	Component string `json:"component"`
	State     State  `json:"state"`
	// Reason says what is wrong; Action what a person should run or check.
	Reason string    `json:"reason"`
	Action string    `json:"action,omitempty"`
	Since  time.Time `json:"since"`
}

// Report is the state of a process and the conditions behind it.
type Report struct {
	State      State       `json:"state"`
	Conditions []Condition `json:"conditions,omitempty"`
	// Hidden says why the conditions are left out (a caller without the
	// right to see them: HandlerFor); "" when they are shown.
	Hidden string `json:"hidden,omitempty"`
}

// Summary is rep without its conditions, which may name hosts, tables
// and errors: the state, and how many conditions why says are hidden.
func (rep Report) Summary(why string) Report {
	out := Report{State: rep.State}
	if n := len(rep.Conditions); n > 0 {
		out.Hidden = fmt.Sprintf("%d condition(s) hidden: %s", n, why)
	}
	return out
}

// Registry holds the conditions of one process. The zero value is not
// usable; use NewRegistry. It is safe for concurrent use.
type Registry struct {
	now      func() time.Time
	mu       sync.Mutex
	conds    map[string]Condition
	gauge    prometheus.Gauge
	stopping prometheus.Gauge
}

// StoppingComponent is the condition of a process that shuts down
// (SetStopping).
const StoppingComponent = "shutdown"

// NewRegistry returns an empty (ok) registry. With reg set, it exports the
// process state as the gauge wail_health_state (0 ok, 1 degraded, 2
// unhealthy).
func NewRegistry(reg prometheus.Registerer) *Registry {
	r := &Registry{now: time.Now, conds: map[string]Condition{}}
	r.gauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "wail_health_state",
		Help: "Health of the process: 0 ok, 1 degraded, 2 unhealthy (see /healthz for the reasons); a shutdown under way does not count (wail_shutting_down).",
	})
	r.stopping = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "wail_shutting_down",
		Help: "1 while the process shuts down (/healthz answers 503, the alerts on wail_health_state do not fire for it), else 0.",
	})
	if reg != nil {
		reg.MustRegister(r.gauge, r.stopping)
	}
	return r
}

// SetStopping marks the process as shutting down, for good: /healthz
// answers 503 (unhealthy), naming it after the conditions that caused the
// stop, while the gauge wail_health_state keeps the state of the other
// conditions, so that an ordinary shutdown (a deploy, a scale-down) does
// not page; wail_shutting_down says 1.
func (r *Registry) SetStopping(reason, action string) {
	r.Set(StoppingComponent, Unhealthy, reason, action)
	r.stopping.Set(1)
}

// Set raises (or updates) the condition of a component. Setting OK clears
// it. Since is kept while the state stays the same.
func (r *Registry) Set(component string, s State, reason, action string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == OK {
		delete(r.conds, component)
	} else {
		c := Condition{Component: component, State: s, Reason: reason, Action: action, Since: r.now()}
		if old, ok := r.conds[component]; ok && old.State == s {
			c.Since = old.Since
		}
		r.conds[component] = c
	}
	r.gauge.Set(float64(r.alertStateLocked()))
}

// Clear drops the condition of a component (it works again).
func (r *Registry) Clear(component string) { r.Set(component, OK, "", "") }

// ClearPrefix drops the conditions of every component whose name starts
// with prefix (e.g. a table's partitions when it is dropped).
func (r *Registry) ClearPrefix(prefix string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.conds {
		if strings.HasPrefix(k, prefix) {
			delete(r.conds, k)
		}
	}
	r.gauge.Set(float64(r.alertStateLocked()))
}

func (r *Registry) stateLocked() State {
	return max(r.alertStateLocked(), r.conds[StoppingComponent].State)
}

// alertStateLocked is the state without the shutdown (wail_health_state).
func (r *Registry) alertStateLocked() State {
	s := OK
	for k, c := range r.conds {
		if k != StoppingComponent {
			s = max(s, c.State)
		}
	}
	return s
}

// State returns the worst state of any condition.
func (r *Registry) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stateLocked()
}

// Report returns the state and the conditions, worst first, then by
// component; a shutdown (SetStopping) comes last.
func (r *Registry) Report() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{State: r.stateLocked()}
	for _, c := range r.conds {
		rep.Conditions = append(rep.Conditions, c)
	}
	sort.Slice(rep.Conditions, func(i, j int) bool {
		a, b := rep.Conditions[i], rep.Conditions[j]
		if (a.Component == StoppingComponent) != (b.Component == StoppingComponent) {
			return b.Component == StoppingComponent // the causes of a stop first
		}
		if a.State != b.State {
			return a.State > b.State
		}
		return a.Component < b.Component
	})
	return rep
}

// Handler serves the report: 200 when ok or degraded, 503 when unhealthy.
// The body is text (first line the state, then one line per condition)
// unless the request asks for JSON (Accept: application/json or ?format=json).
func (r *Registry) Handler() http.Handler { return r.HandlerFor(nil) }

// HandlerFor is Handler that shows a request's caller the conditions only
// when detail says it may (nil: always); others get the state and the
// Summary, hidden saying why.
func (r *Registry) HandlerFor(detail func(*http.Request) (ok bool, hidden string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rep := r.Report()
		if detail != nil {
			if ok, why := detail(req); !ok {
				rep = rep.Summary(why)
			}
		}
		code := http.StatusOK
		if rep.State == Unhealthy {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		if req.URL.Query().Get("format") == "json" || strings.Contains(req.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(rep)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(rep.Text()))
	})
}

// Text renders the report for people: the state on the first line, then
// one line per condition.
func (rep Report) Text() string {
	var b strings.Builder
	b.WriteString(rep.State.String())
	b.WriteByte('\n')
	if rep.Hidden != "" {
		b.WriteString(rep.Hidden)
		b.WriteByte('\n')
	}
	for _, c := range rep.Conditions {
		fmt.Fprintf(&b, "%s %s: %s", c.State, c.Component, c.Reason)
		if c.Action != "" {
			fmt.Fprintf(&b, " (%s)", c.Action)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
