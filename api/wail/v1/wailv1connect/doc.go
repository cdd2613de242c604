// Package wailv1connect holds the generated connect-go clients and handlers
// of wail's services (gRPC, gRPC-Web and Connect on one port). Regenerate
// with `make proto`.
package wailv1connect
