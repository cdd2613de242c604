package schemaregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// contentType is the Confluent registry's media type; clients also accept
// plain JSON.
const contentType = "application/vnd.schemaregistry.v1+json"

// maxBodyBytes bounds a request body past the schema itself (JSON quoting
// and references).
const maxBodyOverhead = 64 << 10

// Handler serves the registry's REST API at the root of its path space;
// mount it under a prefix with http.StripPrefix. Errors have the Confluent
// body, {"error_code": N, "message": "..."}. Requests are counted in reg
// (nil: not counted) as wail_schema_registry_requests_total{route,code}:
// the route's pattern and the Confluent error code, 0 for success.
func Handler(r *Registry, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wail_schema_registry_requests_total",
		Help: "Schema registry requests by route and Confluent error code (0: answered).",
	}, []string{"route", "code"})
	if reg != nil {
		if err := reg.Register(requests); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				panic(err) // a name clash with another metric: a bug
			}
			requests = dup.ExistingCollector.(*prometheus.CounterVec) // a second handler of one server
		}
	}
	h := &handler{r: r, logger: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { h.reply(w, map[string]any{}) })
	mux.HandleFunc("GET /schemas", h.schemas)
	mux.HandleFunc("GET /schemas/types", func(w http.ResponseWriter, _ *http.Request) { h.reply(w, []string{Protobuf}) })
	mux.HandleFunc("GET /schemas/ids/{id}", h.schemaByID)
	mux.HandleFunc("GET /schemas/ids/{id}/schema", h.schemaTextByID)
	mux.HandleFunc("GET /schemas/ids/{id}/subjects", h.subjectsByID)
	mux.HandleFunc("GET /schemas/ids/{id}/versions", h.versionsByID)
	mux.HandleFunc("GET /subjects", h.subjects)
	mux.HandleFunc("POST /subjects/{subject}", h.lookup)
	mux.HandleFunc("DELETE /subjects/{subject}", h.deleteSubject)
	mux.HandleFunc("GET /subjects/{subject}/versions", h.versions)
	mux.HandleFunc("POST /subjects/{subject}/versions", h.register)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}", h.version)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}/schema", h.versionText)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}/referencedby", h.referencedBy)
	mux.HandleFunc("DELETE /subjects/{subject}/versions/{version}", h.deleteVersion)
	mux.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", h.check)
	mux.HandleFunc("POST /compatibility/subjects/{subject}/versions", h.check)
	mux.HandleFunc("GET /config", h.getConfig)
	mux.HandleFunc("PUT /config", h.putConfig)
	mux.HandleFunc("DELETE /config", h.deleteConfig)
	mux.HandleFunc("GET /config/{subject}", h.getConfig)
	mux.HandleFunc("PUT /config/{subject}", h.putConfig)
	mux.HandleFunc("DELETE /config/{subject}", h.deleteConfig)
	mux.HandleFunc("GET /mode", h.getMode)
	mux.HandleFunc("PUT /mode", h.putMode)
	mux.HandleFunc("DELETE /mode", h.deleteMode)
	mux.HandleFunc("GET /mode/{subject}", h.getMode)
	mux.HandleFunc("PUT /mode/{subject}", h.putMode)
	mux.HandleFunc("DELETE /mode/{subject}", h.deleteMode)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		cw := &codeWriter{ResponseWriter: w}
		_, pattern := mux.Handler(req)
		if pattern == "" {
			pattern = "unknown"
			if allow := allowed(mux, req); len(allow) > 0 {
				// A route of the API with another method: 405, as
				// Confluent's registry answers.
				w.Header().Set("Allow", strings.Join(allow, ", "))
				h.fail(cw, errf(http.StatusMethodNotAllowed, 405, "HTTP 405 Method Not Allowed: %s %s takes %s", req.Method, req.URL.Path, strings.Join(allow, ", ")))
			} else {
				h.fail(cw, errf(http.StatusNotFound, 404, "HTTP 404 Not Found: %s %s is not part of the schema registry API", req.Method, req.URL.Path))
			}
		} else if e := mediaType(req); e != nil {
			h.fail(cw, e)
		} else {
			mux.ServeHTTP(cw, req)
		}
		requests.WithLabelValues(pattern, strconv.Itoa(cw.code)).Inc()
	})
}

