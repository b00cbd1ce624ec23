package mtlsbound

// RFC 9440 Appendix A, Figure 2: the Client-Cert value a trusted proxy sends
// (KAT-12), and values derived from it.
const (
	kat12Header = ":MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=:"

	kat12X5t       = "v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes"
	kat12SHA256Hex = "bfaf1f7e070f9fa8dd62905f158da73f84a1136624fbafcc9393c8f7287a69eb"
	kat12SHA1      = "ygg_Jp-0_HGSDpQHDqrLcxkp5vk"
	kat12SPKI      = "yTvZJqPkG-BQJ5mvQ1IbLCgU5bxrZXhlGEHQDp3uad4"
	kat12PEMText   = "npVbph__REF-d1oKvsj2oBqFTNs0XClgDR-NWlYfs6o"
	kat12JKT       = "lFask9px4fGQyM9NxknF_PMaIiyAFE7PlSBWYWYgasc"

	// RFC 8705 §3.1 example value (KAT-11); no certificate is given for it.
	kat11X5t = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
)
