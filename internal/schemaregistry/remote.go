package schemaregistry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/wail-cdc/wail/internal/schema"
)

// Remote is an external Confluent-compatible registry (Confluent's,
// Apicurio's Confluent API, another wail's /registry) that typed tables
// use instead of wail's own (schema_registry.url): the same operations
// as Registry's, over the registry's REST API. Its refusals are *Error
// with the registry's status, error code and message, so callers branch
// on them as on Registry's (409: incompatible; 404: not found).
// Compatibility is the external registry's to check. Safe for concurrent
// use.
type Remote struct {
	cl   *sr.Client
	lim  Limits
	gate *compileGate
	// url is the registry's URL as errors show it, hide what hides its
	// password in a text (HideURLPassword).
	url      string
	hide     func(string) string
	onChange func(subject string)

	mu sync.Mutex
	// byID are the schemas compiled, by id, with the text and references
	// they were compiled from: an id deleted for good may be given again
	// (IMPORT mode), so a schema is reused only for the same text.
	byID map[int]remoteSchema
}

type remoteSchema struct {
	text   string
	refs   []Reference
	schema *schema.Schema
}

// RemoteOptions configures a Remote.
type RemoteOptions struct {
	// URL is the registry's base URL (https://registry:8081).
	URL string
	// TLS, when set, is the client's TLS configuration (CAs, client
	// certificate).
	TLS *tls.Config
	// Username and Password, when Username is set, go as HTTP basic auth.
	Username, Password string
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// Limits bound the schemas compiled (sizes, imports).
	Limits Limits
}

// NewRemote returns a client of the registry at o.URL. It does not call
// it.
func NewRemote(o RemoteOptions) (*Remote, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.TLS != nil {
		// A transport writes into its configuration (the ALPN protocols):
		// o.TLS may be shared.
		tr.TLSClientConfig = o.TLS.Clone()
	}
	opts := []sr.ClientOpt{sr.URLs(o.URL), sr.HTTPClient(&http.Client{Transport: tr, Timeout: timeout}), sr.UserAgent("wail")}
	if o.Username != "" {
		opts = append(opts, sr.BasicAuth(o.Username, o.Password))
	}
	hide := HideURLPassword(o.URL)
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: %w", hide(o.URL), hidden(err, hide))
	}
	lim := o.Limits.withDefaults()
	return &Remote{cl: cl, lim: lim, gate: newCompileGate(lim), url: hide(o.URL), hide: hide, byID: map[int]remoteSchema{}}, nil
}

// HideURLPassword returns what replaces, in a text, the password of a
// URL with credentials (https://user:password@host: the configuration
// refuses one as schema_registry.url, RemoteOptions.URL may be one) by "xxxxx", wherever a URL with those credentials appears
// (the registry's own URL, or one built on it that a client quotes in
// its errors): what wail says of the registry reaches API callers.
func HideURLPassword(raw string) func(string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return func(s string) string { return s }
	}
	if _, set := u.User.Password(); !set {
		return func(s string) string { return s }
	}
	shown := url.UserPassword(u.User.Username(), "xxxxx").String()
	return strings.NewReplacer("//"+u.User.String()+"@", "//"+shown+"@").Replace
}

// hiddenErr is an error whose text went through a HideURLPassword.
type hiddenErr struct {
	msg string
	err error
}

func (e *hiddenErr) Error() string { return e.msg }
func (e *hiddenErr) Unwrap() error { return e.err }

// hidden is err with its text through hide (err itself if that changes
// nothing).
func hidden(err error, hide func(string) string) error {
	if msg := hide(err.Error()); msg != err.Error() {
		return &hiddenErr{msg: msg, err: err}
	}
	return err
}

// OnChange makes fn run after each registration through this client.
func (r *Remote) OnChange(fn func(subject string)) { r.onChange = fn }

// remoteErr words a failed call: the registry's refusal as an *Error (its
// status, code and message), anything else (unreachable, TLS, timeout)
// wrapped with the registry's URL.
func (r *Remote) remoteErr(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden) {
		// Not a refusal of the schema: of wail's credentials.
		return fmt.Errorf("schema registry %s refused wail's credentials (HTTP %d: %s): check schema_registry.username, password and tls",
			r.url, re.StatusCode, r.hide(re.Message))
	}
	if errors.As(err, &re) {
		return &Error{Status: re.StatusCode, Code: re.ErrorCode, Message: fmt.Sprintf("schema registry %s: %s", r.url, r.hide(re.Message))}
	}
	return fmt.Errorf("schema registry %s: %w", r.url, hidden(err, r.hide))
}