// bodyTypes are the media types a request body may have, as Confluent's
// registry takes them.
var bodyTypes = []string{"application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json",
	"application/json", "application/octet-stream"}

// mediaType refuses a POST or PUT whose body is of another media type, or
// of none (415): a browser sends text/plain and form bodies, and bodies
// with no Content-Type (a no-cors fetch of a Blob or an ArrayBuffer), to
// another site without asking first, so a page the operator visits could
// otherwise register schemas or change the mode with the browser's stored
// credentials (Basic, a client certificate). Confluent's registry reads a
// body without a type as octet-stream; its clients always send one.
func mediaType(req *http.Request) *Error {
	if req.Method != http.MethodPost && req.Method != http.MethodPut {
		return nil
	}
	ct := req.Header.Get("Content-Type")
	if ct == "" {
		return errf(http.StatusUnsupportedMediaType, 415, "HTTP 415 Unsupported Media Type: the body has no Content-Type; send Content-Type: %s", contentType)
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && slices.Contains(bodyTypes, strings.ToLower(mt)) {
		return nil
	}
	return errf(http.StatusUnsupportedMediaType, 415, "HTTP 415 Unsupported Media Type: a body of type %q; send Content-Type: %s", ct, contentType)
}

// allowed is the methods mux takes for req's path.
func allowed(mux *http.ServeMux, req *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := req.Clone(req.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// codeWriter notes the Confluent error code a handler answered with.
type codeWriter struct {
	http.ResponseWriter
	code int
}

type handler struct {
	r      *Registry
	logger *slog.Logger
}

func (h *handler) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = json.NewEncoder(w).Encode(v)
}

// text answers a schema's text, which holds whatever its registrant
// wrote (markup in a comment): nosniff, or a browser that sniffs types
// could render it as a page of wail's origin.
func (h *handler) text(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, s)
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.DeadlineExceeded):
		e = errf(http.StatusInternalServerError, CodeTimeout, "The operation timed out: %v", err)
	case errors.Is(err, context.Canceled): // the client hung up: nothing for an operator
		e = errf(http.StatusInternalServerError, CodeTimeout, "The request was canceled: %v", err)
	default:
		h.logger.Error("schema registry: storage failed; the request was refused, check the store (wail doctor)", "err", err)
		e = errf(http.StatusInternalServerError, CodeStore, "Error in the backend data store: %v", err)
	}
	if cw, ok := w.(*codeWriter); ok {
		cw.code = e.Code
	}
	WriteError(w, e)
}

// WriteError answers e with the Confluent registry's error body, which
// its clients parse; the server's gate answers its refusals of registry
// requests (401, 403, 429, 503) with it too.
func WriteError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

// do replies with v or the error.
func do[T any](h *handler, w http.ResponseWriter, v T, err error) {
	if err != nil {
		h.fail(w, err)
		return
	}
	h.reply(w, v)
}

func flag(req *http.Request, name string) bool {
	b, _ := strconv.ParseBool(req.URL.Query().Get(name))
	return b
}

// page applies a list request's offset and limit, as Confluent's registry
// pages its lists: skip offset items (none when it is not a positive
// number), then keep limit (all when it is not a positive number).
func page[T any](req *http.Request, list []T) []T { return pageOf(req, list, 0) }

// schemasLimit is the most schemas GET /schemas answers, as Confluent's
// registry (schema.search.default.limit and schema.search.max.limit):
// every schema text of a large registry in one answer is megabytes.
const schemasLimit = 1000

