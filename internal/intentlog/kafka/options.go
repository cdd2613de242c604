package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Options configures a Log. Only Brokers is required.
type Options struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ClientID is the Kafka client id (default "wail").
	ClientID string

	// ReplicationFactor of the topics CreateTopic makes: 0 means 1 (right for
	// a single test broker, wrong for production: set 3, or -1 for the
	// brokers' default.replication.factor).
	ReplicationFactor int16
	// TopicConfigs are extra configs for the topics CreateTopic makes, e.g.
	// {"min.insync.replicas": "2"}; they override the ones derived from
	// intentlog.TopicOptions.
	TopicConfigs map[string]string
	// TopicNames rename wail's topics on the brokers (names.go); topics
	// that match no prefix keep their names.
	TopicNames []TopicName
	// MaxMessageBytes is the largest record batch the producer sends and the
	// max.message.bytes of the topics CreateTopic makes (default 4 MiB: a
	// 1 MiB value plus key, headers and event envelope fits). Larger records
	// fail with intentlog.ErrTooLarge.
	MaxMessageBytes int32

	// TLS, when set, is used as is. Otherwise TLS is on when TLSCAFile or
	// TLSCertFile is set: CA file (PEM) to verify the brokers (default: the
	// system roots), client certificate and key (PEM) for mutual TLS.
	TLS         *tls.Config
	TLSCAFile   string
	TLSCertFile string
	TLSKeyFile  string
	// SASL authenticates the connections when Mechanism is set.
	SASL SASL

	// DialTimeout bounds each connection attempt (default 10 s).
	DialTimeout time.Duration
	// RequestTimeout bounds admin requests made without a deadline of the
	// caller's (NewReader's checks, Close's leave); it is also the broker-side
	// produce timeout, and how long Bounds, StableEnd and OffsetForTime
	// retry a partition without a leader before ErrPartitionUnavailable
	// (default 30 s).
	RequestTimeout time.Duration
	// HangingAfter is how long a transaction must have been silent on a
	// partition before AbortHanging considers it (default 30s): well above
	// the transaction timeout of wail's producers (10s by default), so by
	// then the coordinator has ended every transaction it still knew of.
	HangingAfter time.Duration
	// ReaderIdle is how long a Reader's caller may go without calling Next
	// before the reader lets its client go (default 10 s): the fetch the
	// client buffered ahead (up to 1 MiB, decoded) and its connections,
	// which an event stream whose client reads nothing would otherwise
	// hold per partition for as long as it stays open. The next Next makes
	// a client again at the reader's position (validated by its leader
	// epoch), and fails with ErrUnknownTopic if the topic is another one
	// of the same name by then.
	ReaderIdle time.Duration
	// Linger is how long the producer waits for more records before sending
	// a partition's batch (default 0: send at once; concurrent Appends still
	// share requests while earlier ones are in flight). See the benchmark.
	Linger time.Duration
	// Compression of produced batches: "none", "snappy", "lz4" or "zstd"
	// (default "none": wail records are small and mostly unique).
	Compression string

	// Logger receives the client's warnings and errors (default: discard).
	Logger *slog.Logger
	// ExtraClientOpts are appended to every kgo client the Log creates (the
	// producer/admin client and each reader's): an escape hatch for tuning
	// that has no field here. Options that change partitioning, acks,
	// idempotence or isolation break the guarantees in the package comment.
	ExtraClientOpts []kgo.Opt
}

// SASL configures SASL authentication. The password is never logged.
type SASL struct {
	// Mechanism: "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512" ("" = off).
	Mechanism string
	User      string
	Password  string
}

// String hides the password, so that printing Options never shows it.
func (s SASL) String() string {
	if s.Mechanism == "" {
		return "none"
	}
	return s.Mechanism + " user=" + s.User + " password=<redacted>"
}

// GoString hides the password from %#v too.
func (s SASL) GoString() string { return "kafka.SASL{" + s.String() + "}" }

const (
	defaultClientID        = "wail"
	defaultMaxMessageBytes = 4 << 20
	defaultDialTimeout     = 10 * time.Second
	defaultRequestTimeout  = 30 * time.Second
)

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if len(o.Brokers) == 0 {
		return o, errors.New("no brokers")
	}
	if o.ClientID == "" {
		o.ClientID = defaultClientID
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = 1
	}
	if o.ReplicationFactor < -1 {
		return o, fmt.Errorf("replication factor %d: want -1 (broker default) or >= 1", o.ReplicationFactor)
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = defaultMaxMessageBytes
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.HangingAfter <= 0 {
		o.HangingAfter = 30 * time.Second
	}
	if o.ReaderIdle <= 0 {
		o.ReaderIdle = 10 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = defaultRequestTimeout
	}
	if o.Linger < 0 {
		o.Linger = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := names(o.TopicNames).validate(); err != nil {
		return o, err
	}
	return o, nil
}

// commonOpts are the kgo options of every client of the Log.
func (o *Options) commonOpts() ([]kgo.Opt, error) {
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	netDialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	dial := netDialer.DialContext
	if tlsCfg != nil {
		dial = (&tls.Dialer{NetDialer: netDialer, Config: tlsCfg}).DialContext
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ClientID(o.ClientID),
		kgo.Dialer(dial),
		kgo.WithLogger(slogLogger{o.Logger}),
		// A topic created a moment ago is found quickly (default 5 s).
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	mech, err := o.SASL.mechanism()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// tlsConfig returns the TLS configuration, nil for plaintext.
func (o *Options) tlsConfig() (*tls.Config, error) {
	if o.TLS != nil {
		return o.TLS.Clone(), nil
	}
	if o.TLSCAFile == "" && o.TLSCertFile == "" && o.TLSKeyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSCAFile != "" {
		pem, err := os.ReadFile(o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificate in it", o.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return nil, errors.New("tls: TLSCertFile and TLSKeyFile go together")
	}
	if o.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// mechanism returns the SASL mechanism, nil when SASL is off.
func (s SASL) mechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sasl mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
}

// compression returns the producer's codec.
func (o *Options) compression() (kgo.CompressionCodec, error) {
	switch strings.ToLower(o.Compression) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %q: want none, snappy, lz4, zstd or gzip", o.Compression)
}

// slogLogger adapts slog to kgo.Logger: warnings and errors only (kgo's
// info level logs every connection and metadata refresh).
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (s slogLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	s.l.Log(context.Background(), lvl, "kafka client: "+msg, keyvals...)
}