// Compile compiles a schema with its references, fetched from the
// registry, without registering it.
func (r *Remote) Compile(ctx context.Context, req SchemaRequest) (*schema.Schema, error) {
	if e := req.validate(); e != nil {
		return nil, e
	}
	return r.compile(ctx, req.Schema, req.References, false)
}

// compile compiles a schema with its references fetched from the
// registry: live versions for a new schema, soft-deleted ones too for a
// stored one (Registry.compile).
func (r *Remote) compile(ctx context.Context, text string, refs []Reference, stored bool) (*schema.Schema, error) {
	if stored {
		ctx = sr.WithParams(ctx, sr.ShowDeleted)
	}
	return compileWith(ctx, r.gate, stored, r.lim, text, refs, func(ctx context.Context, ref Reference) (string, []Reference, string, error) {
		ss, err := r.cl.SchemaByVersion(ctx, ref.Subject, ref.Version)
		if err != nil {
			return "", nil, "", r.remoteErr(err)
		}
		return ss.Schema.Schema, references(ss.References), fmt.Sprintf("%s/%d", ref.Subject, ss.Version), nil
	})
}

func references(rs []sr.SchemaReference) []Reference {
	out := make([]Reference, len(rs))
	for i, x := range rs {
		out[i] = Reference{Name: x.Name, Subject: x.Subject, Version: x.Version}
	}
	return out
}

// Register registers a schema under a subject (the registry checks its
// compatibility) and returns its id.
func (r *Remote) Register(ctx context.Context, subject string, req SchemaRequest) (int, error) {
	if e := req.validate(); e != nil {
		return 0, e
	}
	s := sr.Schema{Schema: req.Schema, Type: sr.TypeProtobuf}
	for _, ref := range req.References {
		s.References = append(s.References, sr.SchemaReference{Name: ref.Name, Subject: ref.Subject, Version: ref.Version})
	}
	ss, err := r.cl.CreateSchema(ctx, subject, s)
	if err != nil {
		return 0, r.remoteErr(err)
	}
	if r.onChange != nil {
		r.onChange(subject)
	}
	return ss.ID, nil
}

// Versions lists a subject's versions (soft-deleted ones too with
// deleted).
func (r *Remote) Versions(ctx context.Context, subject string, deleted bool) ([]int, error) {
	if deleted {
		ctx = sr.WithParams(ctx, sr.ShowDeleted)
	}
	vs, err := r.cl.SubjectVersions(ctx, subject)
	if err != nil {
		return nil, r.remoteErr(err)
	}
	return vs, nil
}

// Latest returns the id and the compiled schema of a subject's newest
// version.
func (r *Remote) Latest(ctx context.Context, subject string) (int, *schema.Schema, error) {
	ss, err := r.cl.SchemaByVersion(ctx, subject, -1)
	if err != nil {
		return 0, nil, r.remoteErr(err)
	}
	s, err := r.compiled(ctx, ss.ID, ss.Schema)
	return ss.ID, s, err
}

// ByID returns the compiled schema of an id, asked of the registry each
// time (the caller caches it for a while): an id deleted for good there
// is not found (an *Error with status 404), not kept for good.
func (r *Remote) ByID(ctx context.Context, id int) (*schema.Schema, error) {
	sch, err := r.cl.SchemaByID(ctx, id)
	if err != nil {
		return nil, r.remoteErr(err)
	}
	return r.compiled(ctx, id, sch)
}

// compiled compiles the schema of an id, once per text and references.
func (r *Remote) compiled(ctx context.Context, id int, sch sr.Schema) (*schema.Schema, error) {
	refs := references(sch.References)
	r.mu.Lock()
	c, ok := r.byID[id]
	r.mu.Unlock()
	if ok && c.text == sch.Schema && slices.Equal(c.refs, refs) {
		return c.schema, nil
	}
	s, err := r.compile(ctx, sch.Schema, refs, true)
	if err != nil {
		return nil, fmt.Errorf("schema %d of %s: %w", id, r.url, err)
	}
	r.mu.Lock()
	if len(r.byID) >= 4096 {
		clear(r.byID)
	}
	r.byID[id] = remoteSchema{text: sch.Schema, refs: refs, schema: s}
	r.mu.Unlock()
	return s, nil
}

// LiveIDs returns the schema ids of a subject's versions, newest first.
func (r *Remote) LiveIDs(ctx context.Context, subject string) ([]int, error) {
	ss, err := r.cl.Schemas(ctx, subject)
	if err != nil {
		return nil, r.remoteErr(err)
	}
	ids := make([]int, 0, len(ss))
	for i := len(ss) - 1; i >= 0; i-- {
		ids = append(ids, ss[i].ID)
	}
	return ids, nil
}