// pageOf is page with at most max items (0: no bound): a limit that is
// not a positive number up to max gives max, as in Confluent's registry
// (normalizeLimit).
func pageOf[T any](req *http.Request, list []T, max int) []T {
	q := req.URL.Query()
	if off, err := strconv.Atoi(q.Get("offset")); err == nil && off > 0 {
		list = list[min(off, len(list)):]
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 || max > 0 && limit > max {
		limit = max
	}
	if limit > 0 && limit < len(list) {
		list = list[:limit]
	}
	return list
}

func (h *handler) id(w http.ResponseWriter, req *http.Request) (int, bool) {
	id, err := strconv.Atoi(req.PathValue("id"))
	if err != nil || id < 1 {
		h.fail(w, errf(http.StatusNotFound, CodeSchemaNotFound, "Schema %s not found", req.PathValue("id")))
		return 0, false
	}
	return id, true
}

func (h *handler) versionParam(w http.ResponseWriter, req *http.Request) (int, bool) {
	v, e := parseVersion(req.PathValue("version"))
	if e != nil {
		h.fail(w, e)
		return 0, false
	}
	return v, true
}

// body decodes a schema request, bounded by the schema size limit.
func (h *handler) body(w http.ResponseWriter, req *http.Request) (SchemaRequest, bool) {
	var sr SchemaRequest
	limit := int64(h.r.lim.MaxSchemaBytes)*2 + maxBodyOverhead // JSON may double a text's size
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, limit))
	if err := dec.Decode(&sr); err != nil {
		h.fail(w, bodyError(err, fmt.Sprintf("schema_registry.max_schema_bytes is %d", h.r.lim.MaxSchemaBytes), "a schema request"))
		return sr, false
	}
	return sr, true
}

// ErrBusy, wrapped in the error of a request body's read, is the server
// refusing the body for now (wail serve: api.max_request_bytes_in_flight
// bytes of bodies held). It is answered 429, which the Confluent clients
// retry; a 422 made them give up on a valid schema.
var ErrBusy = errors.New("the server is busy")

// bodyError is the refusal of a request body that did not decode: too
// large (413; limit says which setting), not arrived in time (408, as the
// Confluent registry's web layer answers: the server's read deadline,
// api.read_timeout under wail serve), refused for now (429: ErrBusy),
// else not JSON of the request's shape (400 with error_code 400, as
// Confluent's JsonParseExceptionMapper and JsonMappingExceptionMapper
// answer; what names the body expected).
func bodyError(err error, limit, what string) *Error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errf(http.StatusRequestEntityTooLarge, CodeSchemaTooLarge, "The request is over %d bytes (%s)", tooBig.Limit, limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errf(http.StatusRequestTimeout, http.StatusRequestTimeout, "The request body did not arrive in time: %v", err)
	case errors.Is(err, ErrBusy):
		return errf(http.StatusTooManyRequests, http.StatusTooManyRequests, "%v", err)
	}
	return errf(http.StatusBadRequest, http.StatusBadRequest, "The body is not %s in JSON: %v", what, err)
}

// formatted applies a request's format parameter to a schema answer, as
// the Confluent registry does for Protobuf: "serialized" answers the
// schema's file as a base64 FileDescriptorProto (what confluent-kafka's
// deserializers ask for when given a registry client); any other format
// the text as registered (Confluent ignores formats it does not know, for
// forward compatibility).
func (h *handler) formatted(req *http.Request, s SubjectSchema, err error) (SubjectSchema, error) {
	if err != nil || req.URL.Query().Get("format") != "serialized" {
		return s, err
	}
	c, err := h.r.ByID(req.Context(), s.ID)
	if err != nil {
		return s, err
	}
	s.Schema = c.Serialized()
	return s, nil
}

func (h *handler) schemaByID(w http.ResponseWriter, req *http.Request) {
	if id, ok := h.id(w, req); ok {
		s, err := h.r.SchemaByID(req.Context(), id)
		s, err = h.formatted(req, s, err)
		do(h, w, struct {
			SchemaType string      `json:"schemaType"`
			Schema     string      `json:"schema"`
			References []Reference `json:"references,omitempty"`
		}{s.SchemaType, s.Schema, s.References}, err)
	}
}

func (h *handler) schemaTextByID(w http.ResponseWriter, req *http.Request) {
	if id, ok := h.id(w, req); ok {
		s, err := h.r.SchemaByID(req.Context(), id)
		s, err = h.formatted(req, s, err)
		if err != nil {
			h.fail(w, err)
			return
		}
		h.text(w, s.Schema)
	}
}

