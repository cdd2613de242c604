package group

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lagScrapeTimeout bounds the log reads of one scrape of the groups' lag.
const lagScrapeTimeout = 2 * time.Second

var (
	lagDesc = prometheus.NewDesc("wail_group_lag_offsets",
		"Offsets of a table's events a consumer group has not acknowledged yet, summed over partitions "+
			"(the last event's offset + 1 minus the committed one; offsets are not dense: an upper bound of the events). "+
			"Read from the log at scrape time for the groups with members here since the process started: "+
			"the whole group's lag, the same on every process serving it (aggregate with max, not sum).",
		[]string{"table", "group"}, nil)
	membersDesc = prometheus.NewDesc("wail_group_members",
		"Live members of a consumer group in this process (a member streams from one process: sum over processes for the group's).", []string{"table", "group"}, nil)
	revokingDesc = prometheus.NewDesc("wail_group_revoking_partitions",
		"Partitions of a consumer group that move from a member of this process once it acknowledged the events it was sent of them "+
			"(it is sent no more of them meanwhile; at most api.group_lease_timeout). Sum over processes for the group's.",
		[]string{"table", "group"}, nil)
)

// lagCollector reports the lag, members and revoking partitions of the
// groups this process serves (those with a member since it started),
// reading the committed offsets and partition ends from the log when
// scraped. In groups shared by processes, the lag is the group's
// (positions and ends are in the shared log: every process serving it
// reports the same value, so no process has to reach the others), and the
// members and revoking partitions are this process's (each member streams
// from one process, so their sum over processes is the group's; a dead
// process's members are rightly in no sum).
type lagCollector struct{ g *Groups }

// Collector returns a Prometheus collector of the groups' lag and
// members. A group whose offsets cannot be read within the scrape's
// bound is left out of that scrape.
func (g *Groups) Collector() prometheus.Collector { return lagCollector{g} }

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- membersDesc
	ch <- revokingDesc
}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	type served struct {
		table, name, topic string
		partitions         int32
		members, revoking  int
	}
	// The groups are listed under g.mu, and each read under its own lock
	// after: a group's lock may be held across a commit that waits on the
	// log (up to half the lease), and g.mu held meanwhile held up every
	// other group's acknowledgements, joins and lease checks.
	c.g.mu.Lock()
	grs := make([]*grp, 0, len(c.g.groups))
	for _, gr := range c.g.groups {
		grs = append(grs, gr)
	}
	c.g.mu.Unlock()
	list := make([]served, 0, len(grs))
	for _, gr := range grs {
		gr.mu.Lock()
		s := served{table: gr.table, name: gr.name, topic: gr.topic, partitions: gr.core.n, members: len(gr.core.Members())}
		for p := range gr.core.n {
			if gr.core.Revoking(p) {
				s.revoking++
			}
		}
		gr.mu.Unlock()
		list = append(list, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lagScrapeTimeout)
	defer cancel()
	for _, s := range list {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(s.members), s.table, s.name)
		ch <- prometheus.MustNewConstMetric(revokingDesc, prometheus.GaugeValue, float64(s.revoking), s.table, s.name)
		lag, err := c.g.lag(ctx, s.topic, s.name, s.partitions)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(lag), s.table, s.name)
	}
}

// lag is the sum over a group's partitions of the end offset minus the
// committed one (from the beginning where nothing is committed).
func (g *Groups) lag(ctx context.Context, topic, name string, partitions int32) (int64, error) {
	committed, err := g.log.Committed(ctx, LogGroup(name), topic)
	if err != nil {
		return 0, err
	}
	var lag int64
	for p := range partitions {
		_, end, err := g.log.Bounds(ctx, topic, p)
		if err != nil {
			return 0, err
		}
		lag += max(end-max(committed[p], 0), 0)
	}
	return lag, nil
}
