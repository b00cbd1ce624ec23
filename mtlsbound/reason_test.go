package mtlsbound

import (
	"errors"
	"fmt"
	"testing"

	"github.com/senderbound/senderbound/oautherr"
)

// TestReason: each failure class of this package has its own stable
// reason, wrapped or not, and a subject selector that does not match is
// told apart from other mismatches.
func TestReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want oautherr.Reason
	}{
		{ErrNoCertificate, oautherr.ReasonCertificateMissing},
		{fmt.Errorf("%w: x", ErrCertificateMismatch), oautherr.ReasonCertificateMismatch},
		{fmt.Errorf("%w: %w", ErrCertificateMismatch, errSubjectMismatch), oautherr.ReasonCertificateSubjectMismatch},
		{fmt.Errorf("%w: expired", ErrUntrustedCertificate), oautherr.ReasonCertificateUntrusted},
		{ErrRevoked, oautherr.ReasonCertificateRevoked},
		{fmt.Errorf("%w: CRL stale", ErrRevocationUnavailable), oautherr.ReasonRevocationUnavailable},
		{fmt.Errorf("%w: %w", ErrInvalidHeader, ErrHeaderTooLarge), oautherr.ReasonClientCertHeaderInvalid},
		{errors.New("other"), oautherr.ReasonClientAuthFailed},
	}
	for _, tc := range tests {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
