package config

import (
	"fmt"
	"time"
)

// API bounds what one client can make the server hold: how large a
// request may be (after decompression), how long its body may take to
// arrive, how long a client may leave a response unread, how long an idle
// connection stays open, and how many event streams are open.
//
// The request size of Put, Delete and Get follows from limits (see
// UnaryRequestBytes); a Write batch may be as large as max_batch_mutations
// such mutations, up to MaxWriteRequestBytes.
type API struct {
	// MaxWriteRequestBytes caps one Write batch, decoded (JSON or
	// protobuf) and decompressed.
	MaxWriteRequestBytes int64 `yaml:"max_write_request_bytes"`
	// MaxAdminRequestBytes caps a request to AdminService and
	// EventService.
	MaxAdminRequestBytes int64 `yaml:"max_admin_request_bytes"`
	// ReadHeaderTimeout bounds the arrival of a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds the arrival of a request's body, from the end of
	// its headers; not the work that follows, nor an event stream. A
	// write stream's: each batch's, from its first bytes.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds each write of a response (one event of a
	// stream): a client that does not take it within this loses the
	// stream (HTTP/2) or the connection (HTTP/1.1).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxRequestBytesInFlight bounds the bytes of request bodies the
	// process holds at once, over every connection and call: a body's
	// bytes are counted as they are read, until its call ends (a write
	// stream's batch: until it is answered; an event stream's request:
	// until it is read). Past it a call gets
	// resource_exhausted naming this setting, with a RetryInfo detail.
	// At least the largest request cap.
	MaxRequestBytesInFlight int64 `yaml:"max_request_bytes_in_flight"`
	// MaxConnections bounds the connections the API port holds open.
	// Past it, a new connection gets, to each request it sends within
	// 2 seconds, resource_exhausted (HTTP 503) naming this setting, and is
	// then closed (/healthz and /metrics are answered); past 64 such
	// connections at once, a new one is closed without an answer.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerClient bounds the connections of one client
	// address among MaxConnections (a larger value counts as
	// MaxConnections), so that one client (a leak of connections, a
	// slowloris from one host) cannot take every place. Past it, that
	// address's new connections are answered as past MaxConnections.
	// An IPv6 client counts by its /64 (one host is usually given a
	// whole /64), an IPv4 client by its address.
	// Behind a load balancer or proxy that does not keep client
	// addresses, its clients share its address: raise it to
	// MaxConnections there.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// MaxStreamsPerConnection bounds the calls (HTTP/2 streams) one
	// connection runs at once; clients open another connection for more.
	MaxStreamsPerConnection int `yaml:"max_streams_per_connection"`
	// MaxHeaderBytes bounds a request's headers (HTTP 431 past it).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// ReceiveWindowBytes is the HTTP/2 flow-control window of a connection
	// (each of its streams gets half, so that one that stops reading
	// leaves the others room): request bytes a client may send ahead of
	// what the server read. They wait in memory outside
	// MaxRequestBytesInFlight, so MaxConnections × this bounds them.
	ReceiveWindowBytes int `yaml:"receive_window_bytes"`
	// MaxSubscriptions bounds the open event streams (Subscribe and
	// Consume) of the process.
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// MaxSubscriptionsPerClient bounds the open Subscribe streams of one
	// client address (behind a load balancer or proxy, that is the
	// proxy's address).
	MaxSubscriptionsPerClient int `yaml:"max_subscriptions_per_client"`
	// SubscriptionBufferBytes bounds the events a stream holds read ahead
	// of its client (one event larger than this still passes alone).
	SubscriptionBufferBytes int `yaml:"subscription_buffer_bytes"`
	// MaxSubscriptionBufferedBytes bounds the events every stream of the
	// process holds read ahead of its client, all together. Past it a
	// stream holding events reads no further until its client took them,
	// and one holding none still reads one batch: clients that read
	// slowly get back-pressure, not errors, and never stop the others. At
	// least subscription_buffer_bytes.
	MaxSubscriptionBufferedBytes int64 `yaml:"max_subscription_buffered_bytes"`
	// SnapshotMaxKeys bounds the keys a from "snapshot" stream remembers
	// while its snapshot runs (the chunks in flight, and the keys that
	// got an event meanwhile); past it the stream fails with
	// resource_exhausted.
	SnapshotMaxKeys int `yaml:"snapshot_max_keys"`
	// SnapshotChunkKeys is how many keys a snapshot reads per store page.
	SnapshotChunkKeys int `yaml:"snapshot_chunk_keys"`
	// GroupLeaseTimeout is how long a consumer group member may leave
	// delivered events unacknowledged before it loses its partitions (and
	// its unacknowledged events go to other members); with several
	// processes sharing a store and Kafka, also how long a process may
	// go without renewing its lease on a group before its members'
	// partitions go to members on other processes.
	GroupLeaseTimeout time.Duration `yaml:"group_lease_timeout"`
	// GroupCommitRefresh is how old the last commit of the position of a
	// partition a consumer group member (or a sink) holds may get before
	// its process commits it again, unchanged: Kafka forgets a committed
	// position offsets.retention.minutes (7 days by default) after its
	// last commit, since wail's groups have no Kafka members, so a quiet
	// table's position was lost while a member held it. Keep it well
	// below the brokers' offsets.retention.minutes. The embedded log
	// keeps positions for ever: nothing is committed again there.
	GroupCommitRefresh time.Duration `yaml:"group_commit_refresh"`
	// CompressEvents gzips Subscribe messages of 4 KiB or more for clients
	// that accept gzip. Off by default: a batch of events compresses well,
	// but on a fast network gzip costs the server more CPU per event than
	// sending the bytes (docs/benchmarks.md); turn it on when bandwidth to
	// subscribers is scarce.
	CompressEvents bool `yaml:"compress_events"`
	// CompressWriteAnswers gzips answers of Write and WriteStream of 4 KiB
	// or more (about 100 mutations) for clients that accept gzip, as
	// connect-go clients do by default. Off by default: an answer holds a
	// version and flags per mutation, and at high write rates gzip cost
	// the server about 3% of its CPU for a few bytes per write
	// (docs/benchmarks.md). Get and the other services are not affected.
	CompressWriteAnswers bool `yaml:"compress_write_answers"`
	// MaxWriteStreams bounds the open WriteStream streams of the process.
	MaxWriteStreams int `yaml:"max_write_streams"`
	// MaxWriteStreamsPerClient bounds the open WriteStream streams of one
	// client address (a producer client needs one).
	MaxWriteStreamsPerClient int `yaml:"max_write_streams_per_client"`
	// WriteStreamInFlight is how many batches of one write stream run at
	// once (answers not yet taken by the client count): the server reads
	// no more of a stream while that many are out. At least 8: the Go
	// producer sends up to 8 batches unanswered, each to be read at once.
	WriteStreamInFlight int `yaml:"write_stream_in_flight"`
}

