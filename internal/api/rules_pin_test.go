package api

import (
	"testing"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
)

// TestRulesPinned: every procedure's permission, written out a second
// time. TestAuthMatrix (internal/server) checks that the guard enforces
// rules as they stand, reading them from Rule, so a rule narrowed by
// mistake (CreateSink with consume: a sink POSTs a table's events to a
// URL of its creator's choice from the server's network) passed it; a
// change of a permission must be made here too, on purpose.
func TestRulesPinned(t *testing.T) {
	t.Parallel()
	pinned := []struct {
		procedure string
		perm      auth.Permission
	}{
		{wailv1connect.ProducerServicePutProcedure, auth.Produce},
		{wailv1connect.ProducerServiceDeleteProcedure, auth.Produce},
		{wailv1connect.ProducerServiceWriteProcedure, auth.Produce},
		{wailv1connect.ProducerServiceWriteStreamProcedure, auth.Produce},
		{wailv1connect.ProducerServiceGetProcedure, auth.Read},
		{wailv1connect.AdminServiceCreateTableProcedure, auth.Admin},
		{wailv1connect.AdminServiceAlterTableProcedure, auth.Admin},
		{wailv1connect.AdminServiceDropTableProcedure, auth.Admin},
		{wailv1connect.AdminServiceReconcileTableProcedure, auth.Admin},
		{wailv1connect.AdminServiceListDeadLettersProcedure, auth.Admin},
		{wailv1connect.AdminServiceGetDeadLetterProcedure, auth.Admin},
		{wailv1connect.AdminServiceRedriveDeadLettersProcedure, auth.Admin},
		{wailv1connect.AdminServiceDropDeadLettersProcedure, auth.Admin},
		{wailv1connect.AdminServiceCreateSinkProcedure, auth.Admin},
		{wailv1connect.AdminServicePauseSinkProcedure, auth.Admin},
		{wailv1connect.AdminServiceResumeSinkProcedure, auth.Admin},
		{wailv1connect.AdminServiceDropSinkProcedure, auth.Admin},
		{wailv1connect.AdminServiceListSinksProcedure, auth.Consume},
		{wailv1connect.AdminServiceDescribeSinkProcedure, auth.Consume},
		{wailv1connect.AdminServiceDescribeTableProcedure, auth.Any},
		{wailv1connect.AdminServiceListTablesProcedure, auth.Any},
		{wailv1connect.EventServiceSubscribeProcedure, auth.Consume},
		{wailv1connect.EventServiceConsumeProcedure, auth.Consume},
		{wailv1connect.EventServiceAckProcedure, auth.Consume},
		{wailv1connect.EventServiceListGroupsProcedure, auth.Consume},
		{wailv1connect.EventServiceDescribeGroupProcedure, auth.Consume},
		{wailv1connect.EventServiceResetGroupProcedure, auth.Admin},
	}
	if len(pinned) != len(rules) {
		t.Errorf("%d procedures pinned, rules has %d: pin the new one's permission here", len(pinned), len(rules))
	}
	for _, p := range pinned {
		if got, ok := Rule(p.procedure); !ok || got != p.perm {
			t.Errorf("%s needs %q (%v), pinned %q", p.procedure, got, ok, p.perm)
		}
	}
}
