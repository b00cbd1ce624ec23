// Package oautherr holds the one vocabulary of refusals shared by every
// package of this module: the error codes that RFC 6749, RFC 6750,
// RFC 8707 and RFC 9449 define for the wire, and the stable [Reason]
// values that servers log and count.
//
// It imports only the standard library, so the low-level packages (dpop,
// mtlsbound) and the servers built on them (resource, issuer) can all use
// it without import cycles.
//
// # Codes and reasons
//
// A code is what a client sees: the value of the error parameter of a
// WWW-Authenticate challenge (RFC 6750 §3.1, RFC 9449 §7.1) or of the
// error member of a token endpoint response (RFC 6749 §5.2). Codes are
// coarse by design: a client learns that its proof was refused, not which
// check failed.
//
// A [Reason] is what an operator sees: a short, stable, machine-readable
// word naming the check that refused the request (for example
// [ReasonProofHTUMismatch] or [ReasonTokenExpired]). Reasons are never sent
// to clients. They name a check, never a value from the request, so a log
// line with a reason cannot be used to replay a token or a proof. A reason
// string, once published here, keeps its spelling; new checks get new
// reasons.
//
// # Errors
//
// Each package's typed error (dpop.Error, resource.Error, issuer.Error)
// follows one rule: errors.Is(err, S) holds for the class sentinel S the
// error was built from (for example dpop.ErrInvalidProof or
// resource.ErrInvalidToken) and for every error of its cause chain, so a
// resource server's error for a replayed proof matches dpop.ErrReplay and
// errors.As finds the dpop.Error inside it. Each typed error also carries
// its Reason.
package oautherr
