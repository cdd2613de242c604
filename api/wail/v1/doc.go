// Package wailv1 is the generated Go code of wail's public API,
// api/wail/v1/wail.proto: the producer, admin and event services and the
// Intent and ChangeEvent records with their wire format. Regenerate with
// `make proto`; do not edit the generated files.
package wailv1