func defaultAPI() API {
	return API{
		MaxWriteRequestBytes: 32 << 20,
		MaxAdminRequestBytes: 1 << 20,
		ReadHeaderTimeout:    10 * time.Second,
		ReadTimeout:          30 * time.Second,
		WriteTimeout:         30 * time.Second,
		IdleTimeout:          2 * time.Minute,
		// 16 Write batches at the largest default size; without a cap,
		// bodies trickled in at api.read_timeout held what the clients'
		// bandwidth sent in that time.
		MaxRequestBytesInFlight: 512 << 20,
		// Each connection may hold max_header_bytes while its headers
		// arrive, and max_streams_per_connection calls.
		MaxConnections: 4096, MaxStreamsPerConnection: 100, MaxHeaderBytes: 64 << 10,
		// A quarter of the places: a client that leaks connections
		// leaves the others three quarters.
		MaxConnectionsPerClient: 1024,
		// A write stream's batches flow at 128 KiB a round trip (half the
		// connection's: 500 MB/s at 0.25 ms); 4096 connections hold at
		// most 1 GiB unread (Go's default, 1 MiB, let them hold 4 GiB).
		ReceiveWindowBytes: 256 << 10,
		MaxSubscriptions:   1024,
		// `wail tail` is one stream; a service with a few consumers per
		// host stays well below.
		MaxSubscriptionsPerClient: 64,
		SubscriptionBufferBytes:   4 << 20,
		// 128 streams' full buffers; at max_subscriptions, clients that
		// read nothing held 4 GiB.
		MaxSubscriptionBufferedBytes: 512 << 20,
		SnapshotMaxKeys:              1_000_000,
		SnapshotChunkKeys:            512,
		GroupLeaseTimeout:            30 * time.Second,
		GroupCommitRefresh:           time.Hour,
		// A producer client opens one stream and multiplexes on it.
		MaxWriteStreams: 1024, MaxWriteStreamsPerClient: 64, WriteStreamInFlight: 8,
	}
}

// mutationBytes is the most one mutation takes on the wire: key and value
// base64 in JSON (4/3), plus the table name, op and punctuation.
func (c *Config) mutationBytes() int64 {
	return int64(c.Limits.MaxKeyBytes+c.Limits.MaxValueBytes)*4/3 + 256
}

// UnaryRequestBytes is the request cap of Put, Delete and Get: one mutation
// at limits.max_key_bytes and limits.max_value_bytes, plus 4 KiB.
func (c *Config) UnaryRequestBytes() int64 { return c.mutationBytes() + 4<<10 }

// WriteRequestBytes is the request cap of Write: max_batch_mutations
// mutations at their limits, at most api.max_write_request_bytes.
func (c *Config) WriteRequestBytes() int64 {
	return min(int64(c.Limits.MaxBatchMutations)*c.mutationBytes()+4<<10, c.API.MaxWriteRequestBytes)
}