func (h *handler) subjectsByID(w http.ResponseWriter, req *http.Request) {
	if id, ok := h.id(w, req); ok {
		us, err := h.r.Usages(req.Context(), id, flag(req, "deleted"))
		names := []string{}
		for _, u := range us {
			if len(names) == 0 || names[len(names)-1] != u.Subject {
				names = append(names, u.Subject)
			}
		}
		do(h, w, page(req, names), err)
	}
}

func (h *handler) versionsByID(w http.ResponseWriter, req *http.Request) {
	if id, ok := h.id(w, req); ok {
		us, err := h.r.Usages(req.Context(), id, flag(req, "deleted"))
		do(h, w, page(req, us), err)
	}
}

// filter reads a list request's deleted, deletedOnly and (negatives: the
// versions list) deletedAsNegative parameters; deletedOnly wins over
// deleted, and deletedAsNegative over both, as in Confluent's registry.
func filter(req *http.Request, negatives bool) lookup {
	switch {
	case negatives && flag(req, "deletedAsNegative"):
		return deletedAsNeg
	case flag(req, "deletedOnly"):
		return deletedOnly
	case flag(req, "deleted"):
		return withDeleted
	}
	return liveOnly
}

func (h *handler) schemas(w http.ResponseWriter, req *http.Request) {
	s, err := h.r.Schemas(req.Context(), req.URL.Query().Get("subjectPrefix"), flag(req, "deleted"), flag(req, "latestOnly"))
	do(h, w, pageOf(req, s, schemasLimit), err)
}

func (h *handler) subjects(w http.ResponseWriter, req *http.Request) {
	s, err := h.r.subjects(req.Context(), req.URL.Query().Get("subjectPrefix"), filter(req, false))
	do(h, w, page(req, s), err)
}

func (h *handler) versions(w http.ResponseWriter, req *http.Request) {
	v, err := h.r.versions(req.Context(), req.PathValue("subject"), filter(req, true))
	do(h, w, page(req, v), err)
}

func (h *handler) version(w http.ResponseWriter, req *http.Request) {
	if v, ok := h.versionParam(w, req); ok {
		s, err := h.r.Version(req.Context(), req.PathValue("subject"), v, flag(req, "deleted"))
		s, err = h.formatted(req, s, err)
		do(h, w, s, err)
	}
}

func (h *handler) versionText(w http.ResponseWriter, req *http.Request) {
	if v, ok := h.versionParam(w, req); ok {
		s, err := h.r.Version(req.Context(), req.PathValue("subject"), v, flag(req, "deleted"))
		s, err = h.formatted(req, s, err)
		if err != nil {
			h.fail(w, err)
			return
		}
		h.text(w, s.Schema)
	}
}

func (h *handler) referencedBy(w http.ResponseWriter, req *http.Request) {
	if v, ok := h.versionParam(w, req); ok {
		ids, err := h.r.ReferencedBy(req.Context(), req.PathValue("subject"), v, flag(req, "deleted"))
		do(h, w, page(req, ids), err)
	}
}

func (h *handler) register(w http.ResponseWriter, req *http.Request) {
	if sr, ok := h.body(w, req); ok {
		sr.Normalize = flag(req, "normalize")
		id, err := h.r.Register(req.Context(), req.PathValue("subject"), sr)
		do(h, w, struct {
			ID int `json:"id"`
		}{id}, err)
	}
}

func (h *handler) lookup(w http.ResponseWriter, req *http.Request) {
	if sr, ok := h.body(w, req); ok {
		sr.Normalize = flag(req, "normalize")
		s, err := h.r.Lookup(req.Context(), req.PathValue("subject"), sr, flag(req, "deleted"))
		do(h, w, s, err)
	}
}

func (h *handler) deleteSubject(w http.ResponseWriter, req *http.Request) {
	vs, err := h.r.DeleteSubject(req.Context(), req.PathValue("subject"), flag(req, "permanent"))
	do(h, w, vs, err)
}

func (h *handler) deleteVersion(w http.ResponseWriter, req *http.Request) {
	if v, ok := h.versionParam(w, req); ok {
		n, err := h.r.DeleteVersion(req.Context(), req.PathValue("subject"), v, flag(req, "permanent"))
		do(h, w, n, err)
	}
}

