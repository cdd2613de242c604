package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/health"
)

// replicasComponent is the health condition of SQL store replicas whose
// circuit breaker is open (sqlstore.Breaker): degraded while their reads
// go to the primary.
const (
	replicasComponent = "store/replicas"
	replicasEvery     = time.Second
)

// watchReplicas keeps the condition store/replicas up to date, until ctx
// ends (a no-op for a store without replica breakers).
func (s *Server) watchReplicas(ctx context.Context) {
	rb, ok := s.store.(replicaBypasser)
	if !ok {
		return
	}
	t := time.NewTicker(replicasEvery)
	defer t.Stop()
	for {
		s.reportReplicas(rb.BypassedReplicas())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reportReplicas sets store/replicas to degraded, naming each bypassed
// replica and why, or clears it when none is.
func (s *Server) reportReplicas(bypassed []error) {
	if len(bypassed) == 0 {
		s.health.Clear(replicasComponent)
		return
	}
	reasons := make([]string, len(bypassed))
	for i, err := range bypassed {
		reasons[i] = err.Error()
	}
	s.health.Set(replicasComponent, health.Degraded,
		fmt.Sprintf("%d store replica(s) bypassed, their reads go to the next level (the primary at the end): %s", len(bypassed), strings.Join(reasons, "; ")),
		"check each replica's host, the network to it and its load; wail reads it again by itself once a probe read answers (docs/operations.md, \"PostgreSQL store\")")
}