func (c *Config) validateAPI() []error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	a := c.API
	check(a.MaxWriteRequestBytes >= c.UnaryRequestBytes() && a.MaxWriteRequestBytes <= 1<<30,
		"api.max_write_request_bytes %d out of range %d..%d (at least one mutation at limits.max_key_bytes and max_value_bytes)",
		a.MaxWriteRequestBytes, c.UnaryRequestBytes(), 1<<30)
	check(a.MaxAdminRequestBytes >= 4<<10 && a.MaxAdminRequestBytes <= 1<<30,
		"api.max_admin_request_bytes %d out of range 4096..%d", a.MaxAdminRequestBytes, 1<<30)
	largest := max(c.WriteRequestBytes(), c.UnaryRequestBytes(), a.MaxAdminRequestBytes) + 5 // + a stream message's envelope
	check(a.MaxRequestBytesInFlight >= largest && a.MaxRequestBytesInFlight <= 1<<40,
		"api.max_request_bytes_in_flight %d out of range %d..%d (at least the largest request: api.max_write_request_bytes, api.max_admin_request_bytes)",
		a.MaxRequestBytesInFlight, largest, int64(1)<<40)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read_header_timeout", a.ReadHeaderTimeout}, {"read_timeout", a.ReadTimeout}, {"write_timeout", a.WriteTimeout}, {"idle_timeout", a.IdleTimeout}} {
		check(d.v >= 100*time.Millisecond, "api.%s %s is below 100ms", d.name, d.v)
	}
	check(a.MaxConnections >= 1 && a.MaxConnections <= 1_000_000, "api.max_connections %d out of range 1..1000000", a.MaxConnections)
	check(a.MaxConnectionsPerClient >= 1 && a.MaxConnectionsPerClient <= 1_000_000,
		"api.max_connections_per_client %d out of range 1..1000000 (above api.max_connections it counts as api.max_connections)", a.MaxConnectionsPerClient)
	check(a.MaxStreamsPerConnection >= 1 && a.MaxStreamsPerConnection <= 10_000,
		"api.max_streams_per_connection %d out of range 1..10000", a.MaxStreamsPerConnection)
	check(a.ReceiveWindowBytes >= 64<<10 && a.ReceiveWindowBytes <= 64<<20,
		"api.receive_window_bytes %d out of range %d..%d", a.ReceiveWindowBytes, 64<<10, 64<<20)
	check(a.MaxHeaderBytes >= 4<<10 && a.MaxHeaderBytes <= 16<<20, "api.max_header_bytes %d out of range 4096..%d", a.MaxHeaderBytes, 16<<20)
	check(a.MaxSubscriptions >= 1, "api.max_subscriptions must be positive")
	check(a.MaxSubscriptionsPerClient >= 1 && a.MaxSubscriptionsPerClient <= a.MaxSubscriptions,
		"api.max_subscriptions_per_client %d out of range 1..%d (api.max_subscriptions)", a.MaxSubscriptionsPerClient, a.MaxSubscriptions)
	check(a.MaxWriteStreams >= 1, "api.max_write_streams must be positive")
	check(a.MaxWriteStreamsPerClient >= 1 && a.MaxWriteStreamsPerClient <= a.MaxWriteStreams,
		"api.max_write_streams_per_client %d out of range 1..%d (api.max_write_streams)", a.MaxWriteStreamsPerClient, a.MaxWriteStreams)
	check(a.WriteStreamInFlight >= 8 && a.WriteStreamInFlight <= 1024,
		"api.write_stream_in_flight %d out of range 8..1024 (a Go producer sends up to 8 batches at once; each must be read at once)", a.WriteStreamInFlight)
	check(a.SubscriptionBufferBytes >= 64<<10, "api.subscription_buffer_bytes %d is below 64 KiB", a.SubscriptionBufferBytes)
	check(a.MaxSubscriptionBufferedBytes >= int64(a.SubscriptionBufferBytes) && a.MaxSubscriptionBufferedBytes <= 1<<40,
		"api.max_subscription_buffered_bytes %d out of range %d..%d (at least api.subscription_buffer_bytes)",
		a.MaxSubscriptionBufferedBytes, a.SubscriptionBufferBytes, int64(1)<<40)
	check(a.GroupLeaseTimeout >= 100*time.Millisecond, "api.group_lease_timeout %s is below 100ms", a.GroupLeaseTimeout)
	check(a.GroupCommitRefresh >= time.Minute && a.GroupCommitRefresh <= 24*time.Hour,
		"api.group_commit_refresh %s out of range 1m..24h (keep it well below the Kafka brokers' offsets.retention.minutes)", a.GroupCommitRefresh)
	check(a.SnapshotChunkKeys >= 1 && a.SnapshotChunkKeys <= 100_000, "api.snapshot_chunk_keys %d out of range 1..100000", a.SnapshotChunkKeys)
	check(a.SnapshotMaxKeys >= 8*a.SnapshotChunkKeys, "api.snapshot_max_keys %d is below 8 chunks (8 * api.snapshot_chunk_keys = %d)",
		a.SnapshotMaxKeys, 8*a.SnapshotChunkKeys)
	return errs
}
