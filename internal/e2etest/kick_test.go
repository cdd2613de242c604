package e2etest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/store/sqltest"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKilledProxyResolverKicked is TestKilledProxyWaitingOnLock on Kafka
// with the resolver's group membership churning after the kill: the
// coordinator drops its member again and again (a LeaveGroup on its
// behalf, as a session timeout would), so that its heartbeats answer
// UNKNOWN_MEMBER_ID and it joins again under a new member id, its loops
// draining and starting over meanwhile. Once the churn stops, with no
// write since, the resolver must still commit past every intent.
func TestKilledProxyResolverKicked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	bin := buildWail(t)
	for _, db := range sqlDBs() {
		if db.name != "postgres" {
			continue
		}
		t.Run(db.name, func(t *testing.T) {
			killProxyWaitingOnLockChurn(t, bin, db, "kafka", kickMembers)
		})
	}
}

// kickMembers drops every member of group from the coordinator every
// interval for d, as if their sessions had timed out.
func kickMembers(t *testing.T, ctx context.Context, brokers []string, group string, d time.Duration) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	kicks := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		gs, err := adm.DescribeGroups(ctx, group)
		if err != nil || gs[group].Err != nil {
			continue
		}
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = group
		for _, m := range gs[group].Members {
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = m.MemberID
			req.Members = append(req.Members, lm)
		}
		if len(req.Members) == 0 {
			continue
		}
		if _, err := req.RequestWith(ctx, cl); err == nil {
			kicks++
		}
	}
	t.Logf("dropped the resolver's group members %d times", kicks)
}

// TestResolverChurnWhileWriting: writes go on while the resolver's group
// membership churns (kickMembers), so that loops are revoked with a commit
// still to make (their final commit is refused: the partition is no longer
// held). Once the writes and the churn stop, the resolver must commit past
// every intent, and the last event of each key must be the store's state.
func TestResolverChurnWhileWriting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	bin := buildWail(t)
	db := sqlDBs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), caughtUpWait+time.Minute)
	defer cancel()
	dsn := db.dsn(t)
	tbl := sqltest.Name("kc_")
	s := startKillSetup(t, bin, "kafka", "postgres", dsn, tbl)
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, "http://"+s.resolver.addr)
	if _, err := wailv1connect.NewAdminServiceClient(http.DefaultClient, "http://"+s.proxy.addr).CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: tbl, Partitions: 2, VisibilityWindowMs: killWindow.Milliseconds(),
	})); err != nil {
		t.Fatal(err)
	}
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, "http://"+s.proxy.addr)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	puts, refused := 0, 0
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := []byte(fmt.Sprintf("k%d", i%8))
			_, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: tbl, Key: key, Value: []byte(fmt.Sprint(i))}))
			switch {
			case err == nil:
				puts++
			case connect.CodeOf(err) == connect.CodeUnavailable:
				refused++ // nothing written (a loaded broker took the intent too late)
			default:
				t.Errorf("put: %v", err)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	kickMembers(t, ctx, kafkaBrokers(t), "wail-resolver."+tbl, 12*time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d puts, %d refused as unavailable", puts, refused)
	start := time.Now()
	waitCaughtUp(t, ctx, admin, tbl)
	t.Logf("caught up %s after the writes stopped", time.Since(start).Round(time.Millisecond))

	lastEvent := map[string]Event{} // by key, in the bus's order (a key stays on its partition)
	for _, ev := range s.events(ctx, catalog.Table{Name: tbl, Partitions: 2}) {
		lastEvent[string(ev.Key)] = ev
	}
	st := db.open(t, dsn)
	for i := range 8 {
		key := fmt.Sprintf("k%d", i)
		row, found, err := st.Get(ctx, tbl, []byte(key), 0)
		if err != nil {
			t.Fatal(err)
		}
		if ev, ok := lastEvent[key]; found && (!ok || ev.Version != row.Version) {
			t.Errorf("key %s: the store holds version %d, the last event is version %d (found: %v)", key, row.Version, ev.Version, ok)
		}
	}
}