func (h *handler) check(w http.ResponseWriter, req *http.Request) {
	version, all := latest, req.PathValue("version") == ""
	if !all {
		var ok bool
		if version, ok = h.versionParam(w, req); !ok {
			return
		}
	}
	sr, ok := h.body(w, req)
	if !ok {
		return
	}
	msgs, err := h.r.Check(req.Context(), req.PathValue("subject"), version, all, sr)
	var e *Error
	if errors.As(err, &e) && e.Code == CodeInvalidSchema && flag(req, "verbose") {
		msgs, err = []string{e.Message}, nil // verbose: an invalid schema is an answer
	}
	// messages only when verbose, then always (an empty list when
	// compatible), as Confluent's answer.
	resp := struct {
		IsCompatible bool      `json:"is_compatible"`
		Messages     *[]string `json:"messages,omitempty"`
	}{IsCompatible: len(msgs) == 0}
	if flag(req, "verbose") {
		if msgs == nil {
			msgs = []string{}
		}
		resp.Messages = &msgs
	}
	do(h, w, resp, err)
}

func (h *handler) getConfig(w http.ResponseWriter, req *http.Request) {
	c, err := h.r.Config(req.Context(), req.PathValue("subject"), flag(req, "defaultToGlobal"))
	do(h, w, struct {
		Compatibility string `json:"compatibilityLevel,omitempty"`
		Normalize     *bool  `json:"normalize,omitempty"`
	}{c.Compatibility, c.Normalize}, err)
}

func (h *handler) putConfig(w http.ResponseWriter, req *http.Request) {
	var body struct {
		Config
		// Level is the name GET answers the level under; Confluent reads
		// only "compatibility" (and ignores this one), so a PUT of what GET
		// answered would change nothing there. "compatibility" wins.
		Level string `json:"compatibilityLevel"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBodyOverhead)).Decode(&body); err != nil {
		h.fail(w, bodyError(err, "a compatibility level's body", "a compatibility level's body"))
		return
	}
	b := body.Config
	if b.Compatibility == "" {
		b.Compatibility = body.Level
	}
	if b.Compatibility == "" && b.Normalize == nil {
		h.fail(w, errf(http.StatusUnprocessableEntity, CodeInvalidCompatibility, "Invalid compatibility level: send {\"compatibility\": \"BACKWARD\"} or another level, or {\"normalize\": true}"))
		return
	}
	_, err := h.r.SetConfig(req.Context(), req.PathValue("subject"), b)
	c, _ := h.r.Config(req.Context(), req.PathValue("subject"), true)
	do(h, w, c, err)
}

func (h *handler) deleteConfig(w http.ResponseWriter, req *http.Request) {
	prev, err := h.r.SetCompatibility(req.Context(), req.PathValue("subject"), "")
	do(h, w, map[string]string{"compatibilityLevel": string(prev), "compatibility": string(prev)}, err)
}

type modeBody struct {
	Mode string `json:"mode"`
}

func (h *handler) getMode(w http.ResponseWriter, req *http.Request) {
	m, err := h.r.Mode(req.Context(), req.PathValue("subject"), flag(req, "defaultToGlobal"))
	do(h, w, modeBody{m}, err)
}

func (h *handler) putMode(w http.ResponseWriter, req *http.Request) {
	var b modeBody
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBodyOverhead)).Decode(&b); err != nil {
		h.fail(w, bodyError(err, "a mode's body", "a mode's body"))
		return
	}
	if b.Mode == "" {
		h.fail(w, errf(http.StatusUnprocessableEntity, CodeInvalidMode, "Invalid mode: send {\"mode\": \"READWRITE\"} or another mode"))
		return
	}
	_, err := h.r.SetMode(req.Context(), req.PathValue("subject"), b.Mode, flag(req, "force"))
	m, _ := h.r.Mode(req.Context(), req.PathValue("subject"), true)
	do(h, w, modeBody{m}, err)
}

func (h *handler) deleteMode(w http.ResponseWriter, req *http.Request) {
	prev, err := h.r.SetMode(req.Context(), req.PathValue("subject"), "", false)
	do(h, w, modeBody{prev}, err)
}
