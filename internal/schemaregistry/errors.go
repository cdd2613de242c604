package schemaregistry

import (
	"fmt"
	"net/http"
)

// Error is a refusal as the Confluent registry words it: an HTTP status, an
// error_code clients branch on, and a message.
type Error struct {
	Status  int    `json:"-"`
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s (error code %d)", e.Message, e.Code) }

// The Confluent registry's error codes this registry returns.
const (
	CodeSubjectNotFound            = 40401
	CodeVersionNotFound            = 40402
	CodeSchemaNotFound             = 40403
	CodeSubjectSoftDeleted         = 40404
	CodeSubjectNotSoftDeleted      = 40405
	CodeVersionSoftDeleted         = 40406
	CodeVersionNotSoftDeleted      = 40407
	CodeSubjectCompatNotConfigured = 40408
	CodeSubjectModeNotConfigured   = 40409
	// CodeIncompatible is the code the Confluent registry used for years
	// and clients (franz-go's sr among them) recognise; newer Confluent
	// releases say 40901 with the same HTTP status, 409.
	CodeIncompatible         = 409
	CodeInvalidSchema        = 42201
	CodeInvalidVersion       = 42202
	CodeInvalidCompatibility = 42203
	CodeInvalidMode          = 42204
	CodeNotPermitted         = 42205
	CodeReferenceExists      = 42206
	CodeIDMismatch           = 42207
	CodeInvalidSubject       = 42208
	CodeSchemaTooLarge       = 42209
	// CodeForbidden is the Confluent registry's code for a principal that
	// lacks the permission ("User is denied operation ..."). A request
	// without valid credentials (401), over its quota (429) or refused
	// while the identity provider is unreachable (503) has its HTTP status
	// as its code, as the Confluent registry's web layer answers.
	CodeForbidden = 40301
	CodeStore     = 50001
	CodeTimeout   = 50002
)

func errf(status, code int, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func subjectNotFound(s string) *Error {
	return errf(http.StatusNotFound, CodeSubjectNotFound, "Subject '%s' not found.", s)
}

func versionNotFound(v int) *Error {
	return errf(http.StatusNotFound, CodeVersionNotFound, "Version %d not found.", v)
}

func schemaNotFound(id int) *Error {
	return errf(http.StatusNotFound, CodeSchemaNotFound, "Schema %d not found", id)
}

func invalidSchema(format string, args ...any) *Error {
	return errf(http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema: "+format, args...)
}

func notPermitted(format string, args ...any) *Error {
	return errf(http.StatusUnprocessableEntity, CodeNotPermitted, format, args...)
}
