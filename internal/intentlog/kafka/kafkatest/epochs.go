package kafkatest

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// EpochCache models, for a kfake cluster, the leader-epoch cache of a
// Kafka partition leader (one partition per topic), to answer
// OffsetForLeaderEpoch as Kafka does. kfake answers UNDEFINED_EPOCH_OFFSET
// for an epoch followed only by epochs without records (the partition
// moved after its last write); Kafka's cache holds every leader epoch
// from the offset its leader started at, and answers the log's end. A
// reader that takes UNDEFINED_EPOCH_OFFSET as a position it cannot
// validate (wail's) would see a loss on a kfake cluster that lost
// nothing. The test tells the cache of every append and leader change
// (kfake: a partition starts at epoch 0; each MoveTopicPartition is the
// next epoch) and answers with Response from a ControlKey.
type EpochCache struct {
	mu     sync.Mutex
	epochs []int32 // in order; each started at the offset in starts
	starts []int64
	end    int64
}

// NewEpochCache is the cache of a new partition: epoch 0 from offset 0.
func NewEpochCache() *EpochCache {
	return &EpochCache{epochs: []int32{0}, starts: []int64{0}}
}

// Appended records n records appended (transaction markers count).
func (c *EpochCache) Appended(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.end += int64(n)
}

// Moved records a leader change: the next epoch, from the log's end.
func (c *EpochCache) Moved() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epochs = append(c.epochs, c.epochs[len(c.epochs)-1]+1)
	c.starts = append(c.starts, c.end)
}

// Answer is Kafka's answer for asked (LeaderEpochFileCache.endOffsetFor):
// the latest epoch ends at the log's end; an older one where the first
// later epoch starts, with the latest epoch not above it; an epoch newer
// than every one known is UNDEFINED_EPOCH_OFFSET (-1, -1).
func (c *EpochCache) Answer(asked int32) (epoch int32, end int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.epochs)
	if asked == c.epochs[n-1] {
		return asked, c.end
	}
	for i, e := range c.epochs {
		if e > asked {
			if i == 0 {
				return asked, c.starts[0]
			}
			return c.epochs[i-1], c.starts[i]
		}
	}
	return -1, -1
}

// Response answers req from the cache, for every partition asked.
func (c *EpochCache) Response(req *kmsg.OffsetForLeaderEpochRequest) *kmsg.OffsetForLeaderEpochResponse {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Version = req.Version
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = c.Answer(rp.LeaderEpoch)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
