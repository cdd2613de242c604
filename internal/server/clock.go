package server

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/health"
)

// Clock skew. Versions carry wall time (internal/hlc), so a proxy whose
// clock runs behind the versions it observes (another proxy's, seen when
// its write is superseded; the log's, at start) stamps versions that lose
// last-writer-wins to that other clock until it catches up; clocks apart by
// more than the resolver's dedupe horizon can duplicate events, and more
// than a fifth of proxy.lease_ttl weakens the proxy id hand-over. Every
// clockEvery the server reads the clock's lead (hlc.Clock.TakeLead): the
// gauge wail_proxy_clock_lead_seconds shows it; over proxy.clock_skew_alert
// it counts wail_proxy_clock_behind_total, logs a warning (at most once a
// minute) and reports degraded until clockClearAfter without.

const (
	clockComponent  = "proxy/clock"
	clockEvery      = 5 * time.Second
	clockClearAfter = 10 * time.Minute
	clockLogEvery   = time.Minute
)

type clockWatch struct {
	lead   prometheus.Gauge
	behind prometheus.Counter

	lastSeen, lastLog time.Time
}

func newClockWatch(reg prometheus.Registerer) *clockWatch {
	w := &clockWatch{
		lead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wail_proxy_clock_lead_seconds",
			Help: "The most by which versions this proxy stamped or observed ran ahead of its wall clock, over the last 5 s: its clock is behind another proxy's, or was set back.",
		}),
		behind: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wail_proxy_clock_behind_total",
			Help: "5-second windows in which the lead passed proxy.clock_skew_alert.",
		}),
	}
	reg.MustRegister(w.lead, w.behind)
	return w
}

// watchClock checks the clock's lead until the returned stop is called.
func (s *Server) watchClock(ctx context.Context) (stop func()) {
	if s.clock == nil || !s.cfg.Proxy.Enabled {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(clockEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s.checkClock(now, s.clock.TakeLead())
			}
		}
	}()
	return func() { cancel(); <-done }
}

// checkClock acts on the lead of one window ending at now.
func (s *Server) checkClock(now time.Time, lead time.Duration) {
	w := s.clockWatch
	w.lead.Set(lead.Seconds())
	alert := s.cfg.Proxy.ClockSkewAlert
	if lead <= alert {
		if !w.lastSeen.IsZero() && now.Sub(w.lastSeen) >= clockClearAfter {
			s.health.Clear(clockComponent)
			w.lastSeen = time.Time{}
		}
		return
	}
	w.behind.Inc()
	w.lastSeen = now
	reason := fmt.Sprintf("versions observed ran %s ahead of this host's clock (over proxy.clock_skew_alert, %s): this proxy's clock is behind another proxy's, or was set back",
		lead.Round(time.Millisecond), alert)
	action := "check time sync (chrony/NTP) on this host and on the other proxies sharing the store; see DESIGN.md, Clock skew"
	s.health.Set(clockComponent, health.Degraded, reason, action)
	if now.Sub(w.lastLog) >= clockLogEvery {
		s.logger.Warn(reason+"; "+action, "lead", lead, "proxy_id", s.cfg.ProxyID)
		w.lastLog = now
	}
}
